"""Validate one RRset's chain of trust from the root's anchor down (RFC 4033-4035).

Pure: a :class:`~mailtrace.clients.dnssec.ChainObservation` in, a :class:`ChainVerdict`
out, judged at the observation's own time. The walk:

1. the RRset's zone is the signer its RRSIGs name (RFC 4034 §3.1.7), or, unsigned, the
   zone its SOA or negative answer names; each zone's parent is the signer of its DS
   RRset, or the zone the DS answer's SOA names. Every step must go strictly up — a
   signer below or beside the name is a chain that loops (named, never followed);
2. top down: the root's DNSKEY set must hold a key the anchor names and be signed by
   it; each child zone's DS RRset must be signed by its parent's keys, one of its DS must
   match a DNSKEY of the child (RFC 4034 §5.1.4), and that key must sign the child's
   DNSKEY set (RFC 4035 §5.2); a parent that proves no DS makes the child, and all below
   it, insecure (unsigned) — as does a DS set with no algorithm or digest this validator
   supports (RFC 4035 §5.2, RFC 8624);
3. the RRset must be signed by its zone's keys.

The first broken link is named: an expired or not yet valid RRSIG (with its record), a
signature that does not verify, a missing signature, a DS that matches no DNSKEY, an
RRSIG naming a key the zone does not have, malformed key or signature data. Denial of
existence (NSEC/NSEC3) is not proven: a negative answer is judged by its zone alone.

The work is bounded whatever the servers send (cf. KeyTrap, CVE-2023-50387): at most
:data:`PER_RRSET` signature verifications per RRset and :data:`TOTAL` per chain, keys
and signatures considered only when their key tag and algorithm match; past a bound the
chain is bogus, naming the limit.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dns.dnssec
import dns.dnssecalgs
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.RRSIG import RRSIG

from mailtrace.clients.dns import DnsObservation, Outcome, Record
from mailtrace.clients.dnssec import ChainObservation, ChainVerdict, Failure, Link, Security

#: Signature verifications one RRset may cost, and a whole chain.
PER_RRSET = 8
TOTAL = 64
#: RRSIGs considered per RRset, DS records per zone, DNSKEYs per zone: the rest is not read.
MAX_SIGS = 16
MAX_DS = 16
MAX_KEYS = 64
#: DNSSEC algorithms this validator verifies (RFC 8624 §3.1: MUST/RECOMMENDED to validate
#: on the validating side; 1, 3, 6 and 12 are not): 5 RSASHA1, 7 RSASHA1-NSEC3-SHA1,
#: 8 RSASHA256, 10 RSASHA512, 13 ECDSAP256SHA256, 14 ECDSAP384SHA384, 15 ED25519, 16 ED448.
ALGORITHMS = frozenset({5, 7, 8, 10, 13, 14, 15, 16})
#: How a zone's own servers fail a question (as a resolver passes it on), as opposed to
#: this machine's limits (no route, the run's budget).
_ZONE_FAILURES = frozenset({Outcome.SERVFAIL, Outcome.TIMEOUT, Outcome.FORMERR,
                            Outcome.REFUSED, Outcome.MISMATCH})
#: DS digest types (RFC 8624 §3.3): 1 SHA-1, 2 SHA-256, 4 SHA-384.
DIGESTS = frozenset({1, 2, 4})
_ZONE_KEY = 0x0100  # RFC 4034 §2.1.1
_REVOKED = 0x0080  # RFC 5011 §3
IN = dns.rdataclass.IN


@dataclass
class _Budget:
    total: int = field(default_factory=lambda: TOTAL)
    spent: int = 0


class _Broken(Exception):
    """Internal: the walk stops here, with the verdict's failure fields."""

    def __init__(self, security: Security, failure: Failure, zone: str, detail: str,
                 record: str | None = None) -> None:
        super().__init__(detail)
        self.security = security
        self.failure = failure
        self.zone = zone
        self.detail = detail
        self.record = record


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def _when(posix: float) -> str:
    return dt.datetime.fromtimestamp(posix, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rdatas(records: Iterable[Record], owner: str, rdtype: str, zone: str
            ) -> list[dns.rdata.Rdata]:
    """The records of one RRset, parsed back from their presentation form."""
    out = []
    for r in records:
        if r.name != owner or r.type != rdtype:
            continue
        try:
            out.append(dns.rdata.from_text(IN, dns.rdatatype.from_text(rdtype), r.data))
        except (dns.exception.DNSException, ValueError) as exc:
            raise _Broken(Security.BOGUS, Failure.MALFORMED, zone,
                          f"{owner} {rdtype} cannot be read: {exc}",
                          f"{owner} {rdtype} {r.data}") from None
    return out


def _rrset(owner: str, rdatas: Sequence[dns.rdata.Rdata], ttl: int) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(_name(owner), IN, rdatas[0].rdtype)
    for rdata in rdatas:
        rrset.add(rdata, ttl)
    return rrset


def _sigs(obs: DnsObservation, owner: str, rdtype: str, zone: str) -> list[RRSIG]:
    covered = dns.rdatatype.from_text(rdtype)
    sigs = [s for s in _rdatas(obs.answer, owner, "RRSIG", zone)
            if isinstance(s, RRSIG) and s.type_covered == covered]
    return sigs[:MAX_SIGS]


def _is_above(upper: str, lower: str, strictly: bool) -> bool:
    a, b = _name(upper), _name(lower)
    return b.is_subdomain(a) and (not strictly or a != b)


def _sig_text(owner: str, sig: RRSIG) -> str:
    return f"{owner} RRSIG {sig.to_text()}"


def _verify(owner: str, rdtype: str, rdatas: Sequence[dns.rdata.Rdata], sigs: list[RRSIG],
            zone: str, keys: Sequence[DNSKEY], now: float, budget: _Budget) -> int:
    """Verify the RRset against ``keys``; returns the key tag that signed it, or raises
    :class:`_Broken` naming the most telling failure among the signatures tried."""
    if not sigs:
        raise _Broken(Security.BOGUS, Failure.SIGNATURE_MISSING, zone,
                      f"{owner} {rdtype} has no RRSIG, though {zone} is signed")
    rrset = _rrset(owner, rdatas, min(s.original_ttl for s in sigs))
    texts = tuple(sorted(r.to_text() for r in rdatas))
    seen: dict[Failure, tuple[str, str]] = {}
    used = 0
    for sig in sigs:
        text = _sig_text(owner, sig)
        if sig.signer != _name(zone):
            seen.setdefault(Failure.NO_MATCHING_KEY, (
                f"the RRSIG of {owner} {rdtype} names signer {sig.signer}, not {zone}", text))
            continue
        if sig.algorithm not in ALGORITHMS:
            seen.setdefault(Failure.ALGORITHM_UNSUPPORTED, (
                f"the RRSIG of {owner} {rdtype} uses algorithm {sig.algorithm}, which is not "
                "supported", text))
            continue
        if now > sig.expiration:
            seen.setdefault(Failure.RRSIG_EXPIRED, (
                f"the RRSIG of {owner} {rdtype} (key {sig.key_tag}) expired at "
                f"{_when(sig.expiration)}", text))
            continue
        if now < sig.inception:
            seen.setdefault(Failure.RRSIG_NOT_YET_VALID, (
                f"the RRSIG of {owner} {rdtype} (key {sig.key_tag}) is valid only from "
                f"{_when(sig.inception)}", text))
            continue
        candidates = [k for k in keys if k.algorithm == sig.algorithm
                      and dns.dnssec.key_id(k) == sig.key_tag]
        if not candidates:
            seen.setdefault(Failure.NO_MATCHING_KEY, (
                f"the RRSIG of {owner} {rdtype} names key {sig.key_tag}, which {zone} does "
                "not publish", text))
            continue
        for key in candidates:
            if used >= PER_RRSET or budget.spent >= budget.total:
                raise _Broken(Security.BOGUS, Failure.VALIDATION_LIMIT, zone,
                              f"{owner} {rdtype}: no signature verified within the bound of "
                              f"{PER_RRSET} per RRset and {budget.total} per chain "
                              f"({len(sigs)} RRSIGs, {len(keys)} keys)", text)
            used += 1
            budget.spent += 1
            outcome = _signature(rrset, texts, sig, text, key, zone)
            if outcome is None:
                return int(sig.key_tag)
            failure, why = outcome
            seen.setdefault(failure, (why, text))
    for failure in (Failure.RRSIG_EXPIRED, Failure.RRSIG_NOT_YET_VALID,
                    Failure.SIGNATURE_INVALID, Failure.MALFORMED, Failure.NO_MATCHING_KEY,
                    Failure.ALGORITHM_UNSUPPORTED):
        if failure in seen:
            detail, record = seen[failure]
            raise _Broken(Security.BOGUS, failure, zone, detail, record)
    raise AssertionError("unreachable: every signature leaves a reason")


#: Signatures verified in this process: (owner, type, records, RRSIG, key) -> the outcome.
_VERIFIED: dict[tuple[str, str, tuple[str, ...], str, str], tuple[Failure, str] | None] = {}
_MAX_VERIFIED = 4096


def _signature(rrset: dns.rrset.RRset, texts: tuple[str, ...], sig: RRSIG, sig_text: str,
               key: DNSKEY, zone: str) -> tuple[Failure, str] | None:
    """Does the RRSIG over the RRset verify with this key? None when it does, else why
    not. Only the cryptography is judged here — the time window was checked before — so
    the outcome depends on the texts alone and is kept for the process: the root's and a
    TLD's links are verified once, not once per chain."""
    owner, rdtype = rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype)
    memo = (owner, rdtype, texts, sig_text, key.to_text())
    if memo in _VERIFIED:
        return _VERIFIED[memo]
    outcome = _check(rrset, sig, key, zone)
    if len(_VERIFIED) >= _MAX_VERIFIED:
        _VERIFIED.clear()
    _VERIFIED[memo] = outcome
    return outcome


def _check(rrset: dns.rrset.RRset, sig: RRSIG, key: DNSKEY, zone: str
           ) -> tuple[Failure, str] | None:
    owner, rdtype = rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype)
    problem = _unusable(key)
    if problem is not None:
        return Failure.MALFORMED, (f"key {sig.key_tag} of {zone}, named by the RRSIG of "
                                   f"{owner} {rdtype}, cannot be used: {problem}")
    key_set = dns.rdataset.from_rdata_list(rrset.ttl, [key])
    try:
        # Inside the window by construction: judge the signature itself.
        dns.dnssec.validate_rrsig(rrset, sig, {_name(zone): key_set},
                                  now=float(sig.inception))
    except dns.exception.UnsupportedAlgorithm as exc:
        return Failure.ALGORITHM_UNSUPPORTED, str(exc)
    except dns.exception.ValidationFailure:
        return Failure.SIGNATURE_INVALID, (f"the RRSIG of {owner} {rdtype} by key "
                                           f"{sig.key_tag} does not verify")
    except Exception as exc:  # hostile key or signature bytes: any parse error
        return Failure.MALFORMED, (f"the key {sig.key_tag} or the RRSIG of {owner} {rdtype} "
                                   f"cannot be used: {type(exc).__name__}: {exc}")
    return None


def clear_cache() -> None:
    """Forget the signatures verified so far (benchmarks time the cryptography itself)."""
    _VERIFIED.clear()


def _unusable(key: DNSKEY) -> str | None:
    """Why a DNSKEY's public key cannot be loaded (not a point on the curve, a truncated
    RSA key...), or None. dnspython would only say the signature does not verify."""
    try:
        dns.dnssecalgs.get_algorithm_cls_from_dnskey(key).public_cls.from_dnskey(key)
    except dns.exception.UnsupportedAlgorithm:
        return None  # said by the verification itself
    except Exception as exc:  # any error of the key's bytes
        return f"{type(exc).__name__}: {exc}"
    return None


def _fetched(obs: DnsObservation | None, zone: str, what: str) -> DnsObservation:
    if obs is not None and obs.outcome is Outcome.MALFORMED:
        # A reply that does not even parse (hostile or broken key or signature data):
        # validating resolvers answer SERVFAIL for it, so it is bogus, not unknown.
        raise _Broken(Security.BOGUS, Failure.MALFORMED, zone,
                      f"{what}: the reply cannot be parsed ({obs.error or 'malformed'})")
    if obs is None or not obs.outcome.answered:
        outcome = obs.outcome.value if obs is not None else "not asked"
        raise _Broken(Security.INDETERMINATE, Failure.LOOKUP_FAILED, zone,
                      f"{what} could not be fetched ({outcome})")
    return obs


def _zone_keys(keys: Sequence[dns.rdata.Rdata]) -> list[DNSKEY]:
    return [k for k in keys[:MAX_KEYS] if isinstance(k, DNSKEY) and k.flags & _ZONE_KEY
            and not k.flags & _REVOKED]


def _ds_matches(zone: str, key: DNSKEY, ds: DS) -> bool:
    if key.algorithm != ds.algorithm or dns.dnssec.key_id(key) != ds.key_tag:
        return False
    try:
        made = dns.dnssec.make_ds(_name(zone), key, ds.digest_type, validating=True)
    except Exception:  # an unsupported digest or unreadable key: no match
        return False
    return bool(made.digest == ds.digest)


class _Walk:
    def __init__(self, chain: ChainObservation) -> None:
        self.chain = chain
        self.now = chain.at
        self.budget = _Budget()
        self.links: list[Link] = []

    # -- finding the zones ---------------------------------------------------------------

    def zone_of_answer(self, owner: str, rdtype: str) -> str:
        chain = self.chain
        answer = chain.answer
        sigs = _sigs(answer, owner, rdtype, owner) if answer.outcome is Outcome.ANSWER else []
        if sigs:
            signer = sigs[0].signer.to_text()
            if not _is_above(signer, owner, strictly=False):
                raise _Broken(Security.BOGUS, Failure.CHAIN_LOOP, signer,
                              f"{owner} {rdtype} is signed by {signer}, which is not above it",
                              _sig_text(owner, sigs[0]))
            return signer
        for obs in (answer, chain.soa):
            if obs is None:
                continue
            soas = obs.records("SOA") or obs.authority_records("SOA")
            if soas and _is_above(soas[0].name, owner, strictly=False):
                return soas[0].name
        # Unsigned, and neither answer says where the zone starts: the nearest name above
        # that publishes keys, or whose DNSKEY answer's SOA names its zone (RFC 2308 §3).
        for name in (n for n in chain.dnskey if _is_above(n, owner, strictly=False)):
            keys = chain.dnskey[name]
            if keys.records("DNSKEY"):
                return name
            owners = [r.name for r in keys.authority_records("SOA")
                      if _is_above(r.name, owner, strictly=False)]
            if owners:
                return owners[0]
        if answer.outcome.answered or (chain.soa is not None and chain.soa.outcome.answered):
            return "."
        raise _Broken(Security.INDETERMINATE, Failure.LOOKUP_FAILED, owner,
                      f"{owner} {rdtype} could not be fetched ({answer.outcome.value})")

    def parent_of(self, zone: str) -> str:
        obs = self.chain.ds.get(zone)
        if obs is None:
            raise _Broken(Security.INDETERMINATE, Failure.TOO_DEEP, zone,
                          f"{zone} is deeper than the walk goes")
        obs = _fetched(obs, zone, f"the DS of {zone}")
        sigs = _sigs(obs, zone, "DS", zone)
        if sigs:
            parent = sigs[0].signer.to_text()
            record: str | None = _sig_text(zone, sigs[0])
        else:
            # Unsigned: the SOA of the negative answer names the parent's zone; a server
            # answering for the child's side (a misrouted DS query) says nothing about
            # the parent, so the walk goes one label up.
            soas = obs.authority_records("SOA") or obs.records("SOA")
            above = [r.name for r in soas if _is_above(r.name, zone, strictly=True)]
            parent = above[0] if above else _name(zone).parent().to_text()
            record = None
        if not _is_above(parent, zone, strictly=True):
            raise _Broken(Security.BOGUS, Failure.CHAIN_LOOP, zone,
                          f"the DS of {zone} is vouched for by {parent}, which is not above it: "
                          "the chain would loop", record)
        return parent

    def zones(self, bottom: str) -> list[str]:
        """From the root down to ``bottom``, each zone's parent read from its DS answer."""
        path = [bottom]
        while path[-1] != ".":
            path.append(self.parent_of(path[-1]))
            if len(path) > len(self.chain.dnskey) + 1:
                raise _Broken(Security.BOGUS, Failure.CHAIN_LOOP, bottom,
                              f"the chain above {bottom} does not reach the root")
        return path[::-1]

    # -- validating top down ---------------------------------------------------------------

    def root(self) -> list[DNSKEY]:
        anchor = self.chain.anchor
        obs = self.chain.dnskey.get(".")
        if obs is None or not obs.outcome.answered:
            # The root is not what fails: the path to it (the resolvers in use) does.
            outcome = obs.outcome.value if obs is not None else "not asked"
            raise _Broken(Security.INDETERMINATE, Failure.LOOKUP_FAILED, ".",
                          f"the resolvers in use give no usable DNSKEY for the root ({outcome})")
        rdatas = _rdatas(obs.answer, ".", "DNSKEY", ".")
        keys = _zone_keys(rdatas)
        if not keys:
            raise _Broken(Security.INDETERMINATE, Failure.LOOKUP_FAILED, ".",
                          "the resolvers in use give no DNSKEY for the root: they do not "
                          "pass DNSSEC records on, so nothing can be validated through them")
        anchored_ds = [dns.rdata.from_text(IN, dns.rdatatype.DS, t) for t in anchor.ds]
        anchored_keys = {dns.rdata.from_text(IN, dns.rdatatype.DNSKEY, t).to_text()
                         for t in anchor.dnskey}
        trusted = [k for k in keys if k.to_text() in anchored_keys or any(
            isinstance(d, DS) and _ds_matches(".", k, d) for d in anchored_ds)]
        if not trusted:
            tags = ", ".join(str(dns.dnssec.key_id(k)) for k in keys) or "none"
            # Another root than the anchor's (a lab, an internal root) or a wrong anchor:
            # the observer's settings, which say nothing about the domain.
            raise _Broken(Security.INDETERMINATE, Failure.ANCHOR_MISMATCH, ".",
                          f"no key of the root (key tags {tags}) matches the trust anchor "
                          f"({anchor.source})")
        tag = _verify(".", "DNSKEY", rdatas, _sigs(obs, ".", "DNSKEY", "."), ".", trusted,
                      self.now, self.budget)
        self.links.append(Link(".", Security.SECURE, (tag,)))
        return keys

    def child(self, zone: str, parent: str, parent_keys: list[DNSKEY]) -> list[DNSKEY] | None:
        """The child's validated zone keys, or None when the parent proves it unsigned."""
        ds_obs = _fetched(self.chain.ds.get(zone), zone, f"the DS of {zone}")
        ds_rdatas = _rdatas(ds_obs.answer, zone, "DS", parent)
        if not ds_rdatas:  # NODATA or NXDOMAIN at the parent: an insecure delegation
            self.links.append(Link(zone, Security.INSECURE))
            return None
        _verify(zone, "DS", ds_rdatas, _sigs(ds_obs, zone, "DS", parent), parent,
                parent_keys, self.now, self.budget)
        usable = [d for d in ds_rdatas[:MAX_DS] if isinstance(d, DS)
                  and d.algorithm in ALGORITHMS and d.digest_type in DIGESTS]
        if not usable:
            self.links.append(Link(zone, Security.INSECURE))
            raise _Broken(Security.INSECURE, Failure.ALGORITHM_UNSUPPORTED, zone,
                          f"no DS of {zone} uses an algorithm and digest this validator "
                          "supports: treated as unsigned (RFC 4035 §5.2)",
                          f"{zone} DS {ds_rdatas[0].to_text()}")
        key_obs = self.chain.dnskey.get(zone)
        if key_obs is not None and key_obs.outcome in _ZONE_FAILURES:
            # The parent vouches that the zone is signed, and the zone's own servers do not
            # give its keys (a failure the resolver passes on): validators answer SERVFAIL.
            raise _Broken(Security.BOGUS, Failure.DNSKEY_UNAVAILABLE, zone,
                          f"{parent} publishes a DS for {zone}, but its DNSKEY set cannot be "
                          f"fetched ({key_obs.outcome.value})",
                          f"{zone} DS {usable[0].to_text()}")
        key_obs = _fetched(key_obs, zone, f"the DNSKEY set of {zone}")
        rdatas = _rdatas(key_obs.answer, zone, "DNSKEY", zone)
        keys = _zone_keys(rdatas)
        if not keys:
            raise _Broken(Security.BOGUS, Failure.DNSKEY_MISSING, zone,
                          f"{parent} publishes a DS for {zone}, but {zone} answers no DNSKEY",
                          f"{zone} DS {usable[0].to_text()}")
        entry = [k for k in keys if any(_ds_matches(zone, k, d) for d in usable)]
        if not entry:
            tags = ", ".join(str(dns.dnssec.key_id(k)) for k in keys)
            raise _Broken(Security.BOGUS, Failure.DS_NO_MATCHING_DNSKEY, zone,
                          f"no DNSKEY of {zone} (key tags {tags}) matches its DS at {parent} "
                          f"(key tags {', '.join(str(d.key_tag) for d in usable)})",
                          f"{zone} DS {usable[0].to_text()}")
        tag = _verify(zone, "DNSKEY", rdatas, _sigs(key_obs, zone, "DNSKEY", zone), zone,
                      entry, self.now, self.budget)
        self.links.append(Link(zone, Security.SECURE, (tag,)))
        return keys


def validate(chain: ChainObservation) -> ChainVerdict:
    """The chain of trust of ``chain.name``/``chain.rdtype``, judged at ``chain.at``."""
    walk = _Walk(chain)
    owner, rdtype, answer = chain.name, chain.rdtype, chain.answer
    negative = answer.outcome in (Outcome.NODATA, Outcome.NXDOMAIN)

    def verdict(security: Security, zone: str | None, detail: str,
                broken: _Broken | None = None) -> ChainVerdict:
        return ChainVerdict(owner, rdtype, security, tuple(walk.links),
                            broken.failure if broken else None, zone, detail,
                            broken.record if broken else None, walk.budget.spent, negative)

    def has(rdtype: str) -> bool:
        return any(r.name == owner and r.type == rdtype for r in answer.answer)

    try:
        if chain.too_deep:
            raise _Broken(Security.INDETERMINATE, Failure.TOO_DEEP, owner,
                          f"{owner} has more labels than the walk follows")
        _fetched(answer, owner, f"{owner} {rdtype}")
        # A CNAME at the name stands for the RRset: it is signed in the name's own zone.
        target = rdtype if has(rdtype) or not has("CNAME") else "CNAME"
        zone = walk.zone_of_answer(owner, target)
        zones = walk.zones(zone)
        keys = walk.root()
        for parent, child in itertools.pairwise(zones):
            child_keys = walk.child(child, parent, keys)
            if child_keys is None:
                return verdict(Security.INSECURE, child,
                               f"{parent} has no DS for {child}: {child} is not signed")
            keys = child_keys
        rdatas = _rdatas(answer.answer, owner, target, zone)
        if not rdatas:
            return verdict(Security.SECURE, zone,
                           f"{owner} has no {rdtype}; {zone} is signed (denial not checked)")
        tag = _verify(owner, target, rdatas, _sigs(answer, owner, target, zone), zone, keys,
                      walk.now, walk.budget)
        return verdict(Security.SECURE, zone, f"{owner} {target} is signed by {zone} "
                                              f"(key {tag})")
    except _Broken as broken:
        return verdict(broken.security, broken.zone, broken.detail, broken)


__all__ = ["ChainVerdict", "Failure", "Link", "Security", "clear_cache", "validate"]
