"""One triage: build the clients, run the engine over the topology, decide the verdict."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from mailtrace.core.address import check_domain, check_mailbox, check_sender, check_text
from mailtrace.engine.clients import RunClients
from mailtrace.engine.journey import follow, outcomes
from mailtrace.engine.runner import Engine, Hook
from mailtrace.engine.settings import Options
from mailtrace.engine.verdict import decide
from mailtrace.probes.base import Probe, Target
from mailtrace.report.model import RunInfo, Timings, TriageReport
from mailtrace.topology.flow import FlowGraph
from mailtrace.topology.model import Topology

__all__ = ["Options", "TargetError", "TriageReport", "make_target", "run_triage"]


class TargetError(ValueError):
    """An invalid recipient or domain (a usage error, exit 2)."""


def make_target(topology: Topology, recipient: str | None, domain: str | None,
                since: timedelta | None = None, *, sender: str | None = None,
                message_id: str | None = None, subject: str | None = None) -> Target:
    """Validate what to triage. Refuses CR, LF and non-ASCII: nothing here reaches a wire
    unchecked (no SMTP or DNS injection, no header or filter injection through the keys
    of the message asked about)."""
    try:
        sender = check_sender(sender) if sender is not None else None
        message_id = check_text(message_id, "--message-id") if message_id is not None else None
        subject = check_text(subject, "--subject", 255) if subject is not None else None
    except ValueError as exc:
        raise TargetError(str(exc)) from None
    if recipient is not None:
        try:
            recipient = check_mailbox(recipient)
        except ValueError as exc:
            raise TargetError(str(exc).replace("invalid address", "invalid recipient")) from None
        domain_from_recipient = recipient.rpartition("@")[2]
        if domain is not None and domain.lower().removesuffix(".") != domain_from_recipient:
            raise TargetError(f"--domain {domain} does not match the recipient's domain")
        domain = domain_from_recipient
    if domain is None:
        raise TargetError("give --recipient ADDRESS or --domain DOMAIN")
    try:
        domain = check_domain(domain)
    except ValueError as exc:
        raise TargetError(str(exc)) from None
    if domain not in topology.domains:
        raise TargetError(
            f"{domain} is not a domain of topology {topology.topology} "
            f"({', '.join(topology.domains)})"
        )
    if (sender or message_id or subject) and recipient is None:
        raise TargetError("--from, --message-id and --subject follow a message to one "
                          "recipient: give --recipient")
    return Target(domain=domain, recipient=recipient,
                  since=since if since is not None else Target.since,
                  sender=sender, message_id=message_id, subject=subject)


def run_info(options: Options, source: str | Path | None = None) -> RunInfo:
    """When, with what and from where a run is made; ``source`` is the topology file (its
    bytes are digested, so a report names exactly the file it was made with)."""
    from mailtrace import DISTRIBUTION, version

    digest = None
    if source is not None:
        try:
            digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
        except OSError:
            digest = None
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return RunInfo(now.isoformat().replace("+00:00", "Z"), f"{DISTRIBUTION} {version()}",
                   socket.gethostname(), tuple(str(e) for e in options.resolvers),
                   str(source) if source is not None else None, digest)


async def run_triage(
    topology: Topology,
    target: Target,
    options: Options,
    probes: Sequence[Probe] | None = None,
    hooks: Sequence[Hook] = (),
    *,
    source: str | Path | None = None,
) -> TriageReport:
    if probes is None:
        from mailtrace.probes.registry import TRIAGE

        probes = TRIAGE
    run = run_info(options, source)
    started = time.monotonic()
    flow = FlowGraph(topology)
    clients = RunClients(topology, options)
    timings = Timings()
    engine = Engine(topology, flow, target, clients, options.timeout, [timings, *hooks])
    try:
        tiers = await engine.run(probes)
    finally:
        await clients.aclose()
    journey = follow(tiers, flow, target.message_id, dt.datetime.now(dt.UTC))
    # Where the message asked about stopped decides; without one, the latest message's
    # journey is shown, and the probes' findings judge it with the others.
    verdict = decide(tiers, flow, journey, asked=target.asks_message)
    elapsed = (time.monotonic() - started) * 1000
    return TriageReport(topology, flow, target, tiers, verdict, elapsed, timings,
                        clients.dns.queries_sent, journey, outcomes(tiers, flow), run=run)
