"""Mail-authentication probes: SPF, DKIM, DMARC, MTA-STS and TLS-RPT of the topology's
domain, judged against its DNS tier's expectations.

They are probes of the public-DNS tier, but not of a triage (``registry.TRIAGE``): triage
localizes *inbound* delivery faults, and a broken SPF or DMARC record does not stop mail
from arriving. ``mailtrace verify`` and ``mailtrace precheck`` run them through the engine
(``registry.RECORDS``) on the live records, and on the records with a change laid over
DNS.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mailtrace.clients.dns_lookup import DnsLookup
from mailtrace.core.findings import Finding
from mailtrace.mailauth.mta_sts import MtaStsCheck
from mailtrace.probes.auth import checks
from mailtrace.probes.base import NotTested, Probe, ProbeContext
from mailtrace.topology.model import DnsTier

RECORD_TAGS = frozenset({
    "AUTH_LOOKUP_FAILED",
    "SPF_MISSING", "SPF_MULTIPLE", "SPF_SYNTAX", "SPF_LOOKUP_LIMIT", "SPF_VOID_LIMIT",
    "SPF_INCLUDE_LOOP", "SPF_INCLUDE_BROKEN", "SPF_RECORD_LONG", "SPF_EXPECTED_TERM_MISSING",
    "SPF_ALL_DIFFERS", "SPF_ALL_PASS", "SPF_ALL_NEUTRAL", "SPF_SENDER_FAILS",
    "SPF_SENDER_PASSES", "SPF_SENDER_UNTESTED", "SPF_LOOKUPS",
    "DKIM_SELECTOR_MISSING", "DKIM_KEY_INVALID", "DKIM_KEY_REVOKED", "DKIM_KEY_WEAK",
    "DKIM_KEY_SHORT", "DKIM_TESTING", "DKIM_CNAME_UNEXPECTED", "DKIM_KEY_OK",
    "DMARC_MISSING", "DMARC_MULTIPLE", "DMARC_INVALID", "DMARC_INHERITED",
    "DMARC_POLICY_DIFFERS", "DMARC_PCT_PARTIAL", "DMARC_TESTING", "DMARC_REPORT_UNAUTHORIZED",
    "DMARC_SENDER_ALIGNED", "DMARC_SENDER_NOT_ALIGNED", "DMARC_SENDER_UNALIGNED_MONITORED",
    "DMARC_OK",
})
MTA_STS_TAGS = frozenset({
    "AUTH_LOOKUP_FAILED", "MTASTS_MISSING", "MTASTS_RECORD_INVALID",
    "MTASTS_POLICY_UNREACHABLE", "MTASTS_POLICY_INVALID", "MTASTS_MX_NOT_COVERED",
    "MTASTS_MODE_DIFFERS", "MTASTS_OK", "TLSRPT_MISSING", "TLSRPT_INVALID", "TLSRPT_OK",
})


def _judge(findings: list[Finding]) -> list[Finding]:
    """Nothing but lookup failures: the records could not be tested at all."""
    if findings and all(f.tag == checks.NOT_TESTED_TAG for f in findings):
        raise NotTested("no record could be looked up", findings)
    return findings


async def _collect_records(ctx: ProbeContext) -> checks.AuthObservation:
    lookup = DnsLookup(ctx.dns, ctx.deadline)
    return await checks.collect(lookup, ctx.topology, ctx.target.domain)


def _evaluate_records(obs: checks.AuthObservation) -> list[Finding]:
    spf = checks.evaluate_spf(obs)
    keys = checks.evaluate_dkim(obs)
    return _judge(spf + keys + checks.evaluate_dmarc(obs, keys, spf))


async def _collect_mta_sts(ctx: ProbeContext) -> MtaStsCheck:
    """The records through DNS, the policy over HTTPS when a record announces one; the MX
    hosts it must cover are the ones DNS serves (a change laid over DNS included)."""
    lookup, domain = DnsLookup(ctx.dns, ctx.deadline), ctx.target.domain
    record, tlsrpt, mx = await asyncio.gather(
        lookup(f"_mta-sts.{domain}", "TXT"), lookup(f"_smtp._tls.{domain}", "TXT"),
        lookup(domain, "MX"))
    hosts = tuple(d.split()[1].rstrip(".").lower() for d in mx.data if len(d.split()) == 2)
    expected = None
    for tier in ctx.topology.tiers.values():
        if isinstance(tier, DnsTier) and tier.expect.mta_sts is not None:
            expected = tier.expect.mta_sts.mode
    fetch = None
    if any(t.startswith("v=STSv1") for t in record.data):
        fetch = await ctx.clients.policy_fetcher().fetch(domain)
    return MtaStsCheck(domain, record, tlsrpt, hosts, fetch, expected, [mx.evidence()])


def _evaluate_mta_sts(obs: Any) -> list[Finding]:
    assert isinstance(obs, MtaStsCheck)
    return _judge(obs.evaluate())


RECORDS = Probe(
    id="auth.records",
    asks="dns",
    kinds=frozenset({"dns"}),
    tags=RECORD_TAGS,
    collect=_collect_records,
    evaluate=_evaluate_records,
    summary="SPF (check_host for each declared sender, lookup tree), DKIM keys, DMARC "
            "(verify and precheck)",
)
MTA_STS = Probe(
    id="auth.mta-sts",
    asks="dns",
    kinds=frozenset({"dns"}),
    tags=MTA_STS_TAGS,
    collect=_collect_mta_sts,
    evaluate=_evaluate_mta_sts,
    summary="MTA-STS record and HTTPS policy covering every MX host; TLS-RPT record "
            "(verify and precheck)",
)
