"""Delegation: the domain's zone is delegated, and every NS answers for it with authority.

RFC 1034 §4.2 (a zone's servers answer authoritatively, AA set), RFC 1912 §2.8 and
RFC 1034 §4.2.1 (the servers' SOA serials agree once a change has propagated). The
parent's referral is asked too, so that servers can be named even when they all fail.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mailtrace.clients.dns import Delegation, DnsObservation, Outcome, Server
from mailtrace.core.findings import Finding
from mailtrace.probes.base import NotTested, Probe, ProbeContext
from mailtrace.probes.dns.limits import require_time

PROBLEM_TAGS = {
    Outcome.TIMEOUT: "DNS_NS_UNREACHABLE",
    Outcome.NETWORK_ERROR: "DNS_NS_UNREACHABLE",
    Outcome.SERVFAIL: "DNS_NS_SERVFAIL",
    Outcome.MALFORMED: "DNS_NS_BAD_REPLY",
    Outcome.MISMATCH: "DNS_NS_BAD_REPLY",
}


@dataclass(frozen=True)
class DelegationCheck:
    domain: str
    delegation: Delegation
    soa_answers: list[DnsObservation]  # SOA asked of each server directly


async def collect(ctx: ProbeContext) -> DelegationCheck:
    # The parent's side starts at once; the servers the zone itself names are asked as
    # soon as they are known; those only the parent names follow.
    full = asyncio.ensure_future(ctx.dns.delegation(ctx.target.domain, ctx.deadline))
    child = await ctx.dns.zone_servers(ctx.target.domain, ctx.deadline)
    first = asyncio.gather(*(ctx.dns.query(s, child.apex, "SOA", ctx.deadline)
                             for s in child.servers))
    d = await full
    rest = [s for s in d.servers if s not in child.servers]
    answers = list(await first)
    answers += await asyncio.gather(*(ctx.dns.query(s, d.apex, "SOA", ctx.deadline)
                                      for s in rest))
    return DelegationCheck(ctx.target.domain, d, answers)


def serial(obs: DnsObservation) -> int | None:
    for r in obs.records("SOA"):
        try:
            return int(r.data.split()[2])
        except (IndexError, ValueError):
            return None
    return None


def serial_newer(a: int, b: int) -> bool:
    """RFC 1982 serial number arithmetic (SERIAL_BITS = 32): is ``a`` newer than ``b``?"""
    return a != b and ((a > b and a - b < 2**31) or (a < b and b - a > 2**31))


def latest_serial(serials: list[int | None]) -> int | None:
    """The serial no other is newer than (RFC 1982), ignoring unparsable ones."""
    known = [s for s in serials if s is not None]
    for candidate in known:
        if not any(serial_newer(other, candidate) for other in known):
            return candidate
    return known[0] if known else None


def _is_authoritative_answer(obs: DnsObservation) -> bool:
    return obs.outcome is Outcome.ANSWER and obs.authoritative and bool(obs.records("SOA"))


def evaluate(check: DelegationCheck) -> list[Finding]:
    d = check.delegation
    apex = d.apex.rstrip(".")
    lookups = [d.soa, d.ns] + ([d.parent] if d.parent else [])
    require_time([*lookups, *(o for lk in d.ns_addresses for o in lk.observations),
                  *check.soa_answers])
    # The parent's word decides whether the domain exists; a resolver's NXDOMAIN (a
    # filtering resolver, a cached negative answer) does so only when no parent answered.
    parent_says_nx = d.parent is not None and d.parent.outcome is Outcome.NXDOMAIN
    if parent_says_nx or (d.parent is None and d.soa.outcome is Outcome.NXDOMAIN):
        return [Finding("DNS_DOMAIN_NXDOMAIN", {"domain": check.domain},
                        [o.evidence() for o in lookups])]
    names = sorted(set(d.child_names) | set(d.parent_names))
    if not names:
        failed = [o for o in (d.soa, d.ns) if not o.outcome.answered]
        if failed:
            return [Finding("DNS_RESOLUTION_FAILED",
                            {"domain": check.domain, "outcome": failed[0].outcome.value},
                            [o.evidence() for o in lookups])]
        return [Finding("DNS_NS_MISSING", {"domain": apex}, [o.evidence() for o in lookups])]

    findings: list[Finding] = []
    addressed = {s.name for s in d.servers}
    for lk in d.ns_addresses:
        if lk.host not in addressed:
            findings.append(Finding("DNS_NS_UNRESOLVABLE", {"ns": lk.host.rstrip(".")},
                                    [o.evidence() for o in lk.observations]))

    unroutable = [o for o in check.soa_answers if o.outcome is Outcome.NO_ROUTE]
    judged = [o for o in check.soa_answers if o.outcome is not Outcome.NO_ROUTE]
    if unroutable:
        findings.append(Finding("OBSERVER_NO_ROUTE",
                                {"servers": ", ".join(o.server.label for o in unroutable)},
                                [o.evidence() for o in unroutable]))
        if not judged:
            raise NotTested("this machine has no route to any server of the zone", findings)
    good = [o for o in judged if _is_authoritative_answer(o)]
    silent = all(o.outcome is Outcome.TIMEOUT for o in judged)
    resolvers_answer = Outcome.ANSWER in (d.soa.outcome, d.ns.outcome)
    if not good and judged and silent and resolvers_answer and d.parent is None:
        # The resolvers answer for the zone, yet no server answers this machine, the
        # parent's included: outbound DNS from here is most likely filtered (DESIGN:
        # never blame a tier for the observer's problem). Had the parent answered, direct
        # DNS would be shown to work and the zone's silence would be its own fault.
        findings.append(Finding("OBSERVER_DIRECT_DNS_BLOCKED",
                                {"zone": apex, "servers": ", ".join(o.server.label
                                                                    for o in judged)},
                                [d.soa.evidence(), *(o.evidence() for o in judged)]))
        raise NotTested("no name server answers this machine directly", findings)
    if not good:
        evidence = [o.evidence() for o in judged] or [o.evidence() for o in lookups]
        outcomes = ", ".join(f"{o.server.label}: {o.outcome.value}" for o in judged)
        return [Finding("DNS_ALL_NS_FAILING",
                        {"zone": apex, "servers": outcomes or "no NS has an address"},
                        evidence)]

    named = set(d.parent_names)
    by_parent = [o for o in judged if o.server.name in named]
    if by_parent and not any(o in good for o in by_parent):
        findings.append(Finding("DNS_DELEGATED_NS_ALL_FAILING",
                                {"zone": apex, "servers": ", ".join(
                                    f"{o.server.label}: {o.outcome.value}" for o in by_parent)},
                                [o.evidence() for o in by_parent]))
    for obs in judged:
        if obs in good:
            continue
        tag = PROBLEM_TAGS.get(obs.outcome, "DNS_NS_LAME")
        findings.append(Finding(tag, {"ns": obs.server.host, "address": str(obs.via),
                                      "zone": apex, "outcome": obs.outcome.value},
                                [obs.evidence()]))

    serials = {o.server: serial(o) for o in good}
    if len(set(serials.values())) > 1:
        latest = latest_serial(list(serials.values()))
        behind = [f"{srv.label} has {s}" for srv, s in serials.items() if s != latest]
        findings.append(Finding("DNS_SOA_SERIAL_MISMATCH",
                                {"zone": apex, "latest": latest, "behind": "; ".join(behind)},
                                [o.evidence() for o in good]))

    if d.parent is not None and d.child_names and set(d.parent_names) != set(d.child_names):
        findings.append(Finding("DNS_NS_PARENT_CHILD_MISMATCH",
                                {"zone": apex, "parent": _names(d.parent_names),
                                 "child": _names(d.child_names)},
                                [d.parent.evidence(), d.ns.evidence()]))
    if all(f.tag == "OBSERVER_NO_ROUTE" for f in findings):
        findings.append(Finding("DNS_DELEGATION_OK",
                                {"zone": apex, "servers": ", ".join(_labels(d.servers)),
                                 "serial": next(iter(serials.values()))},
                                [o.evidence() for o in good]))
    return findings


def _labels(servers: list[Server]) -> list[str]:
    return [s.label for s in servers]


def _names(names: list[str]) -> str:
    return ", ".join(n.rstrip(".") for n in names)


PROBE = Probe(
    id="dns.delegation",
    asks="dns",
    kinds=frozenset({"dns"}),
    tags=frozenset({
        "DNS_DOMAIN_NXDOMAIN", "DNS_RESOLUTION_FAILED", "DNS_NS_MISSING", "DNS_NS_UNRESOLVABLE",
        "DNS_ALL_NS_FAILING", "DNS_NS_UNREACHABLE", "DNS_NS_SERVFAIL", "DNS_NS_BAD_REPLY",
        "DNS_NS_LAME", "DNS_SOA_SERIAL_MISMATCH", "DNS_NS_PARENT_CHILD_MISMATCH",
        "DNS_DELEGATION_OK", "OBSERVER_NO_ROUTE", "OBSERVER_DIRECT_DNS_BLOCKED",
        "DNS_DELEGATED_NS_ALL_FAILING",
    }),
    collect=collect,
    evaluate=evaluate,
    gates=("dns.observer",),
    deadline=8.0,
    summary="NS present, each NS answers with authority, SOA serials agree",
)
