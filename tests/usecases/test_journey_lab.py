"""Follow carol's message to alice across the tiers of the lab: where it stopped is the
answer (the journey), with the record that proves it."""

from __future__ import annotations

import dataclasses

import pytest

from mailtrace.core.journey import Event
from mailtrace.lab import scenarios
from tests.support.labrun import finding, triage, verdict

CAROL = "carol@fabrikam.example"


def _journey(report) -> list[tuple[str, str]]:
    return [(s.tier, s.event.value) for s in report.journey]


def test_a_delivered_message_is_shown_hop_by_hop_with_its_times():
    report = triage("journey-delivered")
    assert _journey(report) == [("proofpoint", "received"), ("proofpoint", "relayed"),
                                ("exchange-online", "received"),
                                ("exchange-online", "delivered")]
    assert all(s.at and s.sender == CAROL for s in report.journey)
    assert len({s.message_id for s in report.journey}) == 1  # joined by Message-ID
    assert verdict(report) == ("healthy", None, None)
    assert "delivered the message from carol" in report.verdict.summary


def test_junk_is_read_from_the_trace_details_with_the_tenants_spam_verdict():
    report = triage("exo-junked")
    assert _journey(report)[-1] == ("exchange-online", "junked")
    stop = report.journey[-1]
    assert stop.tag == "EXO_TRACE_FILTERED_AS_SPAM" and "SCL 5" in stop.detail
    assert verdict(report) == ("degraded", "exchange-online", "EXO_TRACE_FILTERED_AS_SPAM")


def test_a_deferral_by_the_next_hop_stops_the_journey_at_that_hop():
    report = triage("pp-onward-deferred")
    assert _journey(report) == [("proofpoint", "received"), ("exchange-online", "deferred")]
    assert "451 4.7.500" in report.journey[-1].detail


def test_a_quarantined_message_is_found_in_the_declared_folders():
    report = triage("pp-quarantined-phish")
    assert ("proofpoint", "quarantined") in _journey(report)
    [stop] = [s for s in report.journey if s.event is Event.QUARANTINED]  # said once
    assert stop.source == "smart-search"
    held = finding(report, "PP_QUARANTINE_HOLDS")  # the Phish folder was listed too
    assert held.args["folder"] == "Phish"
    assert verdict(report) == ("fault", "proofpoint", "PP_MESSAGE_QUARANTINED")
    # the Exchange Online side is not "not seen": the message never got there
    assert not [s for s in report.journey if s.tier == "exchange-online"]


def test_a_message_that_matches_nothing_says_so_and_is_not_healthy():
    world = dataclasses.replace(scenarios.get("journey-delivered"),
                                sender="nobody@nowhere.example")
    report = triage(world)
    assert _journey(report) == [("proofpoint", "not-seen")]
    assert (report.verdict.status, report.verdict.tag) == ("inconclusive",
                                                          "PP_SEARCH_NO_MESSAGES")
    assert "nobody@nowhere.example" in report.verdict.summary


@pytest.mark.parametrize("sender", ["@fabrikam.example", "fabrikam.example"])
def test_a_whole_sending_domain_can_be_followed(sender):
    world = dataclasses.replace(scenarios.get("exo-junked"), sender=sender)
    report = triage(world)
    assert _journey(report)[-1] == ("exchange-online", "junked")


def test_without_a_message_asked_about_the_recent_ones_are_summarized_per_tier():
    world = dataclasses.replace(scenarios.get("exo-junked"), sender=None)
    report = triage(world)
    summary = {o.tier: dict(o.outcomes) for o in report.journey_summary}
    assert summary == {"proofpoint": {"relayed": 2},
                       "exchange-online": {"delivered": 1, "junked": 1}}
    # the latest message was junked while others arrive: degraded, never silent
    assert verdict(report) == ("degraded", "exchange-online", "EXO_TRACE_FILTERED_AS_SPAM")
