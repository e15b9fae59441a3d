"""The pure parsers of the Proofpoint APIs' JSON: documented samples, the spelling variants
real data uses, and everything a tolerant parser must survive (missing fields, empty
strings meaning unset, unknown values, bodies that are not the documented shape)."""

from __future__ import annotations

import datetime as dt

import pytest

from mailtrace.clients.proofpoint.records import (
    PayloadError,
    addresses,
    parse_domains,
    parse_endpoints,
    parse_quarantine,
    parse_siem,
    parse_smart_search,
    parse_time,
    parse_users,
)

# The documented Smart Search sample (reference/proofpoint.md §3), abbreviated.
SMART_SEARCH = {"result": [{
    "GUID": "9rLtu31xs8H24NF8KcRw-S6EihtLK-y_", "QID": "u8P6D24m919880", "SID": "25nnq08028",
    "Date": "2020-05-20 14:13:02 [UTC-0600]", "Sender": "root@user.example.com",
    "Recipients": "user@example.com", "Final_Action": "accept", "Final_Rule": "access.system",
    "Quarantine_Folder": "", "Quarantine_Rule": "", "Sendmail_Action": "", "Sendmail_To": "",
    "Sendmail_Stat": "", "Sendmail_To_Stat": "", "Sendmail_Errorcode": "",
    "SendmailRaw_Log": "", "Subject": "",
}]}


def test_smart_search_documented_sample_with_empty_strings_unset():
    [record], skipped = parse_smart_search(SMART_SEARCH)
    assert skipped == 0
    assert (record.guid, record.final_action, record.final_rule) == (
        "9rLtu31xs8H24NF8KcRw-S6EihtLK-y_", "accept", "access.system")
    assert record.recipients == ("user@example.com",)
    assert record.when == dt.datetime(2020, 5, 20, 20, 13, 2, tzinfo=dt.UTC)
    # "" means unset: not a folder, not a status, not a subject
    assert (record.quarantine_folder, record.sendmail_stat, record.subject) == (None, None, None)
    assert record.onward == "unknown" and record.reply == "" and record.relay is None
    assert "Quarantine_Folder" not in record.evidence()
    # shown in UTC as every report shows a time; the evidence keeps the API's own form
    assert record.date == "2020-05-20T20:13:02Z"
    assert record.evidence().as_json()["Date"] == "2020-05-20 14:13:02 [UTC-0600]"


def test_quarantine_times_are_shown_in_utc_and_kept_raw_in_evidence():
    [held], _ = parse_quarantine({"count": 1, "records": [
        {"guid": "q1", "folder": "Phish", "date": "2020-01-15 20:00:00", "rcpts": "a@x.example"}]})
    assert held.date == "2020-01-15T20:00:00Z"
    assert held.evidence().as_json()["date"] == "2020-01-15 20:00:00"
    [held], _ = parse_quarantine({"count": 1, "records": [
        {"guid": "q2", "folder": "Phish", "date": "not a date", "rcpts": "a@x.example"}]})
    assert held.date == "not a date" and held.when is None


def test_smart_search_lower_case_guid_missing_fields_and_junk_items():
    data = {"result": [{"guid": "abc", "Recipients": ["A@Example.com", "<b@example.com>"]},
                       "not an object", 42, None]}
    [record], skipped = parse_smart_search(data)
    assert (record.guid, record.recipients, skipped) == ("abc", ("a@example.com",
                                                                 "b@example.com"), 3)
    assert (record.final_action, record.date, record.when, record.action) == (
        None, None, None, "")


@pytest.mark.parametrize(("fields", "onward"), [
    ({"Sendmail_Stat": "Sent (Ok: queued as 4Zx)"}, "sent"),
    ({"Sendmail_Stat": "Deferred: Connection timed out"}, "deferred"),
    ({"Sendmail_Stat": "Service unavailable", "Sendmail_Errorcode": "550 5.4.1"}, "bounced"),
    ({"Sendmail_Stat": "User unknown", "SendmailRaw_Log": "relay=x, dsn=5.1.1"}, "bounced"),
    ({"Sendmail_Stat": "User unknown"}, "unknown"),
    ({"Sendmail_Errorcode": "451 4.4.0"}, "deferred"),
    ({"Sendmail_Stat": "something new"}, "unknown"),
    ({"Sendmail_Stat": 550}, "bounced"),  # a number where text was expected
])
def test_onward_delivery_from_sendmail_fields(fields, onward):
    [record], _ = parse_smart_search({"result": [fields]})
    assert record.onward == onward


def test_the_next_hops_reply_and_relay_come_from_the_raw_log():
    raw = ("to=<a@contoso.com>, mailer=esmtp, relay=contoso-com.mail.protection.outlook.com. "
           "[192.0.2.25], dsn=5.4.1, stat=Service unavailable; 550 5.4.1 [a@contoso.com]: "
           "Recipient address rejected: Access denied")
    [record], _ = parse_smart_search({"result": [{"SendmailRaw_Log": raw,
                                                  "Sendmail_Errorcode": "550 5.4.1"}]})
    assert record.relay == "contoso-com.mail.protection.outlook.com"
    assert record.reply.startswith("550 5.4.1 [a@contoso.com]: Recipient address rejected")


@pytest.mark.parametrize("body", [None, {}, {"result": None}, {"result": []}])
def test_no_content_and_empty_answers_are_no_records(body):
    assert parse_smart_search(body) == ([], 0)


@pytest.mark.parametrize("body", ["<html>login</html>", 17, {"error": "bad request"},
                                  {"result": "none"}])
def test_a_body_that_is_not_the_documented_shape_is_refused(body):
    with pytest.raises(PayloadError):
        parse_smart_search(body)


def test_quarantine_documented_sample_and_variants():
    data = {"count": 2, "records": [
        {"guid": "lR_SjEF1Llfn9gML8YZzpVPUukjXQcPO", "localguid": "6:6:239",
         "folder": "Quarantine", "date": "2020-01-15 20:00:00", "from": "john@doe.com",
         "rcpts": ["foo@bar.com"], "subject": "Loan", "spamscore": "100"},
        {"GUID": "X", "folder": "", "rcpts": "foo@bar.com, other@bar.com", "spamscore": 7},
    ]}
    first, second = parse_quarantine(data)[0]
    assert (first.guid, first.folder, first.sender, first.recipients) == (
        "lR_SjEF1Llfn9gML8YZzpVPUukjXQcPO", "Quarantine", "john@doe.com", ("foo@bar.com",))
    assert first.when == dt.datetime(2020, 1, 15, 20, 0, tzinfo=dt.UTC)  # UTC per the docs
    assert first.rule is None
    assert (second.guid, second.folder, second.spamscore) == ("X", None, "7")
    assert second.recipients == ("foo@bar.com", "other@bar.com")
    assert parse_quarantine(None) == ([], 0)


def test_essentials_domains_users_and_endpoints():
    domains, skipped = parse_domains({"domains": [
        {"name": "Fabrikam.com.", "is_active": True, "is_relay": "1",
         "destination": "fabrikam-com.mail.protection.outlook.com",
         "failovers": ["backup.fabrikam.com", {"host": "dr.fabrikam.com"}]},
        {"is_active": True},  # no name: skipped
        {"name": "old.fabrikam.com", "is_active": 0, "destination": ""},
    ]})
    assert skipped == 1
    assert [(d.name, d.active, d.relay, d.destination) for d in domains] == [
        ("fabrikam.com", True, True, "fabrikam-com.mail.protection.outlook.com"),
        ("old.fabrikam.com", False, None, None)]
    assert domains[0].failovers == ("backup.fabrikam.com", "dr.fabrikam.com")
    users, _ = parse_users({"users": [
        {"primary_email": "Bob@Fabrikam.com", "alias_emails": ["robert@fabrikam.com"],
         "is_active": "t", "type": "end_user"},
        {"uid": 3}]})
    assert [(u.primary_email, u.aliases, u.active) for u in users] == [
        ("bob@fabrikam.com", ("robert@fabrikam.com",), True)]
    assert parse_endpoints({"endpoints": ["https://us1.proofpointessentials.com/api/v1",
                                          {"region": "us3"}]}) == [
        "https://us1.proofpointessentials.com/api/v1", "us3"]
    assert parse_endpoints({"domain": "x.com", "base_url": "https://eu1.example/api/v1"}) == [
        "https://eu1.example/api/v1"]
    assert parse_endpoints(None) == [] and parse_endpoints({"endpoints": None}) == []


def test_tap_accepts_both_spellings_real_data_and_the_documentation_use():
    real = {"GUID": "g1", "cluster": "pharmtech_hosted", "recipient": ["a@contoso.com"],
            "fromAddress": ["info@example.com"], "messageTime": "2022-01-01T00:45:55.050Z",
            "threatsInfoMap": [{"threatID": "t1", "classification": "malware",
                                "threatType": "url", "campaignID": None}]}
    doc = {"guid": "g2", "clusterId": "c2", "toAddresses": ["a@contoso.com"],
           "fromAddress": "evil@example.com", "messageTime": "2022-01-01T01:00:00Z",
           "threatsInfoMap": [{"threatId": "t2", "classification": "MALWARE",
                               "threatType": "ATTACHMENT", "campaignId": None}, "junk"]}
    siem = parse_siem({"queryEndTime": "2022-01-01T01:00:00Z", "messagesBlocked": [real],
                       "messagesDelivered": [doc, "junk"], "clicksBlocked": []})
    [blocked], [delivered] = siem.blocked, siem.delivered
    assert (blocked.guid, blocked.cluster, blocked.from_address) == (
        "g1", "pharmtech_hosted", ("info@example.com",))
    assert (delivered.guid, delivered.cluster, delivered.from_address) == (
        "g2", "c2", ("evil@example.com",))
    assert [t.id for t in blocked.threats + delivered.threats] == ["t1", "t2"]
    assert delivered.recipients == ("a@contoso.com",)  # from toAddresses when no recipient
    assert delivered.classifications == "malware" and siem.skipped == 1


@pytest.mark.parametrize("body", [None, {}, {"queryEndTime": "2024-10-11T14:34:53Z",
                                              "messagesBlocked": []}])
def test_tap_no_content_and_empty_windows(body):
    siem = parse_siem(body)
    assert (siem.blocked, siem.delivered) == ([], [])


@pytest.mark.parametrize("body", ["rate limited", [1, 2], {"status": "error"},
                                  {"messagesBlocked": "none"}])
def test_tap_bodies_that_are_not_the_documented_shape(body):
    with pytest.raises(PayloadError):
        parse_siem(body)


@pytest.mark.parametrize(("text", "expected"), [
    ("2020-05-20 14:13:02 [UTC-0600]", dt.datetime(2020, 5, 20, 20, 13, 2, tzinfo=dt.UTC)),
    ("2020-05-20 14:13:02 [UTC+05:30]", dt.datetime(2020, 5, 20, 8, 43, 2, tzinfo=dt.UTC)),
    ("2022-01-01T00:45:55.050Z", dt.datetime(2022, 1, 1, 0, 45, 55, 50000, tzinfo=dt.UTC)),
    ("2024-03-07T08:34:49.929101-0800",
     dt.datetime(2024, 3, 7, 16, 34, 49, 929101, tzinfo=dt.UTC)),
    ("yesterday", None), ("", None), (None, None), (1700000000, None),
])
def test_timestamps_in_every_form_the_apis_use(text, expected):
    assert parse_time(text) == expected


def test_addresses_from_strings_and_lists():
    assert addresses("A@x.com; <b@x.com>,c@x.com  a@x.com") == ("a@x.com", "b@x.com", "c@x.com")
    assert addresses(["a@x.com", None, 3, ""]) == ("a@x.com",)
    assert addresses(None) == ()
