"""Consistency: every authoritative server and every resolver gives the same MX answer.

A server whose SOA serial is behind the others and whose MX differs is *stale* (it
missed a zone transfer, RFC 1996); one with the same serial and a different answer is a
*split brain* (two masters). A resolver with a different answer holds an old copy in
its cache until the TTL it was given runs out (RFC 2308 §5).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from mailtrace.clients.dns import DnsObservation, Outcome
from mailtrace.core.findings import Finding
from mailtrace.probes.base import NotTested, Probe, ProbeContext
from mailtrace.probes.dns.delegation import serial_newer
from mailtrace.probes.dns.expect import MxSet, mx_expectation, mx_set
from mailtrace.probes.dns.limits import require_time
from mailtrace.probes.dns.zone_view import ServerView, authoritative, current, server_views


@dataclass(frozen=True)
class ConsistencyCheck:
    domain: str
    expected_hosts: list[str]
    servers: list[ServerView]
    resolvers: list[DnsObservation]


async def collect(ctx: ProbeContext) -> ConsistencyCheck:
    views, resolvers = await asyncio.gather(
        server_views(ctx),
        # A resolver of the panel that is down was already named by the observer check:
        # give the panel two attempts' worth of time, not the probe's whole deadline.
        ctx.dns.ask_resolvers(ctx.target.domain, "MX",
                              min(ctx.deadline, time.monotonic() + 2 * ctx.dns.attempt_timeout)),
    )
    return ConsistencyCheck(ctx.target.domain, mx_expectation(ctx).hosts, views, resolvers)


def _show(answer: MxSet) -> str:
    return ", ".join(sorted(answer)) or "no MX"


def evaluate(check: ConsistencyCheck) -> list[Finding]:
    require_time([o for v in check.servers for o in (v.mx, v.soa)])
    reference_view = current(check.servers, check.expected_hosts)
    if reference_view is None:
        raise NotTested("no name server gave an authoritative MX answer to compare")
    reference = mx_set(reference_view.mx) or frozenset()
    newest = reference_view.serial
    findings: list[Finding] = []
    answered = authoritative(check.servers)
    for v in check.servers:
        failed_mx = mx_set(v.mx) is None
        if not failed_mx or v.soa.outcome is not Outcome.ANSWER or not v.soa.authoritative:
            continue
        # The server answers for the zone (SOA) but not for the MX question.
        findings.append(Finding("DNS_NS_MX_QUERY_FAILS",
                                {"ns": v.server.host, "address": str(v.mx.via),
                                 "outcome": v.mx.outcome.value},
                                [v.mx.evidence(), v.soa.evidence()]))
    for v in answered:
        answer = mx_set(v.mx) or frozenset()
        if answer == reference:
            continue
        stale = v.serial is not None and newest is not None and serial_newer(newest, v.serial)
        args = {"ns": v.server.host, "address": str(v.mx.via), "answer": _show(answer),
                "expected": _show(reference), "serial": v.serial, "latest": newest}
        findings.append(Finding("DNS_NS_STALE" if stale else "DNS_NS_SPLIT_BRAIN", args,
                                [v.mx.evidence(), v.soa.evidence()]))
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
        agreeing = len(answered) + sum(mx_set(o) is not None for o in check.resolvers)
        findings.append(Finding("DNS_ANSWERS_CONSISTENT",
                                {"domain": check.domain, "answer": _show(reference),
                                 "sources": agreeing},
                                [v.mx.evidence() for v in answered]))
    return findings


PROBE = Probe(
    id="dns.consistency",
    asks="dns",
    kinds=frozenset({"dns"}),
    tags=frozenset({"DNS_NS_STALE", "DNS_NS_SPLIT_BRAIN", "DNS_RESOLVER_ANSWER_DIFFERS",
                    "DNS_NS_MX_QUERY_FAILS", "DNS_ANSWERS_CONSISTENT"}),
    collect=collect,
    evaluate=evaluate,
    gates=("dns.observer",),
    deadline=8.0,
    summary="MX answers agree across every authoritative server and every resolver",
)
