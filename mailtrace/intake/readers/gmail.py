"""Gmail and Google Workspace, in their text-only forms (and the Windows SMTP service's
and Outlook.com's, whose wording Gmail's first bounces copied: "This is an automatically
generated Delivery Status Notification."): "Delivery to the following
recipient failed permanently:" (or "has been delayed:"), the addresses indented on lines
of their own, then "Technical details of permanent failure:" with the remote server's
reply ("The error that the other server returned was: 550 5.1.1 ..."). Newer forms
("** Address not found **", "** Message not delivered **") carry "The response was:"
and the failed address in ``X-Failed-Recipients``.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, sender_matches
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import (
    ADDR,
    address_line,
    addresses_in,
    blocks,
    clean,
    command_in,
    remote_host,
    span,
)

_START = re.compile(r"Delivery to the following recipients? (?:failed|has been delayed)"
                    r"|^[ \t]*\*\* (?:Address not found|Message not delivered|Message blocked"
                    r"|Delivery incomplete|Message delayed) \*\*", re.I | re.M)
_DETAILS = re.compile(r"Technical details of (?:permanent|temporary) failure:"
                      r"|^[ \t]*The response (?:was|from the remote server was):", re.I)
_LISTED = re.compile(r"Delivery to the following recipients?", re.I)
_SENTENCE = re.compile(rf"(?:wasn't|was not|couldn't be|could not be) delivered to <?({ADDR})>?",
                       re.I)


def _read(mail: Mail) -> Found | None:
    if not _START.search(mail.notification[:8000]):
        return None
    delayed = bool(re.search(r"has been delayed|Delivery incomplete|Message delayed|"
                             r"WARNING MESSAGE ONLY", mail.notification[:8000], re.I))
    details = clean(" ".join(span(mail.lines, _DETAILS)))
    listed = blocks(span(mail.lines, _LISTED, _DETAILS), address_line) if _LISTED.search(
        mail.notification) else []
    addresses = [b.address for b in listed] or addresses_in(
        mail.header("x-failed-recipients")) or list(dict.fromkeys(
            m.group(1) for line in mail.lines if (m := _SENTENCE.search(line))))
    if not addresses:
        return None
    action = "delayed" if delayed else "failed"
    google = bool(re.search(r"google|gmail", mail.sender))
    return Found([RecipientStatus(a, action, None, details, None, remote_host(details),
                                  command=command_in(details)) for a in addresses],
                 format="gmail" if google else "smtpsvc")


READER = Reader("gmail", sender_matches(r"mailer-daemon@(?:google|g)mail\.com"), _read)
