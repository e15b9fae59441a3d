"""Consistency: every authoritative server and every resolver gives the same MX answer.

A server whose SOA serial is behind the others and whose MX differs is *stale* (it
missed a zone transfer, RFC 1996); one with the same serial and a different answer is a
*split brain* (two masters). A resolver with a different answer holds an old copy in
its cache until the TTL it was given runs out (RFC 2308 §5).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

from mailtrace.clients.dns import DnsObservation, Server
from mailtrace.engine.probe import NotTested, Probe, ProbeContext
from mailtrace.findings import Finding
from probes.dns.delegation import latest_serial, serial, serial_newer
from probes.dns.expect import MxSet, fits, mx_expectation, mx_set


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
        # A resolver of the panel that is down was already named by the observer check:
        # give the panel two attempts' worth of time, not the probe's whole deadline.
        ctx.dns.ask_resolvers(domain, "MX",
                              min(ctx.deadline, time.monotonic() + 2 * ctx.dns.attempt_timeout)),
    )
    return ConsistencyCheck(domain, mx_expectation(ctx).hosts, list(answers), resolvers)


def _show(answer: MxSet) -> str:
    return ", ".join(sorted(answer)) or "no MX"


def _authoritative(check: ConsistencyCheck) -> list[ServerAnswers]:
    """Servers that answered with authority; lame or failing ones are the delegation
    probe's findings, not a second opinion on the data."""
    return [a for a in check.servers if a.mx.authoritative and mx_set(a.mx) is not None]


def reference_answer(answers: list[ServerAnswers], expected: list[str]) -> MxSet:
    """The answer the others are measured against: the declared one, else the majority."""
    sets = [mx_set(a.mx) or frozenset() for a in answers]
    fitting = [s for s in sets if fits(s, expected)]
    return Counter(fitting or sets).most_common(1)[0][0]


def evaluate(check: ConsistencyCheck) -> list[Finding]:
    answers = _authoritative(check)
    if not answers:
        raise NotTested("no name server gave an authoritative MX answer to compare")
    reference = reference_answer(answers, check.expected_hosts)
    serials = {a.server: serial(a.soa) for a in answers}
    reference_serial = latest_serial(
        [serials[a.server] for a in answers if mx_set(a.mx) == reference])
    findings: list[Finding] = []
    for a in answers:
        answer = mx_set(a.mx) or frozenset()
        if answer == reference:
            continue
        own = serials[a.server]
        stale = own is not None and reference_serial is not None and serial_newer(
            reference_serial, own)
        args = {"ns": a.server.host, "address": str(a.mx.via), "answer": _show(answer),
                "expected": _show(reference), "serial": own, "latest": reference_serial}
        findings.append(Finding("DNS_NS_STALE" if stale else "DNS_NS_SPLIT_BRAIN", args,
                                [a.mx.evidence(), a.soa.evidence()]))
    for obs in check.resolvers:
        cached = mx_set(obs)
        if cached is None or cached == reference:
            continue
        ttl = max((r.ttl for r in obs.answer), default=0)
        findings.append(Finding("DNS_RESOLVER_ANSWER_DIFFERS",
                                {"resolver": obs.server.label, "answer": _show(cached),
                                 "expected": _show(reference), "ttl": ttl},
                                [obs.evidence()]))
    if not findings:
        agreeing = len(answers) + sum(mx_set(o) is not None for o in check.resolvers)
        findings.append(Finding("DNS_ANSWERS_CONSISTENT",
                                {"domain": check.domain, "answer": _show(reference),
                                 "sources": agreeing},
                                [a.mx.evidence() for a in answers]))
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
