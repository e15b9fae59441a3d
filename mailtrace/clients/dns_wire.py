"""DNS messages on the wire for the DNS client's common case, without dnspython's objects.

A fleet asks tens of thousands of questions: building a dnspython message for each and
parsing each reply into rdata objects costs more CPU than everything else a verification
does. The common case is small: a query with one question and EDNS(0) (RFC 1035 §4.1,
RFC 6891 §6), and a reply whose records are A, AAAA, NS, CNAME, PTR, MX, TXT or SOA
(RFC 1035 §3.3, RFC 3596). For these, :func:`query_wire` writes the bytes and
:func:`read_reply` reads the reply into the client's own records, with their text exactly
as dnspython presents it (names escaped as in RFC 1035 §5.1, TXT strings quoted; records
grouped into RRsets with the smallest TTL of the set and duplicates dropped, as dnspython
reads them). Anything else — another type, DNSSEC records, a malformed or unusual
message — gives None, and the client reads it with dnspython as before: what it
observes never depends on which reader read it (``tests/clients/test_dns_wire.py``
compares both on generated messages).
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class Record:
    """One resource record as read (RFC 1035 §4.1.3): owner, type, TTL, presentation data.
    Defined here, with the reader that makes most of them; ``clients.dns`` exports it."""

    name: str
    type: str
    ttl: int
    data: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "ttl": self.ttl, "data": self.data}

#: Types read here (value -> name); any other type goes to dnspython.
TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA"}
TYPE_CODES = {name: code for code, name in TYPES.items()}
#: Types whose embedded names compare case-insensitively (RFC 4034 §6.2).
_NAMED = {2, 5, 6, 12, 15}
#: RFC 2181 §10.1: an RRset of these holds one record (dnspython keeps the last).
_SINGLETONS = {5, 6}
_OPT = 41
_IN = 1
_MAX_HOPS = 16  # compression pointers followed in one name (as dnspython)
_ESCAPED_NAME = frozenset(b'"().;\\@$')
_ESCAPED_TEXT = frozenset(b'"\\')
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")


class _Decline(Exception):
    """Not this reader's case: dnspython reads the message."""


@dataclass(frozen=True)
class Question:
    name: str  # absolute, lowercase, presentation form
    rdtype: int
    rdclass: int


@dataclass(frozen=True)
class Reply:
    """A reply as the client reads it (either reader gives this)."""

    id: int
    flags: int
    ednsflags: int  # the OPT record's TTL field; 0 without EDNS (RFC 6891 §6.1.3)
    question: tuple[Question, ...]
    answer: tuple[Record, ...]
    authority: tuple[Record, ...]
    additional: tuple[Record, ...]

    @property
    def rcode(self) -> int:
        """With EDNS, the upper eight bits of a 12-bit rcode are in the OPT record."""
        return (self.flags & 0x000F) | ((self.ednsflags >> 20) & 0xFF0)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0x0F


def plain_name(name: str) -> bool:
    """A name this module writes itself: absolute, no escapes, labels of 1 to 63 octets,
    255 octets in all."""
    if not name.endswith(".") or "\\" in name or not name.isascii():
        return False
    if name == ".":
        return True
    labels = name[:-1].split(".")
    return all(0 < len(label) < 64 for label in labels) and len(name) + 1 <= 255


def _name_wire(name: str) -> bytes:
    if name == ".":
        return b"\x00"
    out = bytearray()
    for label in name[:-1].split("."):
        raw = label.encode("ascii")
        out.append(len(raw))
        out += raw
    out.append(0)
    return bytes(out)


def query_wire(qname: str, qtype: str, *, recursion: bool, ad: bool, cd: bool,
               dnssec: bool, payload: int = 1232) -> tuple[int, bytes] | None:
    """(id, wire) of a query with one question and EDNS(0), as dnspython's make_query
    writes it; None when the name or type is not this module's case."""
    code = TYPE_CODES.get(qtype)
    if code is None or not plain_name(qname):
        return None
    ident = secrets.randbits(16)
    flags = (0x0100 if recursion else 0) | (0x0020 if ad else 0) | (0x0010 if cd else 0)
    opt = b"\x00" + struct.pack("!HHIH", _OPT, payload, 0x8000 if dnssec else 0, 0)
    return ident, (_HEADER.pack(ident, flags, 1, 0, 0, 1) + _name_wire(qname)
                   + struct.pack("!HH", code, _IN) + opt)


@lru_cache(maxsize=8192)
def _label_text(label: bytes) -> str:
    if label.isalnum() or (label.replace(b"-", b"").replace(b"_", b"").isalnum()
                           and label.isascii()):
        return label.decode("ascii")
    out = []
    for c in label:
        if c in _ESCAPED_NAME:
            out.append("\\" + chr(c))
        elif 0x20 < c < 0x7F:
            out.append(chr(c))
        else:
            out.append(f"\\{c:03d}")
    return "".join(out)


class _Reader:
    def __init__(self, wire: bytes) -> None:
        self.wire = wire
        self.pos = 0

    def need(self, size: int, end: int) -> None:
        if self.pos + size > end:
            raise _Decline

    def name(self, end: int) -> tuple[str, bytes]:
        """(presentation text, lowercase wire form) of the name at ``pos``; ``end``
        bounds the reading before any pointer (the rdata's end, or the message's)."""
        wire = self.wire
        pos, limit, start = self.pos, end, self.pos
        biggest = self.pos
        after: int | None = None
        labels: list[bytes] = []
        length = 1
        hops = 0
        while True:
            if pos >= limit:
                raise _Decline
            count = wire[pos]
            if count == 0:
                pos += 1
                break
            if count < 64:
                if pos + 1 + count > limit:
                    raise _Decline
                labels.append(wire[pos + 1:pos + 1 + count])
                length += count + 1
                pos += 1 + count
                continue
            if count < 192 or pos + 2 > limit:
                raise _Decline
            target = ((count & 0x3F) << 8) | wire[pos + 1]
            if after is None:
                after = pos + 2
            hops += 1
            if target >= biggest or hops > _MAX_HOPS:
                raise _Decline
            biggest = target
            limit, pos, start = start, target, target
        if length > 255:
            raise _Decline
        self.pos = after if after is not None else pos
        if not labels:
            return ".", b"\x00"
        text = ".".join(map(_label_text, labels)) + "."
        return text, b"".join(len(label).to_bytes(1, "big") + label
                              for label in labels).lower() + b"\x00"

    def u16(self, end: int) -> int:
        self.need(2, end)
        value = (self.wire[self.pos] << 8) | self.wire[self.pos + 1]
        self.pos += 2
        return value


def _text_string(raw: bytes) -> str:
    if raw.isascii():
        text = raw.decode("ascii")
        if text.isprintable() and '"' not in text and "\\" not in text:
            return '"' + text + '"'
    out = []
    for c in raw:
        if c in _ESCAPED_TEXT:
            out.append("\\" + chr(c))
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append(f"\\{c:03d}")
    return '"' + "".join(out) + '"'


def _rdata(reader: _Reader, rdtype: int, end: int) -> tuple[str, bytes]:
    """(presentation text, comparison key) of one record's data, ending exactly at
    ``end``; the key compares as dnspython compares rdata (names case-insensitively,
    RFC 4034 §6.2)."""
    wire = reader.wire
    if rdtype == 1:
        if end - reader.pos != 4:
            raise _Decline
        raw = wire[reader.pos:end]
        reader.pos = end
        return ".".join(str(b) for b in raw), raw
    if rdtype == 28:
        if end - reader.pos != 16:
            raise _Decline
        import dns.ipv6

        raw = wire[reader.pos:end]
        reader.pos = end
        return dns.ipv6.inet_ntoa(raw), raw
    if rdtype in (2, 5, 12):
        return reader.name(end)
    if rdtype == 15:
        preference = reader.u16(end)
        text, key = reader.name(end)
        return f"{preference} {text}", preference.to_bytes(2, "big") + key
    if rdtype == 6:
        mname, mkey = reader.name(end)
        rname, rkey = reader.name(end)
        reader.need(20, end)
        numbers = wire[reader.pos:reader.pos + 20]
        reader.pos += 20
        return (f"{mname} {rname} " + " ".join(map(str, struct.unpack("!IIIII", numbers))),
                mkey + rkey + numbers)
    if rdtype == 16:
        strings = []
        while reader.pos < end:
            size = wire[reader.pos]
            if reader.pos + 1 + size > end:
                raise _Decline
            strings.append(wire[reader.pos + 1:reader.pos + 1 + size])
            reader.pos += 1 + size
        if not strings:
            raise _Decline  # dnspython refuses a TXT record without a string
        return (" ".join(map(_text_string, strings)),
                b"".join(len(s).to_bytes(1, "big") + s for s in strings))
    raise _Decline


def _options_fit(wire: bytes, start: int, end: int) -> bool:
    """EDNS options dnspython reads without a doubt (RFC 6891 §6.1.2): NSID, padding,
    and a cookie of a valid length (RFC 7873 §4)."""
    pos = start
    while pos < end:
        if pos + 4 > end:
            return False
        code, length = struct.unpack_from("!HH", wire, pos)
        pos += 4 + length
        if pos > end:
            return False
        if code == 10 and not (length == 8 or 16 <= length <= 40):
            return False
        if code not in (3, 10, 12):
            return False
    return True


class _RRset:
    """Records of one owner and type, as dnspython gathers them: the first owner's
    spelling, the smallest TTL, duplicates dropped, one record for a singleton type."""

    __slots__ = ("owner", "rdtype", "records", "ttl")

    def __init__(self, owner: str, rdtype: int, ttl: int) -> None:
        self.owner, self.rdtype, self.ttl = owner, rdtype, ttl
        self.records: list[tuple[str, bytes]] = []

    def add(self, data: str, key: bytes, ttl: int) -> None:
        self.ttl = min(self.ttl, ttl)
        if self.rdtype in _SINGLETONS:
            self.records = [(data, key)]
        elif all(k != key for _, k in self.records):
            self.records.append((data, key))


def _section(reader: _Reader, count: int, additional: bool,
             edns: list[int]) -> tuple[Record, ...]:
    sets: dict[tuple[bytes, int], _RRset] = {}
    size = len(reader.wire)
    for _ in range(count):
        owner, owner_key = reader.name(size)
        reader.need(10, size)
        rdtype, rdclass, ttl, rdlength = _RR.unpack_from(reader.wire, reader.pos)
        reader.pos += 10
        end = reader.pos + rdlength
        if end > size:
            raise _Decline
        if rdtype == _OPT:
            if not additional or edns or owner_key != b"\x00" or not _options_fit(
                    reader.wire, reader.pos, end):
                raise _Decline
            edns.append(ttl)
            reader.pos = end
            continue
        if rdclass != _IN or rdtype not in TYPES:
            raise _Decline
        data, key = _rdata(reader, rdtype, end)
        if reader.pos != end:
            raise _Decline
        if ttl > 0x7FFFFFFF:
            ttl = 0  # RFC 2181 §8: a TTL with the top bit set is taken as zero
        rrset = sets.get((owner_key, rdtype))
        if rrset is None:
            rrset = sets[(owner_key, rdtype)] = _RRset(owner.lower(), rdtype, ttl)
        rrset.add(data, key, ttl)
    return tuple(Record(r.owner, TYPES[r.rdtype], r.ttl, data)
                 for r in sets.values() for data, _ in r.records)


def read_reply(wire: bytes) -> Reply | None:
    """The reply, read when it is this module's case (a QUERY reply with at most one
    question, records of ``TYPES`` in class IN, at most one OPT record in the additional
    section, nothing after the last record); None otherwise."""
    if len(wire) < 12:
        return None
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire, 0)
    if (flags >> 11) & 0x0F or qdcount > 1:
        return None
    reader = _Reader(wire)
    reader.pos = 12
    try:
        question: tuple[Question, ...] = ()
        if qdcount:
            _, qkey = reader.name(len(wire))
            reader.need(4, len(wire))
            qtype, qclass = struct.unpack_from("!HH", wire, reader.pos)
            reader.pos += 4
            question = (Question(_key_text(qkey), qtype, qclass),)
        edns: list[int] = []
        answer = _section(reader, ancount, False, edns)
        authority = _section(reader, nscount, False, edns)
        additional = _section(reader, arcount, True, edns)
    except (_Decline, IndexError, struct.error):
        return None
    if reader.pos != len(wire):
        return None  # trailing bytes: dnspython says what they are
    return Reply(ident, flags, edns[0] if edns else 0, question, answer, authority,
                 additional)


def _key_text(key: bytes) -> str:
    """A question name for comparison: lowercase labels, absolute (escapes kept)."""
    labels, pos = [], 0
    while key[pos]:
        labels.append(key[pos + 1:pos + 1 + key[pos]])
        pos += 1 + key[pos]
    return ".".join(map(_label_text, labels)) + "." if labels else "."


def answers(reply: Reply, ident: int, qname: str, qtype: int) -> bool:
    """Is ``reply`` the reply to our query (dnspython's ``Message.is_response``): a
    response, same id and opcode, and the same question — an error rcode may come with
    none."""
    if not reply.flags & 0x8000 or reply.id != ident or reply.opcode != 0:
        return False
    if reply.rcode in (1, 2, 4, 5) and not reply.question:
        return True
    ours = (qname.lower(), qtype, _IN)
    return [(q.name, q.rdtype, q.rdclass) for q in reply.question] == [ours]
