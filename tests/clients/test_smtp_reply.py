"""SMTP reply parsing (RFC 5321 §4.2) and enhanced status codes (RFC 3463)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtrace.clients.smtp_reply import Reply, ReplyError, decode, parse


def test_single_line_with_enhanced_code():
    reply = parse("550 5.1.1 <bob@contoso.com>: Recipient address rejected: User unknown")
    assert (reply.code, reply.enhanced) == (550, "5.1.1")
    assert reply.permanent and not reply.transient and not reply.positive


def test_multi_line_keeps_every_line_and_the_code():
    reply = parse("250-mx.contoso.com Hello\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME")
    assert reply.code == 250 and reply.positive
    assert reply.lines == ("mx.contoso.com Hello", "PIPELINING", "STARTTLS", "8BITMIME")


def test_bare_code_and_no_enhanced_code():
    assert parse("250").lines == ("",)
    assert parse("220 mx ESMTP").enhanced is None
    # an enhanced code must agree with the reply's class (RFC 3463 §2)
    assert parse("250 5.1.1 odd").enhanced is None
    assert parse("451 4.7.1 Greylisted").enhanced == "4.7.1"


@pytest.mark.parametrize(("text", "why"), [
    ("hello there", "not an SMTP reply"),
    ("250-first\r\n251 second", "different codes"),
    ("250-only a continuation", "continuation"),
    ("250 done\r\n250 again", "continues after its last line"),
    ("", "empty"),
    ("099 too low", "not an SMTP reply"),
])
def test_malformed_replies_are_refused_with_the_reason(text, why):
    with pytest.raises(ReplyError, match=why):
        parse(text)


def test_too_many_lines_are_refused():
    with pytest.raises(ReplyError, match="more than"):
        parse("\r\n".join(["250-x"] * 200 + ["250 x"]))


def test_bytes_that_are_not_ascii_stay_visible():
    assert decode(b"220 caf\xc3\xa9 ready\r\n") == "220 caf\\xc3\\xa9 ready"


@given(st.text(max_size=300))
def test_any_text_gives_a_reply_or_a_reply_error(text):
    try:
        reply = parse(text)
    except ReplyError:
        return
    assert isinstance(reply, Reply) and 200 <= reply.code <= 599
