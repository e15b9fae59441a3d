"""Read a bounce or a header set from a file or stdin, bounded, and refuse non-email.

Memory stays bounded whatever the input: a file larger than the cap is refused from its
size before it is opened, and a stream is read at most one byte past the cap. For
``headers`` only the header section is needed, so a large message is read up to the
blank line that ends its header section (RFC 5322 §2.1) and no further.
"""

from __future__ import annotations

import email
import email.message
import os
import re
import stat
import sys
from email import policy
from typing import BinaryIO

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
MAX_HEADER_BYTES = 1024 * 1024
_CHUNK = 64 * 1024

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Outlook .msg (a compound file)
_SIGNATURES = {
    _OLE: "an Outlook .msg file: in Outlook, save it as .eml (or copy the headers from "
          "File > Properties > Internet headers) and pass that",
    b"PK\x03\x04": "a zip archive, not an email message",
    b"%PDF": "a PDF document, not an email message",
    b"\x1f\x8b": "a gzip archive, not an email message",
}


class EvidenceError(Exception):
    """Input that cannot be read as evidence: one readable line (a usage error, exit 2)."""


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MiB"


def _open(path: str, limit: int, header_only: bool) -> tuple[BinaryIO, str]:
    if path == "-":
        return sys.stdin.buffer, "stdin"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise EvidenceError(f"{path}: no such file") from None
    except OSError as exc:
        raise EvidenceError(f"{path}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise EvidenceError(f"{path}: is a directory, expected an .eml or text file")
    if stat.S_ISREG(info.st_mode) and info.st_size > limit and not header_only:
        raise EvidenceError(
            f"{path}: {info.st_size} bytes is more than the {_mib(limit)} this reads; "
            "a bounce is small: save the NDR without the returned message's attachments"
        )
    try:
        return open(path, "rb"), path
    except OSError as exc:
        raise EvidenceError(f"{path}: {exc.strerror}") from None


def _header_end(data: bytes) -> int:
    """Offset just past the blank line ending the header section, or -1."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
    return min(ends) if ends else -1


def read_bytes(path: str, *, header_only: bool = False, limit: int | None = None) -> bytes:
    """The raw input: the whole message (at most ``limit`` bytes) or, with
    ``header_only``, its header section (at most ``limit`` bytes)."""
    cap = limit if limit is not None else MAX_HEADER_BYTES if header_only else MAX_MESSAGE_BYTES
    stream, name = _open(path, cap, header_only)
    try:
        if not header_only:
            data = stream.read(cap + 1)
            if len(data) > cap:
                raise EvidenceError(f"{name}: more than {_mib(cap)} of input; refused")
            return data
        buf = bytearray()
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                return bytes(buf)
            buf += chunk
            if not buf.startswith((b"\xff\xfe", b"\xfe\xff")):
                end = _header_end(bytes(buf[: cap + 4]))
                if end >= 0:
                    return bytes(buf[:end])
            if len(buf) > cap:
                raise EvidenceError(
                    f"{name}: no end of the header section within the first {_mib(cap)}; "
                    "this is not a header set (refused)"
                )
    except OSError as exc:
        raise EvidenceError(f"{name}: {exc.strerror or exc}") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def to_text(data: bytes, name: str = "input") -> str:
    """Bytes as text: UTF-16 with a BOM (what some Windows tools save) or UTF-8, with
    Latin-1 for stray 8-bit bytes. Binary input is refused with what it looks like."""
    for signature, what in _SIGNATURES.items():
        if data.startswith(signature):
            raise EvidenceError(f"{name}: {what}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise EvidenceError(f"{name}: broken UTF-16 text") from None
    else:
        data = data.removeprefix(b"\xef\xbb\xbf")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    # One line ending for every parser: files saved on Windows end lines with CRLF.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise EvidenceError(f"{name}: empty input")
    controls = sum(1 for c in text[:65536] if c < " " and c not in "\t\r\n\f")
    if "\x00" in text or controls > max(8, len(text[:65536]) // 100):
        raise EvidenceError(f"{name}: binary data, not an email message or bounce text")
    return text


#: The separator line of an mbox file (RFC 4155 §2): "From ", the envelope sender and a
#: date, at the start of a line, followed by the message's first header field.
_FROM_LINE = re.compile(r"^From \S{1,500} +.{0,200}\d{4}[^\n]{0,40}\n(?=[A-Za-z][\w-]{0,76}:)",
                        re.M)
MAX_MESSAGES = 100


def split_mbox(text: str) -> list[str]:
    """The messages of an mbox file, in order; a single message is a list of one."""
    if not text.startswith("From "):
        return [text]
    starts = [m.start() for m in _FROM_LINE.finditer(text)][:MAX_MESSAGES]
    if not starts or starts[0] != 0:
        return [text]
    ends = [*starts[1:], len(text)]
    return [text[a:b] for a, b in zip(starts, ends, strict=True) if text[a:b].strip()]


#: A Content-Type parameter written on a line of its own, without the folding whitespace
#: RFC 5322 §2.2.3 requires (seen in Apache James and other Java mailers' bounces).
_UNFOLDED_PARAMETER = re.compile(
    r"(?im)^(content-type:[^\n]{0,500};[ \t]*\n)((?:boundary|charset|name|report-type)=)")
_BOUNDARY = re.compile(r"(?i)\bboundary=\s{0,5}\"?([^\";\s]{1,200})")
MAX_BOUNDARIES = 20
MAX_DELIMITERS = 100  # indented delimiter lines repaired per boundary (a bounce has a few)
MAX_REPAIRED = 1024 * 1024  # a message is parsed twice only if it is no bigger than this


def _unsplit(msg: email.message.Message) -> bool:
    """Is a multipart part left unsplit (its body one string: no delimiter was found)?"""
    return any(part.get_content_maintype() == "multipart" and not part.is_multipart()
               for part in msg.walk())


def _dedent_delimiters(text: str) -> str:
    """Boundary delimiter lines written indented, moved to the start of their line
    (RFC 2046 §5.1.1), a bounded number of them."""
    for boundary in dict.fromkeys(_BOUNDARY.findall(text[:1_000_000])[:MAX_BOUNDARIES]):
        indented = re.compile(rf"(?m)^[ \t]+(--{re.escape(boundary)}(?:--)?)[ \t]*$")
        text = indented.sub(r"\1", text, count=MAX_DELIMITERS)
    return text


def parse_message(text: str) -> email.message.Message:
    """Parse leniently (compat32 copes with broken input; defects are recorded, never
    raised). Leading blank lines, as a paste often has, are dropped. Two MIME slips real
    bounces make are undone so their parts split: a Content-Type parameter left on a line
    of its own (Apache James and other Java mailers), and boundary delimiters indented."""
    text = _UNFOLDED_PARAMETER.sub(r"\1\t\2", text.lstrip("\r\n"))
    msg = email.message_from_string(text, policy=policy.compat32)
    if len(text) <= MAX_REPAIRED and _unsplit(msg):
        repaired = _dedent_delimiters(text)
        if repaired != text:
            msg = email.message_from_string(repaired, policy=policy.compat32)
    return msg
