"""qmail and its descendants (netqmail, qmail-ldap, Yahoo's and other providers'
qmail-based MTAs, which keep its layout under their own opening sentence: "Unable to
deliver message to the following address(es).", "Your mail message to the following
address(es) could not be delivered."): "Hi. This is the qmail-send program at host."
(qmail-send.c), then
per recipient ``<address>:`` on its own line and the reason under it, as qmail-remote
wrote it: "host does not like recipient. Remote host said: 550 5.1.1 ... Giving up on
host." or "Sorry, no SMTP connection got far enough ... (#5.5.0)"; the returned message
follows "--- Below this line is a copy of the message."
"""

from __future__ import annotations

import re

from mailtrace.intake.readers.base import Found, Reader
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, anchored, blocks, span, statuses
from mailtrace.intake.tiers import normalize_host

_START = re.compile(
    r"This is the qmail-send program|I'm afraid I wasn't able to deliver your message"
    r"|we were unable to deliver your message to the following address"
    r"|This is the mail delivery agent at|I wasn't able to deliver your message"
    r"|could not deliver your message to the following address"
    r"|Unable to deliver message to the following address"
    r"|Your mail message to the following address(?:\(es\)|es)? could not be delivered"
    r"|Your message to the following addresses|Unfortunately, your mail was not delivered"
    r"|unable to deliver your message to the following addresses|Su mensaje no pudo ser "
    r"entregado|This is the machine generated message from mail service|We're sorry\."
    r"|He/Her is not\b", re.I)
_QMAIL_BOUNCE = re.compile(r"\(qmail \d+ invoked for bounce\)")
_ANCHOR = re.compile(rf"^[ \t]*(?:To\s*:\s*)?<({ADDR})>\s*:?\s*(.*)$")
_HOST = re.compile(r"(?:remote host|Giving up on|Connected to)\s+\[?([A-Za-z0-9.:-]+?)\]?\.?"
                   r"(?:\s|$)", re.I)

_anchor = anchored(_ANCHOR)


def _qmail(mail: Mail) -> bool:
    """qmail's header signs: its subject, or qmail-send's Received field for a bounce."""
    return bool(re.match(r"(?:failure notice|Permanent Delivery Failure)", mail.subject, re.I)
                or any(_QMAIL_BOUNCE.search(str(r)) for r in mail.msg.get_all("Received", [])))


def _read(mail: Mail) -> Found | None:
    if not _START.search(mail.notification[:5000]) and not _qmail(mail):
        return None
    head = mail.notification[:3000]
    action = "delayed" if re.search(r"This is a temporary|will keep trying|"
                                    r"not yet been delivered", head, re.I) else "failed"
    lines = span(mail.lines, _START) if _START.search(mail.notification[:5000]) else mail.lines
    found = blocks(lines, _anchor)
    recipients = statuses(found, action)
    for r in recipients:
        if r.remote_mta is None and (host := _HOST.search(r.diagnostic)):
            r.remote_mta = normalize_host(host.group(1))
    return Found(recipients) if recipients else None


READER = Reader("qmail", _qmail, _read)
