"""Exchange 2000/2003 and its Internet Mail Service: "Your message ... did not reach the
following recipient(s):", then per recipient ``address on <date>`` (or ``Display Name
(SMTP=address) on <date>``) and the reason
indented under it, such as "The recipient name is not recognized" and the MSEXCH code
line ``MSEXCH:IMS:...:0 (000C05A6) Unknown Recipient``.
"""

from __future__ import annotations

import re

from mailtrace.intake.readers.base import Found, Reader
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, blocks, statuses

_START = re.compile(r"did not reach the following recipient", re.I)
_ANCHOR = re.compile(rf"^[ \t]*<?({ADDR})>?(?:\s+on\s+.*|\s*)$")
_INLINE = re.compile(rf"did not reach the following recipient(?:\(s\)|s)?:\s*<?({ADDR})", re.I)


def _claims(mail: Mail) -> bool:
    mailer = mail.header("x-mailer").lower()
    return ("internet mail service" in mailer or "internet mail connector" in mailer
            or mail.header("x-mimeole").startswith("Produced By Microsoft Exchange")
            or bool(mail.header("x-ms-embedded-report"))
            or mail.subject.lower().startswith("undeliverable"))


def _anchor(line: str) -> str | None:
    found = _ANCHOR.match(line) or _INLINE.search(line)
    return found.group(1) if found else None


def _read(mail: Mail) -> Found | None:
    if not _START.search(mail.notification):
        return None
    at = next(i for i, line in enumerate(mail.lines) if _START.search(line))
    found = blocks(mail.lines[at:], _anchor)
    for b in found:  # the rest of the anchor line is the date: not a reason
        b.lines = [line for line in b.lines if not re.match(r"on\s+\S", line)]
    return Found(statuses(found, "failed")) if found else None


READER = Reader("exchange2003", _claims, _read)
