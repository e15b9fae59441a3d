"""DNSSEC: gather what it takes to validate one RRset from the trust anchor down.

:func:`collect_chain` asks the resolvers, with the DO and CD bits (RFC 4035 §3.2.1,
§3.2.2: the signatures, and the data even when a validating resolver finds it bogus), for
the RRset itself and, for every name from it up to the root at once, the DNSKEY and DS
RRsets. Which of those names are zone apexes is read afterwards from the signatures
(each RRSIG names its zone, RFC 4034 §3.1.7) and from the negative answers' SOA: one
round trip deep, whatever the depth of the name. Validation itself is pure
(:mod:`mailtrace.clients.dnssec_validate`), on the observation this module returns.

The trust anchor is the root's (:mod:`mailtrace.clients.trust_anchor`), carried by the
DNS client of the run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum

from mailtrace.clients.dns import DnsClient, DnsObservation, normalize
from mailtrace.clients.trust_anchor import TrustAnchor

#: Names deeper than this are not walked (a DNS name has at most 127 labels; mail names
#: have fewer than ten): the work per chain stays bounded whatever a server answers.
MAX_LABELS = 16


def ancestors(name: str) -> list[str]:
    """``a.b.c.`` -> ``[a.b.c., b.c., c., .]`` (the name first, the root last)."""
    labels = normalize(name).rstrip(".").split(".")
    names = [".".join(labels[i:]) + "." for i in range(len(labels)) if labels[i]]
    return [*names, "."] if names and names[-1] != "." else names or ["."]


@dataclass(frozen=True)
class ChainObservation:
    """One RRset and what its chain of trust rests on, as the resolvers gave it."""

    name: str  # absolute, lower case
    rdtype: str
    answer: DnsObservation  # the RRset asked (DO, CD): records and their RRSIGs
    dnskey: dict[str, DnsObservation]  # DNSKEY asked at each ancestor of the name
    ds: dict[str, DnsObservation]  # DS asked at each ancestor but the root
    soa: DnsObservation | None  # SOA at the name: where its zone starts when unsigned
    anchor: TrustAnchor
    at: float  # POSIX time of the observation: signatures are judged against it
    too_deep: bool = False  # more labels than MAX_LABELS: not walked

    def observations(self) -> list[DnsObservation]:
        found = [self.answer, *self.dnskey.values(), *self.ds.values()]
        return found + ([self.soa] if self.soa is not None else [])


# --- what a validation concludes (mailtrace.clients.dnssec_validate) -------------------

class Security(StrEnum):
    SECURE = "secure"  # validated from the anchor
    INSECURE = "insecure"  # unsigned: a parent proves no DS (or none it can use)
    BOGUS = "bogus"  # should validate and does not: validating resolvers answer SERVFAIL
    INDETERMINATE = "indeterminate"  # a lookup failed: could not be told


class Failure(StrEnum):
    RRSIG_EXPIRED = "rrsig-expired"
    RRSIG_NOT_YET_VALID = "rrsig-not-yet-valid"
    SIGNATURE_INVALID = "signature-invalid"
    SIGNATURE_MISSING = "signature-missing"
    NO_MATCHING_KEY = "no-matching-key"  # RRSIGs name keys the zone does not publish
    DS_NO_MATCHING_DNSKEY = "ds-no-matching-dnskey"
    DNSKEY_MISSING = "dnskey-missing"  # a DS at the parent, no DNSKEY in the zone
    DNSKEY_UNAVAILABLE = "dnskey-unavailable"  # a DS at the parent, DNSKEY lookups fail
    ALGORITHM_UNSUPPORTED = "algorithm-unsupported"  # treated as insecure (RFC 4035 §5.2)
    MALFORMED = "malformed"  # key, signature or DS data that cannot be read
    VALIDATION_LIMIT = "validation-limit"  # the bounded work ran out first
    CHAIN_LOOP = "chain-loop"  # a signer or parent that is not above the name
    ANCHOR_MISMATCH = "anchor-mismatch"  # the root's keys are not the anchor's: unjudged
    LOOKUP_FAILED = "lookup-failed"  # a DNSKEY, DS or the RRset could not be fetched
    TOO_DEEP = "too-deep"


@dataclass(frozen=True)
class Link:
    """One zone of the chain, root first, and how far it validated."""

    zone: str
    security: Security
    keys: tuple[int, ...] = ()  # key tags of the keys that vouched for the zone


@dataclass(frozen=True)
class ChainVerdict:
    name: str
    rdtype: str
    security: Security
    links: tuple[Link, ...]  # root first; the zone of the RRset last
    failure: Failure | None = None
    zone: str | None = None  # the zone of the failing link, or the first unsigned one
    detail: str = ""
    record: str | None = None  # the record at fault (RRSIG, DS, DNSKEY), as text
    validations: int = 0  # signature verifications done
    negative: bool = False  # the name has no such RRset (its zone judged alone)

    @property
    def path(self) -> str:
        """``. → com. → contoso.com.`` with each zone's status when it is not secure."""
        parts = []
        for link in self.links:
            note = "" if link.security is Security.SECURE else f" ({link.security.value})"
            parts.append(f"{link.zone}{note}")
        return " → ".join(parts)


#: Types whose owner is a host, not a zone: its own DNSKEY and DS are asked only when the
#: answer shows the host is a zone apex after all (a second, rare round trip).
HOST_TYPES = frozenset({"A", "AAAA", "TLSA"})


async def collect_chain(dns_client: DnsClient, name: str, rdtype: str, deadline: float,
                        anchor: TrustAnchor | None = None) -> ChainObservation:
    """The RRset ``name``/``rdtype`` and the DNSKEY and DS RRsets of every name above it,
    asked at once (each question is shared with any other probe asking it in the run)."""
    name = normalize(name)
    anchor = anchor or dns_client.trust_anchor
    names = ancestors(name)
    too_deep = len(names) > MAX_LABELS + 1
    if too_deep:
        names = names[-(MAX_LABELS + 1):]

    def ask(qname: str, qtype: str) -> asyncio.Future[DnsObservation]:
        return asyncio.ensure_future(
            dns_client.lookup(qname, qtype, deadline, dnssec=True, cd=True))

    answer = ask(name, rdtype)
    # A host's zone starts above it, somewhere: its SOA says where. Any other name's own
    # DNSKEY answer says it (the keys, or the SOA of a negative answer).
    soa = ask(name, "SOA") if rdtype in HOST_TYPES else None
    # Attribute leaves (RFC 8552: _25._tcp., _dmarc.) are no zone apexes in practice, nor,
    # usually, the host an address or TLSA record is for: their DNSKEY and DS wait.
    apexes = [n for n in names if not n.startswith("_")]
    if rdtype in HOST_TYPES and len(apexes) > 1:
        apexes = apexes[1:]
    keys = {n: ask(n, "DNSKEY") for n in apexes}
    ds = {n: ask(n, "DS") for n in apexes if n != "."}
    await asyncio.gather(answer, *keys.values(), *ds.values(), *([soa] if soa else []))
    # The zone the answer comes from, by its signer or the SOA: asked too if it was not.
    zone = _zone_named(answer.result(), soa.result() if soa is not None else None, name)
    if zone is not None and zone not in keys and zone in names:
        keys[zone], ds[zone] = ask(zone, "DNSKEY"), ask(zone, "DS")
        await asyncio.gather(keys[zone], ds[zone])
    return ChainObservation(
        name, rdtype, answer.result(),
        {n: f.result() for n, f in keys.items()}, {n: f.result() for n, f in ds.items()},
        soa.result() if soa is not None else None, anchor, time.time(), too_deep)


def _zone_named(answer: DnsObservation, soa: DnsObservation | None, name: str) -> str | None:
    """The zone the answer says it comes from: an RRSIG's signer (field 8 of its
    presentation form, RFC 4034 §3.2), else an SOA's owner."""
    for record in answer.answer:
        fields = record.data.split()
        if record.type == "RRSIG" and record.name == name and len(fields) > 7:
            return normalize(fields[7])
    for obs in (answer, soa):
        if obs is not None:
            soas = obs.records("SOA") or obs.authority_records("SOA")
            if soas:
                return soas[0].name
    return None
