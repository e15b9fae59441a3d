"""MX: the domain publishes MX records that lead to the declared first hop.

RFC 5321 §5.1 (MX lookup, implicit MX), RFC 7505 (null MX ``0 .``), RFC 2181 §10.3 and
RFC 5321 §5.1 (an MX target must be a host name with address records, not an alias and
not an IP literal). An MX that points straight at Exchange Online while a gateway is
declared in front of it lets senders skip the gateway (a *gateway bypass*).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from mailtrace.clients.dns import AddressLookup, DnsObservation, Outcome
from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.probes.base import Probe, ProbeContext
from mailtrace.probes.dns.expect import MxExpectation, bare, matches, mx_expectation, mx_set
from mailtrace.probes.dns.limits import require_time
from mailtrace.probes.dns.zone_view import current, server_views


@dataclass(frozen=True)
class MxTarget:
    preference: int
    host: str
    lookup: AddressLookup | None  # None for an IP literal or the null MX

    @property
    def names(self) -> list[str]:
        """The target and, when it is an alias, every name its CNAME chain leads to."""
        names = [bare(self.host)]
        answer = self.lookup.a.answer if self.lookup else ()
        for _ in range(16):
            alias = next((r for r in answer if r.type == "CNAME" and bare(r.name) == names[-1]),
                         None)
            if alias is None:
                break
            names.append(bare(alias.data))
        return names


@dataclass(frozen=True)
class MxCheck:
    domain: str
    expect: MxExpectation
    mx: DnsObservation  # the answer judged: the zone's current one, as its servers publish it
    targets: list[MxTarget]
    resolver_mx: DnsObservation | None = None  # what the resolvers said


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


async def collect(ctx: ProbeContext) -> MxCheck:
    domain, deadline = ctx.target.domain, ctx.deadline
    expect = mx_expectation(ctx)
    views = asyncio.ensure_future(server_views(ctx))
    resolver_mx = await ctx.dns.lookup(domain, "MX", deadline)
    # The resolver's targets are looked up at once: usually they are the zone's too.
    prefetch = asyncio.gather(*(ctx.dns.addresses(h, deadline) for h in _hosts(resolver_mx)))
    view = current(await views, expect.hosts)
    await prefetch
    # Judge the zone's current answer, not whichever server the resolver happened to ask:
    # the consistency probe names a server that differs (a degraded flow, not a fault).
    mx = view.mx if view is not None else resolver_mx
    pairs = sorted(parse_mx(r.data) for r in mx.records("MX"))
    hosts = _hosts(mx)
    lookups = dict(zip(hosts, await asyncio.gather(*(ctx.dns.addresses(h, deadline)
                                                     for h in hosts)), strict=True))
    targets = [MxTarget(p, h, lookups.get(h)) for p, h in pairs]
    return MxCheck(domain, expect, mx, targets, resolver_mx)


def _is_cname(lookup: AddressLookup) -> bool:
    return any(r.type == "CNAME" and r.name == lookup.host
               for o in lookup.observations for r in o.answer)


def _resolution_failure(lookup: AddressLookup) -> str:
    """Why a target has no address: the A lookup's failure, else the AAAA lookup's."""
    for obs in lookup.observations:
        if obs.outcome not in (Outcome.ANSWER, Outcome.NODATA):
            return obs.outcome.value
    return "NODATA"


def _bypass(check: MxCheck, findings: list[Finding], evidence: Sequence[Evidence]
            ) -> list[str]:
    """MX targets (or the hosts their aliases lead to) that skip the declared gateway.

    All of them, or the most preferred: senders deliver there first (a bypass). Only
    less preferred ones: senders use them when the gateway does not answer (a backup
    bypass: the flow is degraded, RFC 5321 §5.1 preference order)."""
    expect = check.expect
    bypassing = [t for t in check.targets if any(matches(n, expect.bypass_hosts)
                                                 for n in t.names)]
    if not bypassing:
        return []
    hosts = ", ".join(f"{t.preference} {bare(t.host)}" for t in bypassing)
    best = min(t.preference for t in check.targets)
    backup_only = all(t.preference > best for t in bypassing)
    tag = "DNS_MX_BACKUP_BYPASSES_GATEWAY" if backup_only else "DNS_MX_BYPASSES_GATEWAY"
    findings.append(Finding(tag, {"domain": check.domain, "hosts": hosts,
                                  "gateway": expect.gateway or ""}, evidence))
    return [bare(t.host) for t in bypassing]


def evaluate(check: MxCheck) -> list[Finding]:
    mx, domain, resolver = check.mx, check.domain, check.resolver_mx
    require_time([mx, resolver,
                  *(o for t in check.targets if t.lookup for o in t.lookup.observations)])
    evidence_mx = [mx.evidence()]
    if resolver is not None and resolver is not mx and mx_set(resolver) != mx_set(mx):
        evidence_mx.append(resolver.evidence())  # what the resolvers said, beside it
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
    if resolver is not None and resolver is not mx and resolver.outcome in (
            Outcome.SERVFAIL, Outcome.TIMEOUT):
        # The zone's servers publish the MX, yet working resolvers cannot resolve it: a
        # validation failure (DNSSEC) or a broken path between resolvers and the zone.
        findings.append(Finding("DNS_MX_RESOLVERS_FAIL",
                                {"domain": domain, "outcome": resolver.outcome.value},
                                [resolver.evidence(), mx.evidence()]))
    expect = check.expect
    bypassing = _bypass(check, findings, evidence_mx)
    unexpected = [bare(t.host) for t in check.targets if bare(t.host) not in bypassing
                  and not any(matches(n, expect.hosts) for n in t.names)]
    if unexpected and expect.hosts:
        findings.append(Finding("DNS_MX_UNEXPECTED_HOST",
                                {"domain": domain, "hosts": ", ".join(unexpected),
                                 "expected": ", ".join(expect.hosts)},
                                evidence_mx))
    published = {n for t in check.targets for n in t.names}
    missing = [h for h in expect.hosts if "*" not in h and bare(h) not in published]
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
            findings.append(Finding("DNS_MX_TARGET_CNAME",
                                    {"host": bare(t.host), "target": t.names[-1]},
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
    asks="dns",
    kinds=frozenset({"dns"}),
    tags=frozenset({
        "DNS_MX_MISSING", "DNS_MX_LOOKUP_FAILED", "DNS_MX_NULL", "DNS_MX_BYPASSES_GATEWAY",
        "DNS_MX_UNEXPECTED_HOST", "DNS_MX_EXPECTED_HOST_MISSING", "DNS_MX_TARGET_IP_LITERAL",
        "DNS_MX_TARGET_CNAME", "DNS_MX_TARGET_UNRESOLVABLE", "DNS_MX_SOME_TARGETS_UNRESOLVABLE",
        "DNS_MX_BACKUP_BYPASSES_GATEWAY", "DNS_MX_RESOLVERS_FAIL", "DNS_MX_OK",
    }),
    collect=collect,
    evaluate=evaluate,
    gates=("dns.observer",),
    deadline=8.0,
    summary="MX present, not null, leads to the declared first hop, every target resolves",
)
