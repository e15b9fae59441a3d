"""``Received`` trace fields (RFC 5321 §4.4) as hops, oldest first.

Each MTA prepends one, so the last header is the first hop. The grammar is honoured
loosely, as real MTAs write it: ``from`` (the HELO name, then a comment holding the
reverse-DNS name and the address), ``by``, ``with``, ``id``, and the date after the last
``;``. A header that cannot be read still yields a hop, with the problem recorded.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from mailtrace.intake.tiers import normalize_host

MAX_HOPS = 100
MAX_HEADER = 4096

_WORD = {
    name: re.compile(rf"(?:^|\s){name}\s+(\S+)", re.I) for name in ("from", "by", "with", "id")
}
_BRACKETED = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
_BARE_IP = re.compile(r"(?<![\w.:])((?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+)(?![\w.:])")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.[A-Za-z]{2,}$")


@dataclass(frozen=True)
class Hop:
    index: int  # 1 = the first hop (oldest)
    position: int  # index of its Received field among all header fields (0 = top)
    from_host: str | None  # as the client named itself (HELO/EHLO)
    from_rdns: str | None  # the name the receiver looked up, when it wrote one
    from_ip: str | None
    by_host: str | None
    protocol: str | None
    queue_id: str | None
    by_comment: str | None
    at: datetime | None
    raw: str
    problem: str | None = None


def strip_comments(text: str) -> tuple[str, list[tuple[int, str]]]:
    """Text without its (nested) comments, and the top-level comments with the offset
    (in the stripped text) where each stood."""
    out: list[str] = []
    comments: list[tuple[int, str]] = []
    depth = 0
    current: list[str] = []
    length = 0
    for char in text:
        if char == "(":
            depth += 1
            if depth == 1:
                current = []
                continue
        elif char == ")" and depth:
            depth -= 1
            if depth == 0:
                comments.append((length, "".join(current)))
                out.append(" ")
                length += 1
                continue
        if depth:
            current.append(char)
        else:
            out.append(char)
            length += 1
    return "".join(out), comments


def _ip(text: str) -> str | None:
    for found in (*_BRACKETED.finditer(text), *_BARE_IP.finditer(text)):
        try:
            return str(ipaddress.ip_address(found.group(1)))
        except ValueError:
            continue
    return None


def _date(text: str) -> tuple[datetime | None, str | None]:
    text = text.strip()
    if not text:
        return None, "no date"
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None, f"unreadable date {text[:60]!r}"
    if when.tzinfo is None:  # "-0000": the zone is unknown; RFC 5322 §3.3 says UTC
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC), None


def _queue_id(token: str) -> str | None:
    token = token.rstrip(";,")
    # Exchange Online writes its build number there ("id 15.20.8207.10"), not a queue id.
    return None if re.fullmatch(r"\d+(\.\d+){3}", token) else token


def parse_received(raw: str, index: int, position: int) -> Hop:
    value = re.sub(r"\s+", " ", raw[:MAX_HEADER]).strip()
    body, sep, date_text = value.rpartition(";")
    if not sep:
        body, date_text = value, ""
    at, problem = _date(date_text)
    stripped, comments = strip_comments(body)
    words = {name: pattern.search(stripped) for name, pattern in _WORD.items()}
    from_host = from_rdns = from_ip = by_comment = None
    if found := words["from"]:
        from_host = found.group(1)
        by_at = words["by"].start() if words["by"] else len(stripped)
        info = next((c for offset, c in comments if found.end() <= offset <= by_at), None)
        if info is not None:
            first = info.split()[0] if info.split() else ""
            name = first.rstrip(".")
            if _NAME.fullmatch(name) and not name.lower().startswith("helo="):
                from_rdns = normalize_host(name)
            from_ip = _ip(info)
        from_ip = from_ip or _ip(from_host)
    if found := words["by"]:
        by_comment = next((c for offset, c in comments if offset >= found.end()), None)
    if words["by"] is None and problem is None:
        problem = "no 'by' host"
    return Hop(
        index=index,
        position=position,
        from_host=from_host.strip("[]") if from_host else None,
        from_rdns=from_rdns,
        from_ip=from_ip,
        by_host=normalize_host(words["by"].group(1)) if words["by"] else None,
        protocol=words["with"].group(1) if words["with"] else None,
        queue_id=_queue_id(words["id"].group(1)) if words["id"] else None,
        by_comment=by_comment,
        at=at,
        raw=value,
        problem=problem,
    )


def hops(fields: list[tuple[str, str]]) -> list[Hop]:
    """The Received fields of a header list (top first, as written) as hops, oldest first."""
    received = [(pos, value) for pos, (name, value) in enumerate(fields)
                if name.lower() == "received"][:MAX_HOPS]
    received.reverse()
    return [parse_received(value, i + 1, pos) for i, (pos, value) in enumerate(received)]


def delays(chain: list[Hop]) -> list[float | None]:
    """Seconds since the previous dated hop (``None`` for the first, or when undated)."""
    out: list[float | None] = []
    previous: datetime | None = None
    for hop in chain:
        if hop.at is None:
            out.append(None)
            continue
        out.append(None if previous is None else round((hop.at - previous).total_seconds(), 3))
        previous = hop.at
    return out
