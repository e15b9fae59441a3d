"""Verizon Wireless's MMS gateway (vzwpix.com, vtext.com): "Message could not be
delivered to mobile." with an "Error:" line, the recipient in the "Original Message"
summary's ``To:`` line.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, sender_matches
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import addresses_in, clean

_ERROR = re.compile(r"^[ \t]*Error:\s*(.*)$", re.I | re.M)
_TO = re.compile(r"^[ \t]*To:\s*(.*)$", re.I | re.M)


def _read(mail: Mail) -> Found | None:
    if "could not be delivered to mobile" not in mail.notification.lower():
        return None
    whole = mail.body
    error = _ERROR.search(whole)
    to = _TO.search(whole)
    addresses = addresses_in(to.group(1)) if to else []
    reason = clean(error.group(1)) if error else "Message could not be delivered to mobile"
    return Found([RecipientStatus(a, "failed", None, reason, None, None) for a in addresses]
                 ) if addresses else None


READER = Reader("verizon", sender_matches(r"vzwpix\.com|vtext\.com"), _read)
