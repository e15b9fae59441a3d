"""A Japanese provider MTA's notice ("X2" in other classifiers): "NOTICE: Delivery
Failure." / "Your delivery to the following address has been failed.", then per
recipient ``Delivery failed: address`` and the remote server's reply ("Remote host
said[Response Message]: 554 ..."), and the step that failed ("STEP: DATA SEND"). Its
qmail-derived form ("Unable to deliver message to the following address(es).") is read
by :mod:`.qmail`.
"""

from __future__ import annotations

import re

from mailtrace.intake.readers.base import Found, Reader, never
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, anchored, blocks, statuses

_START = re.compile(r"Your delivery to the following address(?:es)? has been failed", re.I)
_ANCHOR = re.compile(rf"^[ \t]*Delivery failed:\s*<?({ADDR})>?", re.I)

_anchor = anchored(_ANCHOR)


def _read(mail: Mail) -> Found | None:
    if not _START.search(mail.notification[:3000]):
        return None
    found = blocks(mail.lines, _anchor, paragraph=True)
    return Found(statuses(found, "failed")) if found else None


READER = Reader("x2", never, _read)
