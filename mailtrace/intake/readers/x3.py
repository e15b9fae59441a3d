"""A Delivery Status Notification generator some hosting platforms use ("X3" in other
classifiers): "This is an automatically generated Delivery Status Notification.", then
"Delivery to the following recipients failed permanently:" (also misspelt "Delevery")
with ``* address`` lines, and "Technical details:" with ``SMTP:RCPT host ip: 553 ...``.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, subject_matches
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, clean, command_in, span
from mailtrace.intake.tiers import normalize_host

_START = re.compile(r"Del[ie]very to the following recipients? failed", re.I)
_DETAILS = re.compile(r"^[ \t]*Technical details:", re.I)
_ITEM = re.compile(rf"^[ \t]*\*\s*<?({ADDR})>?[ \t]*$")
_RULE = re.compile(r"^[ \t]*={10,}")
_SMTP = re.compile(r"^SMTP:(\w+)\s+host\s+(\S+?):\s*(.*)$")


def _read(mail: Mail) -> Found | None:
    if not _START.search(mail.notification):
        return None
    addresses = [m.group(1) for line in span(mail.lines, _START) if (m := _ITEM.match(line))]
    details = clean(" ".join(span(mail.lines, _DETAILS, _RULE)))
    command = remote = None
    if m := _SMTP.match(details):
        command, remote, details = m.group(1).upper(), m.group(2), m.group(3)
    return Found([RecipientStatus(a, "failed", None, details, None, normalize_host(remote),
                                  command=command or command_in(details)) for a in addresses]
                 ) if addresses else None


READER = Reader("x3", subject_matches(r"^Delivery status notification$"), _read)
