"""Sendmail: "----- The following addresses had permanent fatal errors -----" (or
"transient non-fatal errors" for a delay warning), each address with its ``(reason:
...)`` line, then "----- Transcript of session follows -----" naming the remote host in
"... while talking to host.:" and its replies after ``<<<`` (sendmail's
``savemail.c``/``deliver.c`` texts). Many appliances and providers keep this layout
with their own words: "had delivery errors" / "had delivery problems" / "had permanent
delivery errors" (Active!hunter, Biglobe, McAfee, Mail2000), the reason beside the
address (``address [User unknown]``, ``<address>   (Unknown user ...)``) or in a
"----- Non-delivered information -----" section.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, subject_matches
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import ADDR, MAX_RECIPIENTS, clean
from mailtrace.intake.tiers import normalize_host

_SECTION = re.compile(
    r"-{3,}\s*The following addresses had (permanent fatal errors|transient non-fatal errors"
    r"|delivery errors|delivery problems|permanent delivery errors)\s*-*", re.I)
_TRANSCRIPT = re.compile(r"-{3,}\s*(?:Transcript of session follows|Non-delivered "
                         r"information)", re.I)
_INLINE = re.compile(r"^[ \t]*(?:\[(.*)\]|\((.*)\))[ \t]*$")
_TALKING = re.compile(r"while talking to \[?([A-Za-z0-9.-]+?)\]?\.?:[ \t]*$", re.I | re.M)
_REASON = re.compile(r"^[ \t]*\(reason:\s*(.*?)\)?[ \t]*$")
_RECIPIENT = re.compile(rf"^[ \t]*(?:>>>\s*)?<?({ADDR})>?(?:\s.*)?$")
_REPLY = re.compile(r"^[ \t]*<<<\s*([45]\d\d[ -].*)$")
_SENT = re.compile(r"^[ \t]*>>>\s*(\S+)")


def _read(mail: Mail) -> Found | None:
    section = _SECTION.search(mail.notification)
    if not section:
        return None
    action = "delayed" if section.group(1).lower().startswith("transient") else "failed"
    rest = mail.notification[section.end():]
    listing, *after = _TRANSCRIPT.split(rest, maxsplit=1)
    transcript = after[0] if after else ""
    talking = _TALKING.search(transcript) if transcript else None
    remote = normalize_host(talking.group(1)) if talking else None
    replies = []
    command = None
    for line in transcript.splitlines():
        if found := _SENT.match(line):
            command = found.group(1).upper()
        elif found := _REPLY.match(line):
            replies.append((found.group(1), command))
    recipients: list[RecipientStatus] = []
    current: RecipientStatus | None = None
    for line in listing.splitlines():
        if (address := _RECIPIENT.match(line)) is not None and "@" in line:
            if len(recipients) >= MAX_RECIPIENTS:
                break
            current = RecipientStatus(address.group(1), action, None, "", None, remote)
            recipients.append(current)
            beside = line.split(address.group(1), 1)[1].lstrip(">").strip()
            if inline := _INLINE.match(beside):
                current.diagnostic = clean(inline.group(1) or inline.group(2))
        elif current is not None and (reason := _REASON.match(line)):
            current.diagnostic = clean(reason.group(1))
    if not recipients:
        return None
    notice = clean(" ".join(x for x in transcript.splitlines() if x.strip()
                            and not x.lstrip().startswith(("<<<", ">>>", "..."))))
    for r in recipients:
        if not r.diagnostic and not replies and notice:
            r.diagnostic = notice[:500]
        # The reply that refused this recipient: the first one naming it, else the first
        # failing one (a later "503 Need RCPT" is only pipelining's echo of it).
        own = [x for x in replies if (r.address or "").lower() in x[0].lower()]
        reply, command = (own or replies or [("", None)])[0]
        r.diagnostic = r.diagnostic or clean(reply)
        if reply and clean(reply) != r.diagnostic:
            r.text = clean(reply)
        r.command = command
    return Found(recipients, None)


READER = Reader("sendmail", subject_matches(r"^(?:Returned mail|Warning: could not send"
                                             r"|Postmaster notify)"), _read)
