"""Live DNS with a proposed change laid over it, for ``precheck``.

Questions the change answers get the change's records, from whichever server is asked
(as every server will once the change is made); a CNAME the change adds is followed by a
resolver, as it would be; every other question goes on the wire through the live client
(and shares its answers). The answers name the change file as their server, so evidence
never passes a proposed record off as a live one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from mailtrace.clients.dns import DnsClient, DnsObservation, Outcome, Record, Server, normalize
from mailtrace.core.network import Endpoint

CHANGE_SERVER = Server("authoritative", "0.0.0.0", 0, "change-file.invalid")
_NOWHERE = Endpoint("0.0.0.0", 0)


def presentation(rdtype: str, data: str) -> str:
    """Record data as a server sends it: a TXT value (its strings joined, as the change
    file gives it) split into quoted strings of at most 255 octets (RFC 7208 §3.3)."""
    if rdtype != "TXT":
        return data
    try:
        raw = data.encode("latin-1")
    except UnicodeEncodeError:
        raw = data.encode("utf-8")
    strings = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
    import dns.rdataclass
    import dns.rdatatype
    import dns.rdtypes.ANY.TXT

    txt = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, strings)
    return str(txt.to_text())


class OverlaidDnsClient(DnsClient):
    def __init__(self, live: DnsClient, records: Mapping[tuple[str, str], tuple[str, ...]],
                 ttl: int = 300) -> None:
        super().__init__(list(live.resolvers), live.redirects, live.attempt_timeout,
                         live.trust_anchor)
        self.live = live
        self.ttl = ttl
        self.changed = {(normalize(name), rdtype.upper()): data
                        for (name, rdtype), data in records.items()}

    def _answer(self, qname: str, qtype: str, records: tuple[Record, ...]) -> DnsObservation:
        return DnsObservation(CHANGE_SERVER, _NOWHERE, qname, qtype,
                              Outcome.ANSWER if records else Outcome.NODATA, answer=records)

    async def query(self, server: Server, qname: str, qtype: str, deadline: float, *,
                    dnssec: bool = False, cd: bool = False) -> DnsObservation:
        qname, qtype = normalize(qname), qtype.upper()
        data = self.changed.get((qname, qtype))
        if data is not None:
            return self._answer(qname, qtype, tuple(
                Record(qname, qtype, self.ttl, presentation(qtype, d)) for d in data))
        alias = self.changed.get((qname, "CNAME"))
        if alias and qtype != "CNAME":
            cname = Record(qname, "CNAME", self.ttl, alias[0])
            if server.role != "resolver":  # a server gives the alias; a resolver follows it
                return self._answer(qname, qtype, (cname,))
            target = await self.query(server, alias[0], qtype, deadline, dnssec=dnssec, cd=cd)
            return dataclasses.replace(target, qname=qname, answer=(cname, *target.answer))
        self.queries_sent = self.live.queries_sent
        return await self.live.query(server, qname, qtype, deadline, dnssec=dnssec, cd=cd)
