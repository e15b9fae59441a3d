"""MailFoundry: "Unable to deliver message to: <address>", "Delivery failed for the
following reason:" and "Server host[ip] failed with: 550 ...".
"""

from __future__ import annotations

import re

from mailtrace.intake.readers.base import Found, Reader, subject_matches
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, anchored, blocks, statuses

_ANCHOR = re.compile(rf"^[ \t]*Unable to deliver message to:\s*<?({ADDR})>?", re.I)

_anchor = anchored(_ANCHOR)


def _read(mail: Mail) -> Found | None:
    if "delivery failed for the following reason" not in mail.notification.lower():
        return None
    found = blocks(mail.lines, _anchor, paragraph=True)
    for b in found:
        b.lines = [line for line in b.lines if not line.lower().startswith("delivery failed")]
    return Found(statuses(found, "failed")) if found else None


READER = Reader("mailfoundry", subject_matches(r"^Message delivery has failed"), _read)
