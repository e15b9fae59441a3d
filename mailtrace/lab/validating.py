"""A validating resolver for the lab: what most public resolvers do with DNSSEC.

It resolves as :class:`~mailtrace.lab.dns_server.ForwardingResolver` does, always with
DNSSEC records, and validates the RRset at the question name from the lab root's key
(RFC 4035 §5; the chain walk is mailtrace's own, :mod:`mailtrace.clients.dnssec_validate`):
bogus answers become SERVFAIL (RFC 4035 §5.5), secure ones carry the AD bit when the
client asked for it (RFC 6840 §5.7), and a client that sets Checking Disabled gets the data
unvalidated (RFC 4035 §3.2.2) — which is how a bogus domain is told from a dead resolver.
The DNSKEY and DS sets of the lab's zones do not change during a run: they are kept.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from mailtrace.clients.dns import DnsObservation, Outcome, Record, Server, classify
from mailtrace.clients.dnssec import ChainObservation, ancestors
from mailtrace.clients.dnssec_validate import Security, validate
from mailtrace.clients.trust_anchor import TrustAnchor
from mailtrace.core.network import Endpoint
from mailtrace.lab.dns_server import OUR_PAYLOAD, ForwardingResolver, Resolution

_SELF = Server("resolver", "127.0.0.1", 0, "lab-validator")
_DNSSEC_TYPES = frozenset({dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3})


class ValidatingResolver(ForwardingResolver):
    def __init__(self, forwarders: Mapping[str, Sequence[tuple[str, int]]],
                 anchor: TrustAnchor, **kwargs: object) -> None:
        super().__init__(forwarders, **kwargs)  # type: ignore[arg-type]
        self.anchor = anchor
        self._kept: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], DnsObservation] = {}

    async def _answer(self, query: dns.message.Message, question: dns.rrset.RRset
                      ) -> dns.message.Message:
        if query.flags & dns.flags.CD or question.rdclass != dns.rdataclass.IN:
            response = await super()._answer(query, question)
            response.flags |= query.flags & dns.flags.CD
            return response
        response = dns.message.make_response(query, recursion_available=True,
                                             our_payload=OUR_PAYLOAD)
        wants_dnssec = bool(query.ednsflags & dns.flags.DO)
        if wants_dnssec:
            response.want_dnssec(True)
        result = await self._resolve(question.name, question.rdtype, True)
        verdict = validate(await self._chain(question.name, question.rdtype, result))
        if verdict.security is Security.BOGUS:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        response.set_rcode(result.rcode)
        def keep(rrset: dns.rrset.RRset) -> bool:
            return wants_dnssec or rrset.rdtype not in _DNSSEC_TYPES

        response.answer.extend(r for r in result.answer if keep(r))
        response.authority.extend(r for r in result.authority if keep(r))
        if verdict.security is Security.SECURE and (
                wants_dnssec or query.flags & dns.flags.AD):
            response.flags |= dns.flags.AD
        return response

    async def _chain(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType,
                     answer: Resolution) -> ChainObservation:
        names = ancestors(name.to_text())
        keys = {n: await self._kept_lookup(n, dns.rdatatype.DNSKEY) for n in names}
        ds = {n: await self._kept_lookup(n, dns.rdatatype.DS) for n in names if n != "."}
        soa = await self._kept_lookup(names[0], dns.rdatatype.SOA)
        return ChainObservation(names[0], dns.rdatatype.to_text(rdtype),
                                _observation(name, rdtype, answer), keys, ds, soa,
                                self.anchor, time.time())

    async def _kept_lookup(self, name: str, rdtype: dns.rdatatype.RdataType
                           ) -> DnsObservation:
        key = (dns.name.from_text(name), rdtype)
        if key not in self._kept:
            result = await self._resolve(key[0], rdtype, True)
            self._kept[key] = _observation(key[0], rdtype, result)
        return self._kept[key]


def _records(rrsets: Sequence[dns.rrset.RRset]) -> tuple[Record, ...]:
    return tuple(Record(r.name.to_text().lower(), dns.rdatatype.to_text(r.rdtype), r.ttl,
                        rdata.to_text()) for r in rrsets for rdata in r)


def _observation(name: dns.name.Name, rdtype: dns.rdatatype.RdataType,
                 result: Resolution) -> DnsObservation:
    """A resolution as the validator reads an observation."""
    message = dns.message.make_query(name, rdtype)
    message.flags |= dns.flags.QR
    message.set_rcode(result.rcode)
    message.answer.extend(result.answer)
    message.authority.extend(result.authority)
    outcome = classify(message) if result.rcode != dns.rcode.SERVFAIL else Outcome.SERVFAIL
    return DnsObservation(_SELF, Endpoint("127.0.0.1", 0), name.to_text().lower(),
                          dns.rdatatype.to_text(rdtype), outcome,
                          rcode=dns.rcode.to_text(result.rcode),
                          answer=_records(result.answer), authority=_records(result.authority))
