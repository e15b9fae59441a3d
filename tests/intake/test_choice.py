"""The explaining code: every code a bounce gives is found with its source, and the one
chosen follows RFC 3463 (class agreeing with the reply, a code that says why, the
remote's words over the reporter's summary, a quoted reply over its wrapper)."""

from __future__ import annotations

import pytest

from mailtrace.intake.choice import Code, candidates, choose, codes_in, reply_in
from mailtrace.intake.phrases import infer


@pytest.mark.parametrize(("text", "found"), [
    ("550-5.7.1 [192.0.2.1] blocked", [("5.7.1", "reply", "550")]),
    ("550 550 5.1.1 <a@b.example>... User Unknown (state 14).", [("5.1.1", "reply", "550")]),
    ("Sorry, no mailbox here by that name. (#5.1.1)", [("5.1.1", "diagnostic", None)]),
    ("5.1.0 - Unknown address error 550-'5.7.1 <a@b>... Access denied'",
     [("5.1.0", "diagnostic", None), ("5.7.1", "reply", "550")]),
    ("connect to 192.0.2.5 port 25: 5.4.1.2 timeout", []),
    ("Exim 4.92.3 on host 10.5.1.1, version v5.1.1", []),
    ("date 4.4.2013 and 2.6.0 ok", [("2.6.0", "diagnostic", None)]),
])
def test_codes_in_a_text(text, found):
    assert [(c.code, c.source, c.reply) for c in codes_in(text, "diagnostic")] == found


def _choice(*codes: Code, reply: str | None = None) -> str | None:
    chosen = choose(list(codes), reply)
    return chosen.code if chosen else None


def test_the_code_that_says_why_wins():
    status = Code("5.0.0", "status")
    assert _choice(status, Code("5.2.2", "reply", "552")) == "5.2.2"
    assert _choice(Code("4.4.7", "status"), Code("4.4.5", "reply", "452")) == "4.4.5"
    assert _choice(Code("5.1.0", "diagnostic"), Code("5.7.1", "reply", "550")) == "5.7.1"
    assert _choice(Code("5.1.1", "status"), Code("5.1.0", "reply", "550")) == "5.1.1"


def test_the_remote_reply_beats_a_contradicting_summary():
    assert _choice(Code("5.1.1", "status"), Code("5.7.1", "reply", "550")) == "5.7.1"


def test_a_code_of_another_class_than_the_reply_loses():
    assert _choice(Code("5.1.1", "status"), Code("4.2.2", "reply", "452")) == "4.2.2"
    assert _choice(Code("5.2.2", "status"), Code("4.0.0", "text"), reply="550") == "5.2.2"


def test_a_written_code_beats_an_inferred_one():
    assert _choice(Code("5.1.1", "phrase", inferred=True), Code("5.0.0", "status")) == "5.0.0"


def test_candidates_infer_from_words_or_fall_back_to_the_class():
    found = candidates(None, "550 Requested action not taken: mailbox full", "", "failed")
    assert [(c.code, c.source, c.inferred) for c in found] == [("5.2.2", "phrase", True)]
    found = candidates(None, "421 try later", "", "delayed")
    assert [(c.code, c.source) for c in found] == [("4.0.0", "class")]
    assert candidates(None, "", "", None) == []
    assert reply_in("host x[192.0.2.1] said: 550 5.1.1 no") == "550"


@pytest.mark.parametrize(("words", "code"), [
    ("User unknown", "5.1.1"), ("The recipient name is not recognized Unknown Recipient",
                                "5.1.1"),
    ("Host or domain name not found", "5.4.4"), ("mailbox is full", "5.2.2"),
    ("Message has exceeded maximum hop count", "5.4.6"), ("Relay access denied", "5.7.1"),
    ("Connection timed out", "5.4.1"), ("retry timeout exceeded", "5.4.7"),
    ("The user(s) account is disabled.", "5.2.1"), ("nothing known here", None),
])
def test_phrases(words, code):
    assert infer(words, "5") == code
