"""Exim (and the services built on it: GMX/mail.com, 1&1, MXLogic/McAfee SaaS):
"This message was created automatically by mail delivery software." (Exim's
``deliver.c``), then the failed addresses, each on a line indented by two spaces (GMX:
quoted, 1&1: flush left, followed by a colon) and its reason indented under it:
``SMTP error from remote mail server after RCPT TO:<...>: host mx.example.com
[192.0.2.1]: 550 5.1.1 ...``. A delay warning says "has not yet been delivered" and gives
a "Delay reason:". When no address is printed (a delivery to a pipe or a file, "save to
...", "pipe to |..."), the failed addresses are the ``X-Failed-Recipients`` field's.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, addresses_in, blocks, clean, span, statuses

_START = re.compile(
    r"This message was created automatically by mail delivery software"
    r"|A message that you (?:have )?sent (?:could not|was rejected|contained|has not yet)"
    r"|following address(?:\(es\)|es)? failed|router encountered the following error"
    r"|has been frozen|was frozen on arrival", re.I)
_LIST = re.compile(r"address(?:\(es\)|es)? failed:?[ \t]*$|following address(?:es)?\b.*:[ \t]*$"
                   r"|has not yet been delivered is:[ \t]*$|has not yet been delivered are:[ \t]*$"
                   r"|recipients?\.\s+This is a permanent error\.?[ \t]*$", re.I)
_ANCHOR = re.compile(rf"^ {{0,2}}\"?<?({ADDR})>?\"?(?:\s*:.*|\s+<[^>]*>:?.*|\s*)$")
_DELAYED = re.compile(r"has not yet been delivered|Delay reason:", re.I)


def _claims(mail: Mail) -> bool:
    return bool(re.search(r"^(?:Mail delivery failed|Mail failure|Message frozen|Warning: "
                          r"message \S+ delayed)", mail.subject, re.I)
                or "mail delivery system" in mail.sender
                or mail.header("x-mx-bounce") or mail.header("x-mxl-notehash"))


def _anchor(line: str) -> str | None:
    found = _ANCHOR.match(line)
    if not found or "pipe to |" in line:
        return None
    return found.group(1)


_NAMELESS = re.compile(r"^ {1,2}(?:an undisclosed address|pipe to \||save to )", re.I)
_GENERATED = re.compile(rf"^\s+\(?generated (?:from|by) <?({ADDR})>?\)?", re.I)


def _named(lines: list[str]) -> list[str]:
    """Exim prints a delivery to a pipe, a file or an undisclosed address without an
    address; the alias it was "generated from" (or "by") names the recipient."""
    out = list(lines)
    for i, line in enumerate(lines):
        if not _NAMELESS.match(line):
            continue
        for nxt in lines[i + 1:i + 4]:
            if found := _GENERATED.match(nxt):
                out[i] = f"  {found.group(1)}"
                break
    return out


def _without_sender(lines: list[str]) -> list[str]:
    """The lines without the sender's address that "A message sent by" introduces."""
    out: list[str] = []
    after_sent_by = False
    for line in lines:
        if re.search(r"A message sent by[ \t]*$", line):
            after_sent_by = True
        elif after_sent_by and line.strip():
            after_sent_by = False
            if _anchor(line):
                continue
        out.append(line)
    return out


def _read(mail: Mail) -> Found | None:
    if not _START.search(mail.notification[:5000]):
        return None
    lines = _named(_without_sender(span(mail.lines, _START)))
    listing = span(lines, _LIST) or lines
    action = "delayed" if _DELAYED.search(mail.notification[:5000]) else "failed"
    found = blocks(listing, _anchor, paragraph=True)
    if found:
        return Found(statuses(found, action))
    failed = addresses_in(mail.header("x-failed-recipients"))
    reason = clean(" ".join(line for line in listing if line.strip()))[:1000]
    return Found([RecipientStatus(a, action, None, reason, None, None)
                  for a in failed]) if failed else None


READER = Reader("exim", _claims, _read)
