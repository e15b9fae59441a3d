"""m-FILTER (Digital Arts): a Japanese preamble, the address on its own line, then
"-------server message" with the remote reply and "-------SMTP command" with the command
it answered, before "-------original message".
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import address_line, clean, span

_SERVER = re.compile(r"^-{5,}\s*server message", re.I | re.M)
_COMMAND = re.compile(r"^-{5,}\s*SMTP command", re.I)
_END = re.compile(r"^-{5,}\s*(?:original|SMTP command)", re.I)


def _claims(mail: Mail) -> bool:
    return "m-filter" in mail.header("x-mailer").lower()


def _read(mail: Mail) -> Found | None:
    if not _SERVER.search(mail.notification) and not _claims(mail):
        return None
    head = span(mail.lines, None, _SERVER)
    addresses = [a for line in head if (a := address_line(line))]
    reply = clean(" ".join(span(mail.lines, _SERVER, _END)))
    command = clean(" ".join(span(mail.lines, _COMMAND, re.compile(r"^-{5,}")))) or None
    if not addresses:
        return None
    return Found([RecipientStatus(a, "failed", None, reply, None, None,
                                  command=(command or "").split(" ")[0].upper() or None)
                  for a in addresses])


READER = Reader("mfilter", _claims, _read)
