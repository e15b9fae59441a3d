"""The evidence corpus: every documented bounce and header format read to the expected
tier and tag (tests/data/evidence/expected.yaml), and the rules the corpus does not cover
checked on hand-built reports."""

from __future__ import annotations

import pytest

from mailtrace.core import catalog
from mailtrace.intake import choice, codes
from mailtrace.intake.dsn import DeliveryReport, RecipientStatus
from mailtrace.intake.headers import parse_auth_results
from mailtrace.intake.ndr import analyze
from mailtrace.intake.received import parse_received
from tests.support.evidence_util import CORPUS, EXPECTED, headers_of, hosts, ndr_of


@pytest.mark.parametrize("name", sorted(EXPECTED["ndr"]))
def test_ndr_corpus(name):
    expected = EXPECTED["ndr"][name]
    analysis = ndr_of((CORPUS / "ndr" / name).read_bytes(), hosts(expected["topology"]))
    assert analysis.report.format == expected["format"]
    got = [[o.recipient.address, o.status, o.tier, o.rule.tag] for o in analysis.outcomes]
    assert got == expected["recipients"]
    for o in analysis.outcomes:
        assert o.finding.tag == o.rule.tag
        assert o.finding.args["address"] == o.recipient.address
        assert o.finding.about == o.tier


@pytest.mark.parametrize("name", sorted(EXPECTED["headers"]))
def test_headers_corpus(name):
    expected = EXPECTED["headers"][name]
    analysis = headers_of((CORPUS / "headers" / name).read_bytes(), hosts(expected["topology"]))
    assert analysis.tiers == expected["tiers"]
    assert analysis.bypassed_gateway is expected["bypassed_gateway"]
    tags = {f.tag for f in analysis.findings}
    assert set(expected["tags"]) <= tags


def test_without_a_topology_no_tier_is_named_and_no_writer_trusted():
    analysis = ndr_of((CORPUS / "ndr" / "pod-dbeb-5.4.1.eml").read_bytes(), hosts(None))
    assert [(o.tier, o.rule.tag) for o in analysis.outcomes] == [
        (None, "NDR_EXO_RECIPIENT_NOT_IN_DIRECTORY")]
    h = headers_of((CORPUS / "headers" / "contoso-via-pod.eml").read_bytes(), hosts(None))
    assert set(h.tiers) == {None} and not h.bypassed_gateway
    assert not any(a.trusted for a in h.auth)


def test_a_bounce_from_the_senders_own_exo_does_not_name_our_tier_as_reporter():
    """The sender's tenant reported; its host matches the Exchange Online pattern, but it
    is not upstream of the gateway that replied."""
    report = DeliveryReport("rfc3464", None, [RecipientStatus(
        "alice@contoso.com", "failed", "5.0.0", "554 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.9",
        "SN4PR05MB1234.namprd05.prod.outlook.com", "mx0b-001234.pphosted.com")])
    o = analyze(report, hosts("contoso-proofpoint-exo.yaml")).outcomes[0]
    assert (o.tier, o.reporting_tier, o.remote_tier) == ("proofpoint", None, "proofpoint")


# Codes the corpus files do not carry: (status, diagnostic, remote MTA, tag, tier named).
RULES = [
    ("5.7.68", "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this "
     "organization from unauthorized sources", "contoso-com.mail.protection.outlook.com",
     "NDR_EXO_DIRECT_SEND_REJECTED", "exchange-online"),
    ("5.7.1", "554 5.7.1 <alice@contoso.com>: Relay access denied", "mx0a-001234.pphosted.com",
     "NDR_RELAY_ACCESS_DENIED", "proofpoint"),
    ("4.7.500", "451 4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77719)",
     None, "NDR_EXO_SENDER_IP_THROTTLED", "exchange-online"),
    ("5.1.1", "550 5.1.1 <alice@contoso.com>... User unknown", "mx0a-001234.pphosted.com",
     "NDR_RECIPIENT_UNKNOWN", "proofpoint"),
    ("5.7.509", "550 5.7.509 Access denied, sending domain tailspin.example does not pass "
     "DMARC verification", "contoso-com.mail.protection.outlook.com",
     "NDR_SENDER_AUTH_REJECTED", "exchange-online"),
    (None, "connect to mx0a-001234.pphosted.com[127.0.2.1]:25: Connection timed out",
     "mx0a-001234.pphosted.com", "NDR_NEXT_HOP_UNREACHABLE", "proofpoint"),
    ("4.4.1", "No answer from host", None, "NDR_NEXT_HOP_UNREACHABLE", None),
    ("5.4.6", "554 5.4.6 Hop count exceeded - possible mail loop", None, "NDR_MAIL_LOOP", None),
    ("5.7.642", "550 5.7.642 Access denied, banned sending IP [127.0.2.1]", None,
     "NDR_EXO_BANNED_SENDER_IP", "exchange-online"),
    ("5.7.650", "550 5.7.650 something else", None, "NDR_CODE_UNCATALOGUED", None),
]


@pytest.mark.parametrize(("status", "diagnostic", "remote", "tag", "tier"), RULES)
def test_code_rules(status, diagnostic, remote, tag, tier):
    report = DeliveryReport("rfc3464", None, [RecipientStatus(
        "alice@contoso.com", "failed", status, diagnostic, None, remote)])
    o = analyze(report, hosts("contoso-proofpoint-exo.yaml")).outcomes[0]
    assert (o.rule.tag, o.tier) == (tag, tier)


def test_an_expired_message_names_the_next_hop_when_no_remote_is_given():
    report = DeliveryReport("rfc3464", None, [RecipientStatus(
        "alice@contoso.com", "failed", "4.4.7", "Message expired", "mx0a-001234.pphosted.com",
        None)])
    o = analyze(report, hosts("contoso-proofpoint-exo.yaml")).outcomes[0]
    assert (o.rule.tag, o.reporting_tier, o.tier) == (
        "NDR_MESSAGE_EXPIRED", "proofpoint", "exchange-online")


def _explains(status, diagnostic, text="", action="failed"):
    found = choice.candidates(status, diagnostic, text, action)
    chosen = choice.choose(found, choice.reply_in(diagnostic))
    return chosen.code if chosen else None


def test_generic_status_gives_way_to_the_precise_code_in_the_diagnostic():
    assert _explains("5.0.0", "550 5.7.606 banned") == "5.7.606"
    # the remote's own reply (451) agrees with its code, not with the report's summary
    assert _explains("5.0.0", "451 4.4.7 expired") == "4.4.7"


def test_every_rule_tag_is_declared_with_its_arguments():
    for tag in codes.TAGS:
        fields = catalog.info(tag).message
        assert "{address}" in fields


def test_authentication_results_parsing():
    writer, results, details = parse_auth_results(
        "mx0a-001234.pphosted.com 1; spf=pass (ok) smtp.mailfrom=a.example;"
        " dkim=pass header.d=a.example; dkim=fail header.d=b.example;"
        " dmarc=fail action=quarantine header.from=a.example")
    assert writer == "mx0a-001234.pphosted.com"
    assert results == {"spf": "pass", "dkim": "pass,fail", "dmarc": "fail"}
    assert details["dmarc.action"] == "quarantine"
    assert parse_auth_results("spf=none; compauth=none reason=905")[0] is None
    assert parse_auth_results("none")[1] == {}


@pytest.mark.parametrize(("raw", "by", "ip", "problem"), [
    ("from a.example (a.example [192.0.2.1]) by b.example with ESMTP id X; "
     "Sun, 29 Nov 2026 09:00:00 +0000", "b.example", "192.0.2.1", None),
    ("from a.example (a.example [IPv6:2001:db8::1])\r\n\tby b.example; "
     "Sun, 29 Nov 2026 09:00:00 -0000", "b.example", "2001:db8::1", None),
    ("from a (((nested) comment) [192.0.2.1]) by c.example; 31 Feb 2026 99:99:99 +9999",
     "c.example", "192.0.2.1", "unreadable date"),
    ("by only.example", "only.example", None, "no date"),
    (";;;;", None, None, "no date"),
    ("from (unterminated comment by x.example; Sun, 29 Nov 2026 09:00:00 +0000", None, None,
     "no 'by' host"),
])
def test_received_parsing_tolerates_broken_fields(raw, by, ip, problem):
    hop = parse_received(raw, 1, 0)
    assert hop.by_host == by
    assert hop.from_ip == ip
    assert (hop.problem or "").startswith(problem or "") and (problem is None) == (
        hop.problem is None)


_GATEWAY_HOPS = (
    "Received: from mx0a-001234.pphosted.com (127.0.2.1) by\n"
    " BN1NAM02FT012.mail.protection.outlook.com; Sun, 29 Nov 2026 09:31:00 +0000\n"
    "{above}"
    "Received: from mail.tailspin.example ([192.0.2.25]) by mx0a-001234.pphosted.com\n"
    " (PPS) with ESMTPS id 49db0u26ge-1; Sun, 29 Nov 2026 09:30:00 +0000\n"
    "{below}"
    "Received: from laptop ([10.0.0.5]) by mail.tailspin.example (Postfix);\n"
    " Sun, 29 Nov 2026 09:29:59 +0000\n\n"
)
_GATEWAY_AR = "Authentication-Results: mx0a-001234.pphosted.com; spf=pass; dmarc=fail\n"


def test_a_declared_writer_is_trusted_only_above_its_tiers_entry():
    from tests.support.evidence_util import headers_of

    contoso = hosts("contoso-proofpoint-exo.yaml")
    above = headers_of(_GATEWAY_HOPS.format(above=_GATEWAY_AR, below="").encode(), contoso)
    assert [(a.writer, a.tier, a.trusted) for a in above.auth] == [
        ("mx0a-001234.pphosted.com", "proofpoint", True)]
    assert ("HDR_AUTH_FAILED", "dmarc=fail") in {
        (f.tag, f.args.get("failed")) for f in above.findings}
    forged = headers_of(_GATEWAY_HOPS.format(above="", below=_GATEWAY_AR).encode(), contoso)
    assert [(a.tier, a.trusted) for a in forged.auth] == [("proofpoint", False)]
    assert {f.tag for f in forged.findings} >= {"HDR_AUTH_UNTRUSTED", "HDR_GATEWAY_PASSED"}
    assert "HDR_AUTH_FAILED" not in {f.tag for f in forged.findings}


@pytest.mark.parametrize("name", sorted(EXPECTED["ndr"]))
def test_ndr_corpus_saved_with_windows_line_endings(name):
    expected = EXPECTED["ndr"][name]
    data = (CORPUS / "ndr" / name).read_bytes().replace(b"\n", b"\r\n")
    analysis = ndr_of(data, hosts(expected["topology"]))
    got = [[o.recipient.address, o.status, o.tier, o.rule.tag] for o in analysis.outcomes]
    assert got == expected["recipients"]


@pytest.mark.parametrize("name", sorted(EXPECTED["headers"]))
def test_headers_corpus_saved_with_windows_line_endings(name):
    expected = EXPECTED["headers"][name]
    data = (CORPUS / "headers" / name).read_bytes().replace(b"\n", b"\r\n")
    analysis = headers_of(data, hosts(expected["topology"]))
    assert analysis.tiers == expected["tiers"]
    assert analysis.bypassed_gateway is expected["bypassed_gateway"]


def test_every_advice_names_a_declared_triage_tag_with_a_remediation():
    from mailtrace.intake import advice

    for tag in advice.triage_tags():
        assert catalog.info(tag).remediation is not None, tag
    for tag in advice.ADVICE:
        assert tag in codes.TAGS


def test_exchange_onlines_own_verdict_is_read_by_who_wrote_it_not_by_position():
    """In a delivered message the tenant's block sits below the original headers; the
    verdict the admin wanted — SCL 5, SFV SPM, Junk Email (dest:J) — is read, and the
    copy the sender put among its own headers is flagged, with the reason."""
    analysis = headers_of((CORPUS / "headers" / "contoso-exo-real-layout-junked.eml")
                          .read_bytes(), hosts("contoso-proofpoint-exo.yaml"))
    junked = next(f for f in analysis.findings if f.tag == "HDR_EXO_JUNKED")
    assert (junked.args["scl"], junked.args["sfv"], junked.args["folder"], junked.about) == (
        "5", "SPM", "Junk Email", "exchange-online")
    [untrusted] = [f for f in analysis.findings if f.tag == "HDR_HEADER_UNTRUSTED"]
    assert "above the tenant's own block" in untrusted.args["why"]
    assert analysis.exchange_online is not None and analysis.exchange_online["DEST"] == "J"


def test_a_tenant_verdict_of_another_tenant_or_off_the_chain_is_not_trusted():
    from mailtrace.intake.tiers import HostMap

    text = (CORPUS / "headers" / "contoso-exo-real-layout-junked.eml").read_text()
    topology = hosts("contoso-proofpoint-exo.yaml").topology
    assert topology is not None
    exo = topology.tiers["exchange-online"]
    graph = exo.graph.model_copy(update={"tenant_id": "11111111-2222-3333-4444-555555555555"})
    other = topology.model_copy(update={"tiers": {**topology.tiers, "exchange-online":
                                                  exo.model_copy(update={"graph": graph})}})
    analysis = headers_of(text.encode(), HostMap(other))
    whys = [f.args["why"] for f in analysis.findings if f.tag == "HDR_HEADER_UNTRUSTED"]
    assert any("another tenant's verdict" in w for w in whys)
    assert "HDR_EXO_JUNKED" not in {f.tag for f in analysis.findings}
    # a message whose Received chain never reaches the tenant: its verdict is not the tenant's
    fields = text.split("\nReceived: ")
    kept = [f for f in fields[1:] if "outlook.com" not in f.split(";")[0]]
    analysis = headers_of("\nReceived: ".join([fields[0].split("Received: ", 1)[0] +
                                               "X-Note: top", *kept]).encode(),
                          hosts("contoso-proofpoint-exo.yaml"))
    assert "exchange-online" not in analysis.tiers
    whys = [f.args["why"] for f in analysis.findings if f.tag == "HDR_HEADER_UNTRUSTED"]
    assert any("does not reach exchange-online" in w for w in whys)


def test_a_long_delay_next_to_a_negative_one_is_the_clock_of_the_host_between():
    """Hop 5 is stamped 600 s after hop 3 and hop 6 539 s before it: hop 5's host clock
    is ahead, so no tier is blamed for a slow hop."""
    analysis = headers_of((CORPUS / "headers" / "contoso-pod-spam-broken.eml").read_bytes(),
                          hosts("contoso-proofpoint-exo.yaml"))
    tags = [f.tag for f in analysis.findings]
    assert "HDR_HOP_SLOW" not in tags and "HDR_CLOCK_SKEW" not in tags
    [skew] = [f for f in analysis.findings if f.tag == "HDR_HOST_CLOCK_SKEW"]
    assert (skew.args["index"], skew.args["by"], skew.args["direction"], skew.args["skew_s"],
            skew.args["transit_s"], skew.about) == (
        5, "bn1nam02ft012.mail.protection.outlook.com", "ahead of", 539.0, 61.0, None)


def _chain(*stamps: tuple[str, str]) -> bytes:
    """A header set whose Received fields (newest first) are stamped by these hosts at
    these times, the first pair the oldest hop."""
    fields = [f"Received: from {'client.example' if i == 0 else stamps[i - 1][0]} "
              f"([192.0.2.{i + 1}]) by {host} with ESMTP id q{i}; {when}\n"
              for i, (host, when) in enumerate(stamps)]
    return ("".join(reversed(fields)) + "From: a@tailspin.example\nTo: alice@contoso.com\n"
            "Subject: t\n\n").encode()


def test_a_host_whose_clock_is_behind_is_named_and_a_lone_negative_delay_stays_a_skew():
    behind = _chain(("mail.tailspin.example", "Sun, 29 Nov 2026 09:30:00 +0000"),
                    ("relay.tailspin.example", "Sun, 29 Nov 2026 09:20:00 +0000"),
                    ("mx.tailspin.example", "Sun, 29 Nov 2026 09:31:00 +0000"))
    analysis = headers_of(behind, hosts("contoso-proofpoint-exo.yaml"))
    found = {f.tag: f.args for f in analysis.findings}
    assert "HDR_HOP_SLOW" not in found
    assert (found["HDR_HOST_CLOCK_SKEW"]["by"], found["HDR_HOST_CLOCK_SKEW"]["direction"],
            found["HDR_HOST_CLOCK_SKEW"]["skew_s"]) == ("relay.tailspin.example", "behind",
                                                        600.0)
    lone = _chain(("mail.tailspin.example", "Sun, 29 Nov 2026 09:30:00 +0000"),
                  ("relay.tailspin.example", "Sun, 29 Nov 2026 09:29:00 +0000"),
                  ("mx.tailspin.example", "Sun, 29 Nov 2026 09:29:30 +0000"))
    found = {f.tag: f.args for f in headers_of(lone, hosts("contoso-proofpoint-exo.yaml"))
             .findings}
    assert found["HDR_CLOCK_SKEW"]["by"] == "relay.tailspin.example"
    assert "HDR_HOST_CLOCK_SKEW" not in found
    slow = _chain(("mail.tailspin.example", "Sun, 29 Nov 2026 09:30:00 +0000"),
                  ("relay.tailspin.example", "Sun, 29 Nov 2026 09:45:00 +0000"),
                  ("mx.tailspin.example", "Sun, 29 Nov 2026 09:45:30 +0000"))
    found = {f.tag: f.args for f in headers_of(slow, hosts("contoso-proofpoint-exo.yaml"))
             .findings}
    assert found["HDR_HOP_SLOW"]["by"] == "relay.tailspin.example"
    assert "HDR_HOST_CLOCK_SKEW" not in found


@pytest.mark.parametrize(("delivery", "why"), [
    ("ucf:0;jmr:0;auth:0;dest:I;OFR:TrustedSendersList;ENG:(910001)", "OFR:TrustedSendersList"),
    ("ucf:0;jmr:0;auth:0;dest:I;ENG:(910001)", "Safe Senders"),
])
def test_a_spam_verdict_the_mailbox_delivered_to_the_inbox_is_not_junked(delivery, why):
    text = (CORPUS / "headers" / "contoso-exo-real-layout-junked.eml").read_text()
    original = "ucf:0;jmr:0;auth:0;dest:J;ENG:(910001)(944506478)(944626604)(920097)(930097)" \
        "(3100021);"
    assert original in text
    analysis = headers_of(text.replace(original, delivery).encode(),
                          hosts("contoso-proofpoint-exo.yaml"))
    found = {f.tag: f for f in analysis.findings}
    assert "HDR_EXO_JUNKED" not in found
    inbox = found["HDR_EXO_INBOX_OVERRIDE"]
    assert (inbox.args["scl"], inbox.args["sfv"], inbox.args["folder"], inbox.about) == (
        "5", "SPM", "the inbox", "exchange-online")
    assert why in inbox.args["why"]


def test_an_expired_message_is_in_the_reporting_servers_queue_not_the_next_hops():
    """RFC 3464: the Reporting-MTA (§2.2.2) queued the message, the Remote-MTA (§2.3.5)
    is the next hop it could not hand it to."""
    analysis = ndr_of((CORPUS / "ndr" / "pod-expired-4.4.7.eml").read_bytes(),
                      hosts("contoso-proofpoint-exo.yaml"))
    [o] = analysis.outcomes
    assert o.finding.tag == "NDR_MESSAGE_EXPIRED"
    assert (o.finding.args["reporter"], o.finding.args["next_hop"], o.reporting_tier) == (
        "mx0b-001234.pphosted.com", "contoso-com.mail.protection.outlook.com", "proofpoint")
