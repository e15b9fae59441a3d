"""MX: the domain publishes MX records that lead to the declared first hop.

RFC 5321 §5.1 (MX lookup, implicit MX), RFC 7505 (null MX ``0 .``), RFC 2181 §10.3 and
RFC 5321 §5.1 (an MX target must be a host name with address records, not an alias and
not an IP literal). An MX that points straight at Exchange Online while a gateway is
declared in front of it lets senders skip the gateway (a *gateway bypass*).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from dataclasses import dataclass

from mailtrace.clients.dns import AddressLookup, DnsObservation, Outcome
from mailtrace.engine.probe import Probe, ProbeContext
from mailtrace.findings import Finding
from probes.dns.expect import MxExpectation, MxSet, bare, fits, matches, mx_expectation, mx_set
from probes.dns.limits import require_time


@dataclass(frozen=True)
class MxTarget:
    preference: int
    host: str
    lookup: AddressLookup | None  # None for an IP literal or the null MX


@dataclass(frozen=True)
class MxCheck:
    domain: str
    expect: MxExpectation
    mx: DnsObservation  # the answer judged: the zone's own, as its servers publish it
    targets: list[MxTarget]
    resolver_mx: DnsObservation | None = None  # what the resolvers said, when it differs


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


def _hosts(obs: DnsObservation) -> list[str]:
    return [h for _, h in (parse_mx(r.data) for r in obs.records("MX"))
            if h != "." and not is_ip_literal(h)]


def judged_answer(resolver: DnsObservation, authoritative: list[DnsObservation],
                  expected: list[str]) -> DnsObservation:
    """The MX answer to judge: the zone's servers' own answer when they give one.

    A resolver answers from whichever server it happened to ask (or from its cache), so
    judging its answer alone would make the verdict depend on luck when one server is
    stale. When the servers disagree, the answer that fits the topology is judged and
    the consistency probe names the server that differs (a degraded flow, not a fault).
    """
    usable = [o for o in authoritative if o.authoritative and mx_set(o) is not None]
    if not usable:
        return resolver
    first_of: dict[MxSet, DnsObservation] = {}
    for obs in usable:
        first_of.setdefault(mx_set(obs) or frozenset(), obs)
    fitting = [obs for key, obs in first_of.items() if fits(key, expected)]
    if fitting:
        return fitting[0]
    majority = Counter(mx_set(o) for o in usable).most_common(1)[0][0]
    return first_of[majority or frozenset()]


async def collect(ctx: ProbeContext) -> MxCheck:
    domain, deadline = ctx.target.domain, ctx.deadline
    expect = mx_expectation(ctx)
    zone = asyncio.ensure_future(ctx.dns.zone_servers(domain, deadline))
    resolver_mx = await ctx.dns.lookup(domain, "MX", deadline)
    # The resolver's targets are looked up at once: usually they are the zone's too.
    prefetch = asyncio.gather(*(ctx.dns.addresses(h, deadline) for h in _hosts(resolver_mx)))
    servers = (await zone).servers
    authoritative = await asyncio.gather(
        *(ctx.dns.query(s, domain, "MX", deadline) for s in servers)
    )
    await prefetch
    mx = judged_answer(resolver_mx, list(authoritative), expect.hosts)
    pairs = sorted(parse_mx(r.data) for r in mx.records("MX"))
    hosts = [h for _, h in pairs if h != "." and not is_ip_literal(h)]
    lookups = dict(zip(hosts, await asyncio.gather(*(ctx.dns.addresses(h, deadline)
                                                     for h in hosts)), strict=True))
    targets = [MxTarget(p, h, lookups.get(h)) for p, h in pairs]
    differs = mx is not resolver_mx and mx_set(mx) != mx_set(resolver_mx)
    return MxCheck(domain, expect, mx, targets, resolver_mx if differs else None)


def _is_cname(lookup: AddressLookup) -> bool:
    return any(r.type == "CNAME" and r.name == lookup.host
               for o in lookup.observations for r in o.answer)


def _resolution_failure(lookup: AddressLookup) -> str:
    """Why a target has no address: the A lookup's failure, else the AAAA lookup's."""
    for obs in lookup.observations:
        if obs.outcome not in (Outcome.ANSWER, Outcome.NODATA):
            return obs.outcome.value
    return "NODATA"


def evaluate(check: MxCheck) -> list[Finding]:
    mx, domain = check.mx, check.domain
    require_time([mx, check.resolver_mx,
                  *(o for t in check.targets if t.lookup for o in t.lookup.observations)])
    evidence_mx = [mx.evidence()] + ([check.resolver_mx.evidence()] if check.resolver_mx else [])
    if mx.outcome is Outcome.NODATA:
        return [Finding("DNS_MX_MISSING", {"domain": domain}, evidence_mx)]
    if mx.outcome is not Outcome.ANSWER:
        return [Finding("DNS_MX_LOOKUP_FAILED", {"domain": domain, "outcome": mx.outcome.value},
                        evidence_mx)]
    if not check.targets:  # an answer with only a CNAME at the domain, say
        return [Finding("DNS_MX_MISSING", {"domain": domain}, evidence_mx)]
    if any(t.host == "." for t in check.targets):
        return [Finding("DNS_MX_NULL", {"domain": domain}, evidence_mx)]

    findings: list[Finding] = []
    expect = check.expect
    hosts = [bare(t.host) for t in check.targets]
    bypassing = [h for h in hosts if matches(h, expect.bypass_hosts)]
    if bypassing:
        findings.append(Finding("DNS_MX_BYPASSES_GATEWAY",
                                {"domain": domain, "hosts": ", ".join(bypassing),
                                 "gateway": expect.gateway or ""},
                                evidence_mx))
    unexpected = [h for h in hosts if h not in bypassing and not matches(h, expect.hosts)]
    if unexpected and expect.hosts:
        findings.append(Finding("DNS_MX_UNEXPECTED_HOST",
                                {"domain": domain, "hosts": ", ".join(unexpected),
                                 "expected": ", ".join(expect.hosts)},
                                evidence_mx))
    missing = [h for h in expect.hosts if "*" not in h and bare(h) not in hosts]
    if missing:
        findings.append(Finding("DNS_MX_EXPECTED_HOST_MISSING",
                                {"domain": domain, "hosts": ", ".join(missing)}, evidence_mx))

    unresolvable: list[MxTarget] = []
    for t in check.targets:
        if t.lookup is None:
            findings.append(Finding("DNS_MX_TARGET_IP_LITERAL", {"domain": domain, "host": t.host},
                                    evidence_mx))
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
        evidence = evidence_mx + [
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
