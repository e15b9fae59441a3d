"""RFC 3464 delivery-status fields, read from wherever they are written.

A ``message/delivery-status`` body is a per-message block followed by one block per
recipient, blocks separated by blank lines (RFC 3464 §2.1). Real reports bend this: the
blocks run together without blank lines (AOL), the fields sit in a ``text/plain`` part or
the bounce's own body, lines are indented or folded (§2.1: header-field folding), fields
come in an unexpected order (``Action`` before ``Final-Recipient``). So the scanner reads
only the field names RFC 3464 §2.2-2.3 (and RFC 6533 §3) define, plus ``X-`` extension
fields, and starts a new recipient record when a per-recipient field repeats or a blank
line follows a complete record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailtrace.intake.readers.mail import MAX_LINE

MAX_RECORDS = 500
MAX_FIELD = 2000

#: RFC 3464 §2.2 per-message fields (and their RFC 6533 / vendor spellings).
MESSAGE_FIELDS = frozenset({
    "original-envelope-id", "reporting-mta", "dsn-gateway", "received-from-mta",
    "arrival-date", "x-postfix-queue-id", "x-postfix-sender", "x-original-message-id",
    "x-outbound-mail-relay-queue-id", "x-outbound-mail-relay-sender",
})
#: RFC 3464 §2.3 per-recipient fields.
RECIPIENT_FIELDS = frozenset({
    "original-recipient", "final-recipient", "action", "status", "remote-mta",
    "diagnostic-code", "last-attempt-date", "final-log-id", "will-retry-until",
    "x-actual-recipient", "x-supplementary-info", "x-display-name",
})
_NAMES = "|".join(sorted(MESSAGE_FIELDS | RECIPIENT_FIELDS, key=len, reverse=True))
_FIELD = re.compile(rf"^[ \t]*({_NAMES})[ \t]*:[ \t]*(.*)$", re.IGNORECASE)
_X_FIELD = re.compile(r"^[ \t]*(X-[A-Za-z0-9-]{1,60})[ \t]*:[ \t]*(.*)$")


@dataclass
class Record:
    """The fields of one block, lowercase names, first value kept."""

    fields: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.fields.get(name)

    @property
    def is_recipient(self) -> bool:
        return "final-recipient" in self.fields or "original-recipient" in self.fields


@dataclass
class Scan:
    message: Record
    recipients: list[Record]


def _lines(text: str) -> list[tuple[str, str] | None]:
    """(name, value) per field with its folded continuation lines joined, ``None`` for a
    blank line; other lines are dropped."""
    out: list[tuple[str, str] | None] = []
    last: int | None = None
    for raw in text.splitlines()[:20_000]:
        line = raw[:MAX_LINE].rstrip()
        if not line.strip():
            out.append(None)
            last = None
            continue
        found = _FIELD.match(line) or _X_FIELD.match(line)
        if found:
            out.append((found.group(1).lower(), found.group(2).strip()))
            last = len(out) - 1
        elif last is not None and line[:1] in " \t":
            entry = out[last]
            assert entry is not None
            out[last] = (entry[0], (entry[1] + " " + line.strip())[:MAX_FIELD])
        else:
            last = None
    return out


def scan(text: str) -> Scan:
    """Every recipient record in a text, and the per-message fields before them."""
    message = Record()
    records: list[Record] = []
    current: Record | None = None
    for entry in _lines(text):
        if entry is None:
            if current is not None and current.is_recipient:
                current = None
            continue
        name, value = entry
        per_message = name in MESSAGE_FIELDS or (
            name.startswith("x-") and name not in RECIPIENT_FIELDS and current is None)
        if per_message:
            message.fields.setdefault(name, value)
            continue
        if current is None or name in current.fields:
            if len(records) >= MAX_RECORDS:
                break
            current = Record()
            records.append(current)
        current.fields[name] = value
    return Scan(message, [r for r in records if r.is_recipient])
