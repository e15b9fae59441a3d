"""Signed zones in memory, answered as a resolver would with DO and CD set: the chains of
trust the DNSSEC validator is tested on, without a socket.

``World`` holds zones by origin (signed with :class:`mailtrace.lab.dnssec.LabSigner` or
hand-edited after signing, which is how a bad signature, a loop or hostile key sets are
made); :meth:`World.chain` builds the :class:`ChainObservation` that
:func:`mailtrace.clients.dnssec.collect_chain` would for a name.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone

from mailtrace.clients.dns import DnsObservation, Outcome, Record, Server
from mailtrace.clients.dnssec import ChainObservation, ancestors
from mailtrace.clients.trust_anchor import TrustAnchor
from mailtrace.core.network import Endpoint
from mailtrace.lab.dnssec import LabSigner, SigningFault

RESOLVER = Server("resolver", "127.0.0.1", 53)


def zone(origin: str, text: str) -> dns.zone.Zone:
    return dns.zone.from_text(f"$ORIGIN {origin}\n$TTL 300\n{text}", origin=origin,
                              relativize=False)


def _records(rrsets: Iterable[tuple[dns.name.Name, dns.rdataset.Rdataset]]
             ) -> tuple[Record, ...]:
    return tuple(Record(name.to_text().lower(), dns.rdatatype.to_text(rds.rdtype), rds.ttl,
                        rdata.to_text())
                 for name, rds in rrsets for rdata in rds)


class World:
    def __init__(self, zones: Mapping[str, dns.zone.Zone], anchor: TrustAnchor,
                 signer: LabSigner | None = None) -> None:
        self.zones = {dns.name.from_text(o): z for o, z in zones.items()}
        self.anchor = anchor
        self.signer = signer  # the keys, to sign an edited RRset again

    @classmethod
    def signed(cls, texts: Mapping[str, str],
               faults: Mapping[str, SigningFault] | None = None) -> World:
        """Zones from master-file text, signed children first."""
        signer = LabSigner(texts, faults)
        zones = {o: zone(o, t) for o, t in texts.items()}
        for origin in sorted(zones, key=lambda o: -len(dns.name.from_text(o))):
            signer.sign(zones[origin])
        return cls(zones, signer.trust_anchor, signer)

    def _zone_for(self, name: dns.name.Name, rdtype: int) -> dns.zone.Zone | None:
        found = [o for o in self.zones if name.is_subdomain(o)]
        if rdtype == dns.rdatatype.DS:  # parent-side data (RFC 4035 §3.1.4.1)
            found = [o for o in found if o != name] or found
        return self.zones[max(found, key=len)] if found else None

    def answer(self, qname: str, qtype: str) -> DnsObservation:
        name = dns.name.from_text(qname)
        rdtype = dns.rdatatype.from_text(qtype)
        z = self._zone_for(name, rdtype)

        def obs(outcome: Outcome, answer: tuple[Record, ...] = (),
                authority: tuple[Record, ...] = ()) -> DnsObservation:
            rcode = "NXDOMAIN" if outcome is Outcome.NXDOMAIN else "NOERROR"
            return DnsObservation(RESOLVER, Endpoint("127.0.0.1", 53),
                                  name.to_text().lower(), qtype, outcome, rcode=rcode,
                                  answer=answer, authority=authority)

        if z is None:
            return obs(Outcome.NXDOMAIN)
        assert z.origin is not None

        def with_sigs(owner: dns.name.Name, rds: dns.rdataset.Rdataset
                      ) -> list[tuple[dns.name.Name, dns.rdataset.Rdataset]]:
            out = [(owner, rds)]
            sigs = z.get_rdataset(owner, dns.rdatatype.RRSIG, rds.rdtype)
            if sigs is not None:
                out.append((owner, sigs))
            return out

        soa = z.get_rdataset(z.origin, dns.rdatatype.SOA)
        assert soa is not None
        negative = _records(with_sigs(z.origin, soa))
        node = z.get_node(name)
        if node is not None:
            rds = node.get_rdataset(dns.rdataclass.IN, rdtype)
            if rds is not None:
                return obs(Outcome.ANSWER, _records(with_sigs(name, rds)))
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is not None:
                return obs(Outcome.ANSWER, _records(with_sigs(name, cname)))
            return obs(Outcome.NODATA, authority=negative)
        if any(n.is_subdomain(name) for n in z.nodes):
            return obs(Outcome.NODATA, authority=negative)  # an empty non-terminal
        return obs(Outcome.NXDOMAIN, authority=negative)

    def chain(self, name: str, rdtype: str, at: float | None = None,
              anchor: TrustAnchor | None = None) -> ChainObservation:
        names = ancestors(name)
        return ChainObservation(
            name=names[0], rdtype=rdtype, answer=self.answer(names[0], rdtype),
            dnskey={n: self.answer(n, "DNSKEY") for n in names},
            ds={n: self.answer(n, "DS") for n in names if n != "."},
            soa=self.answer(names[0], "SOA"), anchor=anchor or self.anchor,
            at=time.time() if at is None else at)

    def resign(self, origin: str, owner: str, rdtype: str, ksk: bool = False) -> None:
        """Sign one RRset again with its zone's zone-signing (or key-signing) key, as a
        zone's own operator would after editing it."""
        import dns.dnssec

        assert self.signer is not None
        z = self.zones[dns.name.from_text(origin)]
        assert z.origin is not None
        keys = self.signer.keys[z.origin.to_text()]
        private, public = keys.ksk if ksk else keys.zsk
        rds = z.get_rdataset(owner, rdtype)
        assert rds is not None
        sig = dns.dnssec.sign((dns.name.from_text(owner), rds), private, z.origin, public,
                              lifetime=86400)
        z.replace_rdataset(owner, dns.rdataset.from_rdata_list(rds.ttl, [sig]))

    def edit(self, origin: str, owner: str, rdtype: str, *records: str,
             covers: str | None = None, ttl: int = 300) -> None:
        """Replace one RRset after signing (an RRSIG set names the type it covers)."""
        z = self.zones[dns.name.from_text(origin)]
        name = dns.name.from_text(owner)
        kind = dns.rdatatype.from_text(rdtype)
        covered = dns.rdatatype.from_text(covers) if covers else dns.rdatatype.NONE
        if not records:
            z.delete_rdataset(name, kind, covered)
            return
        rds = dns.rdataset.from_text_list(dns.rdataclass.IN, kind, ttl, list(records))
        z.replace_rdataset(name, rds)


#: A small internet: the root, com., a signed contoso.com, an unsigned outlook.com.
ROOT = """@ IN SOA a.root-servers.net. nstld.root. 1 1800 900 604800 86400
@ IN NS a.root-servers.net.
a.root-servers.net. IN A 127.0.8.8
com. IN NS a.gtld-servers.com.
a.gtld-servers.com. IN A 127.0.8.1
"""
COM = """@ IN SOA a.gtld-servers.com. nstld.com. 1 1800 900 604800 86400
@ IN NS a.gtld-servers.com.
contoso IN NS ns1.contoso.com.
ns1.contoso IN A 127.0.1.1
outlook IN NS ns1.outlook.com.
ns1.outlook IN A 127.0.4.2
"""
CONTOSO = """@ IN SOA ns1.contoso.com. hostmaster.contoso.com. 1 7200 3600 1209600 300
@ IN NS ns1.contoso.com.
ns1 IN A 127.0.1.1
@ IN MX 10 mx.contoso.com.
mx IN A 127.0.1.25
"""
OUTLOOK = """@ IN SOA ns1.outlook.com. hostmaster.outlook.com. 1 7200 3600 1209600 300
@ IN NS ns1.outlook.com.
ns1 IN A 127.0.4.2
contoso-com.mail.protection IN A 127.0.3.1
"""
TEXTS = {".": ROOT, "com.": COM, "contoso.com.": CONTOSO, "outlook.com.": OUTLOOK}
