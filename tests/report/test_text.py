"""The text report: the answer first and on one screen (verdict, journey, what needs
attention), the checks that passed by tag, evidence only where it explains something."""

from __future__ import annotations

import json

import pytest

from mailtrace.core import catalog
from mailtrace.core.findings import Level
from mailtrace.report import json as json_report
from mailtrace.report import text
from tests.support.labrun import scenario_param, triage

#: A healthy triage and single-fault ones (a refused recipient, a missing MX, a tarpit,
#: junked mail): each answer fits on one screen.
ONE_SCREEN = [scenario_param(name) for name in (
    "healthy", "gateway-rcpt-unknown", "mx-missing", "gateway-tarpit", "exo-junked",
    "pp-onward-deferred", "hybrid-user-on-prem", "mimecast-rcpt-rejected")]


@pytest.mark.parametrize("name", ONE_SCREEN)
def test_the_answer_fits_on_one_screen_and_comes_first(name):
    report = triage(name)
    lines = text.render(report).splitlines()
    assert len(lines) <= 40, "\n".join(lines)
    assert lines[3].startswith(f"VERDICT: {report.verdict.status.upper()}")
    first_tier = next(i for i, line in enumerate(lines) if line.startswith("[0] "))
    if report.journey:
        assert any(line.startswith("Journey of ") for line in lines[:first_tier])


@pytest.mark.parametrize("name", ONE_SCREEN)
def test_passed_checks_are_named_and_verbose_says_each(name):
    report = triage(name)
    short, full = text.render(report), text.render(report, verbose=True)
    for tier in report.tiers:
        for f in tier.findings:
            message = catalog.info(f.tag).render(f.args)
            assert f.tag in short
            assert f"{f.tag}  {message}" in full
            if catalog.info(f.tag).level is not Level.INFO:
                assert f"{f.tag}  {message}" in short


def test_what_needs_attention_is_counted_under_the_verdict():
    report = triage("mx-one-host-cname")
    lines = text.render(report).splitlines()
    attention = report.verdict.attention
    assert attention
    assert lines[3].endswith(f"{len(attention)} thing{'s' if len(attention) > 1 else ''} "
                             f"need{'' if len(attention) > 1 else 's'} attention")
    for a in attention:
        assert any(f"{a.tier}: {a.tag}" in line for line in lines[4:4 + 2 + len(attention)])


@pytest.mark.parametrize(("name", "tier", "tag"), [
    ("exo-junked", "exchange-online", "EXO_TRACE_FILTERED_AS_SPAM"),
    ("pp-onward-deferred", "exchange-online", "PP_ONWARD_DELIVERY_DEFERRED"),
])
def test_a_degraded_verdict_comes_with_the_fix_of_the_warning_that_decided_it(name, tier, tag):
    report = triage(name)
    assert (report.verdict.status, report.verdict.tier, report.verdict.tag) == (
        "degraded", tier, tag)
    lines = text.render(report).splitlines()
    at = lines.index(f"Fix for {tier} (this tier only; the others are not the cause):")
    assert lines[at + 1] == f"  {tag}:"
    doc = json.loads(json_report.render(report))
    [shown] = [f for t in doc["tiers"] for f in t["findings"] if f["tag"] == tag]
    assert shown["remediation"]["templates"] == list(catalog.info(tag).remediation.commands)
