"""A tier's probes that could not run: each reason said once, however many probes it kept
from running (the text report, not --verbose)."""

from __future__ import annotations

import dataclasses

from mailtrace.core.findings import Finding, ProbeResult, Status, TierResult
from mailtrace.report import text
from tests.support.reports import mailbox_full_report

REASON = "Microsoft Graph is not usable as declared: certificate file x.pem not found"


def _report():
    report = mailbox_full_report()
    graph = Finding("EXO_GRAPH_NOT_CONFIGURED", {"tier": "exchange-online", "reason": REASON})
    probes = [ProbeResult(p, "exchange-online", Status.NOT_TESTED, [graph], reason=REASON)
              for p in ("exo.directory", "exo.domain", "exo.trace")]
    probes += [ProbeResult(p, "exchange-online", Status.NOT_TESTED,
                           reason="depends on exo.directory, which did not run")
               for p in ("exo.recipient", "exo.rules")]
    tiers = [*report.tiers[:-1], TierResult("exchange-online", "exchange-online",
                                            Status.NOT_TESTED, probes)]
    return dataclasses.replace(report, tiers=tiers)


def test_each_reason_once_per_tier_with_the_probes_it_stands_for():
    out = text.render(_report())
    tier = out[out.index("exchange-online (exchange-online)"):]
    assert tier.count("x.pem not found") == 1
    assert tier.count("EXO_GRAPH_NOT_CONFIGURED") == 1
    assert "(not tested: exo.directory, exo.domain, exo.trace)" in tier
    assert tier.count("depends on exo.directory") == 1
    assert "not tested: exo.recipient, exo.rules" in tier


def test_verbose_still_says_every_probe():
    out = text.render(_report(), verbose=True)
    tier = out[out.index("exchange-online (exchange-online)"):]
    assert tier.count("not tested: depends on exo.directory") == 2


def test_an_inconclusive_triage_without_a_tier_names_no_none():
    from mailtrace.core.findings import Verdict
    from mailtrace.report.intake import agreement
    from tests.support.evidence_util import CORPUS, hosts, ndr_of

    analysis = ndr_of((CORPUS / "ndr" / "pod-dbeb-5.4.1.eml").read_bytes(),
                      hosts("contoso-proofpoint-exo.yaml"))
    report = dataclasses.replace(mailbox_full_report(), verdict=Verdict(
        "inconclusive", None, "PP_SEARCH_NO_MESSAGES", "no message found"))
    verdict, sentence = agreement(analysis, report)
    assert verdict == "inconclusive" and "None" not in sentence
    assert "[PP_SEARCH_NO_MESSAGES]" in sentence
