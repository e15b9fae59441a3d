"""Zoho Mail: "This message was created automatically by mail delivery software.", then
one line per recipient: ``address Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1
<...>... User Unknown`` (folded when long).
"""

from __future__ import annotations

import re

from mailtrace.intake.readers.base import Found, Reader
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, anchored, blocks, statuses

_ANCHOR = re.compile(rf"^[ \t]*<?({ADDR})>?\s+[A-Z][A-Za-z ]{{0,40}},\s*ERROR_CODE\s*:")


def _claims(mail: Mail) -> bool:
    return "zoho" in mail.header("x-mailer").lower() or mail.sender.endswith("zoho.com")

_anchor = anchored(_ANCHOR)


def _read(mail: Mail) -> Found | None:
    if "ERROR_CODE" not in mail.notification:
        return None
    found = blocks(mail.lines, _anchor, paragraph=True)
    for b in found:
        b.lines = [re.sub(r"ERROR_CODE\s*:\s*,?", "", line) for line in b.lines]
    delayed = "temporary error" in mail.notification.lower()
    return Found(statuses(found, "delayed" if delayed else "failed")) if found else None


READER = Reader("zoho", _claims, _read)
