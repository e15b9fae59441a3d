"""au by KDDI's EZweb mail (ezweb.ne.jp, au.com): a Japanese preamble, an English sentence giving
the cause ("The user(s) account is disabled.", "Each of the following recipients was
rejected by a remote mail server.", "Your message was not delivered within N days and N
hours. Remote host is not responding."), and the recipients as ``<address>``,
``<address>: 550 user unknown`` or ``Recipient: <address>`` lines, with the SMTP exchange
under them when there was one.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, anchored, blocks, clean

_ANCHOR = re.compile(rf"^[ \t]*(?:Recipient:\s*)?<({ADDR})>(?:\s*:.*)?[ \t]*$")
_ENGLISH = re.compile(r"^[ -~]{12,}$")


def _claims(mail: Mail) -> bool:
    return bool(re.search(r"ezweb\.ne\.jp|postmaster@au\.com", mail.sender)
                or re.search(r"\.(?:ezweb\.ne\.jp|au\.com)>", mail.header("message-id"))
                or mail.subject == "Mail System Error - Returned Mail")

_anchor = anchored(_ANCHOR)


def _read(mail: Mail) -> Found | None:
    if not _claims(mail):
        return None
    found = blocks(mail.lines, _anchor)
    sentences = clean(" ".join(line for line in mail.lines if _ENGLISH.match(line.strip())
                               and not _anchor(line) and not line.lstrip().startswith(
                                   ("<<<", ">>>", "This message is in MIME"))))
    out = []
    for b in found:
        words = clean(" ".join([*b.lines, sentences]))
        out.append(RecipientStatus(b.address, "failed", None, words, None, None))
    return Found(out) if out else None


READER = Reader("ezweb", _claims, _read)
