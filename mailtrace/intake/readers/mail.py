"""The bounce as every reader sees it: its header fields, its machine-readable delivery
status parts and its human-readable notification text, each decoded once.

The notification is what the reporting server wrote for people: the ``text/plain`` parts
(``text/html`` ones as text when there is no plain one) outside the returned message
(``message/rfc822``, ``text/rfc822-headers``, RFC 3462 §1 and RFC 3464 §2), or the body of
a single-part bounce. It is cut where a copy of the returned message begins, so a reader
never mistakes the original's header fields or body for the report. Everything is bounded:
at most :data:`MAX_TEXT` characters of notification and :data:`MAX_LINE` per line.
"""

from __future__ import annotations

import contextlib
import html
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message

MAX_TEXT = 200_000
MAX_LINE = 2000
MAX_PARTS = 200
MAX_DEPTH = 12

DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
FEEDBACK_TYPE = "message/feedback-report"
_RETURNED_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers",
                   "message/rfc822-headers", "message/global-headers", "message/partial")

# Lines that introduce the copy of the returned message in text bounces (Exim's
# deliver.c, qmail-send, Postfix, Sendmail, Gmail, Notes, and the like): everything from
# there on is the original message, not the report.
_RETURNED = re.compile(
    r"^[ \t]*(?:-{2,}\s*)?(?:"
    r"This is a copy of the message|Below this line is a copy of the message"
    r"|Original message(?: follows| headers| text)?\s*(?:[-:.].*)?$|Message header follows"
    r"|Message headers follow|The header of the original message is following"
    r"|Included is a copy of the message header|Unsent Message below|Unsent message follows"
    r"|Returned message|Undelivered Message Headers|Your message reads \(in part\)"
    r"|Headers of the original message|Original message header"
    r"|This is the original message|\|?-{5,}\s*Message text follows"
    r")",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Mail:
    """One bounce message, decoded for the readers."""

    msg: Message
    raw: str
    subject: str
    sender: str  # the From field, as written (lowercase)
    fields: dict[str, str]  # top-level header fields, lowercase names, first occurrence
    notification: str  # the human-readable report, cut before the returned message
    body: str  # the same texts, not cut (for the few readers that need what follows)
    dsn_texts: tuple[str, ...]  # the text of each delivery-status part
    content_types: tuple[str, ...]  # of every part, outermost first
    returned_headers: str = ""  # the returned message's header section, when attached

    def header(self, name: str) -> str:
        return self.fields.get(name.lower(), "")

    @property
    def lines(self) -> list[str]:
        return self.notification.splitlines()


def decoded(value: object) -> str:
    """A header field value with RFC 2047 encoded words decoded; never raises."""
    text = str(value or "")
    if "=?" in text:
        with contextlib.suppress(Exception):  # a broken encoded word: keep it as written
            text = str(make_header(decode_header(text)))
    return re.sub(r"\s*\r?\n[ \t]+", " ", text).strip()[:MAX_LINE]


def payload_text(part: Message) -> str:
    """A leaf part's content as text: transfer encoding and charset undone, leniently."""
    try:
        raw = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: keep the text as written
        raw = None
    if isinstance(raw, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return raw.decode(charset, errors="replace")
        except (LookupError, ValueError):
            return raw.decode("latin-1", errors="replace")
    payload = part.get_payload()
    return payload if isinstance(payload, str) else ""


_HIDDEN = re.compile(r"<(style|script)\b", re.I)


def _without_hidden(markup: str) -> str:
    """The markup without its ``<style>`` and ``<script>`` elements, in one pass: each is
    cut up to its closing tag (or to the end when it has none)."""
    out: list[str] = []
    at = 0
    low = markup.lower()
    while (found := _HIDDEN.search(markup, at)) is not None:
        out.append(markup[at:found.start()])
        end = low.find(f"</{found.group(1).lower()}", found.end())
        if end < 0:
            return "".join(out)
        at = low.find(">", end)
        at = len(markup) if at < 0 else at + 1
    out.append(markup[at:])
    return "".join(out)


def html_text(markup: str) -> str:
    """Visible text of an HTML part, well enough to find a bounce's lines. Tags are
    matched without crossing another ``<``, so hostile markup stays linear."""
    markup = _without_hidden(markup[:2_000_000])
    markup = re.sub(r"(?i)<\s*(br|p|/p|div|/div|tr|/tr|li|/li|/h\d|/table|hr)\b[^<>]*>",
                    "\n", markup)
    text = html.unescape(re.sub(r"<[^<>]*>", "", markup)).replace("\xa0", " ")
    return re.sub(r"[ \t]+", " ", text)


def cut_returned(text: str) -> str:
    """The report part of a text: everything before the returned message's copy."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if i > 0 and _RETURNED.match(line[:MAX_LINE]):
            return "\n".join(lines[:i])
    return text


def _leaves(msg: Message) -> list[tuple[Message, bool]]:
    """(part, inside a returned message) for every leaf and message part, bounded."""
    found: list[tuple[Message, bool]] = []

    def visit(part: Message, depth: int, returned: bool) -> None:
        if len(found) >= MAX_PARTS or depth > MAX_DEPTH:
            return
        ctype = part.get_content_type()
        found.append((part, returned))
        if ctype in DSN_TYPES or ctype == FEEDBACK_TYPE:
            return  # its sub-"messages" are field blocks, not parts
        payload = part.get_payload()
        if isinstance(payload, list):
            inner = returned or (ctype in _RETURNED_TYPES and depth > 0)
            for sub in payload:
                if isinstance(sub, Message):
                    visit(sub, depth + 1, inner)

    visit(msg, 0, False)
    return found


def dsn_text(part: Message) -> str:
    """A delivery-status part as text, its field blocks separated by blank lines."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return payload_text(part)
    blocks = []
    for sub in payload:
        if isinstance(sub, Message):
            head = "\n".join(f"{k}: {v}" for k, v in sub.items())
            rest = sub.get_payload()
            blocks.append(head + ("\n" + rest if isinstance(rest, str) and rest.strip() else ""))
    return "\n\n".join(blocks)


def _headers_of(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return "\n".join(f"{k}: {v}" for k, v in payload[0].items())[:MAX_TEXT]
    text = payload_text(part)
    end = text.find("\n\n")
    return text[: end if end >= 0 else MAX_TEXT]


def view(msg: Message, raw: str) -> Mail:
    """Decode a parsed message once for every reader."""
    fields: dict[str, str] = {}
    for name, value in msg.items():
        fields.setdefault(str(name).lower(), decoded(value))
    plain: list[str] = []
    marked: list[str] = []
    dsn: list[str] = []
    types: list[str] = []
    returned_headers = ""
    for part, returned in _leaves(msg):
        ctype = part.get_content_type()
        types.append(ctype)
        if returned:
            continue
        if ctype in DSN_TYPES:
            dsn.append(dsn_text(part)[:MAX_TEXT])
        elif ctype in _RETURNED_TYPES and part is not msg:
            returned_headers = returned_headers or _headers_of(part)
        elif part.is_multipart() or ctype.startswith("message/"):
            continue
        elif ctype == "text/html":
            marked.append(html_text(payload_text(part)))
        elif ctype.startswith("text/") or part is msg:
            disposition = str(part.get("Content-Disposition", "")).lower()
            if part is msg or not disposition.startswith("attachment") or not plain:
                plain.append(payload_text(part))
    texts = [t[:MAX_TEXT].replace("\r\n", "\n").replace("\r", "\n") for t in plain or marked]
    notification = "\n".join(cut_returned(t) for t in texts)[:MAX_TEXT]
    return Mail(
        msg=msg, raw=raw[:MAX_TEXT * 5],
        subject=fields.get("subject", ""),
        sender=fields.get("from", "").lower(),
        fields=fields,
        notification="\n".join(line[:MAX_LINE] for line in notification.split("\n")),
        body="\n".join(texts)[:MAX_TEXT],
        dsn_texts=tuple(dsn),
        content_types=tuple(types),
        returned_headers=returned_headers,
    )
