"""What the topology says public DNS should publish, read through the flow."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from mailtrace.engine.probe import ProbeContext
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

    first_hops: list[str]  # tier ids right after public DNS
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
        behind = set().union(*(ctx.flow.downstream_of(g) for g in gateways))
        bypass = [h for t in sorted(behind) for h in ctx.topology.inbound_hosts(t)]
        bypass += list(MICROSOFT_INBOUND)
        bypass = [h for h in bypass if not matches(h, hosts)]
    return MxExpectation(first, hosts, gateways[0] if gateways else None, bypass)
