"""Mail-authentication probes: SPF, DKIM, DMARC, MTA-STS and TLS-RPT of the topology's
domain, judged against its DNS tier's expectations.

They belong to the pseudo tier kind ``mail-auth``, which no tier of a topology has: triage
localizes *inbound* delivery faults, and a broken SPF or DMARC record does not stop mail
from arriving, so these probes never enter a triage verdict. ``mailtrace verify`` and
``mailtrace precheck`` run them (the same collect and evaluate) on the live records and on
records with a change laid over them.
"""

from __future__ import annotations

from typing import Any

from mailtrace.core.findings import Finding
from mailtrace.mailauth.lookup import DnsLookup
from mailtrace.mailauth.mta_sts import MtaStsCheck
from mailtrace.probes.auth import checks
from mailtrace.probes.base import NotTested, Probe, ProbeContext

AUTH_KIND = "mail-auth"

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
    from mailtrace.clients.mta_sts import collect

    return await collect(DnsLookup(ctx.dns, ctx.deadline), ctx.topology, ctx.target.domain,
                         redirects=ctx.dns.redirects, ca_file=ctx.environ.get(CA_FILE_ENV))


def _evaluate_mta_sts(obs: Any) -> list[Finding]:
    assert isinstance(obs, MtaStsCheck)
    return _judge(obs.evaluate())


#: Where a CA bundle for the MTA-STS policy host can be named (the lab's CA in tests).
CA_FILE_ENV = "MAILTRACE_CA_FILE"

RECORDS = Probe(
    id="auth.records",
    kinds=frozenset({AUTH_KIND}),
    tags=RECORD_TAGS,
    collect=_collect_records,
    evaluate=_evaluate_records,
    summary="SPF (check_host for each declared sender, lookup tree), DKIM keys, DMARC",
)
MTA_STS = Probe(
    id="auth.mta-sts",
    kinds=frozenset({AUTH_KIND}),
    tags=MTA_STS_TAGS,
    collect=_collect_mta_sts,
    evaluate=_evaluate_mta_sts,
    summary="MTA-STS record and HTTPS policy covering every MX host; TLS-RPT record",
)


async def _collect_mx_ttl(ctx: ProbeContext) -> Any:
    """Outside precheck there is no cutover to judge: the observation says so."""
    from mailtrace.usecases.precheck import MxCutover

    return MxCutover(ctx.target.domain, None, None)


def _evaluate_mx_ttl(obs: Any) -> list[Finding]:
    from mailtrace.usecases.precheck import MxCutover

    assert isinstance(obs, MxCutover)
    return obs.evaluate()


MX_CUTOVER = Probe(
    id="auth.mx-cutover",
    kinds=frozenset({AUTH_KIND}),
    tags=frozenset({"PRECHECK_MX_TTL_LONG"}),
    collect=_collect_mx_ttl,
    evaluate=_evaluate_mx_ttl,
    summary="An MX change made while the old MX's TTL is long (precheck)",
)
