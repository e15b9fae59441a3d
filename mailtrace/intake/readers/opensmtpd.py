"""OpenSMTPD: "This is the MAILER-DAEMON, please DO NOT REPLY to this e-mail." and "An
error has occurred while attempting to deliver a message for the following list of
recipients:", then one line per recipient, ``address: reason`` (smtpd's ``bounce.c``),
before "Below is a copy of the original message:".
"""

from __future__ import annotations

import re

from mailtrace.intake.readers.base import Found, Reader, subject_matches
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, anchored, blocks, span, statuses

_START = re.compile(r"following list of recipients:|This is the MAILER-DAEMON, please DO NOT",
                    re.I)
_END = re.compile(r"Below is a copy of the original message", re.I)
_ANCHOR = re.compile(rf"^[ \t]*<?({ADDR})>?:\s")

_anchor = anchored(_ANCHOR)


def _read(mail: Mail) -> Found | None:
    if not _START.search(mail.notification[:3000]):
        return None
    delayed = "delayed" in mail.subject.lower() or "temporary" in mail.notification[:3000]
    found = blocks(span(mail.lines, _START, _END), _anchor, paragraph=True)
    return Found(statuses(found, "delayed" if delayed else "failed")) if found else None


READER = Reader("opensmtpd", subject_matches(r"^Delivery status notification: "), _read)
