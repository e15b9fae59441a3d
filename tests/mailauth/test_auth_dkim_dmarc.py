"""DKIM key records and DMARC records: hand-built records through the pure parsers and
evaluators; property tests (any input gives a result or a finding, never an exception)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from mailtrace.mailauth import dkim, dmarc
from mailtrace.mailauth.lookup import Answer


def rsa_p(bits: int, pkcs1: bool = False) -> str:
    if bits < 1024:  # too weak for the library to generate: a public key of that size
        key = rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 0x1F).public_key()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    fmt = serialization.PublicFormat.PKCS1 if pkcs1 else \
        serialization.PublicFormat.SubjectPublicKeyInfo
    return base64.b64encode(key.public_bytes(serialization.Encoding.DER, fmt)).decode()


ED25519_P = base64.b64encode(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
    serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
P2048 = rsa_p(2048)


@pytest.mark.parametrize(("text", "key_type", "bits", "revoked", "testing"), [
    (f"v=DKIM1; k=rsa; p={P2048}", "rsa", 2048, False, False),
    (f"v=DKIM1; p={P2048[:100]} {P2048[100:]}", "rsa", 2048, False, False),  # FWS in p=
    (f"v=DKIM1; k=rsa; p={rsa_p(1024, pkcs1=True)}", "rsa", 1024, False, False),
    (f"v=DKIM1; k=ed25519; p={ED25519_P}", "ed25519", 256, False, False),
    ("v=DKIM1; k=rsa; p=", "rsa", None, True, False),
    (f"v=DKIM1; t=y:s; p={P2048}", "rsa", 2048, False, True),
], ids=["rsa-2048", "rsa-2048-fws", "rsa-1024-pkcs1", "ed25519", "revoked", "testing"])
def test_key_records_parse(text, key_type, bits, revoked, testing):
    key = dkim.parse_key(text)
    assert key.problem is None
    assert (key.key_type, key.bits, key.revoked, key.testing) == (key_type, bits, revoked,
                                                                  testing)


@pytest.mark.parametrize(("text", "needle"), [
    ("v=DKIM2; p=abc", "v=DKIM2"),
    (f"k=rsa; v=DKIM1; p={P2048}", "first tag"),
    ("v=DKIM1; k=rsa", "no p="),
    ("v=DKIM1; p=@@@@", "not a valid rsa"),
    ("v=DKIM1; k=dsa; p=AAAA", "unknown key type"),
    (f"v=DKIM1; k=ed25519; p={P2048}", "32 octets"),
    ("v=DKIM1; p=a; p=b", "twice"),
    ("garbage without tags", "not tag=value"),
])
def test_broken_key_records_say_why(text, needle):
    assert needle in (dkim.parse_key(text).problem or "")


def _answer(*texts: str, status: str = "answer", chain: tuple[str, ...] = ()) -> Answer:
    return Answer("selector1._domainkey.contoso.com.", "TXT", status,  # type: ignore[arg-type]
                  tuple(texts), 300, chain=chain)


EXO_TARGETS = dkim.expected_targets("selector1", "contoso.com", "contoso.onmicrosoft.com", None)
EXO_CHAIN = ("selector1-contoso-com._domainkey.contoso.onmicrosoft.com.",)


@pytest.mark.parametrize(("answer", "targets", "tags"), [
    (_answer(f"v=DKIM1; p={P2048}", chain=EXO_CHAIN), EXO_TARGETS, ["DKIM_KEY_OK"]),
    (_answer(f"v=DKIM1; p={P2048}", chain=(
        "selector1-contoso-com._domainkey.contoso.r-v1.dkim.mail.microsoft.",)), EXO_TARGETS,
     ["DKIM_KEY_OK"]),
    (_answer(f"v=DKIM1; p={P2048}", chain=(
        "selector1-fabrikam-com._domainkey.fabrikam.onmicrosoft.com.",)), EXO_TARGETS,
     ["DKIM_CNAME_UNEXPECTED", "DKIM_KEY_OK"]),
    (_answer(status="nxdomain"), EXO_TARGETS, ["DKIM_SELECTOR_MISSING"]),
    (_answer("v=DKIM1; p="), (), ["DKIM_KEY_REVOKED"]),
    (_answer(f"v=DKIM1; p={rsa_p(768)}"), (), ["DKIM_KEY_WEAK"]),
    (_answer(f"v=DKIM1; p={rsa_p(1024)}"), (), ["DKIM_KEY_SHORT"]),
    (_answer(f"v=DKIM1; t=y; p={P2048}"), (), ["DKIM_TESTING"]),
    (_answer("v=DKIM1; p=AAAA"), (), ["DKIM_KEY_INVALID"]),
    (_answer(f"v=DKIM1; p={P2048}", f"v=DKIM1; p={P2048}"), (), ["DKIM_KEY_INVALID"]),
    (_answer("v=DKIM1; p=caf\u00e9"), (), ["DKIM_KEY_INVALID"]),
])
def test_selector_findings(answer, targets, tags):
    check = dkim.SelectorCheck("contoso.com", "selector1", answer, targets)
    findings = dkim.evaluate(check)
    assert [f.tag for f in findings] == tags
    assert all(f.args["selector"] == "selector1" for f in findings)


def test_weak_key_carries_its_size():
    check = dkim.SelectorCheck("contoso.com", "s", _answer(f"v=DKIM1; p={rsa_p(768)}"))
    assert dkim.evaluate(check)[0].args["bits"] == 768


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_key_record_gives_a_key_or_a_problem(text):
    key = dkim.parse_key(text)
    assert key.problem is not None or key.revoked or key.bits is not None
    findings = dkim.evaluate(dkim.SelectorCheck("d.example", "s", _answer(text)))
    assert findings


# -- DMARC --------------------------------------------------------------------------------------


def test_a_full_record_parses_with_dmarcbis_tags():
    rec = dmarc.parse_record("v=DMARC1; p=reject; sp=quarantine; np=reject; pct=50; adkim=s; "
                             "aspf=r; rua=mailto:a@contoso.com,mailto:b@vendor.example!10m; "
                             "ruf=mailto:f@contoso.com; fo=1; psd=n; t=y; future=1")
    assert rec.valid
    assert (rec.policy, rec.subdomain_policy, rec.nonexistent_policy) == (
        "reject", "quarantine", "reject")
    assert (rec.pct, rec.adkim, rec.aspf, rec.testing) == (50, "s", "r", True)
    assert [u.domain for u in rec.rua] == ["contoso.com", "vendor.example"]
    assert rec.effective_policy(subdomain=True) == "quarantine"
    assert not rec.enforcing()  # t=y: not applied yet


@pytest.mark.parametrize(("text", "needle"), [
    ("v=DMARC1; p=block", "p=block"),
    ("v=DMARC1; rua=mailto:a@b.example", "no p="),
    ("v=DMARC1; p=none; pct=150", "pct=150"),
    ("v=DMARC1; p=none; rua=a@b.example", "not a URI"),
    ("v=DMARC1; p=none; p=reject", "twice"),
    ("v=spf1 -all", "v=DMARC1"),
    ("v=DMARC1; p=none; adkim=x", "adkim=x"),
])
def test_invalid_records_list_their_problems(text, needle):
    assert any(needle in p for p in dmarc.parse_record(text).problems)


def test_organizational_domain_uses_the_bundled_public_suffix_list():
    assert dmarc.organizational_domain("mail.contoso.com") == "contoso.com"
    assert dmarc.organizational_domain("a.b.example.co.uk") == "example.co.uk"
    assert dmarc.organizational_domain("co.uk") == "co.uk"


def test_the_organizational_domain_is_the_one_the_whole_list_gives():
    """Only the rules under a name's top-level label are read; for names under every kind
    of rule (wildcards, exceptions, private suffixes, IDN in either form) and under an
    unknown top-level label, the answer is the whole list's."""
    from publicsuffixlist import PSLFILE, PublicSuffixList

    whole = PublicSuffixList()
    with open(PSLFILE, encoding="utf-8") as fh:
        rules = [r for line in fh if (r := line.split(" ")[0].strip().lower())
                 and not r.startswith("//")]
    names = {"contoso.com", "mail.contoso.com", "co.uk", "a.b.example.co.uk", "com",
             "host.no-such-tld", "no-such-tld"}
    for rule in rules[::3]:
        base = rule.lstrip("!").removeprefix("*.")
        for name in (base, f"x.{base}", f"a.b.{base}"):
            names.add(name)
            if not name.isascii():
                names.add(name.encode("idna").decode("ascii"))

    def expected(name: str) -> str:
        try:
            org = whole.privatesuffix(name)
        except Exception:
            org = None
        return str(org) if org else name

    assert len(names) > 10_000
    wrong = [(n, dmarc.organizational_domain(n), expected(n)) for n in sorted(names)
             if dmarc.organizational_domain(n) != expected(n)]
    assert wrong == []


def test_external_report_destinations_need_authorization():
    rec = dmarc.parse_record("v=DMARC1; p=none; rua=mailto:d@contoso.com,mailto:r@vendor.example;"
                             " ruf=mailto:x@sub.contoso.com")
    assert [n for _, n in dmarc.external_destinations("contoso.com", rec)] == [
        "contoso.com._report._dmarc.vendor.example"]


def test_alignment_strict_and_relaxed():
    assert dmarc.aligned("contoso.com", "mail.contoso.com", "r")
    assert not dmarc.aligned("contoso.com", "mail.contoso.com", "s")
    assert not dmarc.aligned("contoso.com", "contoso.onmicrosoft.com", "r")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_dmarc_text_gives_a_record_or_problems(text):
    rec = dmarc.parse_record("v=DMARC1; " + text)
    assert rec.valid or rec.problems or rec.policy is None
    dmarc.parse_record(text)
