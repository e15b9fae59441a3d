"""What the topology says public DNS should publish, read through the flow."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from mailtrace.clients.dns import DnsObservation, Outcome
from mailtrace.probes.base import ProbeContext
from mailtrace.topology.model import GATEWAY_KINDS, DnsTier

# Exchange Online inbound hosts (graph-exo reference §1: the classic and the DNSSEC form).
MICROSOFT_INBOUND = ("*.mail.protection.outlook.com", "*.mx.microsoft")


def bare(host: str) -> str:
    return host.lower().rstrip(".")


def matches(host: str, patterns: list[str]) -> bool:
    host = bare(host)
    return any(fnmatch.fnmatchcase(host, bare(p)) for p in patterns)


@dataclass(frozen=True)
class MxExpectation:
    """The MX hosts the first hop receives on, and hosts that would skip it."""

    hosts: list[str]  # declared MX hosts (expect.mx, or the first hops' inbound hosts)
    gateway: str | None  # the first hop's id when it is a gateway
    bypass_hosts: list[str]  # inbound hosts of tiers behind the gateway (+ Microsoft's)


def mx_expectation(ctx: ProbeContext) -> MxExpectation:
    first = ctx.flow.first_hops()
    tier = ctx.topology.tiers[ctx.tier]
    declared = tier.expect.mx if isinstance(tier, DnsTier) else None
    hosts = list(declared or [h for t in first for h in ctx.topology.inbound_hosts(t)])
    gateways = [t for t in first if ctx.topology.tiers[t].kind in GATEWAY_KINDS]
    bypass: list[str] = []
    if gateways:
        # Tiers reached only through a gateway; one the flow also lets DNS reach directly
        # (a declared second path) is not bypassed by an MX that points at it.
        behind = set().union(*(ctx.flow.downstream_of(g) for g in gateways)) - set(first)
        bypass = [h for t in sorted(behind) for h in ctx.topology.inbound_hosts(t)]
        if not any(ctx.topology.tiers[t].kind == "exchange-online" for t in first):
            bypass += list(MICROSOFT_INBOUND)
        bypass = [p for p in bypass if not any(matches(h, [p]) for h in hosts)]
    return MxExpectation(hosts, gateways[0] if gateways else None, bypass)


MxSet = frozenset[str]


def mx_set(obs: DnsObservation) -> MxSet | None:
    """An MX answer as a comparable set ("10 host"), or None when it is no usable answer."""
    if obs.outcome is Outcome.NXDOMAIN:
        return frozenset({"NXDOMAIN"})
    if obs.outcome not in (Outcome.ANSWER, Outcome.NODATA):
        return None
    return frozenset(bare(r.data) for r in obs.records("MX"))


def fits(answer: MxSet, expected: list[str]) -> bool:
    """Does every MX target of the answer match a declared host?"""
    hosts = [a.partition(" ")[2] for a in answer]
    return bool(hosts) and all(matches(h, expected) for h in hosts)
