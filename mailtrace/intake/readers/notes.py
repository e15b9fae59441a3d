"""Lotus Notes and HCL Domino. Domino: "Your message ... was not delivered to:" with the
address indented on its own line, then "because:" and the reason. Notes' SMTP MTA:
"------- Failure Reasons --------", the reason and the address, before
"------- Returned Message --------"; when the reasons name no address, the returned
message's To field does.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import address_in, clean, returned_to, span

_DOMINO = re.compile(r"was not delivered to:", re.I)
_BECAUSE = re.compile(r"^[ \t]*because:[ \t]*$", re.I)
_NOTES = re.compile(r"-{3,}\s*Failure Reasons\s*-{3,}", re.I)


def _claims(mail: Mail) -> bool:
    return bool(re.search(r"^(?:DELIVERY FAILURE:|Undeliverable message)", mail.subject,
                          re.I))


def _domino(mail: Mail) -> list[RecipientStatus]:
    """Each "was not delivered to:" names addresses; the "because:" after it, their reason
    (a report on several recipients repeats the pair)."""
    found: list[RecipientStatus] = []
    pending: list[RecipientStatus] = []
    state = ""
    for line in mail.lines:
        if _DOMINO.search(line):
            state, pending = "to", []
        elif _BECAUSE.match(line):
            state = "because"
        elif line.strip().startswith("Your message"):
            state = ""
        elif state == "to" and (address := address_in(line)):
            pending.append(RecipientStatus(address, "failed", None, "", None, None))
            found.append(pending[-1])
        elif state == "because" and line.strip():
            for r in pending:
                r.diagnostic = clean(f"{r.diagnostic} {line}")
    return found


def _notes(mail: Mail) -> list[RecipientStatus]:
    lines = [line for line in span(mail.lines, _NOTES) if line.strip()]
    addresses = [a for line in lines if (a := address_in(line)) and line.strip().endswith(a)]
    reason = clean(" ".join(line for line in lines if not address_in(line)))
    addresses = addresses or returned_to(mail)
    return [RecipientStatus(a, "failed", None, reason, None, None) for a in addresses]


def _read(mail: Mail) -> Found | None:
    if _DOMINO.search(mail.notification):
        found = _domino(mail)
    elif _NOTES.search(mail.notification):
        found = _notes(mail)
    else:
        return None
    return Found(found) if found else None


READER = Reader("notes", _claims, _read)
