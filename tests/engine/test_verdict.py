"""The verdict over tiers and the journey of a message: which evidence decides."""

from __future__ import annotations

import dataclasses

from mailtrace.core.findings import Finding, ProbeResult, Status, TierResult
from mailtrace.core.journey import Event, JourneyStep
from mailtrace.engine.verdict import decide, journey_stop
from mailtrace.probes.base import OBSERVER_TIER
from tests.engine.test_journey import FLOW

QUARANTINED = Finding("PP_MESSAGE_QUARANTINED", {
    "recipient": "alice@contoso.com", "sender": "carol@fabrikam.example", "date": "today",
    "folder": "Quarantine", "rule": "impostor", "guid": "g"})


def step(tier: str, event: Event, at: str, tag: str | None = None) -> JourneyStep:
    return JourneyStep(tier, event, f"{tier} {event.value}", "s", at=at, message_id="<a@x>",
                       tag=tag)


def result(tier: str, *probes: ProbeResult) -> TierResult:
    failing = any(p.status is Status.FAIL for p in probes)
    return TierResult(tier, "x", Status.FAIL if failing else Status.PASS, list(probes))


def ran(tier: str, probe: str, *findings: Finding, asks: str = "api") -> ProbeResult:
    status = Status.FAIL if any(f.tag == QUARANTINED.tag for f in findings) else Status.PASS
    return ProbeResult(probe, tier, status, list(findings), asks=asks)


def tiers(*, port25_blocked: bool = False) -> list[TierResult]:
    observer = ran(OBSERVER_TIER, "smtp.port25", *([Finding(
        "OBSERVER_PORT25_BLOCKED", {"tried": "mx0a-001234.pphosted.com"})]
        if port25_blocked else []), asks="smtp")
    if port25_blocked:
        observer.status = Status.FAIL
    smtp = ProbeResult("smtp.hop", "pp", Status.NOT_TESTED, reason="port 25 is blocked",
                       blocked_by="smtp.port25", asks="smtp") if port25_blocked else \
        ran("pp", "smtp.hop", asks="smtp")
    return [result(OBSERVER_TIER, observer), result("dns", ran("dns", "dns.mx", asks="dns")),
            result("pp", smtp, ran("pp", "proofpoint.smart_search", QUARANTINED)),
            result("exo", ran("exo", "exo.trace"))]


def test_a_quarantine_the_message_went_on_from_does_not_decide():
    released = [step("pp", Event.RECEIVED, "10:00"),
                step("pp", Event.QUARANTINED, "10:00", "PP_MESSAGE_QUARANTINED"),
                step("exo", Event.RECEIVED, "11:00"), step("exo", Event.DELIVERED, "11:00")]
    for asked in (True, False):
        v = decide(tiers(), FLOW, released, asked=asked)
        assert (v.status, v.tier, v.tag) == ("healthy", None, None)
    held = released[:2]
    v = decide(tiers(), FLOW, held, asked=True)
    assert (v.status, v.tier, v.tag) == ("fault", "pp", "PP_MESSAGE_QUARANTINED")


def test_the_gateways_record_outweighs_what_the_observer_could_not_test():
    held = [step("pp", Event.RECEIVED, "10:00"),
            step("pp", Event.QUARANTINED, "10:00", "PP_MESSAGE_QUARANTINED")]
    for asked in (True, False):
        v = decide(tiers(port25_blocked=True), FLOW, held, asked=asked)
        assert (v.status, v.tier, v.tag) == ("fault", "pp", "PP_MESSAGE_QUARANTINED")
    # Without a record of the message, the observer's problem still keeps judgement back
    clean = tiers(port25_blocked=True)
    clean[2].probes[1] = ran("pp", "proofpoint.smart_search")
    clean[2].status = Status.PASS
    v = decide(clean, FLOW, [step("pp", Event.RECEIVED, "10:00")], asked=True)
    assert (v.status, v.tier, v.tag) == ("inconclusive", OBSERVER_TIER, "OBSERVER_PORT25_BLOCKED")


def test_where_two_sources_say_the_same_stop_the_first_is_the_answer():
    journey = [step("pp", Event.RECEIVED, "10:00"),
               step("pp", Event.QUARANTINED, "10:00", "PP_MESSAGE_QUARANTINED"),
               step("pp", Event.QUARANTINED, "10:00", "PP_QUARANTINE_HOLDS")]
    stop = journey_stop(journey)
    assert stop is not None and stop.tag == "PP_MESSAGE_QUARANTINED"


def test_a_released_message_does_not_hide_the_next_one_held_by_the_same_rule():
    # carol's first message was quarantined, released and delivered; her next one, the
    # gateway's latest record, is held by the same rule
    first = [step("pp", Event.RECEIVED, "2026-12-01T09:00:00Z"),
             step("pp", Event.QUARANTINED, "2026-12-01T09:00:00Z", "PP_MESSAGE_QUARANTINED"),
             step("exo", Event.RECEIVED, "2026-12-01T10:05:00Z"),
             step("exo", Event.DELIVERED, "2026-12-01T10:05:00Z")]
    second = [dataclasses.replace(s, message_id="<b@x>", at="2026-12-01T10:00:00Z")
              for s in first[:2]]
    found = tiers()
    found[2].probes[1].journey = [*first[:2], *second]
    found[3].probes[0].journey = first[2:]
    v = decide(found, FLOW, first, asked=False)
    assert (v.status, v.tier, v.tag) == ("fault", "pp", "PP_MESSAGE_QUARANTINED")


def test_the_gateways_record_of_a_refusal_onward_outweighs_a_blocked_port_25():
    refused = Finding("PP_ONWARD_DELIVERY_FAILED", {
        "recipient": "alice@contoso.com", "sender": "carol@fabrikam.example", "date": "d",
        "rule": "none", "guid": "g", "code": "550 5.4.1", "stat": "550 5.4.1",
        "reply": "550 5.4.1 Recipient address rejected: Access denied",
        "next_tier": "exo", "relay": "contoso-com.mail.protection.outlook.com"})
    found = tiers(port25_blocked=True)
    found[2].probes[1] = ran("pp", "proofpoint.smart_search")
    found[2].status = Status.PASS
    found[3] = TierResult("exo", "x", Status.FAIL, [
        ProbeResult("smtp.hop", "exo", Status.NOT_TESTED, reason="port 25 is blocked",
                    blocked_by="smtp.port25", asks="smtp"),
        ProbeResult("proofpoint.smart_search", "exo", Status.FAIL, [refused],
                    reported_by="pp", asks="api")])
    v = decide(found, FLOW, [], asked=False)
    assert (v.status, v.tier, v.tag) == ("fault", "exo", "PP_ONWARD_DELIVERY_FAILED")
