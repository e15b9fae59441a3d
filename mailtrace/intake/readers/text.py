"""Helpers the text readers share: addresses, the report's span, recipient blocks.

Text bounces have one shape in many wordings (RFC 3464 §1 calls them the "human-readable"
part): an opening sentence, then per recipient its address on a line of its own and the
reason under it, then a line that introduces the returned message. A reader names its
family's opening and closing lines and how a recipient line looks; these helpers do the
rest, line by line, with bounded lines and no backtracking patterns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mailtrace.intake.dsn import OriginalMessage, RecipientStatus
from mailtrace.intake.readers.mail import MAX_LINE, Mail, decoded
from mailtrace.intake.tiers import normalize_host

MAX_RECIPIENTS = 500
MAX_BLOCK_LINES = 60

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,128}"  # VERP and relays exceed 64
_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.){1,10}[A-Za-z0-9-]{1,63}"
#: An address (RFC 5321 §4.1.2 Mailbox, the dot-atom forms bounces print), as a pattern.
ADDR = rf"{_LOCAL}@{_DOMAIN}"
ADDRESS = re.compile(rf"(?<![A-Za-z0-9._%+-])({ADDR})(?![A-Za-z0-9-])")
#: A line that is an address and nothing else: ``  user@example.com``, ``<user@x.y>:``.
ADDRESS_LINE = re.compile(rf"^[ \t]*<?({ADDR})>?\s*:?[ \t]*$")


def address_in(text: str) -> str | None:
    found = ADDRESS.search(text[:MAX_LINE])
    return found.group(1).strip(".") if found else None


def addresses_in(text: str) -> list[str]:
    return [m.group(1).strip(".") for m in ADDRESS.finditer(text[:MAX_LINE * 4])]


def clean(text: str) -> str:
    """One line: whitespace runs squeezed."""
    return re.sub(r"\s+", " ", text).strip()[:MAX_LINE]


def span(lines: list[str], start: re.Pattern[str] | None,
         end: re.Pattern[str] | None = None) -> list[str]:
    """The lines after the first ``start`` line (all lines when ``start`` is None) up to
    the first ``end`` line; empty when ``start`` never matches."""
    first = 0
    if start is not None:
        at = next((i for i, line in enumerate(lines) if start.search(line)), None)
        if at is None:
            return []
        first = at + 1
    out = []
    for line in lines[first:]:
        if end is not None and end.search(line):
            break
        out.append(line)
    return out


@dataclass
class Block:
    """One recipient of a text bounce: its address and the lines that explain it."""

    address: str
    lines: list[str]

    @property
    def text(self) -> str:
        return clean(" ".join(self.lines))


def blocks(lines: Iterable[str], anchor: Callable[[str], str | None],
           stop: re.Pattern[str] | None = None, paragraph: bool = False) -> list[Block]:
    """Split lines into recipient blocks: ``anchor`` returns the address a line starts a
    block for (or None); the lines up to the next anchor are that block's. A repeated
    anchor of the same address continues its block. ``stop`` ends the reading; with
    ``paragraph``, a blank line ends a block (the lines after it are nobody's)."""
    found: list[Block] = []
    open_block = False
    for line in lines:
        line = line[:MAX_LINE]
        if stop is not None and stop.search(line):
            break
        address = anchor(line)
        if address is not None:
            open_block = True
            if found and found[-1].address.lower() == address.lower():
                continue
            if len(found) >= MAX_RECIPIENTS:
                break
            found.append(Block(address, []))
            rest = line.split(address, 1)[1].lstrip(">:)\"' \t")
            if rest:
                found[-1].lines.append(rest)
        elif not line.strip():
            if paragraph and found and found[-1].lines:
                open_block = False
        elif found and open_block and len(found[-1].lines) < MAX_BLOCK_LINES:
            found[-1].lines.append(line.strip())
    return found


_TO = re.compile(r"^To:[ \t]*(.{1,2000})$", re.I | re.M)


def returned_to(mail: Mail) -> list[str]:
    """The recipients the returned message was addressed to (its To field), for the
    reports that name none themselves: the attached header section, or the copy that
    follows the report in the text."""
    copy = mail.returned_headers or mail.body[len(mail.notification):][:50_000]
    found = _TO.search(copy)
    return addresses_in(found.group(1)) if found else []


_FIELD = {name: re.compile(rf"^[ \t]*{name}:[ \t]*(.{{1,2000}})$", re.I | re.M)
          for name in ("Message-ID", "From", "Subject")}
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,500}>")


def returned_message(mail: Mail) -> OriginalMessage | None:
    """The keys of the message that bounced (Message-ID, From, Subject): from the header
    section the bounce returns (RFC 3462 §1, its folded lines unfolded, RFC 5322 §2.2.3),
    or the copy that follows the report in the text."""
    copy = mail.returned_headers or mail.body[len(mail.notification):][:50_000]
    if mail.returned_headers:
        copy = re.sub(r"\n[ \t]+", " ", copy)

    def value(name: str) -> str | None:
        found = _FIELD[name].search(copy)
        return found.group(1).strip() if found else None

    mid = _MESSAGE_ID.search(value("Message-ID") or "")
    sender = address_in(value("From") or "")
    subject = value("Subject")
    original = OriginalMessage(mid.group(0) if mid else None, sender.lower() if sender else None,
                               decoded(subject) or None if subject else None)
    return original if any((original.message_id, original.sender, original.subject)) else None


def anchored(pattern: re.Pattern[str]) -> Callable[[str], str | None]:
    """A block anchor for :func:`blocks`: the address a line starting a block names (the
    pattern's first group), or None."""
    def anchor(line: str) -> str | None:
        found = pattern.match(line)
        return found.group(1) if found else None

    return anchor


#: The anchor most text bounces use: an address alone on its line.
address_line = anchored(ADDRESS_LINE)


_REMOTE = (
    re.compile(r"\bhost:?\s+([A-Za-z0-9][A-Za-z0-9.-]{0,252}\.[A-Za-z]{2,63})\.?\s*[\[(:]?"),
    re.compile(r"\b([A-Za-z0-9][A-Za-z0-9.-]{0,252}\.[A-Za-z]{2,63})\.?\s*\[[0-9a-fA-F.:]{3,45}\]"),
    re.compile(r"\bServer\s+([A-Za-z0-9][A-Za-z0-9.-]{0,252}\.[A-Za-z]{2,63})\b"),
)
_COMMAND = re.compile(
    r"(?:after|in reply to|did not like our|response to|while sending|in response to)\s+"
    r"(RCPT TO|MAIL FROM|RCPT|MAIL|DATA|end of data|final DATA|HELO|EHLO|connect|"
    r"STARTTLS|AUTH|QUIT)\b", re.IGNORECASE)


def remote_host(text: str) -> str | None:
    """The remote server a reason names: ``host mx.example.com [192.0.2.1]``,
    ``mx.example.com[192.0.2.1] said``, ``Server mx.example.com failed with``."""
    sample = text[:MAX_LINE]
    for pattern in _REMOTE:
        if found := pattern.search(sample):
            return normalize_host(found.group(1))
    return None


def command_in(text: str) -> str | None:
    """The SMTP command the remote server was answering (RFC 5321 §4.1), when said."""
    found = _COMMAND.search(text[:MAX_LINE])
    if not found:
        return None
    word = found.group(1).upper()
    if "DATA" in word:
        return "DATA"
    return {"RCPT TO": "RCPT", "MAIL FROM": "MAIL", "CONNECT": "CONNECT"}.get(word, word)


def statuses(found: list[Block], action: str, reporting: str | None = None,
             remote: str | None = None) -> list[RecipientStatus]:
    """One record per block: its text as the reason, the remote host and command it names."""
    return [RecipientStatus(b.address, action, None, b.text, reporting,
                            remote or remote_host(b.text), command=command_in(b.text))
            for b in found]
