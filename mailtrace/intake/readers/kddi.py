"""au one net (KDDI, dion.ne.jp): "Your mail sent on: <date>" then "Could not be
delivered to: <address>" and the cause, such as "As their mailbox is full.".
"""

from __future__ import annotations

import re

from mailtrace.intake.readers.base import Found, Reader, sender_matches
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, anchored, blocks, statuses

_ANCHOR = re.compile(rf"^[ \t]*Could not be delivered to:\s*<?({ADDR})>?", re.I)

_anchor = anchored(_ANCHOR)


def _read(mail: Mail) -> Found | None:
    if "could not be delivered to:" not in mail.notification.lower():
        return None
    found = blocks(mail.lines, _anchor, paragraph=True)
    return Found(statuses(found, "failed")) if found else None


READER = Reader("kddi", sender_matches(r"dion\.ne\.jp|auone-net\.jp|kddi"), _read)
