"""Ipswitch IMail Server: one line per recipient, ``reason: address`` ("Unknown user:
kijitora@example.com", "Invalid final delivery userid: ...", "Delivery failed N
attempts: ...") or "undeliverable to address", then the remote server's answer under
"Body of message generated response:" (or "Server response to MAIL FROM:", "DATA
command generated response:"), followed by "Original message follows.".
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, clean, remote_host

_LINE = re.compile(rf"^[ \t]*([A-Za-z][^:]{{2,80}}):\s*<?({ADDR})>?[ \t]*$"
                   rf"|^[ \t]*(undeliverable) to <?({ADDR})>?", re.I)


def _claims(mail: Mail) -> bool:
    return mail.header("x-mailer").startswith("<SMTP32") or mail.subject.startswith(
        "Undeliverable Mail")


def _read(mail: Mail) -> Found | None:
    if not _claims(mail):
        return None
    found = []
    lines = mail.lines
    for i, line in enumerate(lines[:200]):
        if match := _LINE.match(line):
            words = match.group(1) or match.group(3)
            address = match.group(2) or match.group(4)
            following = []
            for nxt in lines[i + 1:i + 12]:
                if _LINE.match(nxt):
                    break
                following.append(nxt.strip())
            reason = clean(" ".join([words, *following]))
            found.append(RecipientStatus(address, "failed", None, reason, None,
                                         remote_host(reason)))
    return Found(found) if found else None


READER = Reader("imailserver", _claims, _read)
