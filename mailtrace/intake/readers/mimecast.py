"""Mimecast's own notification: "An email that you attempted to send to the following
address could not be delivered:" then ``-- address``, "The problem appears to be :" and
"Additional information follows :" with the remote reply, each value after ``-- ``.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, subject_matches
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import address_in, clean, remote_host

_START = re.compile(r"attempted to send to the following address(?:es)? could not be", re.I)
_VALUE = re.compile(r"^[ \t]*--\s+(.*)$")


def _read(mail: Mail) -> Found | None:
    text = re.sub(r"=\n", "", mail.notification)
    if not _START.search(re.sub(r"\s+", " ", text)):
        return None
    values = [m.group(1) for line in text.splitlines() if (m := _VALUE.match(line))]
    addresses = [a for v in values if (a := address_in(v)) and v.strip() == a]
    reason = clean(" ".join(v for v in values if v.strip() not in addresses))
    return Found([RecipientStatus(a, "failed", None, reason, None, remote_host(reason))
                  for a in addresses]) if addresses else None


READER = Reader("mimecast", subject_matches(r"^\[Postmaster\] Email Delivery Failure"), _read)
