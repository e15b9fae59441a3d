"""Consistency: every authoritative server and every resolver gives the same MX answer.

A server whose SOA serial is behind the others and whose MX differs is *stale* (it
missed a zone transfer, RFC 1996); one with the same serial and a different answer is a
*split brain* (two masters). A resolver with a different answer holds an old copy in
its cache until the TTL it was given runs out (RFC 2308 §5).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from mailtrace.clients.dns import DnsObservation, Outcome, Server
from mailtrace.engine.probe import NotTested, Probe, ProbeContext
from mailtrace.findings import Finding
from probes.dns.delegation import serial
from probes.dns.expect import bare, matches, mx_expectation

MxSet = frozenset[str]


@dataclass(frozen=True)
class ServerAnswers:
    server: Server
    mx: DnsObservation
    soa: DnsObservation


@dataclass(frozen=True)
class ConsistencyCheck:
    domain: str
    expected_hosts: list[str]
    servers: list[ServerAnswers]
    resolvers: list[DnsObservation]


async def collect(ctx: ProbeContext) -> ConsistencyCheck:
    domain = ctx.target.domain
    zone = await ctx.dns.zone_servers(domain, ctx.deadline)
    if not zone.servers:  # the zone's own NS set is unusable: ask the parent's
        zone = await ctx.dns.delegation(domain, ctx.deadline)

    async def ask(server: Server) -> ServerAnswers:
        mx, soa = await asyncio.gather(
            ctx.dns.query(server, domain, "MX", ctx.deadline),
            ctx.dns.query(server, zone.apex, "SOA", ctx.deadline),
        )
        return ServerAnswers(server, mx, soa)

    answers, resolvers = await asyncio.gather(
        asyncio.gather(*(ask(s) for s in zone.servers)),
        ctx.dns.ask_resolvers(domain, "MX", ctx.deadline),
    )
    return ConsistencyCheck(domain, mx_expectation(ctx).hosts, list(answers), resolvers)


def mx_set(obs: DnsObservation) -> MxSet | None:
    """The MX answer as a comparable set, or None when the server gave no usable answer."""
    if obs.outcome not in (Outcome.ANSWER, Outcome.NODATA, Outcome.NXDOMAIN):
        return None
    if obs.outcome is Outcome.NXDOMAIN:
        return frozenset({"NXDOMAIN"})
    return frozenset(bare(r.data) for r in obs.records("MX"))


def _fits(answer: MxSet, expected: list[str]) -> bool:
    hosts = [a.partition(" ")[2] for a in answer]
    return bool(hosts) and all(matches(h, expected) for h in hosts)


def _show(answer: MxSet) -> str:
    return ", ".join(sorted(answer)) or "no MX"


def reference_answer(check: ConsistencyCheck) -> MxSet | None:
    """The answer the others are measured against: the declared one, else the majority."""
    sets = [s for s in (mx_set(a.mx) for a in check.servers) if s is not None]
    sets += [s for s in (mx_set(o) for o in check.resolvers) if s is not None]
    if not sets:
        return None
    fitting = [s for s in sets if _fits(s, check.expected_hosts)]
    return Counter(fitting or sets).most_common(1)[0][0]


def evaluate(check: ConsistencyCheck) -> list[Finding]:
    reference = reference_answer(check)
    if reference is None:
        raise NotTested("no server or resolver gave a usable MX answer to compare")
    serials = {a.server: serial(a.soa) for a in check.servers}
    latest = max((s for s in serials.values() if s is not None), default=None)
    findings: list[Finding] = []
    for a in check.servers:
        answer = mx_set(a.mx)
        if answer is None or answer == reference:
            continue
        own = serials[a.server]
        stale = own is not None and latest is not None and own < latest
        args = {"ns": a.server.host, "address": str(a.mx.via), "answer": _show(answer),
                "expected": _show(reference),
                "serial": own, "latest": latest}
        findings.append(Finding("DNS_NS_STALE" if stale else "DNS_NS_SPLIT_BRAIN", args,
                                [a.mx.evidence(), a.soa.evidence()]))
    for obs in check.resolvers:
        answer = mx_set(obs)
        if answer is None or answer == reference:
            continue
        ttl = max((r.ttl for r in obs.answer), default=0)
        findings.append(Finding("DNS_RESOLVER_ANSWER_DIFFERS",
                                {"resolver": obs.server.label, "answer": _show(answer),
                                 "expected": _show(reference), "ttl": ttl},
                                [obs.evidence()]))
    if not findings:
        sources = [a.server.label for a in check.servers if mx_set(a.mx) is not None]
        sources += [o.server.label for o in check.resolvers if mx_set(o) is not None]
        findings.append(Finding("DNS_ANSWERS_CONSISTENT",
                                {"domain": check.domain, "answer": _show(reference),
                                 "sources": len(sources)},
                                [a.mx.evidence() for a in check.servers]))
    return findings


PROBE = Probe(
    id="dns.consistency",
    kinds=frozenset({"dns"}),
    tags=frozenset({"DNS_NS_STALE", "DNS_NS_SPLIT_BRAIN", "DNS_RESOLVER_ANSWER_DIFFERS",
                    "DNS_ANSWERS_CONSISTENT"}),
    collect=collect,
    evaluate=evaluate,
    gates=("dns.observer",),
    deadline=8.0,
    summary="MX answers agree across every authoritative server and every resolver",
)
