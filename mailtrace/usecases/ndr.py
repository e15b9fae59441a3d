"""``mailtrace ndr --triage``: the triage of the recipient a bounce is about."""

from __future__ import annotations

from datetime import timedelta

from mailtrace.engine.settings import Options
from mailtrace.intake.dsn import OriginalMessage
from mailtrace.intake.ndr import NdrAnalysis
from mailtrace.probes.base import Target
from mailtrace.report.model import TriageReport
from mailtrace.topology.model import Topology
from mailtrace.usecases.triage import TargetError, make_target, run_triage


class NothingToTriage(ValueError):
    """No recipient of the bounce is in the topology's domains (a usage error)."""


async def triage_bounce(analysis: NdrAnalysis, since: timedelta, options: Options
                        ) -> TriageReport:
    """Triage the bounce's first failed recipient in the topology's domains. Every tier's
    probes start at once and the verdict reads tiers in flow order, so starting with the
    named tier's probes would change nothing observable: the report shows the named tier
    next to the verdict."""
    topology = analysis.hosts.topology
    assert topology is not None
    candidates = [o for o in analysis.outcomes if o.recipient.address]
    ordered = sorted(candidates, key=lambda o: (not o.failed, o.tier is None))
    address = next((o.recipient.address for o in ordered
                    if o.recipient.address and o.recipient.address.rpartition("@")[2].lower()
                    in topology.domains), None)
    if address is None:
        raise NothingToTriage(
            f"no recipient of the bounce is in the topology's domains "
            f"({', '.join(topology.domains)}): nothing to triage"
        )
    target = bounced_target(topology, address, since, analysis.report.original)
    return await run_triage(topology, target, options)


def bounced_target(topology: Topology, address: str, since: timedelta,
                   original: OriginalMessage | None) -> Target:
    """The triage of ``address`` that follows the message that bounced: its Message-ID,
    else its sender and subject, as the bounce returns them. A key that cannot be sent
    safely (a control character, non-ASCII) is left out rather than failing the triage."""
    keys: dict[str, str] = {}
    if original is not None:
        if original.message_id:
            keys["message_id"] = original.message_id
        if original.sender:
            keys["sender"] = original.sender
        if original.subject and not original.message_id:
            keys["subject"] = original.subject
    usable: dict[str, str] = {}
    for name, value in keys.items():
        try:
            make_target(topology, address, None, since, **{name: value})
        except TargetError:
            continue
        usable[name] = value
    return make_target(topology, address, None, since, **usable)
