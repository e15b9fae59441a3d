"""A webmail platform's notice ("X6" in other classifiers): "We had trouble delivering
your message. Full details follow:", then "The following recipients returned permanent
errors: address. Reason: ..." on one line.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, never
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import addresses_in, clean, command_in, remote_host

_LINE = re.compile(r"The following recipients returned (permanent|temporary) errors:\s*(.*?)"
                   r"\.?\s+Reason:\s*(.*)$", re.I)


def _read(mail: Mail) -> Found | None:
    if "we had trouble delivering your message" not in mail.notification.lower():
        return None
    found = []
    for line in mail.lines:
        if m := _LINE.search(line):
            action = "failed" if m.group(1).lower() == "permanent" else "delayed"
            reason = clean(m.group(3))
            found += [RecipientStatus(a, action, None, reason, None, remote_host(reason),
                                      command=command_in(reason))
                      for a in addresses_in(m.group(2))]
    return Found(found) if found else None


READER = Reader("x6", never, _read)
