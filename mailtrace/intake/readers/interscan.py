"""Trend Micro InterScan MSS (and InterScan NT): the SMTP exchange that failed, as
``Sent <<< RCPT TO:<address>`` and ``Received >>> 550 5.1.1 ...`` (the labels translated
in a Japanese notice, "送信"/"受信", the arrows kept), or "Unable to deliver message to
<address>" with its reason, between "***** Message from InterScan ... *****" and
"***** End of message *****".
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, clean

_SENT = re.compile(rf"(?:<<<|>>>)\s*RCPT TO:\s*<?({ADDR})>?", re.I)
_REPLY = re.compile(r"(?:<<<|>>>)\s*([245]\d\d[ -].*)$")
_UNABLE = re.compile(rf"Unable to deliver (?:the )?message to <?({ADDR})>?(.*)$", re.I)
_SUBJECTS = ("Mail could not be delivered", "メッセージを配信できません。",
             "メール配信に失敗しました")


def _claims(mail: Mail) -> bool:
    return ("interscan" in mail.sender or mail.subject in _SUBJECTS
            or "interscan" in mail.notification[:3000].lower())


def _read(mail: Mail) -> Found | None:
    if not _claims(mail):
        return None
    found: list[RecipientStatus] = []
    for line in mail.lines:
        if m := _SENT.search(line):
            if not found or (found[-1].address or "").lower() != m.group(1).lower():
                found.append(RecipientStatus(m.group(1), "failed", None, "", None, None,
                                             command="RCPT"))
        elif (m := _REPLY.search(line)) and found and not found[-1].diagnostic:
            found[-1].diagnostic = clean(m.group(1))
        elif m := _UNABLE.search(line):
            found.append(RecipientStatus(m.group(1), "failed", None, clean(line), None, None))
    return Found(found) if found else None


READER = Reader("interscan", _claims, _read)
