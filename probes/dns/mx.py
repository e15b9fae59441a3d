"""MX: the domain publishes MX records that lead to the declared first hop.

RFC 5321 §5.1 (MX lookup, implicit MX), RFC 7505 (null MX ``0 .``), RFC 2181 §10.3 and
RFC 5321 §5.1 (an MX target must be a host name with address records, not an alias and
not an IP literal). An MX that points straight at Exchange Online while a gateway is
declared in front of it lets senders skip the gateway (a *gateway bypass*).
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass

from mailtrace.clients.dns import AddressLookup, DnsObservation, Outcome
from mailtrace.engine.probe import Probe, ProbeContext
from mailtrace.findings import Finding
from probes.dns.expect import MxExpectation, bare, matches, mx_expectation


@dataclass(frozen=True)
class MxTarget:
    preference: int
    host: str
    lookup: AddressLookup | None  # None for an IP literal or the null MX


@dataclass(frozen=True)
class MxCheck:
    domain: str
    expect: MxExpectation
    mx: DnsObservation
    targets: list[MxTarget]


def parse_mx(data: str) -> tuple[int, str]:
    pref, _, host = data.partition(" ")
    return int(pref), host.strip()


def is_ip_literal(host: str) -> bool:
    text = bare(host).strip("[]")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def collect(ctx: ProbeContext) -> MxCheck:
    mx = await ctx.dns.lookup(ctx.target.domain, "MX", ctx.deadline)
    pairs = sorted(parse_mx(r.data) for r in mx.records("MX"))
    resolvable = [h for _, h in pairs if h != "." and not is_ip_literal(h)]
    lookups = dict(zip(
        resolvable,
        await asyncio.gather(*(ctx.dns.addresses(h, ctx.deadline) for h in resolvable)),
        strict=True,
    ))
    targets = [MxTarget(p, h, lookups.get(h)) for p, h in pairs]
    return MxCheck(ctx.target.domain, mx_expectation(ctx), mx, targets)


def _is_cname(lookup: AddressLookup) -> bool:
    return any(r.type == "CNAME" and r.name == lookup.host
               for o in lookup.observations for r in o.answer)


def _resolution_failure(lookup: AddressLookup) -> str:
    outcomes = {o.outcome for o in lookup.observations}
    for bad in (Outcome.TIMEOUT, Outcome.SERVFAIL, Outcome.REFUSED, Outcome.NXDOMAIN):
        if bad in outcomes:
            return bad.value
    return "NODATA"


def evaluate(check: MxCheck) -> list[Finding]:
    mx, domain = check.mx, check.domain
    if mx.outcome is Outcome.NODATA:
        return [Finding("DNS_MX_MISSING", {"domain": domain}, [mx.evidence()])]
    if mx.outcome is not Outcome.ANSWER:
        return [Finding("DNS_MX_LOOKUP_FAILED", {"domain": domain, "outcome": mx.outcome.value},
                        [mx.evidence()])]
    if not check.targets:  # an answer with only a CNAME at the domain, say
        return [Finding("DNS_MX_MISSING", {"domain": domain}, [mx.evidence()])]
    if any(t.host == "." for t in check.targets):
        return [Finding("DNS_MX_NULL", {"domain": domain}, [mx.evidence()])]

    findings: list[Finding] = []
    expect = check.expect
    hosts = [bare(t.host) for t in check.targets]
    bypassing = [h for h in hosts if matches(h, expect.bypass_hosts)]
    if bypassing:
        findings.append(Finding("DNS_MX_BYPASSES_GATEWAY",
                                {"domain": domain, "hosts": ", ".join(bypassing),
                                 "gateway": expect.gateway or ""},
                                [mx.evidence()]))
    unexpected = [h for h in hosts if h not in bypassing and not matches(h, expect.hosts)]
    if unexpected and expect.hosts:
        findings.append(Finding("DNS_MX_UNEXPECTED_HOST",
                                {"domain": domain, "hosts": ", ".join(unexpected),
                                 "expected": ", ".join(expect.hosts)},
                                [mx.evidence()]))
    missing = [h for h in expect.hosts if "*" not in h and bare(h) not in hosts]
    if missing:
        findings.append(Finding("DNS_MX_EXPECTED_HOST_MISSING",
                                {"domain": domain, "hosts": ", ".join(missing)}, [mx.evidence()]))

    unresolvable: list[MxTarget] = []
    for t in check.targets:
        if t.lookup is None:
            findings.append(Finding("DNS_MX_TARGET_IP_LITERAL", {"domain": domain, "host": t.host},
                                    [mx.evidence()]))
            continue
        if _is_cname(t.lookup):
            findings.append(Finding("DNS_MX_TARGET_CNAME", {"host": bare(t.host)},
                                    [o.evidence() for o in t.lookup.observations]))
        if not t.lookup.addresses:
            unresolvable.append(t)
    if unresolvable:
        literal = [t for t in check.targets if t.lookup is None]
        every = len(unresolvable) + len(literal) == len(check.targets)
        tag = "DNS_MX_TARGET_UNRESOLVABLE" if every else "DNS_MX_SOME_TARGETS_UNRESOLVABLE"
        detail = ", ".join(
            f"{bare(t.host)} ({_resolution_failure(t.lookup)})" for t in unresolvable if t.lookup
        )
        evidence = [o.evidence() for t in unresolvable if t.lookup for o in t.lookup.observations]
        findings.append(Finding(tag, {"domain": domain, "hosts": detail}, evidence))

    if not findings:
        listing = ", ".join(
            f"{t.preference} {bare(t.host)} → {', '.join(t.lookup.addresses)}"
            for t in check.targets if t.lookup
        )
        evidence = [mx.evidence()] + [
            o.evidence() for t in check.targets if t.lookup for o in t.lookup.observations
            if o.outcome is Outcome.ANSWER
        ]
        findings.append(Finding("DNS_MX_OK", {"domain": domain, "mx": listing}, evidence))
    return findings


PROBE = Probe(
    id="dns.mx",
    kinds=frozenset({"dns"}),
    tags=frozenset({
        "DNS_MX_MISSING", "DNS_MX_LOOKUP_FAILED", "DNS_MX_NULL", "DNS_MX_BYPASSES_GATEWAY",
        "DNS_MX_UNEXPECTED_HOST", "DNS_MX_EXPECTED_HOST_MISSING", "DNS_MX_TARGET_IP_LITERAL",
        "DNS_MX_TARGET_CNAME", "DNS_MX_TARGET_UNRESOLVABLE", "DNS_MX_SOME_TARGETS_UNRESOLVABLE",
        "DNS_MX_OK",
    }),
    collect=collect,
    evaluate=evaluate,
    gates=("dns.observer",),
    deadline=8.0,
    summary="MX present, not null, leads to the declared first hop, every target resolves",
)
