"""DKIM key records (RFC 6376 §3.6.1, RFC 8463 for ed25519) of the declared selectors.

``parse_key(text)`` never raises: any input gives a :class:`DkimKey` whose ``problem``
says what is wrong. ``evaluate(observation)`` is pure. Exchange Online publishes its
keys behind CNAMEs: ``selector1/selector2._domainkey.<domain>`` →
``selector1-<domain-with-dashes>._domainkey.<tenant>.onmicrosoft.com`` (older domains) or
``…._domainkey.<prefix>.<c>-v1.dkim.mail.microsoft`` (domains added since May 2025);
other senders' forms (Proofpoint's among them) are not fixed by any source we trust, so
the topology may declare the CNAME target it expects per selector.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
from dataclasses import dataclass, field
from functools import lru_cache

from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.mailauth.lookup import Answer
from mailtrace.mailauth.tags import TagListError, parse_tags

RSA_MINIMUM = 1024  # RFC 8301 §3.2: verifiers MUST NOT consider shorter keys valid
RSA_RECOMMENDED = 2048
EXO_SELECTORS = frozenset({"selector1", "selector2"})
EXO_TARGETS = ("*._domainkey.*.onmicrosoft.com", "*._domainkey.*.dkim.mail.microsoft")


@dataclass(frozen=True)
class DkimKey:
    text: str
    key_type: str = "rsa"
    bits: int | None = None
    revoked: bool = False
    testing: bool = False
    problem: str | None = None


def _key_bits(key_type: str, data: bytes) -> int:
    """Key size from the p= bytes; raises ValueError when they are no key of that type."""
    # cryptography is loaded with the first key read, not with the probe catalog
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if key_type == "ed25519":
        if len(data) != 32:
            raise ValueError(f"an ed25519 key is 32 octets, this one is {len(data)}")
        ed25519.Ed25519PublicKey.from_public_bytes(data)
        return 256
    try:
        key = serialization.load_der_public_key(data)  # SubjectPublicKeyInfo (RFC 6376)
    except (ValueError, TypeError):
        # Some publish the bare PKCS#1 RSAPublicKey; receivers such as OpenDKIM accept it.
        pem = b"-----BEGIN RSA PUBLIC KEY-----\n" + base64.encodebytes(data) + \
            b"-----END RSA PUBLIC KEY-----\n"
        key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"k=rsa but p= holds a {type(key).__name__}")
    return key.key_size


@lru_cache(maxsize=4096)
def parse_key(text: str) -> DkimKey:
    """One DKIM key record (its TXT strings joined)."""
    try:
        tags = parse_tags(text)
    except TagListError as exc:
        return DkimKey(text, problem=str(exc))
    if "v" in tags and (tags["v"] != "DKIM1" or next(iter(tags)) != "v"):
        return DkimKey(text, problem=f"v={tags['v']} (expected v=DKIM1 as the first tag)")
    key_type = tags.get("k", "rsa").lower()
    testing = "y" in [f.strip() for f in tags.get("t", "").split(":")]
    if "p" not in tags:
        return DkimKey(text, key_type, testing=testing, problem="no p= tag (the public key)")
    raw = "".join(tags["p"].split())
    if not raw:
        return DkimKey(text, key_type, revoked=True, testing=testing)
    if key_type not in ("rsa", "ed25519"):
        return DkimKey(text, key_type, testing=testing, problem=f"unknown key type k={key_type}")
    try:
        data = base64.b64decode(raw, validate=True)
        bits = _key_bits(key_type, data)
    except (binascii.Error, ValueError, TypeError) as exc:
        return DkimKey(text, key_type, testing=testing, problem=f"p= is not a valid {key_type} "
                       f"public key ({exc})")
    return DkimKey(text, key_type, bits, testing=testing)


@dataclass(frozen=True)
class SelectorCheck:
    """What one declared selector looks like in DNS, and what is expected of it."""

    domain: str
    selector: str
    answer: Answer  # TXT at <selector>._domainkey.<domain>, CNAMEs followed
    expected_targets: tuple[str, ...] = ()  # patterns the CNAME target should match
    signer: str | None = None  # the declared sender that signs with it, if known
    extra: list[Evidence] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


def expected_targets(selector: str, domain: str, tenant: str | None,
                     declared: str | None) -> tuple[str, ...]:
    if declared:
        return (declared,)
    if selector in EXO_SELECTORS and tenant:
        dashed = domain.replace(".", "-")
        prefix = tenant.removesuffix(".onmicrosoft.com")
        return (f"{selector}-{dashed}._domainkey.{prefix}.onmicrosoft.com",
                f"{selector}-{dashed}._domainkey.{prefix}.*.dkim.mail.microsoft")
    return ()


def evaluate(check: SelectorCheck) -> list[Finding]:
    answer = check.answer
    args = {"domain": check.domain, "selector": check.selector, "name": check.name}
    evidence = [answer.evidence(), *check.extra]
    chain = [n.rstrip(".") for n in answer.chain]
    if answer.status == "error":
        return []  # could not test: the caller reports it
    findings: list[Finding] = []
    records = [t for t in answer.data if t.lstrip().startswith(("v=", "k=", "p=", "t=", "h="))]
    records = records or list(answer.data)
    if not records:
        return [Finding("DKIM_SELECTOR_MISSING", {**args, "status": answer.status}, evidence)]
    if check.expected_targets:
        target = chain[-1] if chain else None
        if target is None or not any(fnmatch.fnmatchcase(target, p.lower())
                                     for p in check.expected_targets):
            findings.append(Finding("DKIM_CNAME_UNEXPECTED", {
                **args, "target": target or "(no CNAME)",
                "expected": " or ".join(check.expected_targets)}, evidence))
    if len(records) > 1:
        findings.append(Finding("DKIM_KEY_INVALID", {
            **args, "problem": f"{len(records)} key records at one selector"}, evidence))
        return findings
    key = parse_key(records[0])
    key_args = {**args, "key_type": key.key_type, "bits": key.bits}
    problems: list[Finding] = []
    if key.problem:
        problems.append(Finding("DKIM_KEY_INVALID", {**args, "problem": key.problem}, evidence))
    elif key.revoked:
        problems.append(Finding("DKIM_KEY_REVOKED", args, evidence))
    elif key.key_type == "rsa" and key.bits is not None and key.bits < RSA_MINIMUM:
        problems.append(Finding("DKIM_KEY_WEAK", key_args, evidence))
    elif key.key_type == "rsa" and key.bits is not None and key.bits < RSA_RECOMMENDED:
        problems.append(Finding("DKIM_KEY_SHORT", key_args, evidence))
    if key.testing and not key.problem:
        problems.append(Finding("DKIM_TESTING", args, evidence))
    if not problems:
        problems.append(Finding("DKIM_KEY_OK", {**key_args, "chain": " -> ".join(
            [check.name, *chain]) if chain else check.name}, evidence))
    return findings + problems
