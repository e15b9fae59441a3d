"""Oracle (Sun, iPlanet) Messaging Server: "This report relates to a message you sent
with the following header fields:", then "Your message cannot be delivered to the
following recipients:" and per recipient the labelled lines ``Recipient address:``,
``Reason:``, ``Diagnostic code: smtp;550 ...`` and ``Remote system: dns;host (...)``.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, never
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.rfc3464 import host_of, typed
from mailtrace.intake.readers.text import ADDR, clean

_START = re.compile(r"This report relates to a message you sent", re.I)
_LABEL = re.compile(r"^[ \t]+(Recipient address|Original address|Reason|Diagnostic code|"
                    r"Remote system)\s*:\s*(.*)$", re.I)


def _read(mail: Mail) -> Found | None:
    if not _START.search(mail.notification[:3000]):
        return None
    delayed = bool(re.search(r"has been delayed|not yet been delivered", mail.notification,
                             re.I))
    found: list[RecipientStatus] = []
    for line in mail.lines:
        m = _LABEL.match(line)
        if m is None:
            continue
        label, value = m.group(1).lower(), m.group(2).strip()
        if label == "recipient address" and re.fullmatch(rf"<?{ADDR}>?", value):
            found.append(RecipientStatus(value.strip("<>"), "delayed" if delayed else "failed",
                                         None, "", None, None))
        elif not found:
            continue
        elif label == "reason":
            found[-1].text = clean(value)
        elif label == "diagnostic code":
            found[-1].diagnostic = clean(typed(value) or value)
        elif label == "remote system":
            found[-1].remote_mta = host_of(value)
    return Found(found) if found else None


READER = Reader("messagingserver", never, _read)
