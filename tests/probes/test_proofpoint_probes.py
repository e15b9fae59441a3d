"""The Proofpoint probes' pure ``evaluate`` on hand-built observations: every tag, the
finding about the next hop, and *not tested* (never a fault) for answers that cannot be
judged."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from mailtrace.cli.options import parse_since
from mailtrace.clients.proofpoint.http import ApiResponse
from mailtrace.core import catalog
from mailtrace.core.findings import Finding
from mailtrace.probes.base import NotTested
from mailtrace.probes.proofpoint import essentials, quarantine, smart_search, tap
from mailtrace.probes.proofpoint.access import NextHop, duration

EXO = NextHop("exchange-online", ("contoso-com.mail.protection.outlook.com",))
ONPREM = NextHop("onprem", ("mail.contoso.com",))
DAY = dt.timedelta(hours=24)


def ok(data: Any, status: int = 200, text: str | None = None) -> ApiResponse:
    return ApiResponse("/x?y=1", status, data, text, 3.0, [{"attempt": 1, "status": status}])


def record(date: str = "2026-11-29 04:00:00 [UTC+0000]", **fields: Any) -> dict[str, Any]:
    return {"GUID": "g-" + date[11:19], "Date": date, "Sender": "bob@fabrikam.example",
            "Recipients": "alice@contoso.com", "Final_Action": "accept", "Final_Rule": "system",
            "Quarantine_Folder": "", "Sendmail_Stat": "Sent (Ok)", "Sendmail_Errorcode": "",
            **fields}


def search(*records: dict[str, Any], hops: tuple[NextHop, ...] = (EXO,), count: int = 100,
           recipient: str = "alice@contoso.com") -> list[Finding]:
    check = smart_search.SearchCheck(recipient, DAY, count, ok({"result": list(records)}),
                                     hops)
    return smart_search.evaluate(check)


def tags(findings: list[Finding]) -> list[str]:
    return [f.tag for f in findings]


# --- Smart Search -----------------------------------------------------------------------

def test_delivered_latest_message():
    [f] = search(record())
    assert f.tag == "PP_MESSAGE_DELIVERED" and f.about is None
    assert (f.args["count"], f.args["since"], f.args["stat"]) == (1, "24h", "Sent (Ok)")


def test_the_latest_message_decides_whatever_the_order_and_missing_dates():
    old_reject = record("2026-11-29 01:00:00 [UTC+0000]", Final_Action="reject")
    new_ok = record("2026-11-29 03:00:00 [UTC-0200]")  # 05:00 UTC: the latest
    undated = record("", Final_Action="reject")
    assert tags(search(new_ok, old_reject, undated)) == ["PP_MESSAGE_DELIVERED"]
    assert tags(search(old_reject, new_ok)) == ["PP_MESSAGE_DELIVERED"]


@pytest.mark.parametrize(("fields", "tag", "args"), [
    ({"Final_Action": "reject", "Final_Rule": "access.blocked_senders"},
     "PP_MESSAGE_REJECTED", {"action": "reject", "rule": "access.blocked_senders"}),
    ({"Final_Action": "discard", "Final_Rule": "spam.definite"},
     "PP_MESSAGE_REJECTED", {"action": "discard", "rule": "spam.definite"}),
    ({"Final_Action": "discard", "Quarantine_Folder": "Phish", "Quarantine_Rule": "phish.x"},
     "PP_MESSAGE_QUARANTINED", {"folder": "Phish", "rule": "phish.x"}),
    ({"Final_Action": "quarantine", "Final_Rule": "spam.bulk"},
     "PP_MESSAGE_QUARANTINED", {"folder": "unknown folder", "rule": "spam.bulk"}),
    ({"Final_Action": "", "Quarantine_Folder": "Bulk"},
     "PP_MESSAGE_QUARANTINED", {"folder": "Bulk"}),
    ({"Final_Action": "retry", "Final_Rule": "pdr.delayed"},
     "PP_MESSAGE_RETRY", {"rule": "pdr.delayed"}),
    ({"Final_Action": "redirect"}, "PP_MESSAGE_ACTION_UNKNOWN", {"action": "redirect"}),
    ({"Final_Action": "Frobnicate"}, "PP_MESSAGE_ACTION_UNKNOWN", {"action": "Frobnicate"}),
    ({"Final_Action": "continue", "Quarantine_Folder": "Audit", "Sendmail_Stat": ""},
     "PP_MESSAGE_ACCEPTED", {"stat": "not logged"}),
])
def test_final_action_and_rule(fields, tag, args):
    [f] = search(record(**fields))
    assert f.tag == tag
    assert {k: f.args[k] for k in args} == args
    assert f.args["sender"] == "bob@fabrikam.example" and f.args["guid"] == "g-04:00:00"


@pytest.mark.parametrize(("fields", "outcome"), [
    ({"Final_Action": "reject", "Final_Rule": "spam.definite"}, "reject"),
    ({"Final_Action": "discard", "Quarantine_Folder": "Bulk", "Quarantine_Rule": "spam.bulk"},
     "quarantined in Bulk"),
])
def test_a_filtered_message_while_others_are_delivered_is_no_fault(fields, outcome):
    earlier = record("2026-11-29 01:00:00 [UTC+0000]")
    [f] = search(earlier, record(**fields))
    assert (f.tag, f.args["outcome"], f.args["delivered"]) == (
        "PP_MESSAGE_FILTERED", outcome, 1)
    assert not catalog.info(f.tag).fails
    # an earlier message that was refused onward is no proof that mail flows
    bounced = record("2026-11-29 01:00:00 [UTC+0000]", Sendmail_Errorcode="550 5.1.1")
    assert tags(search(bounced, record(**fields)))[0] in ("PP_MESSAGE_REJECTED",
                                                          "PP_MESSAGE_QUARANTINED")


def test_accepted_then_refused_by_the_next_hop_is_about_the_next_hop():
    raw = ("to=<alice@contoso.com>, relay=contoso-com.mail.protection.outlook.com. "
           "[192.0.2.25], dsn=5.4.1, stat=Service unavailable; 550 5.4.1 [alice@contoso.com]: "
           "Recipient address rejected: Access denied")
    accepted, failed = search(record(Sendmail_Stat="Service unavailable",
                                     Sendmail_Errorcode="550 5.4.1", SendmailRaw_Log=raw),
                              hops=(ONPREM, EXO))
    assert (accepted.tag, accepted.about) == ("PP_MESSAGE_ACCEPTED", None)
    assert (failed.tag, failed.about) == ("PP_ONWARD_DELIVERY_FAILED", "exchange-online")
    assert failed.args["code"] == "550 5.4.1"
    assert failed.args["reply"].startswith("550 5.4.1 [alice@contoso.com]")
    assert failed.args["relay"] == "contoso-com.mail.protection.outlook.com"


def test_onward_failure_with_one_next_hop_and_no_relay_logged():
    _, failed = search(record(Sendmail_Stat="User unknown", Sendmail_Errorcode="550 5.1.1"))
    assert (failed.tag, failed.about, failed.args["next_tier"]) == (
        "PP_ONWARD_DELIVERY_FAILED", "exchange-online", "exchange-online")
    assert failed.args["reply"] == "550 5.1.1 User unknown"


def test_onward_failure_that_cannot_be_tied_to_one_hop_stays_with_the_gateway():
    _, failed = search(record(Sendmail_Errorcode="554 5.0.0"), hops=(ONPREM, EXO))
    assert (failed.tag, failed.about, failed.args["next_tier"]) == (
        "PP_ONWARD_DELIVERY_FAILED", None, "the next hop")


def test_onward_failure_at_a_host_no_tier_declares_stays_with_the_gateway():
    raw = ("to=<alice@contoso.com>, relay=old-exchange.contoso.com. [192.0.2.80], "
           "dsn=5.0.0, stat=Service unavailable; 554 5.0.0 no such mailbox")
    _, failed = search(record(Sendmail_Errorcode="554 5.0.0", SendmailRaw_Log=raw))
    assert (failed.tag, failed.about, failed.args["relay"]) == (
        "PP_ONWARD_DELIVERY_FAILED", None, "old-exchange.contoso.com")
    # an address names no host: with one next hop, it is that hop's
    by_ip = raw.replace("old-exchange.contoso.com. [192.0.2.80]", "[192.0.2.25]")
    _, failed = search(record(Sendmail_Errorcode="554 5.0.0", SendmailRaw_Log=by_ip))
    assert (failed.about, failed.args["relay"]) == ("exchange-online", "192.0.2.25")


def test_an_ipv6_relay_is_matched_to_the_hop_that_declares_its_address():
    v6 = NextHop("onprem", ("2001:db8::25",))
    raw = ("to=<alice@contoso.com>, relay=[IPv6:2001:DB8:0:0::25], dsn=5.1.1, "
           "stat=User unknown; 550 5.1.1 unknown")
    _, failed = search(record(Sendmail_Errorcode="550 5.1.1", SendmailRaw_Log=raw),
                       hops=(v6, EXO))
    assert (failed.tag, failed.about) == ("PP_ONWARD_DELIVERY_FAILED", "onprem")


def test_deferred_onward_delivery_is_a_warning_about_the_next_hop():
    _, deferred = search(record(Sendmail_Stat="Deferred: 451 4.4.0 try later"))
    assert (deferred.tag, deferred.about) == ("PP_ONWARD_DELIVERY_DEFERRED", "exchange-online")
    assert catalog.info(deferred.tag).level.value == "warning"


def test_no_message_for_the_recipient():
    other = record(Recipients="bob@contoso.com")
    [f] = search(other)
    assert (f.tag, f.args["recipient"], f.args["since"]) == (
        "PP_SEARCH_NO_MESSAGES", "alice@contoso.com", "24h")
    assert tags(search()) == ["PP_SEARCH_NO_MESSAGES"]


def test_a_domain_search_keeps_every_record():
    assert tags(search(record(Recipients="bob@contoso.com"),
                       recipient="*@contoso.com")) == ["PP_MESSAGE_DELIVERED"]


def test_the_count_limit_is_reported():
    findings = search(record(), record("2026-11-29 02:00:00 [UTC+0000]"), count=2)
    assert tags(findings) == ["PP_SEARCH_LIMIT_REACHED", "PP_MESSAGE_DELIVERED"]
    assert findings[0].args["count"] == 2


@pytest.mark.parametrize(("response", "why"), [
    (ok(None, text="<html>login page</html>"), "not JSON"),
    (ok({"error": "nope"}, 404), "HTTP 404"),
    (ok({"unexpected": 1}), "expected an object with 'result'"),
    (ok(["a", "b"]), None),  # a bare list of non-objects: no record, not an error
])
def test_answers_that_cannot_be_judged_are_not_tested(response, why):
    check = smart_search.SearchCheck("alice@contoso.com", DAY, 100, response, (EXO,))
    if why is None:
        assert tags(smart_search.evaluate(check)) == ["PP_SEARCH_NO_MESSAGES"]
        return
    with pytest.raises(NotTested) as info:
        smart_search.evaluate(check)
    assert why in info.value.reason
    [f] = info.value.findings
    assert f.tag == "PP_API_UNAVAILABLE" and f.args["api"] == "Proofpoint Smart Search"
    assert f.evidence[0]["status"] == response.status


def test_no_content_is_no_message():
    check = smart_search.SearchCheck("alice@contoso.com", DAY, 100, ok(None, 204), (EXO,))
    assert tags(smart_search.evaluate(check)) == ["PP_SEARCH_NO_MESSAGES"]


# --- quarantine -------------------------------------------------------------------------

def _quarantine(*responses: ApiResponse, folders: tuple[str, ...] = ("",)) -> list[Finding]:
    check = quarantine.QuarantineCheck("alice@contoso.com", DAY, folders, responses)
    return quarantine.evaluate(check)


def test_quarantine_holds_messages_with_folder_rule_sender_and_date():
    held = {"count": 2, "records": [
        {"guid": "q1", "folder": "Quarantine", "date": "2026-11-28 10:00:00",
         "from": "a@x.example", "rcpts": ["alice@contoso.com"]},
        {"guid": "q2", "folder": "Phish", "rule": "phish.high", "date": "2026-11-29 03:00:00",
         "from": "b@y.example", "rcpts": ["alice@contoso.com"]},
        {"guid": "q3", "folder": "Phish", "rcpts": ["bob@contoso.com"]},
    ]}
    [f] = _quarantine(ok(held), ok(None, 204), folders=("Quarantine", "Phish"))
    assert f.tag == "PP_QUARANTINE_HOLDS"
    assert {k: f.args[k] for k in ("count", "folder", "rule", "sender", "date")} == {
        "count": 2, "folder": "Phish", "rule": "phish.high", "sender": "b@y.example",
        "date": "2026-11-29T03:00:00Z"}


def test_quarantine_clear_names_the_folders_asked():
    [f] = _quarantine(ok({"count": 0, "records": []}))
    assert (f.tag, f.args["folders"]) == ("PP_QUARANTINE_CLEAR", "Quarantine")


def test_quarantine_non_json_is_not_tested():
    with pytest.raises(NotTested):
        _quarantine(ok(None, text="Internal error"))


# --- Essentials -------------------------------------------------------------------------

def _routing(domain: dict[str, Any] | None, endpoints: ApiResponse | None = None,
             hops: tuple[NextHop, ...] = (EXO,)) -> list[Finding]:
    domains = [domain] if domain else []
    check = essentials.RoutingCheck("contoso.com", "contoso.com", "us1.proofpointessentials.com",
                                    endpoints, ok({"domains": domains}), hops)
    return essentials.evaluate_routing(check)


def _domain(destination: str, failovers: list[str] | None = None, **more: Any) -> dict[str, Any]:
    return {"name": "contoso.com", "is_active": True, "is_relay": True,
            "destination": destination, "failovers": failovers or [], **more}


@pytest.mark.parametrize("destination", [
    "contoso-com.mail.protection.outlook.com", "Contoso-com.mail.protection.outlook.com.",
    "contoso-com.mail.protection.outlook.com:25", "[contoso-com.mail.protection.outlook.com]"])
def test_essentials_delivers_to_the_next_hop(destination):
    [f] = _routing(_domain(destination))
    assert (f.tag, f.args["next_tier"]) == ("PPE_ROUTING_OK", "exchange-online")


def test_essentials_delivers_somewhere_else():
    [f] = _routing(_domain("mail.contoso-old.example"))
    assert f.tag == "PPE_DESTINATION_MISMATCH" and f.about is None
    assert (f.args["destination"], f.args["expected"]) == (
        "mail.contoso-old.example", "contoso-com.mail.protection.outlook.com")
    [f] = _routing(_domain(""))
    assert (f.tag, f.args["destination"]) == ("PPE_DESTINATION_MISMATCH", "not set")


def test_essentials_address_destination_and_stray_failover():
    found = _routing(_domain("[192.0.2.25]:25", ["backup.contoso-old.example", "192.0.2.26"]))
    assert tags(found) == ["PPE_DESTINATION_IS_ADDRESS", "PPE_FAILOVER_MISMATCH"]
    assert found[1].args["failovers"] == "backup.contoso-old.example"


@pytest.mark.parametrize(("domain", "state"), [
    (None, "not listed"), (_domain("x", is_active=False), "inactive"),
    (_domain("x", is_active="0"), "inactive")])
def test_essentials_domain_missing_or_inactive(domain, state):
    [f] = _routing(domain)
    assert (f.tag, f.args["state"], f.args["org"]) == ("PPE_DOMAIN_NOT_ACTIVE", state,
                                                       "contoso.com")


def test_essentials_organisation_on_another_stack():
    endpoints = ok({"endpoints": ["https://us3.proofpointessentials.com/api/v1"]})
    found = _routing(_domain("contoso-com.mail.protection.outlook.com"), endpoints)
    assert tags(found) == ["PPE_OTHER_STACK", "PPE_ROUTING_OK"]
    assert found[0].args["host"] == "us1.proofpointessentials.com"
    same = ok({"endpoints": [{"region": "us1"}]})
    assert tags(_routing(_domain("contoso-com.mail.protection.outlook.com"), same)) == [
        "PPE_ROUTING_OK"]


def _user(users: Any) -> list[Finding]:
    check = essentials.UserCheck("contoso.com", "Alice@contoso.com", ok(users))
    return essentials.evaluate_user(check)


def test_essentials_recipient_known_by_primary_address_or_alias():
    [f] = _user({"users": [{"primary_email": "alice@contoso.com"}]})
    assert (f.tag, f.args["match"]) == ("PPE_RECIPIENT_KNOWN", "primary address")
    [f] = _user({"users": [{"primary_email": "a.smith@contoso.com",
                            "alias_emails": ["alice@contoso.com"]}]})
    assert (f.tag, f.args["match"]) == ("PPE_RECIPIENT_KNOWN", "alias of a.smith@contoso.com")


def test_essentials_recipient_unknown():
    [f] = _user({"users": [{"primary_email": "bob@contoso.com"}, {"uid": 7}]})
    assert (f.tag, f.args["users"]) == ("PPE_RECIPIENT_UNKNOWN", 1)


def test_essentials_users_not_json_is_not_tested():
    with pytest.raises(NotTested):
        essentials.evaluate_user(essentials.UserCheck("c", "a@c.com", ok(None, text="oops")))


# --- TAP (threat-only) ------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 29, 5, 0, tzinfo=dt.UTC)


def _threat(disposition: str, hours: float, classification: str = "malware") -> dict[str, Any]:
    return {"GUID": f"t{hours}", "recipient": ["alice@contoso.com"],
            "fromAddress": ["bad@evil.example"], "sender": "hash@evil.example",
            "messageTime": (NOW - dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "threatsInfoMap": [{"threatID": "x", "classification": classification}]}


def _tap(*bodies: Any, stopped: str | None = None) -> list[Finding]:
    windows = tuple(tap.Window(NOW - dt.timedelta(hours=i + 1), NOW - dt.timedelta(hours=i),
                               ok(body, 204 if body is None else 200))
                    for i, body in enumerate(bodies))
    check = tap.TapCheck("alice@contoso.com", "contoso.com", dt.timedelta(hours=12), windows,
                         stopped)
    return tap.evaluate(check)


def test_tap_blocked_and_delivered_threats_are_informational():
    found = _tap({"messagesBlocked": [_threat("b", 0.5), _threat("b", 0.2, "phish")]}, None,
                 {"messagesDelivered": [_threat("d", 2.5)]})
    assert tags(found) == ["PP_TAP_THREATS_BLOCKED", "PP_TAP_THREATS_DELIVERED"]
    blocked = found[0]
    assert (blocked.args["count"], blocked.args["classification"], blocked.args["hours"]) == (
        2, "phish", "3")
    assert blocked.args["sender"] == "bad@evil.example"
    assert all(not catalog.info(f.tag).fails for f in found)


def test_tap_no_threat_and_other_recipients():
    other = dict(_threat("b", 0.5), recipient=["bob@contoso.com"])
    [f] = _tap(None, {"messagesBlocked": [other]})
    assert (f.tag, f.args["hours"]) == ("PP_TAP_NO_THREATS", "2")


def test_tap_partial_coverage_says_why():
    found = _tap(None, stopped="throttled (HTTP 429, no Retry-After)")
    assert tags(found) == ["PP_TAP_NO_THREATS", "PP_TAP_PARTIAL"]
    assert (found[1].args["hours"], found[1].args["asked"]) == ("1", "12")


def test_every_tap_message_says_it_is_threat_only():
    for tag in ("PP_TAP_NO_THREATS", "PP_TAP_THREATS_BLOCKED", "PP_TAP_THREATS_DELIVERED",
                "PP_TAP_PARTIAL"):
        assert catalog.info(tag).message.startswith("TAP (threat-only")


@pytest.mark.parametrize(("since", "count", "first_hours"), [
    (dt.timedelta(hours=24), 12, 1.0),  # never more than twelve hours back
    (dt.timedelta(minutes=90), 2, 1.0),
    (dt.timedelta(minutes=20), 1, 1 / 3),
    (dt.timedelta(seconds=5), 1, 1 / 60),  # the API refuses intervals under 30 s
])
def test_tap_windows_are_one_hour_at_most_and_twelve_hours_back(since, count, first_hours):
    windows = tap.windows(NOW, since)
    assert len(windows) == count
    assert all(dt.timedelta(0) < end - start <= dt.timedelta(hours=1) for start, end in windows)
    assert windows[0][1] == NOW and windows[-1][0] >= NOW - dt.timedelta(hours=12)
    assert (windows[0][1] - windows[0][0]) == dt.timedelta(hours=first_hours)
    assert all(a[0] == b[1] for a, b in itertools.pairwise(windows))


# --- --since ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds", "shown"), [
    ("24h", 86400, "24h"), ("90m", 5400, "90m"), ("7d", 604800, "7d"), ("45s", 45, "45s"),
    ("1.5h", 5400, "90m"), (" 2D ", 172800, "2d"), ("36h", 129600, "36h")])
def test_since_durations(text, seconds, shown):
    since = parse_since(text)
    assert since.total_seconds() == seconds and duration(since) == shown


@pytest.mark.parametrize("text", ["24", "h", "-1h", "0h", "31d", "1w", "24 hours"])
def test_since_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError, match="--since"):
        parse_since(text)


# --- the topology's access blocks, and which probes they plan --------------------------

def _topology(tier_yaml: str) -> Any:
    from mailtrace.topology import parse_topology

    return parse_topology(f"""
topology: t
domains: [contoso.com]
flow: ["public-dns -> proofpoint -> exchange-online"]
tiers:
  public-dns: {{kind: dns}}
  proofpoint:
{tier_yaml}
  exchange-online:
    kind: exchange-online
    inbound_host: contoso-com.mail.protection.outlook.com
""")


POD = "    kind: proofpoint\n    flavour: pod\n    hosts: [mx0a-001234.pphosted.com]\n"
ESS = "    kind: proofpoint\n    flavour: essentials\n    hosts: [mx1-us1.ppe-hosted.com]\n"
API = "    api: {url: 'https://pp.example:10000', username_env: U, password_env: P}\n"
TAP = "    tap: {principal_env: TP, secret_env: TS}\n"


@pytest.mark.parametrize(("tier", "planned"), [
    (POD + API + TAP, ["proofpoint.smart_search", "proofpoint.quarantine", "proofpoint.tap"]),
    (ESS + API, ["proofpoint.essentials_routing", "proofpoint.essentials_user"]),
    (ESS + TAP, ["proofpoint.tap"]),
    (POD, []),
])
def test_the_api_probes_apply_only_when_the_tier_declares_the_api(tier, planned):
    from mailtrace.engine.runner import build_plan
    from mailtrace.probes.registry import ALL
    from mailtrace.topology import FlowGraph

    topology = _topology(tier)
    plan = build_plan(topology, FlowGraph(topology), ALL)
    assert [p.probe.id for p in plan.of_tier("proofpoint")
            if p.probe.id.startswith("proofpoint.")] == planned


def test_the_access_blocks_and_their_defaults():
    gateway = _topology(ESS + API.replace("}", ", org: Fabrikam.COM}") + TAP).tiers["proofpoint"]
    assert gateway.api.org == "fabrikam.com" and gateway.api.quarantine_folders == []
    assert gateway.tap.url == "https://tap-api-v2.proofpoint.com"
    assert (gateway.tap.principal_env, gateway.tap.secret_env) == ("TP", "TS")


@pytest.mark.parametrize(("block", "needle"), [
    ("    tap: {url: 'http://tap.example.com', principal_env: TP, secret_env: TS}\n", "loopback"),
    ("    tap: {principal_env: TP}\n", "secret_env"),
    ("    tap: {principal_env: TP, secret_env: 'hunter2 the secret'}\n", "environment variable"),
    ("    api: {url: 'https://x.example', org: 'not a domain!'}\n", "org"),
])
def test_bad_access_blocks_are_refused(block, needle):
    from mailtrace.topology import TopologyError

    with pytest.raises(TopologyError) as info:
        _topology(POD + block)
    assert needle in str(info.value) and "hunter2" not in str(info.value)
