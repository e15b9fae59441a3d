"""Bounce readers, one small module per family, behind one interface (:mod:`.base`).

``read_report`` decodes the message once (:mod:`.mail`), sets aside a feedback report
(:mod:`.nonbounce`), then reads:

1. the machine-readable RFC 3464 report (:mod:`.rfc3464`), when there is one;
2. the human-readable text, with the first reader of :data:`ORDER` that finds recipients
   in it, those whose header test matches tried first;
3. RFC 3464 fields written as text, when there is no report part;
4. when nothing else did, and the message is not a complaint or an auto-reply in
   another form (:mod:`.nonbounce`), the generic text reader (:mod:`.generic`).

The report part and the text are merged recipient by recipient (:mod:`.merge`): the
report's fields first, the text's words where they add to them.
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import Message
from typing import TypeVar

from mailtrace.intake.dsn import DeliveryReport, NotABounce
from mailtrace.intake.readers import (
    amazonses,
    apachejames,
    dragonfly,
    exchange,
    exchange2003,
    exim,
    ezweb,
    fml,
    generic,
    gmail,
    googlegroups,
    imailserver,
    interscan,
    kddi,
    mailfoundry,
    messagingserver,
    mfilter,
    mimecast,
    nonbounce,
    notes,
    opensmtpd,
    postfix,
    qmail,
    rfc3464,
    sendmail,
    smail,
    v5sendmail,
    verizon,
    x2,
    x3,
    x6,
    zoho,
)
from mailtrace.intake.readers.base import Found, Reader
from mailtrace.intake.readers.mail import Mail, view
from mailtrace.intake.readers.merge import combine

#: The text readers, most specific first; a reader whose header test matches goes first.
ORDER: tuple[Reader, ...] = (
    amazonses.READER,
    exchange.READER,
    postfix.READER,
    sendmail.READER,
    v5sendmail.READER,
    zoho.READER,
    exim.READER,
    qmail.READER,
    googlegroups.READER,
    gmail.READER,
    x2.READER,
    x3.READER,
    dragonfly.READER,
    opensmtpd.READER,
    messagingserver.READER,
    exchange2003.READER,
    notes.READER,
    mimecast.READER,
    mailfoundry.READER,
    imailserver.READER,
    mfilter.READER,
    apachejames.READER,
    interscan.READER,
    verizon.READER,
    x6.READER,
    ezweb.READER,
    kddi.READER,
    fml.READER,
    smail.READER,
)
MAX_NESTING = 3
T = TypeVar("T")

NOT_A_BOUNCE = (
    "no delivery status found: this is not a bounce (expected an RFC 3464 report or the "
    "text of a non-delivery report)"
)


def _text(mail: Mail) -> tuple[str, Found] | None:
    claimed = [r for r in ORDER if _safely(r.claims, mail, False)]
    for reader in [*claimed, *(r for r in ORDER if r not in claimed)]:
        found = _safely(reader.read, mail, None)
        if found is not None and found.recipients:
            return reader.name, found
    return None


def _safely(step: Callable[[Mail], T], mail: Mail, otherwise: T) -> T:
    """A reader that trips on a malformed message has not recognized it: the next one
    is tried, and the command never ends in a traceback."""
    try:
        return step(mail)
    except (LookupError, ValueError, TypeError, AttributeError):
        return otherwise


def _attached(msg: Message) -> list[Message]:
    """The messages attached to this one (``message/rfc822`` parts), outermost first."""
    out = []
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822" and part is not msg:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                out.append(payload[0])
        if len(out) >= 5:
            break
    return out


def parse_report(msg: Message, raw: str) -> DeliveryReport:
    """The delivery status of every recipient a bounce reports on."""
    return read_report(msg, raw)


def read_report(msg: Message, raw: str, depth: int = 0) -> DeliveryReport:
    """The delivery status of every recipient a bounce reports on. A message that
    reports nothing itself but carries a bounce (a bounce forwarded as an attachment, a
    gateway's notice wrapping the bounce it received) is read through to that bounce."""
    try:
        return _read(msg, raw)
    except NotABounce as exc:
        if exc.kind != "unknown" or depth >= MAX_NESTING:
            raise
        for inner in _attached(msg):
            try:
                report = read_report(inner, inner.as_string(), depth + 1)
            except (NotABounce, LookupError, ValueError):
                continue
            report.notes.append("read from the bounce attached to this message")
            return report
        raise


def _read(msg: Message, raw: str) -> DeliveryReport:
    mail = view(msg, raw)
    nonbounce.check_feedback(mail)
    report = rfc3464.structured(mail)
    text = _text(mail)
    if report is None:
        report = rfc3464.loose(mail)
    if report is None and text is None:
        nonbounce.check_other(mail)
        found = generic.READER.read(mail)
        if found is not None and found.recipients:
            text = (generic.READER.name, found)
    if report is None and text is None:
        raise NotABounce(NOT_A_BOUNCE)
    return combine(mail, report, text)
