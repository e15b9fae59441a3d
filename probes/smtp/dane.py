"""DANE for an SMTP hop: the TLSA records at ``_25._tcp.<host>`` against the certificate
chain each dialogue recorded (RFC 7672, RFC 7671, RFC 6698).

TLSA records mean something only in a zone that validates (RFC 7672 §2.2): in an unsigned
zone senders ignore them (a warning), in a bogus one DANE senders cannot use the host at
all. In a validated zone, a usable record — DANE-EE (3) matching the server's own
certificate, or DANE-TA (2) matching a certificate of the presented chain that issues the
server's certificate, whose name is the host's (RFC 7672 §3.2.3) — must match, selectors 0
(whole certificate) and 1 (SubjectPublicKeyInfo), matching types 0 (exact), 1 (SHA-256) and
2 (SHA-512); otherwise DANE senders refuse the host (RFC 7672 §2.2, §3.1). PKIX usages 0
and 1 are not used by SMTP clients (RFC 7672 §3.1.3): a set of only those is unusable, and
senders fall back to unauthenticated TLS. A host with no TLSA is fine, said once.

Pure over the hop's observation (:func:`findings`); the TLSA lookups and their chains of
trust are gathered with the SMTP dialogues (:mod:`mailtrace.probes.smtp.hop`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailtrace.clients.dnssec import ChainObservation, ChainVerdict, Security
from mailtrace.clients.smtp import Dialogue
from mailtrace.core.evidence import Evidence, Observed
from mailtrace.core.findings import Finding

if TYPE_CHECKING:  # dnspython and cryptography load when a record or certificate is read
    from dns.rdtypes.ANY.TLSA import TLSA

#: TLSA records of one host matched at most: a larger set is named, not walked.
MAX_TLSA = 64
#: Certificates of a presented chain looked at.
MAX_CHAIN = 8
DANE_TA, DANE_EE = 2, 3
_DIGEST_LENGTH = {1: 32, 2: 64}

TAGS = frozenset({
    "DANE_OK", "DANE_NOT_PUBLISHED", "DANE_TLSA_MISMATCH", "DANE_TLSA_BOGUS",
    "DANE_TLS_REQUIRED", "DANE_SOME_HOSTS_FAIL", "DANE_TLSA_UNSIGNED_ZONE",
    "DANE_TLSA_UNUSABLE", "DANE_TLSA_TOO_MANY", "DANE_TLSA_LOOKUP_FAILED",
})


def tlsa_name(host: str) -> str:
    """Where a host's TLSA records live: port 25 over TCP (RFC 7672 §2.2.3)."""
    return f"_25._tcp.{host.rstrip('.')}"


def digest(der: bytes, selector: int, mtype: int) -> bytes:
    """What a TLSA record with this selector and matching type holds for a certificate
    (RFC 6698 §2.1.2, §2.1.3)."""
    if selector == 0:
        data = der
    else:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        key = x509.load_der_x509_certificate(der).public_key()
        data = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    return data


@dataclass(frozen=True)
class Tlsa:
    text: str  # "3 1 1 <hex>" as published
    record: TLSA | None  # None: it does not parse as TLSA
    problem: str | None = None  # why it is not usable by an SMTP client

    @property
    def usable(self) -> bool:
        return self.record is not None and self.problem is None


def read_tlsa(text: str) -> Tlsa:
    import dns.exception
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    from dns.rdtypes.ANY.TLSA import TLSA

    try:
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TLSA, text)
    except (dns.exception.DNSException, ValueError) as exc:
        return Tlsa(text, None, f"not a TLSA record: {exc}")
    assert isinstance(rdata, TLSA)
    if rdata.usage not in (DANE_TA, DANE_EE):
        return Tlsa(text, rdata, f"usage {rdata.usage} (PKIX) is not used for SMTP "
                                 "(RFC 7672 §3.1.3)")
    if rdata.selector not in (0, 1):
        return Tlsa(text, rdata, f"selector {rdata.selector} is not defined")
    if rdata.mtype not in (0, 1, 2):
        return Tlsa(text, rdata, f"matching type {rdata.mtype} is not defined")
    expected = _DIGEST_LENGTH.get(rdata.mtype)
    if expected is not None and len(rdata.cert) != expected:
        return Tlsa(text, rdata, f"a {'SHA-256' if rdata.mtype == 1 else 'SHA-512'} digest "
                                 f"of {len(rdata.cert)} bytes, not {expected}")
    return Tlsa(text, rdata)


def _issues(issuer: bytes, cert: bytes) -> bool:
    from cryptography import x509

    try:
        x509.load_der_x509_certificate(cert).verify_directly_issued_by(
            x509.load_der_x509_certificate(issuer))
    except Exception:  # unreadable DER, another issuer, a bad signature, a key type
        return False
    return True


@dataclass(frozen=True)
class Match:
    record: str | None  # the TLSA record that matched
    presented: tuple[str, ...]  # the certificate's own values for the records' parameters
    reason: str | None = None  # why nothing matched


def match(records: Sequence[Tlsa], chain: Sequence[bytes], name_ok: bool) -> Match:
    """Does a usable record match the presented chain? DANE-EE looks at the server's own
    certificate only; DANE-TA at the others, which must issue the chain down to the
    server's certificate, whose name must be the host's (RFC 7672 §3.2.3)."""
    chain = list(chain[:MAX_CHAIN])
    usable = [r for r in records if r.usable and r.record is not None]
    params = sorted({(r.record.usage, r.record.selector, r.record.mtype)
                     for r in usable if r.record is not None})
    presented: list[str] = []
    for usage, selector, mtype in params:
        positions = [0] if usage == DANE_EE else range(1, len(chain))
        for i in positions:
            try:
                value = digest(chain[i], selector, mtype).hex()
            except ValueError:
                continue
            presented.append(f"{usage} {selector} {mtype} {value}"
                             + ("" if i == 0 else f" (certificate {i} of the chain)"))
    reason = None
    for r in usable:
        rec = r.record
        assert rec is not None
        positions = [0] if rec.usage == DANE_EE else list(range(1, len(chain)))
        for i in positions:
            try:
                if digest(chain[i], rec.selector, rec.mtype) != rec.cert:
                    continue
            except ValueError:
                continue
            if rec.usage == DANE_EE:
                return Match(r.text, tuple(presented))
            if not all(_issues(chain[j], chain[j - 1]) for j in range(1, i + 1)):
                reason = f"{r.text} matches certificate {i}, which does not issue the chain"
                continue
            if not name_ok:
                reason = (f"{r.text} matches the issuer, but the certificate does not name "
                          "the host (DANE-TA checks names)")
                continue
            return Match(r.text, tuple(presented))
    if not chain:
        reason = "no certificate was presented"
    return Match(None, tuple(presented), reason or "no usable TLSA record matches")


@dataclass(frozen=True)
class HostDane:
    host: str
    chain: ChainObservation
    verdict: ChainVerdict
    records: tuple[Tlsa, ...]
    total: int  # records published, before MAX_TLSA


def host_dane(host: str, chain: ChainObservation) -> HostDane:
    from mailtrace.clients.dnssec_validate import validate  # dnspython's DNSSEC, on use

    verdict = validate(chain)
    texts = [r.data for r in chain.answer.records("TLSA")]
    return HostDane(host, chain, verdict, tuple(read_tlsa(t) for t in texts[:MAX_TLSA]),
                    len(texts))


def _evidence(h: HostDane, result: Match | None = None, **extra: Any) -> list[Evidence]:
    fields: dict[str, Any] = {"tlsa": tlsa_name(h.host),
                              "records": [r.text for r in h.records],
                              "dnssec": h.verdict.security.value, "zone": h.verdict.zone}
    if h.verdict.failure is not None:
        fields["dnssec_failure"] = f"{h.verdict.failure.value}: {h.verdict.detail}"
    if result is not None:
        fields["presented"] = list(result.presented)
        fields["matched"] = result.record
    fields.update(extra)
    return [Observed(fields), h.chain.answer.evidence()]


def findings(hosts: Sequence[HostDane], dialogues: dict[str, list[Dialogue]]) -> list[Finding]:
    """DANE's findings for one tier: its hosts' TLSA lookups and each host's dialogues."""
    failing: list[tuple[HostDane, str, str, list[Evidence]]] = []  # (host, tag, detail, ev)
    out: list[Finding] = []
    none: list[HostDane] = []
    ok: list[tuple[HostDane, Match]] = []
    for h in hosts:
        answer = h.chain.answer
        if answer.outcome.answered and not h.total:
            none.append(h)  # no TLSA (NODATA, NXDOMAIN): opportunistic TLS, and fine
            continue
        if not answer.outcome.answered and h.verdict.security is not Security.BOGUS:
            out.append(Finding("DANE_TLSA_LOOKUP_FAILED", {
                "host": h.host, "outcome": answer.outcome.value}, _evidence(h)))
            continue
        if h.total > MAX_TLSA:
            out.append(Finding("DANE_TLSA_TOO_MANY", {
                "host": h.host, "count": h.total, "limit": MAX_TLSA}, _evidence(h)))
        security = h.verdict.security
        if security is Security.INSECURE:
            out.append(Finding("DANE_TLSA_UNSIGNED_ZONE", {
                "host": h.host, "zone": h.verdict.zone or "?"}, _evidence(h)))
            continue
        if security is Security.BOGUS:
            failing.append((h, "DANE_TLSA_BOGUS", h.verdict.detail, _evidence(h)))
            continue
        if security is Security.INDETERMINATE:
            out.append(Finding("DANE_TLSA_LOOKUP_FAILED", {
                "host": h.host, "outcome": h.verdict.detail}, _evidence(h)))
            continue
        if not any(r.usable for r in h.records):
            out.append(Finding("DANE_TLSA_UNUSABLE", {
                "host": h.host, "problems": "; ".join(
                    f"{r.text}: {r.problem}" for r in h.records[:4])}, _evidence(h)))
            continue
        tried = [d for d in dialogues.get(h.host, []) if d.tls is not None and d.tls.offered]
        secured = [d for d in tried if d.tls is not None and d.tls.established]
        if dialogues.get(h.host) and not secured:
            detail = "; ".join(f"{d.address}: {(d.tls.error if d.tls else None) or 'no STARTTLS'}"
                               for d in dialogues[h.host]) or "no STARTTLS"
            failing.append((h, "DANE_TLS_REQUIRED", detail, _evidence(h)))
            continue
        mismatched = None
        result: Match | None = None
        for d in secured:
            assert d.tls is not None
            name_ok = d.tls.cert.name_ok if d.tls.cert is not None else False
            result = match(h.records, d.tls.chain, name_ok)
            if result.record is None:
                mismatched = (d, result)
                break
        if mismatched is not None:
            d, result = mismatched
            failing.append((h, "DANE_TLSA_MISMATCH", result.reason or "",
                            [*_evidence(h, result, address=d.address), d.evidence()]))
        elif result is not None:
            ok.append((h, result))
    usable = len(hosts) - len(failing)  # hosts a DANE sender still delivers to
    if failing and usable == 0:
        by_tag: dict[str, list[tuple[HostDane, str, str, list[Evidence]]]] = {}
        for item in failing:
            by_tag.setdefault(item[1], []).append(item)
        for tag, items in by_tag.items():
            out.append(Finding(tag, {
                "hosts": ", ".join(h.host for h, *_ in items),
                "detail": "; ".join(f"{h.host}: {detail}" for h, _, detail, _ in items),
                "records": "; ".join(", ".join(r.text for r in h.records) or "none"
                                     for h, *_ in items)},
                [e for *_, ev in items for e in ev]))
    elif failing:
        out.append(Finding("DANE_SOME_HOSTS_FAIL", {
            "hosts": ", ".join(h.host for h, *_ in failing),
            "detail": "; ".join(f"{h.host}: {tag} {detail}" for h, tag, detail, _ in failing),
            "working": str(usable)},
            [e for *_, ev in failing for e in ev]))
    if ok:
        out.append(Finding("DANE_OK", {
            "hosts": ", ".join(h.host for h, _ in ok),
            "records": "; ".join(m.record or "" for _, m in ok)},
            [e for h, m in ok[:2] for e in _evidence(h, m)]))
    if none:
        out.append(Finding("DANE_NOT_PUBLISHED", {"hosts": ", ".join(h.host for h in none)},
                           [h.chain.answer.evidence() for h in none[:2]]))
    return out
