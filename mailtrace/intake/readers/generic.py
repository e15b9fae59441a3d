"""The last resort: a bounce whose wording no reader knows.

It is read only when the message looks like a bounce (sent by a mailer daemon or
postmaster, a failure subject, an ``X-Failed-Recipients`` field, RFC 3464 §1's
"human-readable" report with failure wording) and only for what every text bounce shows:
addresses on lines of their own followed by their reason, or the addresses the
``X-Failed-Recipients`` field lists (Exim and others) with the report's text as reason.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, never
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import address_line, addresses_in, blocks, clean

_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery|mailerdaemon|bounce", re.I)
_SUBJECT = re.compile(
    r"undeliver|undelivered|returned mail|delivery (?:status|failure|failed|notification)"
    r"|failure notice|mail delivery|could not be delivered|non[- ]?delivery|bounce"
    r"|delivery problem|rejected", re.I)
_FAILURE = re.compile(
    r"could not be delivered|undeliverable|not be delivered|delivery (?:has )?failed"
    r"|failed permanently|permanent (?:error|failure)|unable to deliver|was not delivered"
    r"|couldn't be delivered|returned to sender|following address(?:es)? failed", re.I)


def looks_like_a_bounce(mail: Mail) -> bool:
    return bool(_SENDER.search(mail.sender) or _SUBJECT.search(mail.subject)
                or mail.header("x-failed-recipients")
                or _FAILURE.search(mail.notification[:5000]))


def _read(mail: Mail) -> Found | None:
    if not looks_like_a_bounce(mail) or not _FAILURE.search(
            mail.notification[:20000] + " " + mail.subject):
        return None
    own = {a.lower() for a in addresses_in(mail.sender)}
    found = [b for b in blocks(mail.lines, address_line) if b.address.lower() not in own]
    recipients = [RecipientStatus(b.address, "failed", None, b.text, None, None)
                  for b in found]
    if not recipients:
        text = clean(mail.notification)
        recipients = [RecipientStatus(a, "failed", None, text, None, None)
                      for a in addresses_in(mail.header("x-failed-recipients"))]
    return Found(recipients) if recipients else None


READER = Reader("text", never, _read)
