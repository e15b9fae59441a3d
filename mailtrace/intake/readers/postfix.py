"""Postfix: "This is the mail system at host ..." (older: "This is the Postfix program
at host ...", bounce(8) templates), then per recipient a paragraph ``<address>: reason``,
where the reason quotes the remote server: ``host mx.example.com[192.0.2.1] said: 550
5.1.1 ... (in reply to RCPT TO command)``. Also Postfix's postmaster notice "errors from
host": the SMTP session transcript, with the recipient in ``RCPT TO`` and the failing
reply the last ``Out:`` line (smtpd(8) ``notify_classes``).
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, subject_matches
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import MAX_RECIPIENTS, address_in, clean
from mailtrace.intake.tiers import normalize_host

_MARK = re.compile(r"^[ \t]*This is the (?:mail system|Postfix program) at host (\S+?)\.?[ \t]*$",
                   re.M | re.I)
_HEAD = re.compile(r"^[ \t]*<([^<>\s]{1,200}@[^<>\s]{1,255})>(?:\s*\(expanded from <[^<>]*>\))?"
                   r":\s*(.*)$")
_SAID = re.compile(r"host (\S+?)\[[^\]]*\] said:\s*(.*?)(?:\s*\(in reply to (.*?) command\))?$")
_CONNECT = re.compile(r"connect to (\S+?)\[[^\]]*\](?::\d+)?:\s*(.*)$")
_SESSION = re.compile(r"^[ \t]*(In|Out):\s+(.*)$")


def _paragraphs(text: str) -> list[list[str]]:
    return [p.strip().splitlines() for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def _report(mail: Mail) -> Found | None:
    mark = _MARK.search(mail.notification)
    if not mark:
        return None
    reporting = normalize_host(mark.group(1))
    delayed = "THIS IS A WARNING ONLY" in mail.notification[:20000]
    recipients: list[RecipientStatus] = []
    for lines in _paragraphs(mail.notification[mark.end():]):
        head = _HEAD.match(lines[0])
        if not head or len(recipients) >= MAX_RECIPIENTS:
            continue
        body = clean(" ".join([head.group(2), *lines[1:50]]))
        remote = command = None
        diagnostic = body
        if found := _SAID.search(body):
            remote, diagnostic, command = found.group(1), found.group(2), found.group(3)
        elif found := _CONNECT.search(body):
            remote = found.group(1)
        recipients.append(RecipientStatus(
            head.group(1), "delayed" if delayed else "failed", None, clean(diagnostic),
            reporting, normalize_host(remote), command=command))
    return Found(recipients, reporting) if recipients else None


def _session(mail: Mail) -> Found | None:
    """The postmaster copy of a refused SMTP session: the recipient of ``RCPT TO`` and the
    last failing reply the server sent."""
    if "transcript of session follows" not in mail.notification.lower():
        return None
    recipients: list[str] = []
    failure = ""
    command = None
    last_in = ""
    for line in mail.lines:
        found = _SESSION.match(line)
        if not found:
            continue
        side, said = found.groups()
        if side == "In":
            last_in = said
            if said.upper().startswith("RCPT") and (address := address_in(said)):
                recipients.append(address)
        elif said[:1] in "45":
            failure, command = said, last_in.split(" ")[0].upper() or None
    if not recipients or not failure:
        return None
    reporting = normalize_host((address_in(mail.sender) or "").rpartition("@")[2])
    return Found([RecipientStatus(r, "failed", None, clean(failure), reporting, None,
                                  command=command) for r in recipients], reporting)


def _read(mail: Mail) -> Found | None:
    return _report(mail) or _session(mail)


READER = Reader("postfix", subject_matches(r"^(?:Undelivered Mail|Delayed Mail|Postfix "
                                            r"SMTP server)"), _read)
