"""The shapes real bounces take, read from the shared corpus (tests/data/bounces) and from
hand-made variants: what is recognized, which recipients, which code explains each one
and where every code came from."""

from __future__ import annotations

import pytest

from mailtrace.intake import message as intake
from mailtrace.intake import ndr, readers
from mailtrace.intake.dsn import NotABounce
from tests.support.evidence_util import ROOT, hosts

SAMPLES = ROOT / "tests" / "data" / "bounces" / "samples"


def read(data: bytes | str) -> list[ndr.NdrAnalysis]:
    raw = data if isinstance(data, bytes) else data.encode()
    text = intake.to_text(raw)
    return [ndr.analyze(readers.parse_report(intake.parse_message(t), t), hosts(None))
            for t in intake.split_mbox(text)]


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.eml").read_bytes()


def outcomes(data: bytes | str) -> list[tuple[str | None, str | None]]:
    return [(o.recipient.address, o.status) for a in read(data) for o in a.outcomes]


def codes(data: bytes | str) -> list[list[tuple[str, str]]]:
    return [[(c.code, c.source) for c in o.codes] for a in read(data) for o in a.outcomes]


@pytest.mark.parametrize(("name", "fmt"), [
    ("lhost-exim-05", "exim"), ("lhost-qmail-17", "qmail"), ("lhost-gmail-01", "gmail"),
    ("lhost-exchange2003-07", "exchange2003"), ("lhost-domino-01", "notes"),
    ("lhost-notes-03", "notes"), ("lhost-amazonses-09", "amazonses"),
    ("lhost-dragonfly-05", "dragonfly"), ("lhost-opensmtpd-01", "opensmtpd"),
    ("lhost-x3-01", "x3"), ("lhost-zoho-01", "zoho"), ("lhost-mimecast-01", "mimecast"),
    ("lhost-v5sendmail-05", "v5sendmail"), ("lhost-ezweb-07", "ezweb"),
    ("lhost-kddi-01", "kddi"), ("lhost-googlegroups-01", "googlegroups"),
    ("lhost-apachejames-01", "apachejames"), ("lhost-verizon-01", "verizon"),
    ("lhost-trendmicro-01", "interscan"), ("lhost-imailserver-01", "imailserver"),
    ("lhost-mfilter-01", "mfilter"), ("lhost-mailfoundry-01", "mailfoundry"),
    ("lhost-x6-01", "x6"), ("lhost-x2-07", "x2"), ("lhost-fml-03", "fml"),
    ("lhost-messagingserver-01", "messagingserver"),
    ("rfc3464-37", "smail"), ("lhost-outlook-01", "smtpsvc"), ("lhost-office365-01",
                                                                "exchange-online"),
])
def test_each_family_is_read_by_its_reader(name, fmt):
    (analysis,) = read(sample(name))
    assert analysis.report.format == fmt
    assert analysis.outcomes and all(o.recipient.address for o in analysis.outcomes)


def test_a_specific_remote_reply_beats_the_reports_contradicting_status():
    """Sendmail's Status says 5.1.1; the remote server said 550 5.7.1."""
    assert outcomes(sample("lhost-sendmail-33")) == [("mailboxfull@neko.example.org", "5.7.1")]
    assert ("5.1.1", "status") in codes(sample("lhost-sendmail-33"))[0]


def test_a_wrapper_code_yields_to_the_reply_it_quotes():
    """Amazon SES: "5.1.0 - Unknown address error 550-'5.7.1 ... Access denied'"."""
    (found,) = codes(sample("lhost-amazonses-01"))
    assert found[1:3] == [("5.1.0", "diagnostic"), ("5.7.1", "reply")]
    assert outcomes(sample("lhost-amazonses-01"))[0][1] == "5.7.1"


def test_a_generic_status_yields_to_the_specific_code_of_the_text():
    """OpenSMTPD writes Status: 5.0.0 and the reply only in its text part."""
    assert outcomes(sample("lhost-opensmtpd-11"))[0][1] == "5.7.26"


def test_expired_keeps_the_last_attempts_code_and_shows_both():
    (found,) = codes(sample("lhost-sendmail-39"))
    assert ("4.4.7", "status") in found and outcomes(sample("lhost-sendmail-39"))[0][1] == "4.4.5"


def test_a_bounce_without_any_code_gets_one_inferred_from_its_words():
    (analysis,) = read(sample("lhost-exchange2003-01"))
    (o,) = analysis.outcomes
    assert (o.status, o.inferred, o.rule.tag) == ("5.1.1", True, "NDR_RECIPIENT_UNKNOWN")
    assert [(c.code, c.source, c.inferred) for c in o.codes] == [("5.1.1", "phrase", True)]


def test_records_without_blank_lines_are_all_read():
    """AOL runs the per-message block and two recipient blocks together."""
    assert outcomes(sample("rhost-aol-03")) == [
        ("sabineko@example.jp", "5.2.2"), ("mikeneko@example.jp", "5.1.1")]


def test_rfc3464_fields_written_in_a_text_part_are_read():
    (analysis,) = read(sample("lhost-amazonworkmail-03"))
    assert [(o.recipient.address, o.status, o.recipient.action) for o in analysis.outcomes] == [
        ("kuroneko@example.org", "5.3.5", "failed")]


def test_indented_boundaries_still_split_the_report():
    data = sample("rhost-apple-05").decode()
    boundary = data.split('boundary="', 1)[1].split('"', 1)[0]
    indented = data.replace(f"\n--{boundary}", f"\n   --{boundary}")
    assert indented != data
    assert outcomes(indented) == outcomes(data) and outcomes(data)


@pytest.mark.parametrize("ending", ["\r\n", "\r"])
def test_line_endings_do_not_matter(ending):
    for name in ("lhost-postfix-01", "lhost-exim-05", "lhost-qmail-17", "rhost-aol-03"):
        data = sample(name).replace(b"\r\n", b"\n")
        assert outcomes(data.replace(b"\n", ending.encode())) == outcomes(data), name


def test_an_mbox_holds_one_report_per_message():
    assert outcomes(sample("rhost-cox-01")) == [("recipient55@cox.net", "5.1.0")] * 2


def test_a_bounce_attached_to_another_message_is_read_through():
    """A gateway's notice that carries the bounce it received, as forwarded NDRs do."""
    (analysis,) = read(sample("lhost-x5-01"))
    assert [(o.recipient.address, o.status) for o in analysis.outcomes] == [
        ("kijitora@neko.example.org", "5.1.1")]
    assert any("attached" in n for n in analysis.report.notes)


@pytest.mark.parametrize(("name", "kind"), [
    ("arf-01", "feedback"), ("arf-23", "feedback"), ("lhost-amazonses-11", "feedback"),
    ("rfc3834-01", "auto-reply"), ("rfc3834-03", "auto-reply"), ("rfc3834-05", "auto-reply"),
])
def test_complaints_and_auto_replies_are_named_not_read_as_bounces(name, kind):
    with pytest.raises(NotABounce) as caught:
        read(sample(name))
    assert caught.value.kind == kind


def test_a_read_receipt_is_named_not_read_as_a_bounce():
    receipt = (
        "From: bob@example.com\nSubject: Read: hello\nMIME-Version: 1.0\nContent-Type: "
        'multipart/report; report-type=disposition-notification; boundary="r"\n\n--r\n'
        "Content-Type: text/plain\n\nYour message was displayed.\n\n--r\nContent-Type: "
        "message/disposition-notification\n\nFinal-Recipient: rfc822; bob@example.com\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\n\n--r--\n")
    with pytest.raises(NotABounce) as caught:
        read(receipt)
    assert caught.value.kind == "receipt"


def test_a_recipient_reported_twice_is_one_record_and_the_counts_are_compared():
    bounce = (
        "From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered Mail\n"
        "X-Failed-Recipients: a@example.com, b@example.com, c@example.com\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="x"\n\n'
        "--x\nContent-Type: text/plain\n\nThis is the mail system at host mx.example.net.\n\n"
        "<a@example.com>: host mx.example.com[192.0.2.1] said: 550 5.1.1 unknown (in reply "
        "to RCPT TO command)\n\n<d@example.com>: host mx.example.com[192.0.2.1] said: 552 "
        "5.2.2 full (in reply to RCPT TO command)\n\n"
        "--x\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        "Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 5.1.1\n\n"
        "Final-Recipient: rfc822; A@example.com\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 unknown\n\n"
        "Final-Recipient: rfc822; b@example.com\nAction: failed\nStatus: 5.7.1\n\n--x--\n")
    (analysis,) = read(bounce)
    assert [(o.recipient.address, o.status) for o in analysis.outcomes] == [
        ("a@example.com", "5.1.1"), ("b@example.com", "5.7.1")]
    notes = " | ".join(analysis.report.notes)
    assert "more than once" in notes
    assert "d@example.com only in the text" in notes
    assert "c@example.com not in the report" in notes


def test_a_text_with_addresses_but_no_failure_is_not_a_bounce():
    with pytest.raises(NotABounce):
        read("From: alice@example.com\nSubject: lunch\n\nbob@example.com\ncarol@example.com\n")
