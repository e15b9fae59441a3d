"""A domain's mail-authentication records judged against its topology.

``collect(lookup, topology, domain)`` gathers everything (concurrently, through any
:class:`~mailtrace.mailauth.lookup.Lookup`: live DNS, or live DNS with a change laid over
it); ``evaluate(observation)`` is pure and returns findings. ``verify`` judges the live
answers with it; ``precheck`` judges the live answers and the changed ones, and reports
the difference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mailtrace.core.evidence import Evidence, Observed
from mailtrace.core.findings import Finding
from mailtrace.mailauth import dkim, dmarc
from mailtrace.mailauth.lookup import Answer, Lookup
from mailtrace.mailauth.mta_sts import MtaStsCheck
from mailtrace.mailauth.spf import SpfResult, check_host
from mailtrace.mailauth.spf_record import SpfSyntaxError, parse_record
from mailtrace.mailauth.spf_tree import EffectiveAll, SpfTree, lookup_tree, select_record
from mailtrace.probes.auth.senders import Sender, declared_senders, sample_address
from mailtrace.topology.model import DnsExpectation, DnsTier, ExchangeOnlineTier, Topology

#: Findings that mean a check could not be made (not a verdict on the records).
NOT_TESTED_TAG = "AUTH_LOOKUP_FAILED"


@dataclass(frozen=True)
class SenderCheck:
    sender: Sender
    ip: str | None
    spf: SpfResult | None


@dataclass(frozen=True)
class DmarcLookup:
    domain: str
    answer: Answer  # _dmarc.<domain>
    org: str
    org_answer: Answer | None  # _dmarc.<org domain>, when the domain has none
    authorizations: tuple[tuple[dmarc.ReportUri, Answer], ...] = ()


@dataclass(frozen=True)
class AuthObservation:
    domain: str
    expect: DnsExpectation
    spf_answer: Answer
    spf_tree: SpfTree
    senders: tuple[SenderCheck, ...]
    selectors: tuple[dkim.SelectorCheck, ...]
    dmarc: DmarcLookup
    mta_sts: MtaStsCheck | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def dns_expectation(topology: Topology) -> tuple[str, DnsExpectation]:
    for tier_id, tier in topology.tiers.items():
        if isinstance(tier, DnsTier):
            return tier_id, tier.expect
    return "public-dns", DnsExpectation()


def _tenant(topology: Topology) -> str | None:
    for tier in topology.tiers.values():
        if isinstance(tier, ExchangeOnlineTier) and tier.tenant:
            return tier.tenant
    return None


async def _sender(lookup: Lookup, domain: str, sender: Sender) -> SenderCheck:
    ip = await sample_address(lookup, sender.term)
    if ip is None:
        return SenderCheck(sender, None, None)
    result = await check_host(lookup, ip, domain, f"postmaster@{domain}", domain)
    return SenderCheck(sender, ip, result)


async def _dmarc(lookup: Lookup, domain: str) -> DmarcLookup:
    answer = await lookup(f"_dmarc.{domain}", "TXT")
    org = dmarc.organizational_domain(domain)
    org_answer = None
    records = [t for t in answer.data if dmarc.is_dmarc(t)]
    if not records and answer.status != "error" and org != domain:
        org_answer = await lookup(f"_dmarc.{org}", "TXT")
        records = [t for t in org_answer.data if dmarc.is_dmarc(t)]
    auths: list[tuple[dmarc.ReportUri, Answer]] = []
    if len(records) == 1:
        destinations = dmarc.external_destinations(domain, dmarc.parse_record(records[0]))
        answers = await asyncio.gather(*(lookup(name, "TXT") for _, name in destinations))
        auths = [(uri, a) for (uri, _), a in zip(destinations, answers, strict=True)]
    return DmarcLookup(domain, answer, org, org_answer, tuple(auths))


async def collect(lookup: Lookup, topology: Topology, domain: str,
                  mta_sts: MtaStsCheck | None = None) -> AuthObservation:
    _, expect = dns_expectation(topology)
    senders = declared_senders(topology, expect)
    tenant = _tenant(topology)
    selectors = expect.dkim.selectors if expect.dkim else []
    targets = expect.dkim.targets if expect.dkim else {}

    async def selector(name: str) -> dkim.SelectorCheck:
        answer = await lookup(f"{name}._domainkey.{domain}", "TXT")
        signer = next((s.label for s in senders if name in s.selectors), None)
        return dkim.SelectorCheck(domain, name, answer,
                                  dkim.expected_targets(name, domain, tenant, targets.get(name)),
                                  signer)

    spf_answer, tree, sender_checks, selector_checks, dmarc_lookup = await asyncio.gather(
        lookup(domain, "TXT"),
        lookup_tree(lookup, domain),
        asyncio.gather(*(_sender(lookup, domain, s) for s in senders)),
        asyncio.gather(*(selector(s) for s in selectors)),
        _dmarc(lookup, domain),
    )
    return AuthObservation(domain, expect, spf_answer, tree, tuple(sender_checks),
                           tuple(selector_checks), dmarc_lookup, mta_sts)


# -- evaluation ------------------------------------------------------------------------------


def _failed(answer: Answer) -> Finding:
    return Finding(NOT_TESTED_TAG, {"name": answer.name.rstrip("."), "type": answer.rdtype,
                                    "error": answer.error or "no answer"}, [answer.evidence()])


def evaluate_spf(obs: AuthObservation) -> list[Finding]:
    domain = obs.domain
    answer = obs.spf_answer
    if answer.status == "error":
        return [_failed(answer)]
    ev = [answer.evidence()]
    text, several = select_record(answer)
    if several:
        return [Finding("SPF_MULTIPLE", {"domain": domain, "count": len(
            [t for t in answer.data if t.lower().startswith("v=spf1")])}, ev)]
    if text is None:
        return [Finding("SPF_MISSING", {"domain": domain, "status": answer.status}, ev)]
    findings: list[Finding] = []
    try:
        parse_record(text)
    except SpfSyntaxError as exc:
        return [Finding("SPF_SYNTAX", {"domain": domain, "problem": exc.message,
                                       "term": exc.term or ""}, ev)]
    tree = obs.spf_tree
    tree_ev = [Observed({"spf_tree": tree.as_json(), "lines": tree.tree.lines()})]
    if tree.error:
        findings.append(Finding(NOT_TESTED_TAG, {"name": domain, "type": "TXT",
                                                 "error": tree.error}, tree_ev))
    for problem in tree.problems:
        kind, led_by = problem.kind, {"name": problem.name, "term": problem.term,
                                      "via": problem.via}
        if kind == "lookups":
            findings.append(Finding("SPF_LOOKUP_LIMIT", {"domain": domain,
                                                         "lookups": tree.lookups,
                                                         "limit": 10}, tree_ev))
        elif kind == "voids":
            findings.append(Finding("SPF_VOID_LIMIT", {"domain": domain, "voids": tree.voids,
                                                       "limit": 2}, tree_ev))
        elif kind == "loop":
            findings.append(Finding("SPF_INCLUDE_LOOP", {"domain": domain, **led_by}, tree_ev))
        elif kind in ("include-missing", "several", "syntax", "mx-limit"):
            findings.append(Finding("SPF_INCLUDE_BROKEN", {"domain": domain, **led_by,
                                                           "problem": problem.detail}, tree_ev))
    for name, length in tree.long_records:
        findings.append(Finding("SPF_RECORD_LONG", {"domain": domain, "name": name,
                                                    "length": length}, tree_ev))
    expect = obs.expect.spf
    if expect is not None:
        terms = tree.terms()
        wanted = [f"include:{h}" for h in expect.include] + list(expect.mechanisms)
        for term in wanted:
            if term.lower() not in terms and f"+{term.lower()}" not in terms:
                findings.append(Finding("SPF_EXPECTED_TERM_MISSING", {"domain": domain,
                                                                      "term": term}, ev))
    findings.extend(_all_findings(obs, tree.effective_all(), tree_ev))
    for check in obs.senders:
        findings.extend(_sender_findings(domain, check))
    findings.append(Finding("SPF_LOOKUPS", {"domain": domain, "lookups": tree.lookups,
                                            "voids": tree.voids}, tree_ev))
    return findings


def _all_findings(obs: AuthObservation, final: EffectiveAll | None,
                  ev: Sequence[Evidence]) -> list[Finding]:
    """The effective ``all`` — through ``redirect=`` (RFC 7208 §6.1) — against the
    topology's, and what it lets through whatever the topology says: ``+all`` passes every
    host on the internet (RFC 7208 §5.1); ``?all``, or no ``all`` at all (RFC 7208 §4.7),
    gives hosts the record does not list neutral, which receivers treat like no SPF
    (RFC 7208 §8.2), on a domain whose senders the topology lists. Nothing when it cannot
    be told (a redirect that cannot be followed: reported on its own)."""
    if final is None:
        return []
    args = {"domain": obs.domain, "found": final.term or "(none)", "at": final.record}
    findings = []
    expect = obs.expect.spf
    if expect is not None and expect.all and (
            (final.term or "").lstrip("+") != expect.all.lstrip("+")):
        findings.append(Finding("SPF_ALL_DIFFERS", {**args, "expected": expect.all}, ev))
    if final.result == "pass":
        findings.append(Finding("SPF_ALL_PASS", args, ev))
    elif final.result == "neutral" and obs.senders:
        findings.append(Finding("SPF_ALL_NEUTRAL", args, ev))
    return findings


def _matched(spf: SpfResult) -> str:
    """The terms that decided, from the domain down through include and redirect."""
    return spf.matched or "nothing"


def _sender_findings(domain: str, check: SenderCheck) -> list[Finding]:
    sender = check.sender.label
    if check.spf is None:
        return [Finding("SPF_SENDER_UNTESTED", {"domain": domain, "sender": sender})]
    spf = check.spf
    ev = [Observed(spf.as_json())]
    if spf.result == "temperror":
        return [Finding(NOT_TESTED_TAG, {"name": domain, "type": "TXT",
                                         "error": spf.problem or "temperror"}, ev)]
    if spf.result != "pass":
        return [Finding("SPF_SENDER_FAILS", {"domain": domain, "sender": sender, "ip": check.ip,
                                             "result": spf.result, "matched": _matched(spf),
                                             "problem": spf.problem or ""}, ev)]
    return [Finding("SPF_SENDER_PASSES", {"domain": domain, "sender": sender, "ip": check.ip,
                                          "matched": _matched(spf)}, ev)]


def evaluate_dkim(obs: AuthObservation) -> list[Finding]:
    findings: list[Finding] = []
    for check in obs.selectors:
        if check.answer.status == "error":
            findings.append(_failed(check.answer))
        else:
            findings.extend(dkim.evaluate(check))
    return findings


#: Key states with which a signature verifies. A key in testing mode (DKIM_TESTING, t=y)
#: never counts, whatever its state: RFC 6376 §3.6.1 has verifiers treat its mail like
#: unsigned mail.
USABLE_DKIM = frozenset({"DKIM_KEY_OK", "DKIM_KEY_SHORT"})


def dmarc_record(lookup: DmarcLookup) -> tuple[dmarc.DmarcRecord | None, Answer, int]:
    """(the record in force, the answer it came from, how many DMARC records there)."""
    for answer in (lookup.answer, lookup.org_answer):
        if answer is None:
            continue
        records = [t for t in answer.data if dmarc.is_dmarc(t)]
        if records:
            return dmarc.parse_record(records[0]), answer, len(records)
    return None, lookup.answer, 0


def evaluate_dmarc(obs: AuthObservation, dkim_findings: list[Finding],
                   spf_findings: list[Finding]) -> list[Finding]:
    domain = obs.domain
    look = obs.dmarc
    for answer in (look.answer, look.org_answer):
        if answer is not None and answer.status == "error":
            return [_failed(answer)]
    record, answer, count = dmarc_record(look)
    ev = [a.evidence() for a in (look.answer, look.org_answer) if a is not None]
    if record is None:
        return [Finding("DMARC_MISSING", {"domain": domain, "org": look.org}, ev)]
    if count > 1:
        return [Finding("DMARC_MULTIPLE", {"domain": domain, "count": count}, ev)]
    findings: list[Finding] = []
    inherited = answer is look.org_answer
    if inherited:
        findings.append(Finding("DMARC_INHERITED", {"domain": domain, "org": look.org}, ev))
    if record.problems:
        findings.append(Finding("DMARC_INVALID", {"domain": domain,
                                                  "problem": "; ".join(record.problems)}, ev))
        if record.policy is None:
            return findings
    policy = record.effective_policy(subdomain=inherited)
    expected = obs.expect.dmarc.policy if obs.expect.dmarc else None
    if expected and expected != policy:
        # RFC 7489 §6.3: a subdomain without a record of its own gets sp= (else p=) of
        # its organizational domain's record.
        term = "sp" if inherited and record.subdomain_policy else "p"
        findings.append(Finding("DMARC_POLICY_DIFFERS", {
            "domain": domain, "found": policy, "expected": expected, "term": term,
            "at": answer.name.rstrip(".")}, ev))
    if record.pct < 100 and policy != "none":
        findings.append(Finding("DMARC_PCT_PARTIAL", {"domain": domain, "pct": record.pct,
                                                      "policy": policy}, ev))
    if record.testing:
        findings.append(Finding("DMARC_TESTING", {"domain": domain}, ev))
    for uri, auth in look.authorizations:
        if auth.status == "error":
            findings.append(_failed(auth))
        elif not any(dmarc.is_dmarc(t) for t in auth.data):
            findings.append(Finding("DMARC_REPORT_UNAUTHORIZED", {
                "domain": domain, "uri": uri.uri, "name": auth.name.rstrip(".")},
                [auth.evidence()]))
    findings.extend(_alignment(obs, record, policy, inherited, dkim_findings, spf_findings))
    if not record.problems:
        findings.append(Finding("DMARC_OK", {"domain": domain, "policy": policy,
                                             "pct": record.pct},
                                [Observed({"record": record.as_json()})]))
    return findings


def _alignment(obs: AuthObservation, record: dmarc.DmarcRecord, policy: str, inherited: bool,
               dkim_findings: list[Finding], spf_findings: list[Finding]) -> list[Finding]:
    """Each declared sender passes DMARC if SPF passes for it (the envelope domain is the
    domain itself, so aligned) or one of its selectors holds a usable key (d= the
    domain) that is not in testing mode. RFC 7489 §3.1, §4.2; RFC 6376 §3.6.1 (t=y)."""
    domain = obs.domain
    out = []
    testing = {f.args["selector"] for f in dkim_findings if f.tag == "DKIM_TESTING"}
    usable = {f.args["selector"] for f in dkim_findings if f.tag in USABLE_DKIM} - testing
    passes = {f.args["sender"] for f in spf_findings if f.tag == "SPF_SENDER_PASSES"}
    spf_ok = dmarc.aligned(domain, domain, record.aspf)
    for check in obs.senders:
        label = check.sender.label
        via = []
        if label in passes and spf_ok:
            via.append("spf")
        keys = [s for s in check.sender.selectors if s in usable]
        if keys and dmarc.aligned(domain, domain, record.adkim):
            via.append("dkim " + ",".join(keys))
        if via:
            out.append(Finding("DMARC_SENDER_ALIGNED", {"domain": domain, "sender": label,
                                                        "via": " and ".join(via)}))
        elif check.spf is None and not check.sender.selectors:
            continue  # nothing known about it: reported as untested by SPF
        elif record.enforcing(inherited):
            out.append(Finding("DMARC_SENDER_NOT_ALIGNED", {
                "domain": domain, "sender": label, "policy": policy}))
        else:
            out.append(Finding("DMARC_SENDER_UNALIGNED_MONITORED", {
                "domain": domain, "sender": label, "policy": policy}))
    return out


def evaluate(obs: AuthObservation) -> list[Finding]:
    spf = evaluate_spf(obs)
    keys = evaluate_dkim(obs)
    policy = evaluate_dmarc(obs, keys, spf)
    sts = obs.mta_sts.evaluate() if obs.mta_sts is not None else []
    return spf + keys + policy + sts
