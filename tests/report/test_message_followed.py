"""The message asked about (--from, --message-id) that the triage could not follow: said
under the verdict in every rendering, with why, from which per-message sources ran."""

from __future__ import annotations

import dataclasses
import json

from mailtrace.core.findings import ProbeResult, Status, TierResult
from mailtrace.probes.base import Target
from mailtrace.report import html, text
from mailtrace.report import json as json_report
from mailtrace.report.message import message_followed
from tests.support.reports import RECIPIENT, mailbox_full_report

CAROL = Target("contoso.com", RECIPIENT, sender="carol@fabrikam.example")


def _with(*extra: ProbeResult, target: Target = CAROL):
    report = mailbox_full_report()
    tiers = [TierResult(t.id, t.kind, t.status,
                        [*t.probes, *(p for p in extra if p.tier == t.id)]) for t in report.tiers]
    return dataclasses.replace(report, target=target, tiers=tiers, journey=[])


def test_no_per_message_source_declared_is_said_under_the_verdict():
    report = _with()
    followed = message_followed(report)
    assert followed is not None and not followed.followed and followed.sources == ()
    assert "proofpoint.smart_search" in (followed.why or "") and "exo.trace" in (
        followed.why or "")
    doc = json.loads(json_report.render(report))
    assert doc["message"]["followed"] is False and doc["message"]["sources"] == []
    assert doc["target"]["from"] == "carol@fabrikam.example"
    lines = text.render(report).splitlines()
    verdict = next(i for i, line in enumerate(lines) if line.startswith("VERDICT:"))
    assert any(line.strip().startswith("! Message asked about:")
               for line in lines[verdict:verdict + 4])
    assert "message-not-followed" in html.render(report)


def test_sources_that_could_not_run_are_named_with_their_reason():
    report = _with(ProbeResult("exo.trace", "exchange-online", Status.NOT_TESTED,
                               reason="certificate file x.pem not found"))
    followed = message_followed(report)
    assert followed is not None and not followed.followed
    assert [(s.tier, s.probe, s.ran) for s in followed.sources] == [
        ("exchange-online", "exo.trace", False)]
    assert "certificate file x.pem not found" in (followed.why or "")


def test_a_source_that_ran_follows_the_message_and_nothing_is_added():
    report = _with(ProbeResult("proofpoint.smart_search", "proofpoint", Status.PASS))
    followed = message_followed(report)
    assert followed is not None and followed.followed and followed.why is None
    assert "Message asked about" not in text.render(report)
    assert json.loads(json_report.render(report))["message"]["followed"] is True


def test_without_a_message_asked_about_there_is_nothing_to_say():
    report = _with(target=Target("contoso.com", RECIPIENT))
    assert message_followed(report) is None
    assert json.loads(json_report.render(report))["message"] is None
