"""Apache James (and the gateways built on it, such as Verizon's vtext.com): "Error
message below:" with the remote reply, and "Message details:" naming the envelope
recipients on ``RCPT TO:`` lines (James' ``DSNBounce`` mailet); without the first, the
text before the details is the reason.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, never
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import addresses_in, clean, span

_ERROR = re.compile(r"^[ \t]*Error message below:", re.I | re.M)
_DETAILS = re.compile(r"^[ \t]*Message details:", re.I | re.M)
_RCPT = re.compile(r"^[ \t]*RCPT TO:\s*(.*)$", re.I)


def _read(mail: Mail) -> Found | None:
    if not _DETAILS.search(mail.notification):
        return None
    before = span(mail.lines, _ERROR if _ERROR.search(mail.notification) else None, _DETAILS)
    reply = clean(" ".join(before))
    addresses = [a for line in span(mail.lines, _DETAILS)
                 if (m := _RCPT.match(line)) for a in addresses_in(m.group(1))]
    return Found([RecipientStatus(a, "failed", None, reply, None, None) for a in addresses]
                 ) if addresses else None


READER = Reader("apachejames", never, _read)
