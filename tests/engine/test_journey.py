"""Joining what each source says of a message into one journey, in flow order."""

from __future__ import annotations

import datetime as dt

from mailtrace.core.findings import ProbeResult, Status, TierResult
from mailtrace.core.journey import Event, JourneyStep
from mailtrace.engine.journey import follow, outcomes
from mailtrace.engine.verdict import decide
from mailtrace.topology import FlowGraph, parse_topology

TOPOLOGY = parse_topology("""
topology: t
domains: [contoso.com]
flow: ["dns -> pp -> exo"]
tiers:
  dns: {kind: dns}
  pp: {kind: proofpoint, flavour: pod, hosts: [mx0a-001234.pphosted.com]}
  exo: {kind: exchange-online, inbound_host: contoso-com.mail.protection.outlook.com}
""")
FLOW = FlowGraph(TOPOLOGY)


def step(tier: str, event: Event, mid: str | None, at: str, source: str = "s") -> JourneyStep:
    return JourneyStep(tier, event, f"{tier} {event.value}", source, at=at, message_id=mid,
                       sender="carol@fabrikam.example", subject="Invoice")


def tiers(*steps: JourneyStep) -> list[TierResult]:
    by: dict[str, list[JourneyStep]] = {}
    for s in steps:
        by.setdefault(s.tier, []).append(s)
    return [TierResult(t, "x", Status.PASS, [ProbeResult("p", t, Status.PASS,
                                                         journey=by.get(t, []))])
            for t in ("dns", "pp", "exo")]


def test_steps_join_by_message_id_whatever_the_brackets_and_sort_in_flow_order():
    journey = follow(tiers(step("exo", Event.RECEIVED, "a@x", "2026-12-01T10:01:00Z"),
                           step("pp", Event.RECEIVED, "<a@x>", "2026-12-01T10:00:00Z"),
                           step("pp", Event.RELAYED, "<a@x>", "2026-12-01T10:00:01Z"),
                           step("pp", Event.RECEIVED, "<b@x>", "2026-12-01T09:00:00Z")),
                     FLOW)
    assert [(s.tier, s.event) for s in journey] == [
        ("pp", Event.RECEIVED), ("pp", Event.RELAYED), ("exo", Event.RECEIVED)]


def test_the_message_asked_about_by_id_is_followed_not_the_latest():
    journey = follow(tiers(step("pp", Event.RECEIVED, "<a@x>", "2026-12-01T10:00:00Z"),
                           step("pp", Event.QUARANTINED, "<b@x>", "2026-12-01T09:00:00Z")),
                     FLOW, message_id="b@x")
    assert [s.event for s in journey] == [Event.QUARANTINED]


def test_after_a_stop_not_seen_is_dropped_and_a_run_of_not_seen_keeps_its_first():
    stopped = follow(tiers(step("pp", Event.QUARANTINED, "<a@x>", "2026-12-01T10:00:00Z"),
                           step("exo", Event.NOT_SEEN, None, "")), FLOW)
    assert [s.event for s in stopped] == [Event.QUARANTINED]
    nowhere = follow(tiers(step("pp", Event.NOT_SEEN, None, ""),
                           step("exo", Event.NOT_SEEN, None, "")), FLOW)
    assert [(s.tier, s.event) for s in nowhere] == [("pp", Event.NOT_SEEN)]


def test_outcomes_count_what_each_tier_last_did_with_each_message():
    summary = outcomes(tiers(step("pp", Event.RECEIVED, "<a@x>", "2026-12-01T10:00:00Z"),
                             step("pp", Event.RELAYED, "<a@x>", "2026-12-01T10:00:01Z"),
                             step("pp", Event.RECEIVED, "<b@x>", "2026-12-01T11:00:00Z"),
                             step("pp", Event.REJECTED, "<b@x>", "2026-12-01T11:00:01Z")),
                       FLOW)
    assert [(o.tier, dict(o.outcomes)) for o in summary] == [
        ("pp", {"relayed": 1, "rejected": 1})]


def test_not_seen_just_after_a_hand_off_is_not_seen_yet():
    relayed = [step("pp", Event.RECEIVED, "<a@x>", "2026-12-01T10:00:00Z"),
               step("pp", Event.RELAYED, "<a@x>", "2026-12-01T10:00:01Z"),
               step("exo", Event.NOT_SEEN, None, "")]
    soon = dt.datetime(2026, 12, 1, 10, 5, tzinfo=dt.UTC)
    journey = follow(tiers(*relayed), FLOW, now=soon)
    assert [(s.tier, s.event) for s in journey][-1] == ("exo", Event.PENDING)
    later = follow(tiers(*relayed), FLOW, now=soon + dt.timedelta(hours=2))
    assert [(s.tier, s.event) for s in later][-1] == ("exo", Event.NOT_SEEN)
    verdict = decide(tiers(*relayed), FLOW, journey, asked=True)
    assert (verdict.status, verdict.tier) == ("inconclusive", None)


def test_a_second_source_saying_the_same_stop_is_shown_once():
    journey = follow(tiers(step("pp", Event.RECEIVED, "<a@x>", "2026-12-01T10:00:00Z"),
                           step("pp", Event.QUARANTINED, "<a@x>", "2026-12-01T10:00:00Z",
                                "smart-search"),
                           step("pp", Event.QUARANTINED, "<a@x>", "2026-12-01T10:00:00Z",
                                "quarantine")), FLOW)
    assert [(s.event, s.source) for s in journey] == [
        (Event.RECEIVED, "s"), (Event.QUARANTINED, "smart-search")]
