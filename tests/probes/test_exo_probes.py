"""The Exchange Online probes' pure ``evaluate`` functions, on hand-built observations."""

from __future__ import annotations

import pytest

from mailtrace.clients.dns import Outcome
from mailtrace.core.journey import Event
from mailtrace.probes.base import NotTested
from mailtrace.probes.exo import directory, domain, health, mailtips, recipient, rules, trace
from mailtrace.probes.exo.directory import DirectoryObject, Lookup, Plan, address_filter, quoted
from mailtrace.probes.exo.domain import DomainCheck, ExpectedRecord, TenantDomain
from mailtrace.probes.exo.health import HealthCheck, HealthIssue
from mailtrace.probes.exo.hybrid import OnPremRoute
from mailtrace.probes.exo.mailtips import MailTips
from mailtrace.probes.exo.recipient import RecipientCheck
from mailtrace.probes.exo.rules import InboxRule, RulesCheck
from mailtrace.probes.exo.trace import TraceCheck, TracedMessage
from tests.support.builders import RESOLVER, obs

ALICE = "alice@contoso.com"
EXO_MX = "contoso-com.mail.protection.outlook.com"
MS_SPF = ExpectedRecord("Txt", "contoso.com", "Email",
                        "v=spf1 include: spf.protection.outlook.com -all")  # the docs' typo
MS_MX = ExpectedRecord("Mx", "contoso.com", "Email", EXO_MX, 0, 3600)


def tags(findings):
    return [f.tag for f in findings]


def _mx(*hosts: str):
    return obs(RESOLVER, "contoso.com.", "MX",
               answer=[("contoso.com.", "MX", 3600, f"10 {h}.") for h in hosts])


def _txt(text: str | None, outcome: Outcome = Outcome.ANSWER):
    answer = [("contoso.com.", "TXT", 300, f'"{text}"')] if text else []
    return obs(RESOLVER, "contoso.com.", "TXT", outcome if text else Outcome.NODATA, answer)


def _domain(*, record=None, expected=(MS_MX, MS_SPF), gateway="proofpoint",
            mx=("mx0a-001234.pphosted.com",),
            spf="v=spf1 include:spf-001234.pphosted.com include:spf.protection.outlook.com -all",
            gateway_spf=("spf-001234.pphosted.com",), inbound=EXO_MX) -> DomainCheck:
    record = record if record is not None else TenantDomain("contoso.com", True,
                                                            ("Email", "OfficeCommunicationsOnline"))
    return DomainCheck("contoso.com", "contoso.onmicrosoft.com", inbound, gateway, "public-dns",
                       gateway_spf, record, tuple(expected), _mx(*mx), _txt(spf))


# --- domain ------------------------------------------------------------------------------

def test_a_gateway_in_front_makes_microsofts_mx_no_fault():
    findings = domain.evaluate(_domain())
    assert tags(findings) == ["EXO_MX_BEHIND_GATEWAY", "EXO_DOMAIN_OK"]
    assert findings[0].args == {"domain": "contoso.com", "expected": EXO_MX,
                                "gateway": "proofpoint"}


def test_with_no_gateway_the_mx_must_be_microsofts_and_is_filed_under_public_dns():
    [f] = domain.evaluate(_domain(gateway=None, mx=("mail.contoso.com",), gateway_spf=(),
                                  spf="v=spf1 include:spf.protection.outlook.com -all"))
    assert (f.tag, f.about) == ("EXO_MX_NOT_MICROSOFTS", "public-dns")
    assert (f.args["expected"], f.args["published"]) == (EXO_MX, "mail.contoso.com")
    ok = domain.evaluate(_domain(gateway=None, mx=(EXO_MX,), gateway_spf=(),
                                 spf="v=spf1 include:spf.protection.outlook.com -all"))
    assert tags(ok) == ["EXO_DOMAIN_OK"]


@pytest.mark.parametrize(("spf", "missing"), [
    ("v=spf1 include:spf.protection.outlook.com -all", "include:spf-001234.pphosted.com"),
    ("v=spf1 include:spf-001234.pphosted.com -all", "include:spf.protection.outlook.com"),
    (None, "include:spf.protection.outlook.com include:spf-001234.pphosted.com"),
])
def test_spf_must_cover_exchange_online_and_the_gateway(spf, missing):
    found = [f for f in domain.evaluate(_domain(spf=spf)) if f.tag == "EXO_SPF_INCOMPLETE"]
    assert [(f.args["missing"], f.about) for f in found] == [(missing, "public-dns")]


def test_the_topologys_inbound_host_is_checked_against_the_tenant():
    findings = domain.evaluate(_domain(inbound="contoso-com.o-v1.mx.microsoft"))
    assert ("EXO_INBOUND_HOST_DIFFERS", "contoso-com.o-v1.mx.microsoft") in [
        (f.tag, f.args.get("declared")) for f in findings]
    assert "EXO_DOMAIN_OK" not in tags(findings)


@pytest.mark.parametrize(("record", "tag"), [
    (TenantDomain("contoso.com", False, ("Email",)), "EXO_DOMAIN_UNVERIFIED"),
    (TenantDomain("contoso.com", True, ("OfficeCommunicationsOnline",)),
     "EXO_DOMAIN_NO_EMAIL_SERVICE"),
])
def test_domain_state(record, tag):
    assert tags(domain.evaluate(_domain(record=record))) == [tag]


def test_domain_not_in_tenant():
    check = DomainCheck("contoso.com", "contoso.onmicrosoft.com", EXO_MX, None, "public-dns",
                        (), None, (), _mx(EXO_MX), _txt(None))
    [f] = domain.evaluate(check)
    assert (f.tag, f.args["tenant"]) == ("EXO_DOMAIN_NOT_IN_TENANT", "contoso.onmicrosoft.com")


# --- recipient ---------------------------------------------------------------------------

ENTERPRISE = Plan("exchange", "Enabled", "efb87545-963c-4e0d-99df-69c6916d9eb0")
FOUNDATION = Plan("exchange", "Enabled", "113feb6c-3fe4-4440-bddc-54d774bf0318")


def _user(**changes) -> DirectoryObject:
    base = dict(kind="user", id="u1", name="Alice", mail=ALICE,
                proxy_addresses=(f"SMTP:{ALICE}",), upn=ALICE, account_enabled=True,
                assigned_plans=(ENTERPRISE, FOUNDATION),
                provisioned_plans=(Plan("exchange", "Success"),))
    return DirectoryObject(**{**base, **changes})


def _recipient(*found, purpose="user", no_mailbox=None, unanswered=()) -> RecipientCheck:
    return RecipientCheck(Lookup(ALICE, tuple(found), (), tuple(unanswered)),
                          "contoso.onmicrosoft.com", purpose, no_mailbox)


@pytest.mark.parametrize(("check", "expected"), [
    (_recipient(_user()), [("EXO_RECIPIENT_OK", "user mailbox")]),
    (_recipient(), [("EXO_RECIPIENT_NOT_FOUND", None)]),
    (_recipient(_user(assigned_plans=(FOUNDATION,))),
     [("EXO_NO_MAILBOX_PLAN", "EXCHANGE_S_FOUNDATION")]),
    (_recipient(_user(assigned_plans=())), [("EXO_NO_MAILBOX_PLAN", "none")]),
    # an unlicensed shared mailbox with a disabled account receives mail
    (_recipient(_user(assigned_plans=(), account_enabled=False), purpose="shared"),
     [("EXO_RECIPIENT_OK", "shared mailbox")]),
    (_recipient(_user(account_enabled=False)), [("EXO_ACCOUNT_DISABLED", None)]),
    (_recipient(_user(provisioned_plans=(Plan("exchange", "PendingInput"),))),
     [("EXO_MAILBOX_NOT_PROVISIONED", "PendingInput")]),
    (_recipient(_user(), purpose=None, no_mailbox="MailboxNotEnabledForRESTAPI"),
     [("EXO_NO_MAILBOX", "MailboxNotEnabledForRESTAPI")]),
    (_recipient(_user(), DirectoryObject("contact", "c1", "Alice (old)", mail="a@x.example")),
     [("EXO_RECIPIENT_AMBIGUOUS", None)]),
    (_recipient(DirectoryObject("group", "g1", "Sales", mail=ALICE, mail_enabled=False,
                                security_enabled=True)), [("EXO_GROUP_NOT_MAIL_ENABLED", None)]),
    (_recipient(DirectoryObject("group", "g1", "Sales", mail=ALICE, mail_enabled=True,
                                group_types=("Unified",))),
     [("EXO_RECIPIENT_OK", "Microsoft 365 group")]),
    (_recipient(DirectoryObject("contact", "c1", "Alice", mail="alice@fabrikam.example")),
     [("EXO_RECIPIENT_IS_CONTACT", "alice@fabrikam.example")]),
])
def test_recipient(check, expected):
    findings = recipient.evaluate(check)
    detail = {"EXO_RECIPIENT_OK": "kind", "EXO_NO_MAILBOX_PLAN": "plans",
              "EXO_MAILBOX_NOT_PROVISIONED": "status", "EXO_NO_MAILBOX": "code",
              "EXO_RECIPIENT_IS_CONTACT": "external"}
    assert [(f.tag, f.args.get(detail.get(f.tag, ""))) for f in findings] == expected
    assert all(f.args["address"] == ALICE for f in findings)


def test_not_found_is_not_concluded_when_a_lookup_could_not_run():
    """exo.directory, which the recipient probes depend on, is not tested then."""
    with pytest.raises(NotTested, match="no permission"):
        directory.evaluate(Lookup(ALICE, (), (), (NotTested("no permission"),)))
    assert directory.evaluate(Lookup(ALICE, (), (), ())) == []  # nothing found, all asked


def test_address_filters_quote_odata_literals():
    assert quoted("o'brien@contoso.com") == "'o''brien@contoso.com'"
    text = address_filter(ALICE, upn=True)
    assert f"proxyAddresses/any(x:x eq 'smtp:{ALICE}')" in text
    assert f"userPrincipalName eq '{ALICE}'" in text
    assert "userPrincipalName" not in address_filter(ALICE, upn=False)


# --- inbox rules -------------------------------------------------------------------------

def _rules(*rules_: InboxRule) -> RulesCheck:
    return RulesCheck(ALICE, rules_)


def test_a_rule_deleting_everything_is_a_fault_and_named():
    [f] = rules.evaluate(_rules(InboxRule("Clean up", 1, True, delete=True, stop=True)))
    assert (f.tag, f.args["rule"], f.args["conditions"], f.args["action"]) == (
        "EXO_RULE_DELETES_ALL", "Clean up", "all mail", "deletes")


def test_rules_are_named_with_their_conditions():
    findings = rules.evaluate(_rules(
        InboxRule("Spam", 2, True, conditions=("subjectContains: enter to win",),
                  permanent_delete=True),
        InboxRule("Boss", 1, True, conditions=("fromAddresses: boss@contoso.com",),
                  exceptions=("importance: high",), move_to="AAMkAGI2THVSAAA="),
        InboxRule("Out", 3, True, redirect_to=("mallory@evil.example",)),
        InboxRule("Copy", 4, True, forward_to=("bob@contoso.com",)),
        InboxRule("Off", 5, False, delete=True),
    ))
    assert [(f.tag, f.args["rule"]) for f in findings] == [
        ("EXO_RULE_MOVES", "Boss"), ("EXO_RULE_DELETES", "Spam"),
        ("EXO_RULE_FORWARDS", "Out"), ("EXO_RULE_FORWARDS", "Copy")]
    assert findings[0].args["conditions"] == ("fromAddresses: boss@contoso.com except "
                                              "importance: high")
    assert findings[1].args["action"] == "permanently deletes"
    assert (findings[2].args["action"], findings[2].args["to"]) == ("redirects",
                                                                    "mallory@evil.example")


def test_harmless_and_disabled_rules_pass():
    [f] = rules.evaluate(_rules(InboxRule("Read", 1, True), InboxRule("Off", 2, False,
                                                                      delete=True)))
    assert (f.tag, f.args["count"]) == ("EXO_RULES_OK", 1)


# --- MailTips, health --------------------------------------------------------------------

@pytest.mark.parametrize(("tips", "expected"), [
    (MailTips(ALICE, False, False, False, 37748736), ["EXO_MAILTIPS_OK"]),
    (MailTips(ALICE, True, True, True), ["EXO_MAILBOX_FULL", "EXO_DELIVERY_RESTRICTED",
                                          "EXO_RECIPIENT_MODERATED"]),
    (MailTips(ALICE, error="RecipientNotFound: not found"), ["EXO_MAILTIPS_ERROR"]),
])
def test_mailtips(tips, expected):
    assert tags(mailtips.evaluate(tips)) == expected


def test_health_incidents_and_advisories():
    issues = (HealthIssue("EX1", "Delays", "incident", "servicedegradation", "Mailflow", False),
              HealthIssue("EX2", "Heads-up", "advisory", "investigating", "Outlook", False))
    findings = health.evaluate(HealthCheck(issues))
    assert [(f.tag, f.args["id"]) for f in findings] == [
        ("EXO_SERVICE_INCIDENT", "EX1"), ("EXO_SERVICE_ADVISORY", "EX2")]
    assert tags(health.evaluate(HealthCheck(()))) == ["EXO_SERVICE_HEALTHY"]


# --- message trace -----------------------------------------------------------------------

def _msg(status: str, n: int = 0, sender: str = "s@fabrikam.example",
         events: tuple[dict[str, str], ...] = ()) -> TracedMessage:
    return TracedMessage(f"id{n}", sender, "subject", f"2026-11-29T{n:02d}:00:00Z", status,
                         events)


def test_trace_latest_message_decides_and_earlier_ones_are_counted():
    check = TraceCheck(ALICE, "24 h", (
        _msg("delivered", 1), _msg("failed", 2), _msg("filteredasspam", 3),
        _msg("pending", 4), _msg("unknown", 5), _msg("failed", 6), _msg("quarantined", 7)))
    findings = trace.evaluate(check)
    assert [(f.tag, f.args.get("count"), f.args.get("outcome")) for f in findings] == [
        ("EXO_TRACE_EARLIER_NOT_DELIVERED", 2, "not delivered (failed)"),
        ("EXO_TRACE_EARLIER_NOT_DELIVERED", 1, "filtered as spam"),
        ("EXO_TRACE_EARLIER_NOT_DELIVERED", 1, "still pending"),
        ("EXO_TRACE_QUARANTINED", 1, None), ("EXO_TRACE_SUMMARY", None, None)]
    assert {f.args.get("latest") for f in findings[:3]} == {"quarantined"}
    assert [e["id"] for e in findings[0].evidence] == ["id2", "id6"]
    assert findings[-1].args["statuses"] == ("1 delivered, 2 failed, 1 filteredasspam, "
                                             "1 pending, 1 quarantined, 1 unknown")


def test_trace_latest_message_failed_is_a_failed_delivery():
    findings = trace.evaluate(TraceCheck(ALICE, "24 h", (
        _msg("delivered", 1), _msg("failed", 2, "billing@fabrikam.example"))))
    assert [(f.tag, f.args.get("count"), f.args.get("senders")) for f in findings] == [
        ("EXO_TRACE_FAILED", 1, "billing@fabrikam.example"), ("EXO_TRACE_SUMMARY", None, None)]


def test_trace_earlier_quarantine_is_a_note_when_the_latest_was_delivered():
    findings = trace.evaluate(TraceCheck(ALICE, "24 h", (
        _msg("quarantined", 1, "spam@bulk.example"), _msg("delivered", 2))))
    assert [(f.tag, f.args.get("senders"), f.args.get("latest")) for f in findings] == [
        ("EXO_TRACE_EARLIER_NOT_DELIVERED", "spam@bulk.example", "delivered"),
        ("EXO_TRACE_SUMMARY", None, None)]


_DEFER = {"event": "Defer", "dateTime": "2026-11-29T03:05:00Z", "action": "",
          "description": "451 4.4.0 Primary target IP address responded with: 421 4.4.2 "
                         "Connection dropped. Attempted failover to alternate host "
                         "mail.contoso.example, but that did not succeed."}


def test_trace_pending_with_a_defer_event_is_deferred_at_the_host_it_names():
    route = OnPremRoute("exchange-onprem", ("mail.contoso.example",), ("contoso.com",))
    deferred = _msg("pending", 3, events=(_DEFER,))
    [f, _] = trace.evaluate(TraceCheck(ALICE, "24 h", (deferred,), routes=(route,)))
    assert (f.tag, f.args["count"], f.about) == ("EXO_TRACE_DEFERRED", 1, "exchange-onprem")
    [_, step] = trace.journey(TraceCheck(ALICE, "24 h", (deferred,), routes=(route,),
                                         asked="message"))
    assert (step.tier, step.event, step.tag) == (
        "exchange-onprem", Event.DEFERRED, "EXO_TRACE_DEFERRED")
    # No on-premises route named: the deferral is Exchange Online's own queue
    [f, _] = trace.evaluate(TraceCheck(ALICE, "24 h", (deferred,)))
    assert (f.tag, f.about) == ("EXO_TRACE_DEFERRED", None)
    # Pending without a Defer event is only pending
    [f, _] = trace.evaluate(TraceCheck(ALICE, "24 h", (_msg("pending", 3),)))
    assert f.tag == "EXO_TRACE_PENDING"


def test_trace_with_nothing_in_the_window():
    [f] = trace.evaluate(TraceCheck(ALICE, "2 days", ()))
    assert (f.tag, f.args["window"]) == ("EXO_TRACE_NO_MESSAGES", "2 days")


def test_trace_window_and_filter():
    import datetime as dt

    assert trace.window_text(dt.timedelta(hours=24)) == "24 h"
    assert trace.window_text(dt.timedelta(days=7)) == "7 days"
    start = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC)
    assert trace.trace_filter("o'neil@contoso.com", start, start + dt.timedelta(days=1)) == (
        "recipientAddress eq 'o''neil@contoso.com' and receivedDateTime ge "
        "2026-11-28T06:00:00Z and receivedDateTime le 2026-11-29T06:00:00Z")


def test_a_delivered_message_deferred_first_is_handed_on_by_its_send_event():
    route = OnPremRoute("exchange-onprem", ("mail.contoso.example",), ("contoso.com",),
                        addresses=("203.0.113.25",))
    defer = {**_DEFER, "dateTime": "2026-11-29T03:01:00Z",
             "description": _DEFER["description"] + ". The last endpoint attempted was "
             "203.0.113.25:25"}
    send = {"event": "Send external", "dateTime": "2026-11-29T03:20:00Z", "action": "",
            "description": "Message sent to mail.contoso.example at 203.0.113.25 using TLS1.2"}
    delivered = _msg("delivered", 3, events=(defer, send))
    steps = trace.journey(TraceCheck(ALICE, "24 h", (delivered,), routes=(route,)))
    assert [(s.tier, s.event, s.at) for s in steps[1:]] == [
        ("exchange-online", Event.RELAYED, "2026-11-29T03:20:00Z"),
        ("exchange-onprem", Event.RECEIVED, "2026-11-29T03:20:00Z")]
