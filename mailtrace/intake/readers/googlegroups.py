"""Google Groups: a message the group refused is returned by mailer-daemon@googlemail.com
with the group's address in ``X-Failed-Recipients`` and a text, in the sender's language,
that the group does not exist or does not accept the sender's posts.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, sender_matches
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import addresses_in, clean

_GROUPS = re.compile(r"Google Groups|groups\.google\.com|Google グループ", re.I)


def _read(mail: Mail) -> Found | None:
    failed = addresses_in(mail.header("x-failed-recipients"))
    if not failed or not _GROUPS.search(mail.notification):
        return None
    paragraphs = [p for p in re.split(r"\n\s*\n", mail.notification) if p.strip()]
    reason = clean(" ".join(paragraphs[:3]))[:600]
    return Found([RecipientStatus(a, "failed", None, reason, None, None) for a in failed])


READER = Reader("googlegroups", sender_matches(r"mailer-daemon@googlemail\.com"), _read)
