"""DNSSEC for the lab's zones: keys made for the run, zones signed bottom up, DS in the
parents, and the root's DS as the trust anchor mailtrace is given.

Each signed zone gets a key-signing key (SEP flag) and a zone-signing key, ECDSA P-256
SHA-256 (algorithm 13, RFC 6605: keys and signatures in microseconds), and NSEC records
(dnspython's ``sign_zone``). A child's DS goes into its parent's copy before the parent
is signed, so the chain from the lab root validates as it does on the internet. Zones
the real world leaves unsigned stay unsigned here (:data:`UNSIGNED`), so their
delegations are insecure, not bogus.

A scenario can break one zone's signing (:class:`SigningFault`): signatures that expired
yesterday or that start tomorrow, a DS at the parent for a key the zone does not have,
or none of it at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec
from dns.dnssectypes import Algorithm
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.dnskeybase import Flag

from mailtrace.clients.trust_anchor import TrustAnchor

#: Zones left unsigned in the lab because they are unsigned on the internet: the
#: Proofpoint, Mimecast and classic Exchange Online namespaces and the tenant names.
UNSIGNED = frozenset({"outlook.com.", "pphosted.com.", "ppe-hosted.com.", "onmicrosoft.com.",
                      "mimecast.com."})
ALGORITHM = Algorithm.ECDSAP256SHA256
#: Signature validity around the lab's start: a week back, a month ahead.
VALID_BEFORE = dt.timedelta(days=7)
VALID_AFTER = dt.timedelta(days=30)

SigningFault = Literal["expired-rrsig", "future-rrsig", "ds-mismatch", "unsigned"]


@dataclass(frozen=True)
class ZoneKeys:
    origin: dns.name.Name
    ksk: tuple[ec.EllipticCurvePrivateKey, DNSKEY]
    zsk: tuple[ec.EllipticCurvePrivateKey, DNSKEY]

    @classmethod
    def generate(cls, origin: dns.name.Name) -> ZoneKeys:
        def key(flags: int) -> tuple[ec.EllipticCurvePrivateKey, DNSKEY]:
            private = ec.generate_private_key(ec.SECP256R1())
            dnskey = dns.dnssec.make_dnskey(private.public_key(), ALGORITHM, flags=flags)
            return private, dnskey

        zone_key = int(Flag.ZONE)
        return cls(origin, key(zone_key | int(Flag.SEP)), key(zone_key))

    def ds(self) -> DS:
        return dns.dnssec.make_ds(self.origin, self.ksk[1], "SHA256")


class LabSigner:
    """The keys of one lab run, and how to sign its zones with them."""

    def __init__(self, origins: Iterable[str],
                 faults: Mapping[str, SigningFault] | None = None) -> None:
        self.faults = {_absolute(z): f for z, f in (faults or {}).items()}
        self.keys = {
            origin: ZoneKeys.generate(dns.name.from_text(origin))
            for origin in sorted({_absolute(o) for o in origins})
            if origin not in UNSIGNED and self.faults.get(origin) != "unsigned"
        }
        # A key of nobody's: the DS of a zone whose parent "forgot" its rollover.
        self._stray = ZoneKeys.generate(dns.name.root)
        self.now = dt.datetime.now(dt.UTC)

    @property
    def trust_anchor(self) -> TrustAnchor:
        root = self.keys.get(".")
        if root is None:
            raise ValueError("the lab root is not signed: there is no trust anchor")
        return TrustAnchor(ds=(root.ds().to_text(),), source="the lab's root key")

    def signed(self, origin: str) -> bool:
        return _absolute(origin) in self.keys

    def ds_for(self, child: str) -> DS | None:
        keys = self.keys.get(_absolute(child))
        if keys is None:
            return None
        if self.faults.get(_absolute(child)) == "ds-mismatch":
            stray = ZoneKeys(keys.origin, self._stray.ksk, self._stray.zsk)
            return stray.ds()
        return keys.ds()

    def sign(self, zone: dns.zone.Zone) -> None:
        """Add the DS of every signed child delegated in ``zone``, then sign it (in place;
        a zone with no keys is left as it is)."""
        origin = zone.origin
        assert origin is not None
        name = origin.to_text()
        keys = self.keys.get(name)
        if keys is None:
            return
        for child_name, node in list(zone.nodes.items()):
            if child_name == origin or node.get_rdataset(dns.rdataclass.IN,
                                                         dns.rdatatype.NS) is None:
                continue
            ds = self.ds_for(child_name.to_text())
            if ds is not None:
                ns = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NS)
                assert ns is not None
                zone.replace_rdataset(child_name,
                                      dns.rdataset.from_rdata_list(ns.ttl, [ds]))
        if self.faults.get(name) == "expired-rrsig":
            inception, expiration = self.now - 2 * VALID_AFTER, self.now - dt.timedelta(days=1)
        elif self.faults.get(name) == "future-rrsig":  # a signer whose clock runs ahead
            inception, expiration = self.now + dt.timedelta(days=1), self.now + 2 * VALID_AFTER
        else:
            inception, expiration = self.now - VALID_BEFORE, self.now + VALID_AFTER
        dns.dnssec.sign_zone(zone, keys=[keys.ksk, keys.zsk], inception=inception,
                             expiration=expiration)


def _absolute(name: str) -> str:
    return dns.name.from_text(name).canonicalize().to_text()
