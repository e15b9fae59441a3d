"""Bad input to ndr and headers: any bytes give a result or a clear EvidenceError, never
another exception; big input is refused with bounded memory."""

from __future__ import annotations

import io
import sys
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtrace.intake import message as intake
from mailtrace.intake.message import EvidenceError
from tests.support.evidence_util import CORPUS, headers_of, hosts, ndr_of

CONTOSO = hosts("contoso-proofpoint-exo.yaml")
REAL = CORPUS.parent / "bounces" / "samples"
SAMPLES = [p.read_bytes() for p in sorted((CORPUS / "ndr").iterdir())] + [
    p.read_bytes() for p in sorted((CORPUS / "headers").iterdir())] + [
    (REAL / f"{name}.eml").read_bytes() for name in (
        "lhost-exim-05", "lhost-qmail-17", "lhost-gmail-01", "lhost-exchange2003-07",
        "lhost-domino-01", "lhost-amazonses-09", "lhost-dragonfly-01", "lhost-opensmtpd-01",
        "lhost-sendmail-01", "rhost-aol-03", "lhost-ezweb-07", "lhost-x3-01", "arf-01",
        "rfc3834-01", "lhost-v5sendmail-05", "lhost-imailserver-01")]


def _either(run, data: bytes) -> None:
    try:
        run(data, CONTOSO)
    except EvidenceError as exc:
        assert str(exc) and "\n" not in str(exc)


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    """A corpus file with bytes inserted, deleted or replaced at random places."""
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.binary(min_size=1, max_size=40))
        if action == "insert":
            data[at:at] = chunk
        elif action == "delete":
            del data[at:at + len(chunk)]
        else:
            data[at:at + len(chunk)] = chunk
    return bytes(data)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=4000))
def test_any_bytes_ndr(data):
    _either(ndr_of, data)


@FUZZ
@given(st.binary(max_size=4000))
def test_any_bytes_headers(data):
    _either(headers_of, data)


@FUZZ
@given(mangled())
def test_mangled_corpus_ndr(data):
    _either(ndr_of, data)


@FUZZ
@given(mangled())
def test_mangled_corpus_headers(data):
    _either(headers_of, data)


@FUZZ
@given(st.lists(st.sampled_from(
    ["Received:", " from ", " by ", " with ", " id ", ";", "(", ")", "[", "]", "<", ">", "@",
     ".", "\t", "\n", "\r", "=", "-", ":", "9", "2026", "Nov", "+0000", "a.example",
     "\n ", "\r\n\t", "mx0a-001234.pphosted.com", "x.mail.protection.outlook.com",
     "Authentication-Results: ", "spf=", "X-Forefront-Antispam-Report: ", "SCL:"]),
    max_size=150).map("".join))
def test_header_like_text(text):
    _either(headers_of, ("Received: " + text).encode())


@pytest.mark.parametrize(("data", "needle"), [
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "Outlook .msg"),
    (b"PK\x03\x04" + b"\x00" * 50, "zip"),
    (bytes(range(256)) * 4, "binary"),
    (b"", "empty"),
    (b"   \r\n\r\n  ", "empty"),
])
def test_binary_and_empty_input_is_refused(data, needle):
    with pytest.raises(EvidenceError, match=needle):
        intake.to_text(data)


def test_not_an_email_is_refused():
    with pytest.raises(EvidenceError, match="no delivery status"):
        ndr_of(b"Dear team,\nthe quarterly numbers are attached.\n", CONTOSO)
    with pytest.raises(EvidenceError, match="no header"):
        headers_of(b"Dear team,\nthe quarterly numbers are attached.\n", CONTOSO)


def test_utf16_with_bom_is_read():
    text = (CORPUS / "ndr" / "exo-5.1.10-pasted.txt").read_text()
    analysis = ndr_of(b"\xff\xfe" + text.encode("utf-16-le"), CONTOSO)
    assert [o.rule.tag for o in analysis.outcomes] == ["NDR_EXO_RECIPIENT_NOT_FOUND"]


def _big(tmp_path, size: int, content: bytes = b"x") -> str:
    path = tmp_path / "big.eml"
    with open(path, "wb") as fh:
        fh.write(content)
        fh.truncate(size)  # sparse: no 20 MB written to disk
    return str(path)


def test_a_20_mb_bounce_is_refused_from_its_size_before_reading(tmp_path, monkeypatch):
    path = _big(tmp_path, 20 * 1024 * 1024)
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    with pytest.raises(EvidenceError, match="more than the 10 MiB"):
        intake.read_bytes(path)
    assert not opened


def test_headers_of_a_20_mb_message_read_only_the_header_section(tmp_path):
    header = (CORPUS / "headers" / "contoso-via-pod.eml").read_bytes()
    path = _big(tmp_path, 20 * 1024 * 1024, header)
    tracemalloc.start()
    try:
        data = intake.read_bytes(path, header_only=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert data.endswith(b"\n\n") and len(data) < len(header)
    assert peak < 2 * 1024 * 1024


def test_a_20_mb_header_section_is_refused_with_bounded_memory(tmp_path):
    path = _big(tmp_path, 20 * 1024 * 1024, b"Received: from a by b; x\n")
    tracemalloc.start()
    try:
        with pytest.raises(EvidenceError, match="no end of the header section"):
            intake.read_bytes(path, header_only=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024


def test_a_20_mb_stream_on_stdin_is_refused_reading_at_most_the_cap(monkeypatch):
    class Endless(io.RawIOBase):
        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            n = min(len(buffer), 20 * 1024 * 1024 - self.served)
            buffer[:n] = b"y" * n
            self.served += n
            return n

    stream = Endless()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(stream)))
    with pytest.raises(EvidenceError, match="more than 10 MiB"):
        intake.read_bytes("-")
    assert stream.served <= intake.MAX_MESSAGE_BYTES + 64 * 1024


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(EvidenceError, match="no such file"):
        intake.read_bytes(str(tmp_path / "nope.eml"))
    with pytest.raises(EvidenceError, match="is a directory"):
        intake.read_bytes(str(tmp_path))


def test_hostile_nesting_is_bounded():
    parts = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n'
                    for i in range(200))
    data = ("From: x@y.example\n" + parts + "Content-Type: message/delivery-status\n\n"
            "Final-Recipient: rfc822;a@contoso.com\nAction: failed\nStatus: 5.1.1\n").encode()
    _either(ndr_of, data)


def test_untrusted_vendor_header_when_its_tier_is_not_in_the_chain():
    data = (b"X-Forefront-Antispam-Report: CIP:192.0.2.1;SCL:9;SFV:SPM;CAT:SPM;\n"
            b"Received: from a.example ([192.0.2.1]) by mx0a-001234.pphosted.com; "
            b"Sun, 29 Nov 2026 09:00:00 +0000\n\n")
    analysis = headers_of(data, CONTOSO)
    assert [(f.tag, f.args["header"]) for f in analysis.findings
            if f.tag == "HDR_HEADER_UNTRUSTED"] == [
        ("HDR_HEADER_UNTRUSTED", "X-Forefront-Antispam-Report")]
    assert "HDR_EXO_JUNKED" not in {f.tag for f in analysis.findings}


HOSTILE = [
    # Unclosed tags and tag-like runs in an HTML part: tag stripping must stay linear.
    b"From: a@b.example\nContent-Type: text/html\n\n<p>Diagnostic information for "
    b"administrators</p>" + b"<" * 300_000,
    b"From: a@b.example\nContent-Type: text/html\n\n" + b"<br " * 100_000,
    # A huge From without an address, and a huge address-like token.
    b"From: " + b"a" * 300_000 + b"\n\nThis is the mail system at host x.example.\n",
    b"From: " + b"a." * 150_000 + b"@\n\nbody\n",
    # Postfix and Sendmail texts with pathological recipient paragraphs.
    b"This is the mail system at host x.example.\n\n<a@b.example>: host y[1] said: "
    + b"(in reply to " * 30_000 + b"\n",
    b"----- The following addresses had permanent fatal errors -----\n<a@b.example>\n"
    + b"(reason: " * 40_000 + b"\n",
    # Exchange Online text with an endless "returned" line.
    b"Diagnostic information for administrators:\n\na@b.example\n"
    + b"Server at " * 40_000 + b"returned '550 5.1.1 x'\n",
    # Unclosed <style> elements; an HTML part that is only line breaks (every anchored
    # pattern then faces 300 000 blank lines).
    b"From: postmaster@b.example\nContent-Type: text/html\n\n" + b"<style>" * 100_000,
    b"From: postmaster@b.example\nContent-Type: text/html\n\n" + b"<p>" * 300_000,
    # Indented delimiters by the hundred thousand; an mbox of a thousand empty messages.
    b'From: postmaster@b.example\nContent-Type: multipart/report; boundary="b"\n\n'
    + b"  --b\n" * 150_000,
    b"".join(b"From a@b.example Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n"
             for _ in range(1000)),
    # A text bounce listing a hundred thousand addresses, and RFC 3464 fields as text.
    b"From: MAILER-DAEMON@b.example\nSubject: Mail delivery failed\n\nThis message was "
    b"created automatically by mail delivery software.\n"
    + b"".join(b"  user%d@example.com\n" % i for i in range(100_000)),
    b"From: MAILER-DAEMON@b.example\n\n"
    + b"Final-Recipient: rfc822; a@b.example\nAction: failed\nStatus: 5.1.1\n" * 20_000,
]


@pytest.mark.parametrize("data", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_bounces_finish(data):
    """Each would take minutes if a parser were quadratic in its input."""
    _either(ndr_of, data)


def test_a_long_list_of_recipients_is_capped():
    from tests.support.evidence_util import hosts

    data = (b"From: MAILER-DAEMON@b.example\nSubject: Mail delivery failed\n\nThis message "
            b"was created automatically by mail delivery software.\n"
            + b"".join(b"  user%d@example.com\n" % i for i in range(1000)))
    analysis = ndr_of(data, hosts(None))
    assert len(analysis.outcomes) == 500
    assert any("first 500" in n for n in analysis.report.notes)


@pytest.mark.parametrize("data", [
    b"Authentication-Results: " + b"a" * 500_000 + b"\nReceived: by x.example; bad\n\n",
    b"X-Proofpoint-Spam-Details: " + b"rule" * 200_000 + b"\nReceived: by x; y\n\n",
    b"Received: from " + b"(" * 200_000 + b"\n\n",
    b"Received: from a (" + b"[1:" * 100_000 + b") by b.example; x\n\n",
], ids=range(4))
def test_hostile_headers_finish(data):
    _either(headers_of, data)
