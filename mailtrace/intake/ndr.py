"""Explain a bounce: per recipient, what the code means and which tier it names.

The tier named is the server the failure is about (see :mod:`mailtrace.intake.codes`):
the remote server that replied, else the reporting server itself; for an expired or
unreachable next hop, the next hop; for a failed name lookup, public DNS. A reporting
server that matches only a vendor pattern and is not upstream of the replying tier is
the sender's own (another tenant's Exchange Online, say), not a tier of this topology.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailtrace.core.evidence import Observed
from mailtrace.core.findings import Finding
from mailtrace.intake.advice import advice_for
from mailtrace.intake.choice import Code, candidates, choose, reply_in
from mailtrace.intake.codes import DELIVERED, CodeRule, explain
from mailtrace.intake.dsn import DeliveryReport, RecipientStatus
from mailtrace.intake.tiers import HostMap
from mailtrace.topology.model import MAILBOX_KINDS


@dataclass(frozen=True)
class RecipientOutcome:
    recipient: RecipientStatus
    status: str | None  # the code that explains the outcome (mailtrace.intake.choice)
    rule: CodeRule
    tier: str | None
    reporting_tier: str | None
    remote_tier: str | None
    finding: Finding
    codes: tuple[Code, ...] = ()  # every code the report gives, the chosen one included
    chosen: Code | None = None
    #: The triage tag whose remediation fits this failure at its tier
    #: (:mod:`mailtrace.intake.advice`), when there is one.
    advice: str | None = None

    @property
    def inferred(self) -> bool:
        """Is the status read from the wording (or the class) rather than written?"""
        return self.chosen is not None and self.chosen.inferred

    @property
    def failed(self) -> bool:
        """Failed or delayed: anything but a report of success."""
        return self.rule is not DELIVERED


@dataclass(frozen=True)
class NdrAnalysis:
    report: DeliveryReport
    outcomes: list[RecipientOutcome]
    hosts: HostMap

    @property
    def named(self) -> RecipientOutcome | None:
        """The first failed recipient whose failure names a tier of the topology."""
        return next((o for o in self.outcomes if o.failed and o.tier is not None), None)

    @property
    def exit_code(self) -> int:
        return 1 if any(o.failed for o in self.outcomes) else 0


def _next_hop(hosts: HostMap, tier: str | None) -> str | None:
    if tier is None or hosts.flow is None:
        return None
    following = hosts.flow.next_hops(tier)
    return following[0] if len(following) == 1 else None


def _mailbox_tier(hosts: HostMap, replier: str | None) -> str | None:
    """The replier if it is a mailbox tier, else the one mailbox tier downstream of it."""
    if hosts.topology is None or hosts.flow is None or replier is None:
        return None
    if hosts.topology.tiers[replier].kind in MAILBOX_KINDS:
        return replier
    found = [t for t in hosts.flow.downstream_of(replier)
             if hosts.topology.tiers[t].kind in MAILBOX_KINDS]
    return found[0] if len(found) == 1 else replier


def _in_topology(hosts: HostMap, address: str | None) -> bool:
    if hosts.topology is None or not address:
        return False
    return address.rpartition("@")[2].lower().removesuffix(".") in hosts.topology.domains


def attribute(hosts: HostMap, r: RecipientStatus, rule: CodeRule
              ) -> tuple[str | None, str | None, str | None]:
    """(tier named, reporting tier, remote tier) for one recipient."""
    remote = hosts.tier_of(r.remote_mta)
    reporting_match = hosts.match(r.reporting_mta)
    reporting = reporting_match.tier if reporting_match else None
    if (reporting_match is not None and reporting_match.how != "declared"
            and remote is not None and reporting != remote
            and not hosts.upstream(reporting_match.tier, remote)):
        reporting = None  # the sender's own server, matched by a vendor pattern only
    if rule.blame == "dns":
        named = hosts.flow.dns_tier() if hosts.flow and _in_topology(hosts, r.address) else None
    elif rule.blame == "mailbox":
        named = _mailbox_tier(hosts, remote or reporting)
    elif rule.blame == "next-hop":
        named = remote or _next_hop(hosts, reporting)
    elif r.remote_mta:
        named = remote
    else:
        named = reporting
    if named is None and rule.vendor and not (r.remote_mta and remote is None):
        named = hosts.of_kind(rule.vendor)
    return named, reporting, remote


def evidence(report: DeliveryReport, r: RecipientStatus, codes: list[Code]) -> Observed:
    """The raw record a recipient's finding rests on: what the bounce says, as it says it
    (the one place a bounce's evidence is built)."""
    record: dict[str, Any] = {
        "format": report.format,
        "recipient": r.address,
        "action": r.action,
        "status": r.status,
        "diagnostic": r.diagnostic,
        "text": r.text,
        "command": r.command,
        "reporting_mta": r.reporting_mta,
        "remote_mta": r.remote_mta,
        "last_attempt": r.last_attempt,
        "codes": [c.as_json() for c in codes],
    }
    return Observed({k: v for k, v in record.items() if v not in (None, "", [])})


def analyze(report: DeliveryReport, hosts: HostMap) -> NdrAnalysis:
    outcomes = []
    for r in report.recipients:
        codes = candidates(r.status, r.diagnostic, r.text, r.action)
        chosen = choose(codes, reply_in(r.diagnostic))
        status = chosen.code if chosen else None
        words = f"{r.diagnostic} {r.text}".strip()
        rule = explain(r.action, status, words)
        tier, reporting_tier, remote_tier = attribute(hosts, r, rule)
        kind = hosts.topology.tiers[tier].kind if hosts.topology and tier else None
        finding = Finding(
            rule.tag,
            {"address": r.address or "(no address)", "status": status or "(no status)",
             "replier": r.remote_mta or r.reporting_mta or "(not named)",
             "reporter": r.reporting_mta or "(not named)",
             "next_hop": r.remote_mta or "not named",
             "tier": tier or "(outside the topology)"},
            [evidence(report, r, codes)],
            about=tier,
        )
        outcomes.append(RecipientOutcome(
            r, status, rule, tier, reporting_tier, remote_tier, finding, tuple(codes), chosen,
            advice_for(rule.tag, kind, status, words)))
    return NdrAnalysis(report, outcomes, hosts)
