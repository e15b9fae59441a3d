"""DNSSEC at public DNS: is the domain signed, is each MX host's zone, does the chain from
the trust anchor validate — and what the validating resolvers of the panel make of it.

mailtrace validates itself (:mod:`mailtrace.clients.dnssec_validate`, RFC 4033-4035) the
domain's MX RRset and each MX host's address RRset, naming the first broken link; a
domain that should validate and does not is *bogus*, and every validating resolver
answers SERVFAIL for it: mail from senders behind one (most public resolvers, many
providers' MTAs) stops while a non-validating resolver still answers. The panel is asked
too, with and without Checking Disabled (RFC 4035 §3.2.2): SERVFAIL without CD and an
answer with it is a resolver calling the domain bogus — a fault of public DNS, never of
the resolver. The AD bit (RFC 4035 §3.2.3) says which resolvers validate at all.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from mailtrace.clients.dns import DnsObservation, Outcome, Server
from mailtrace.clients.dnssec import (
    ChainObservation,
    ChainVerdict,
    Failure,
    Security,
    collect_chain,
)
from mailtrace.core.evidence import Evidence, Observed
from mailtrace.core.findings import Finding
from mailtrace.probes.base import Probe, ProbeContext
from mailtrace.probes.dns.limits import require_time
from mailtrace.probes.dns.mx import is_ip_literal, parse_mx

#: MX hosts whose zones are walked (the rest are named, not walked).
MAX_MX_HOSTS = 8

#: The tag naming each broken link.
FAILURE_TAGS = {
    Failure.RRSIG_EXPIRED: "DNSSEC_RRSIG_EXPIRED",
    Failure.RRSIG_NOT_YET_VALID: "DNSSEC_RRSIG_NOT_YET_VALID",
    Failure.SIGNATURE_INVALID: "DNSSEC_SIGNATURE_INVALID",
    Failure.NO_MATCHING_KEY: "DNSSEC_SIGNATURE_INVALID",
    Failure.SIGNATURE_MISSING: "DNSSEC_SIGNATURE_MISSING",
    Failure.DS_NO_MATCHING_DNSKEY: "DNSSEC_DS_MISMATCH",
    Failure.DNSKEY_MISSING: "DNSSEC_DS_MISMATCH",
    Failure.DNSKEY_UNAVAILABLE: "DNSSEC_DNSKEY_UNAVAILABLE",
    Failure.MALFORMED: "DNSSEC_MALFORMED",
    Failure.VALIDATION_LIMIT: "DNSSEC_VALIDATION_LIMIT",
    Failure.CHAIN_LOOP: "DNSSEC_CHAIN_LOOP",
    Failure.TOO_DEEP: "DNSSEC_CHAIN_LOOP",
}


@dataclass(frozen=True)
class ResolverView:
    """One resolver of the panel asked for the domain's MX with DO, without and with CD."""

    server: Server
    checked: DnsObservation  # as a validating sender asks
    unchecked: DnsObservation  # Checking Disabled: the data, bogus or not

    @property
    def validates(self) -> bool:
        return "AD" in self.checked.flags or self.calls_bogus

    @property
    def calls_bogus(self) -> bool:
        return self.checked.outcome is Outcome.SERVFAIL and self.unchecked.outcome.answered


@dataclass(frozen=True)
class DnssecCheck:
    domain: str
    mx: ChainObservation
    hosts: tuple[ChainObservation, ...]  # each MX host's A RRset, MX order
    resolvers: tuple[ResolverView, ...]
    more_hosts: int = 0  # MX hosts past MAX_MX_HOSTS, not walked


async def collect(ctx: ProbeContext) -> DnssecCheck:
    domain, deadline = ctx.target.domain, ctx.deadline
    # A resolver of the panel that is down was already named by the observer check: it
    # gets two attempts' worth of time here, not the probe's whole deadline.
    panel_deadline = min(deadline, time.monotonic() + 2 * ctx.dns.attempt_timeout)

    async def view(server: Server) -> ResolverView:
        checked, unchecked = await asyncio.gather(
            ctx.dns.query(server, domain, "MX", panel_deadline, dnssec=True),
            ctx.dns.query(server, domain, "MX", panel_deadline, dnssec=True, cd=True))
        return ResolverView(server, checked, unchecked)

    panel = asyncio.gather(*(view(s) for s in ctx.dns.resolvers))
    mx = await collect_chain(ctx.dns, domain, "MX", deadline)
    targets = [h for _, h in sorted(parse_mx(r.data) for r in mx.answer.records("MX"))
               if h != "." and not is_ip_literal(h)]
    hosts = list(dict.fromkeys(targets))
    walked = await asyncio.gather(*(collect_chain(ctx.dns, h, "A", deadline)
                                    for h in hosts[:MAX_MX_HOSTS]))
    return DnssecCheck(domain, mx, tuple(walked), tuple(await panel),
                       max(len(hosts) - MAX_MX_HOSTS, 0))


def _evidence(chain: ChainObservation, verdict: ChainVerdict) -> list[Evidence]:
    fields = {"name": verdict.name, "type": verdict.rdtype, "dnssec": verdict.security.value,
              "chain": verdict.path, "zone": verdict.zone, "detail": verdict.detail,
              "record": verdict.record, "trust_anchor": chain.anchor.source,
              "signature_checks": verdict.validations}
    if verdict.failure is not None:
        fields["failure"] = verdict.failure.value
    shown = [chain.answer, *(chain.dnskey.get(z) for z in (verdict.zone or "",)),
             *(chain.ds.get(z) for z in (verdict.zone or "",))]
    return [Observed(fields), *(o.evidence() for o in shown if o is not None)]


def _broken(chain: ChainObservation, verdict: ChainVerdict, subject: str) -> Finding:
    assert verdict.failure is not None
    return Finding(FAILURE_TAGS[verdict.failure], {
        "name": subject, "zone": verdict.zone or ".", "detail": verdict.detail,
        "record": verdict.record or "none"}, _evidence(chain, verdict))


def _resolvers(check: DnssecCheck, verdict: ChainVerdict) -> tuple[list[Finding], str]:
    bogus = [v for v in check.resolvers if v.calls_bogus]
    findings = []
    if bogus:
        findings.append(Finding("DNSSEC_RESOLVER_BOGUS", {
            "domain": check.domain,
            "resolvers": ", ".join(v.server.label for v in bogus)},
            [e for v in bogus for e in (v.checked.evidence(), v.unchecked.evidence())]))
    validating = [v.server.label for v in check.resolvers if v.validates]
    ad = (f"validated by {', '.join(validating)}" if validating
          else "no resolver of the panel validates")
    if verdict.security is Security.SECURE and not validating and check.resolvers:
        findings.append(Finding("DNSSEC_NO_VALIDATING_RESOLVER", {
            "domain": check.domain,
            "resolvers": ", ".join(v.server.label for v in check.resolvers)},
            [v.checked.evidence() for v in check.resolvers]))
    return findings, ad


def _hosts(check: DnssecCheck) -> list[Finding]:
    from mailtrace.clients.dnssec_validate import validate

    verdicts = [(c, validate(c)) for c in check.hosts]
    bogus = [(c, v) for c, v in verdicts if v.security is Security.BOGUS]
    findings: list[Finding] = []
    if bogus and len(bogus) == len(verdicts):
        findings += [_broken(c, v, c.name.rstrip(".")) for c, v in bogus[:1]]
    elif bogus:
        findings.append(Finding("DNSSEC_SOME_MX_HOSTS_BOGUS", {
            "hosts": ", ".join(c.name.rstrip(".") for c, _ in bogus),
            "detail": "; ".join(f"{c.name.rstrip('.')}: {v.detail}" for c, v in bogus)},
            [e for c, v in bogus for e in _evidence(c, v)]))

    def names(security: Security) -> str:
        return ", ".join(sorted({(v.zone or c.name) for c, v in verdicts
                                 if v.security is security})) or "none"

    if verdicts:
        findings.append(Finding("DNSSEC_MX_HOST_ZONES", {
            "signed": names(Security.SECURE), "unsigned": names(Security.INSECURE),
            "more": check.more_hosts},
            [Observed({"host": c.name, "dnssec": v.security.value, "chain": v.path,
                       "detail": v.detail}) for c, v in verdicts]))
    return findings


def _clock_wrong(verdict: ChainVerdict) -> bool:
    """The root zone's own signatures read as expired or not yet valid: the root is
    re-signed days ahead of expiry (RFC 4034 §3.1.5 validity windows, measured against the
    validator's clock), so it is this machine's clock that is wrong, and every chain
    would read bogus from here — no zone is to blame."""
    return verdict.security is Security.BOGUS and verdict.zone in (".", "") and \
        verdict.failure in (Failure.RRSIG_EXPIRED, Failure.RRSIG_NOT_YET_VALID)


def evaluate(check: DnssecCheck) -> list[Finding]:
    from mailtrace.clients.dnssec_validate import validate  # dnspython's DNSSEC, on use

    require_time(check.mx.observations())
    verdict = validate(check.mx)
    resolver_findings, ad = _resolvers(check, verdict)
    findings: list[Finding] = []
    if verdict.security is Security.INDETERMINATE:
        # Said, not raised: resolvers that strip DNSSEC records are common, and the rest
        # of public DNS is judged all the same.
        tag = ("DNSSEC_TRUST_ANCHOR_MISMATCH" if verdict.failure is Failure.ANCHOR_MISMATCH
               else "DNSSEC_NOT_CHECKED")
        return [Finding(tag, {"domain": check.domain, "detail": verdict.detail},
                        _evidence(check.mx, verdict)), *resolver_findings]
    if _clock_wrong(verdict):
        return [Finding("OBSERVER_CLOCK_WRONG", {"detail": verdict.detail},
                        _evidence(check.mx, verdict)), *resolver_findings]
    if verdict.security is Security.BOGUS:
        findings.append(_broken(check.mx, verdict, check.domain))
    elif verdict.failure is Failure.ALGORITHM_UNSUPPORTED:
        findings.append(Finding("DNSSEC_ALGORITHM_UNSUPPORTED", {
            "domain": check.domain, "zone": verdict.zone or ".", "detail": verdict.detail},
            _evidence(check.mx, verdict)))
    elif verdict.security is Security.INSECURE:
        findings.append(Finding("DNSSEC_UNSIGNED", {
            "domain": check.domain, "zone": verdict.zone or "."},
            _evidence(check.mx, verdict)))
    else:
        findings.append(Finding("DNSSEC_SIGNED", {
            "domain": check.domain, "chain": verdict.path, "resolvers": ad},
            _evidence(check.mx, verdict)))
    return findings + resolver_findings + _hosts(check)


PROBE = Probe(
    id="dns.dnssec",
    asks="dns",
    kinds=frozenset({"dns"}),
    tags=frozenset({*FAILURE_TAGS.values(), "DNSSEC_SIGNED", "DNSSEC_UNSIGNED",
                    "DNSSEC_ALGORITHM_UNSUPPORTED", "DNSSEC_RESOLVER_BOGUS",
                    "DNSSEC_NO_VALIDATING_RESOLVER", "DNSSEC_SOME_MX_HOSTS_BOGUS",
                    "DNSSEC_MX_HOST_ZONES", "DNSSEC_NOT_CHECKED",
                    "DNSSEC_TRUST_ANCHOR_MISMATCH", "OBSERVER_CLOCK_WRONG"}),
    collect=collect,
    evaluate=evaluate,
    gates=("dns.observer",),
    deadline=8.0,
    summary="the domain and its MX hosts' zones: signed, and validating from the trust anchor "
            "(the broken link named); what the panel's validating resolvers answer",
)
