"""SMTP replies (RFC 5321 §4.2) with their enhanced status codes (RFC 3463): pure parsing.

A reply is one or more lines ``NNN-text`` ending with ``NNN text`` (or a bare ``NNN``).
Anything else — a line that does not start with three digits, codes that change inside
one reply, too many lines — is a protocol error, reported with what was received.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LINE = 4096  # RFC 5321 §4.5.3.1.5 says 512; real servers stay far below this
MAX_LINES = 100

_LINE = re.compile(r"^([2-5][0-9][0-9])(?:([ -])(.*))?$", re.DOTALL)
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")


class ReplyError(ValueError):
    """The peer sent something that is not an SMTP reply."""


@dataclass(frozen=True)
class Reply:
    code: int
    lines: tuple[str, ...]  # the text of each line, without code and separator
    enhanced: str | None = None  # "5.1.1" when the first line starts with one

    @property
    def text(self) -> str:
        return " ".join(line for line in self.lines if line)

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400

    @property
    def transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    def __str__(self) -> str:
        return f"{self.code} {self.text}".rstrip()


def decode(raw: bytes) -> str:
    """A reply or command line as text: CRLF removed, bytes that are not ASCII kept
    visible as escapes rather than raising."""
    return raw.rstrip(b"\r\n").decode("ascii", errors="backslashreplace")


def parse_line(text: str) -> tuple[int, bool, str]:
    """``(code, is_last, text)`` of one reply line."""
    m = _LINE.match(text)
    if m is None:
        raise ReplyError(f"not an SMTP reply line: {text[:120]!r}")
    return int(m.group(1)), m.group(2) != "-", m.group(3) or ""


def build(lines: list[str]) -> Reply:
    """A reply from its lines (each already known to parse; the last one is final)."""
    parsed = [parse_line(line) for line in lines]
    codes = {code for code, _, _ in parsed}
    if len(codes) != 1:
        raise ReplyError(f"reply lines carry different codes: {sorted(codes)}")
    texts = tuple(text for _, _, text in parsed)
    m = _ENHANCED.match(texts[0]) if texts else None
    enhanced = None
    if m is not None and m.group(1) == str(parsed[0][0])[0]:
        enhanced = ".".join(m.groups())
    return Reply(parsed[0][0], texts, enhanced)


def parse(text: str) -> Reply:
    """A whole reply from text (lines separated by CRLF or LF): for tests and fixtures."""
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
    if not lines:
        raise ReplyError("empty reply")
    if len(lines) > MAX_LINES:
        raise ReplyError(f"more than {MAX_LINES} reply lines")
    for line in lines[:-1]:
        if parse_line(line)[1]:
            raise ReplyError(f"reply continues after its last line: {line[:120]!r}")
    if not parse_line(lines[-1])[1]:
        raise ReplyError("reply ends in a continuation line")
    return build(lines)
