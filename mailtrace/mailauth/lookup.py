"""DNS answers as the mail-authentication checks need them.

A :class:`Lookup` is any ``async (name, rdtype) -> Answer``; ``clients.dns_lookup`` asks
the resolvers of the project's DNS client (with a proposed change laid over it, for
``precheck``). Outcomes stay apart: a timeout or SERVFAIL is ``error``
(SPF's temperror), never "no record".
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from mailtrace.core.evidence import Observed

Status = Literal["answer", "nodata", "nxdomain", "error"]


@dataclass(frozen=True)
class Answer:
    name: str  # absolute, lowercase
    rdtype: str
    status: Status
    data: tuple[str, ...] = ()  # rdata text; TXT: the character-strings joined (RFC 7208 §3.3)
    ttl: int | None = None
    error: str | None = None
    source: str = ""  # which server, or "change file"
    chain: tuple[str, ...] = ()  # the names a CNAME chain led through, after the question


    @property
    def void(self) -> bool:
        """A "void lookup" (RFC 7208 §4.6.4): NXDOMAIN, or NOERROR with no answer."""
        return self.status in ("nodata", "nxdomain") or (self.status == "answer" and not self.data)

    def evidence(self) -> Observed:
        ev: dict[str, Any] = {"query": f"{self.name} {self.rdtype}", "status": self.status,
                              "answer": list(self.data), "server": self.source}
        if self.ttl is not None:
            ev["ttl"] = self.ttl
        if self.error:
            ev["error"] = self.error
        if self.chain:
            ev["cname_chain"] = list(self.chain)
        return Observed(ev)


Lookup = Callable[[str, str], Awaitable[Answer]]


#: A name of letters, digits, '-' and '_' labels of 1-63 octets, 255 octets in all on the
#: wire (RFC 1035 §2.3.4; with its final dot, the text is one octet shorter than the
#: wire): what dnspython reads and writes back unchanged. A fleet's names are all such,
#: each met once: they skip the parse.
_PLAIN = re.compile(r"(?=.{1,254}\Z)(?:[A-Za-z0-9_-]{1,63}\.)+\Z")


@lru_cache(maxsize=8192)
def valid_name(name: str) -> bool:
    """Can this name be asked at all (RFC 1035 §2.3.4: labels 1-63 octets, 255 in all)?"""
    if _PLAIN.match(name.rstrip(".") + "."):
        return True
    import dns.exception  # dnspython: imported when a name is read, not with the catalog
    import dns.name

    try:
        dns.name.from_text(name.rstrip(".") + ".")
    except (dns.exception.DNSException, UnicodeError, ValueError):
        return False
    labels = name.rstrip(".").split(".")
    return name.isascii() and all(labels) and bool(name.strip("."))


@lru_cache(maxsize=8192)
def absolute(name: str) -> str:
    """Absolute, lowercase, in DNS presentation form (a space in a label becomes \\032,
    as answers spell it)."""
    import dns.exception
    import dns.name

    text = name.lower().rstrip(".") + "."
    if _PLAIN.match(text):
        return text
    try:
        return dns.name.from_text(text).to_text().lower()
    except (dns.exception.DNSException, UnicodeError, ValueError):
        return text


@lru_cache(maxsize=8192)
def txt_text(rdata_text: str) -> str:
    """One TXT record's character-strings joined, bytes kept as latin-1 code points."""
    if rdata_text.startswith('"') and rdata_text.endswith('"') and "\\" not in rdata_text:
        # Presentation form without escapes (RFC 1035 §5.1): quoted printable strings,
        # one space apart; anything else is read by dnspython.
        strings = rdata_text[1:-1].split('" "')
        if not any('"' in s for s in strings):
            return "".join(strings)
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, rdata_text)
    return b"".join(rdata.strings).decode("latin-1")  # type: ignore[attr-defined]


