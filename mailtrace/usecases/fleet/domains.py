"""The domain list of a fleet, read one line at a time: memory does not grow with it.

A line is a domain (``contoso.com``), or ``domain,topology`` (CSV, RFC 4180 quoting) where
domains are verified against different topologies; the topology file is named relative
to the list's folder. Blank lines, ``#`` comments and a ``domain[,topology]`` header are
skipped. A line that cannot be read (not UTF-8, too long, not a domain name, too many
fields) is a :class:`BadLine` naming its number and why; the lines after it are read
on. Domain names are checked as host names (RFC 1123 §2.1: letters, digits and hyphens,
labels of 1 to 63 octets, 253 in all) with at least two labels; an internationalized
name is taken in its A-label form (RFC 5890 §2.3.2.1).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

#: A longer line is no domain line (a domain is at most 253 octets; a topology path, a
#: few hundred): it is reported, and read past without being held.
MAX_LINE = 4096
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_HEADERS = (["domain"], ["domain", "topology"])


@dataclass(frozen=True)
class DomainLine:
    line: int
    domain: str  # lowercase, A-labels, no final dot
    topology: str | None  # as the line names it (None: the default --topology)


@dataclass(frozen=True)
class BadLine:
    line: int
    text: str  # the line as read, shortened, for the report
    reason: str


def domain_name(text: str) -> str:
    """``text`` as a mail domain (lowercase, A-labels, no final dot); ValueError says why
    it is not one."""
    name = text.strip().rstrip(".").lower()
    if not name:
        raise ValueError("no domain")
    if "@" in name:
        raise ValueError("an address, not a domain (give the part after the @)")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("not a valid internationalized domain name") from None
    labels = name.split(".")
    if len(name) > 253:
        raise ValueError("longer than 253 characters")
    if len(labels) < 2:
        raise ValueError("a single label: a mail domain has at least two (example.com)")
    bad = next((label for label in labels if not _LABEL.fullmatch(label)), None)
    if bad is not None:
        raise ValueError(f"label {bad!r} is not a host name label (letters, digits, "
                         "hyphens; 1 to 63 characters)" if bad else "an empty label")
    return name


def parse_line(number: int, raw: bytes, first: bool = False) -> DomainLine | BadLine | None:
    """One line of the list; None for a blank line, a comment or (``first``: the first
    line that is neither) the header."""
    try:
        text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError:
        return BadLine(number, _shown(raw.decode("utf-8", "replace")), "not UTF-8 text")
    text = text.strip()
    if not text or text.startswith("#"):
        return None
    try:
        fields = [text]
        if "," in text or '"' in text:
            fields = [f.strip() for f in next(csv.reader([text], strict=True))]
    except csv.Error as exc:
        return BadLine(number, _shown(text), f"not a CSV line: {exc}")
    if first and [f.lower() for f in fields] in _HEADERS:
        return None
    if len(fields) > 2:
        return BadLine(number, _shown(text), f"{len(fields)} fields; expected domain or "
                       "domain,topology")
    try:
        domain = domain_name(fields[0])
    except ValueError as exc:
        return BadLine(number, _shown(text), str(exc))
    topology = fields[1] if len(fields) == 2 and fields[1] else None
    return DomainLine(number, domain, topology)


def _shown(text: str) -> str:
    text = text.replace("\r", "").replace("\n", "")
    return text if len(text) <= 120 else text[:117] + "..."


def read_lines(stream: BinaryIO) -> Iterator[DomainLine | BadLine]:
    """Every domain line and every bad line of ``stream``, in order, one line in memory
    at a time (a line longer than ``MAX_LINE`` is read past in pieces)."""
    number, content = 0, False
    while True:
        raw = stream.readline(MAX_LINE + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE + 1)) and not rest.endswith(b"\n"):
                pass
            yield BadLine(number, _shown(raw[:120].decode("utf-8", "replace")),
                          f"longer than {MAX_LINE} bytes: not a domain line")
            continue
        parsed = parse_line(number, raw, first=not content)
        if parsed is not None:
            content = True
            yield parsed
        elif not content and raw.strip() and not raw.lstrip().startswith(b"#"):
            content = True  # the header


def count_lines(stream: BinaryIO, chunk: int = 1 << 20) -> int:
    """The number of lines of a seekable list (for the progress line), read in chunks;
    the stream is put back where it was."""
    start = stream.tell()
    lines, last = 0, b"\n"
    while block := stream.read(chunk):
        lines += block.count(b"\n")
        last = block[-1:]
    stream.seek(start)
    return lines + (last != b"\n")
