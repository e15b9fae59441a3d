"""Smail 3: framed sections "|---- Message log follows: ----|", "|---- Failed addresses
follow: ----|" with one ``address ... reason`` line per recipient, and "|---- Message
text follows: ----|" before the returned message.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, never
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, clean, span

_FAILED = re.compile(r"^\|?-{5,}\s*Failed addresses follow:", re.I)
_NEXT = re.compile(r"^\|?-{5,}\s*Message (?:text|log) follows", re.I)
_LINE = re.compile(rf"^[ \t]*<?({ADDR})>?\s*\.\.\.\s*(.*)$")


def _read(mail: Mail) -> Found | None:
    if not any(_FAILED.match(line) for line in mail.lines[:200]):
        return None
    lines = span(mail.body.splitlines(), _FAILED, _NEXT)
    found = [RecipientStatus(m.group(1), "failed", None, clean(m.group(2)), None, None)
             for line in lines if (m := _LINE.match(line))]
    return Found(found) if found else None


READER = Reader("smail", never, _read)
