"""Apache James: "Error message below:" with the remote reply, and "Message details:"
naming the envelope recipients on ``RCPT TO:`` lines (James' ``DSNBounce`` mailet).
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, never
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import addresses_in, clean, span

_ERROR = re.compile(r"^\s*Error message below:", re.I | re.M)
_DETAILS = re.compile(r"^\s*Message details:", re.I | re.M)
_RCPT = re.compile(r"^\s*RCPT TO:\s*(.*)$", re.I)


def _read(mail: Mail) -> Found | None:
    if not _DETAILS.search(mail.notification) or not _ERROR.search(mail.notification):
        return None
    reply = clean(" ".join(span(mail.lines, _ERROR, _DETAILS)))
    addresses = [a for line in span(mail.lines, _DETAILS)
                 if (m := _RCPT.match(line)) for a in addresses_in(m.group(1))]
    return Found([RecipientStatus(a, "failed", None, reply, None, None) for a in addresses]
                 ) if addresses else None


READER = Reader("apachejames", never, _read)
