"""DNS answers as the mail-authentication checks need them, through the project's client.

A :class:`Lookup` is any ``async (name, rdtype) -> Answer``; :class:`DnsLookup` asks the
resolvers of a :class:`~mailtrace.clients.dns.DnsClient` (so the lab, ``--resolver`` and
``--connect-to`` all apply) and :class:`Overlay` answers some questions from a proposed
change first (``precheck``). Outcomes stay apart: a timeout or SERVFAIL is ``error``
(SPF's temperror), never "no record".
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from mailtrace.clients.dns import DnsClient, DnsObservation, Outcome

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

    def evidence(self) -> dict[str, Any]:
        ev: dict[str, Any] = {"query": f"{self.name} {self.rdtype}", "status": self.status,
                              "answer": list(self.data), "server": self.source}
        if self.ttl is not None:
            ev["ttl"] = self.ttl
        if self.error:
            ev["error"] = self.error
        if self.chain:
            ev["cname_chain"] = list(self.chain)
        return ev


Lookup = Callable[[str, str], Awaitable[Answer]]


def valid_name(name: str) -> bool:
    """Can this name be asked at all (RFC 1035 §2.3.4: labels 1-63 octets, 255 in all)?"""
    try:
        dns.name.from_text(name.rstrip(".") + ".")
    except (dns.exception.DNSException, UnicodeError, ValueError):
        return False
    labels = name.rstrip(".").split(".")
    return name.isascii() and all(labels) and bool(name.strip("."))


def absolute(name: str) -> str:
    """Absolute, lowercase, in DNS presentation form (a space in a label becomes \\032,
    as answers spell it)."""
    text = name.lower().rstrip(".") + "."
    try:
        return dns.name.from_text(text).to_text().lower()
    except (dns.exception.DNSException, UnicodeError, ValueError):
        return text


def txt_text(rdata_text: str) -> str:
    """One TXT record's character-strings joined, bytes kept as latin-1 code points."""
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, rdata_text)
    return b"".join(rdata.strings).decode("latin-1")  # type: ignore[attr-defined]


def cname_chain(obs: DnsObservation) -> tuple[str, ...]:
    chain: list[str] = []
    current = obs.qname
    for _ in range(16):
        alias = next((r for r in obs.answer if r.type == "CNAME" and r.name == current), None)
        if alias is None or absolute(alias.data) in chain:
            break
        current = absolute(alias.data)
        chain.append(current)
    return tuple(chain)


def from_observation(obs: DnsObservation, rdtype: str) -> Answer:
    name = absolute(obs.qname)
    source = obs.server.label
    chain = cname_chain(obs) if rdtype != "CNAME" else ()
    if obs.outcome is Outcome.NXDOMAIN:
        return Answer(name, rdtype, "nxdomain", source=source, ttl=_negative_ttl(obs),
                      chain=chain)
    if obs.outcome is Outcome.NODATA:
        return Answer(name, rdtype, "nodata", source=source, ttl=_negative_ttl(obs),
                      chain=chain)
    if obs.outcome is not Outcome.ANSWER:
        return Answer(name, rdtype, "error", error=obs.error or obs.outcome.value, source=source)
    records = obs.records(rdtype)
    if not records:
        return Answer(name, rdtype, "nodata", source=source, chain=chain)
    try:
        data = tuple(txt_text(r.data) if rdtype == "TXT" else r.data for r in records)
    except Exception as exc:  # a TXT the server sent that does not parse back
        return Answer(name, rdtype, "error", error=f"unreadable answer: {exc}", source=source)
    return Answer(name, rdtype, "answer", data, min(r.ttl for r in records), source=source,
                  chain=chain)


def _negative_ttl(obs: DnsObservation) -> int | None:
    soa = obs.authority_records("SOA")
    return soa[0].ttl if soa else None


@dataclass
class DnsLookup:
    """Recursive lookups through the client's resolvers, within one deadline."""

    client: DnsClient
    deadline: float

    async def __call__(self, name: str, rdtype: str) -> Answer:
        if not valid_name(name):
            return Answer(name.lower(), rdtype, "error", error="not a valid domain name")
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return Answer(absolute(name), rdtype, "error", error="out of time")
        obs = await self.client.lookup(absolute(name), rdtype, self.deadline)
        return from_observation(obs, rdtype)


@dataclass
class Overlay:
    """A proposed change laid over live DNS: its records answer first (a CNAME it adds is
    followed, as a resolver would)."""

    base: Lookup
    records: Mapping[tuple[str, str], tuple[str, ...]]  # () : the RRset removed
    ttl: int = 300

    async def __call__(self, name: str, rdtype: str) -> Answer:
        key = (absolute(name), rdtype.upper())
        if key in self.records:
            data = self.records[key]
            if not data:
                return Answer(key[0], key[1], "nodata", source="change file")
            return Answer(key[0], key[1], "answer", data, self.ttl, source="change file")
        alias = self.records.get((key[0], "CNAME"))
        if alias and rdtype.upper() != "CNAME":
            target = await self(alias[0], rdtype)
            return Answer(key[0], key[1], target.status, target.data, target.ttl,
                          target.error, target.source, (absolute(alias[0]), *target.chain))
        return await self.base(name, rdtype)
