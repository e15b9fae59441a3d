"""Sendmail version 5 and other old Sendmails: only "----- Transcript of session follows
-----", where each failure is a line ``554 <address>... reason`` after the remote's
``<<<`` response that caused it (``<address>...
Deferred: 421`` in a delay warning; or a deferral naming the host only), before "-----
Unsent message follows -----".
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, subject_matches
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, addresses_in, clean, span

_START = re.compile(r"^[ \t]*-{3,}\s*Transcript of session follows", re.I | re.M)
_UNSENT = re.compile(r"^[ \t]*-{3,}\s*(?:Unsent message follows|No message was collected)",
                     re.I)
_RESPONSE = re.compile(r"^[ \t]*<<<\s*(.*)$")
_FAILED = re.compile(rf"^[ \t]*([45]\d\d)?\s*<?({ADDR})>?\.\.\.\s*(.*)$")
_DEFERRED = re.compile(r"^[ \t]*([45]\d\d)\s+(\S+)\s+\(\w+\)\.\.\.\s*(.*)$")
_TO = re.compile(r"^To:\s*(.*)$", re.I | re.M)


def _read(mail: Mail) -> Found | None:
    if not _START.search(mail.notification) or re.search(
            r"following addresses had", mail.notification, re.I):
        return None
    transcript = span(mail.lines, _START, _UNSENT)
    found: dict[str, RecipientStatus] = {}
    deferral = response = ""
    for line in transcript:
        if m := _RESPONSE.match(line):
            response = clean(m.group(1))
        elif m := _FAILED.match(line):
            r = found.setdefault(m.group(2).lower(), RecipientStatus(
                m.group(2), "failed", None, clean(f"{m.group(1) or ''} {m.group(3)}"), None,
                None))
            r.text, response = r.text or response, ""
        elif m := _DEFERRED.match(line):
            deferral = clean(f"{m.group(1)} {m.group(3)}")
    if not found and deferral:
        unsent = mail.body.split("Unsent message follows", 1)[-1]
        to = _TO.search(unsent[:20000])
        for a in addresses_in(to.group(1)) if to else []:
            found[a.lower()] = RecipientStatus(a, "failed", None, deferral, None, None)
    return Found(list(found.values())) if found else None


READER = Reader("v5sendmail", subject_matches(r"^Returned mail:"), _read)
