"""fml, the mailing-list manager: its notices to a list's owner about a message it
refused ("Loop Alert: Duplicated Message-ID", "Returned mail: ... not member") name the
list address ("Duplicated Message-ID in <list@example.com>.") and the cause.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, subject_matches
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import address_in, clean

_CAUSE = re.compile(r"^[ \t]*(.*?\b(?:in|to|from)\s+<[^<>]+@[^<>]+>.*)$", re.M)


def _read(mail: Mail) -> Found | None:
    if not re.search(r"^(?:Loop Alert|Returned mail)", mail.subject, re.I) or not (
            re.search(r"-admin@|fml", mail.sender + mail.header("x-mlserver").lower())
            or "fml" in mail.header("x-mlserver").lower()):
        return None
    cause = _CAUSE.search(mail.notification[:3000])
    if not cause or not (address := address_in(cause.group(1))):
        return None
    return Found([RecipientStatus(address, "failed", None, clean(cause.group(1)), None,
                                  None)])


READER = Reader("fml", subject_matches(r"^Loop Alert:"), _read)
