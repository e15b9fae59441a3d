"""DANE on an SMTP hop (pure): TLSA records read and matched against presented chains,
judged by their zone's DNSSEC, one finding per kind of trouble, bounded on hostile sets."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization

from mailtrace.clients.dns import Outcome
from mailtrace.lab.ca import Issued, LabCA
from mailtrace.probes.smtp import dane, exo_edge
from mailtrace.probes.smtp.hop import HopObservation, HostProbe
from tests.support.builders import addresses, dialogue
from tests.support.dnssec_world import TEXTS, World

MX = "mx.contoso.com"
EDGE = "contoso-com.mail.protection.outlook.com"


@pytest.fixture(scope="module")
def ca() -> Iterator[LabCA]:
    authority = LabCA()
    yield authority
    authority.close()


@pytest.fixture(scope="module")
def issued(ca: LabCA) -> Issued:
    return ca.issue(MX)


def der(certificate: object) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)  # type: ignore[attr-defined]


def chain(issued: Issued, ca: LabCA) -> tuple[bytes, ...]:
    return (der(issued.certificate), der(ca.certificate))


def spki(certificate: object, algo: str = "sha256") -> str:
    key = certificate.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.new(algo, key).hexdigest()


# --- matching ------------------------------------------------------------------------------

def test_every_selector_and_matching_type_of_dane_ee(issued: Issued, ca: LabCA) -> None:
    leaf = issued.certificate
    records = {
        "3 1 1": spki(leaf), "3 1 2": spki(leaf, "sha512"),
        "3 0 1": hashlib.sha256(der(leaf)).hexdigest(),
        "3 1 0": leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo).hex(),
    }
    for params, data in records.items():
        result = dane.match([dane.read_tlsa(f"{params} {data}")], chain(issued, ca), True)
        assert result.record is not None, params


def test_dane_ta_matches_the_issuer_and_checks_the_name(issued: Issued, ca: LabCA) -> None:
    ta = dane.read_tlsa(ca.tlsa_ta())
    assert dane.match([ta], chain(issued, ca), name_ok=True).record == ta.text
    wrong_name = dane.match([ta], chain(issued, ca), name_ok=False)
    assert wrong_name.record is None and "name" in (wrong_name.reason or "")
    # a TA record never matches the server's own certificate, nor a chain without the TA
    leaf_as_ta = dane.read_tlsa(f"2 1 1 {spki(issued.certificate)}")
    assert dane.match([leaf_as_ta], chain(issued, ca), True).record is None
    assert dane.match([ta], chain(issued, ca)[:1], True).record is None


def test_a_stale_record_shows_the_certificates_own_value(issued: Issued, ca: LabCA) -> None:
    stale = dane.read_tlsa("3 1 1 " + "00" * 32)
    result = dane.match([stale], chain(issued, ca), True)
    assert result.record is None
    assert result.presented == (f"3 1 1 {spki(issued.certificate)}",)


@pytest.mark.parametrize(("text", "problem"), [
    ("1 1 1 " + "ab" * 32, "PKIX"),
    ("0 0 1 " + "ab" * 32, "PKIX"),
    ("3 7 1 " + "ab" * 32, "selector"),
    ("3 1 9 " + "ab" * 32, "matching type"),
    ("3 1 1 " + "ab" * 20, "length"),
    ("3 1 2 " + "ab" * 32, "length"),
    ("3 1 1 not-hex", "not a TLSA"),
    ("3", "not a TLSA"),
])
def test_unusable_or_malformed_records(text: str, problem: str) -> None:
    record = dane.read_tlsa(text)
    assert not record.usable and problem in (record.problem or "")


# --- the tier's findings -------------------------------------------------------------------

def tlsa_world(*records: str, fault: str | None = None) -> World:
    w = World.signed(TEXTS, {"contoso.com.": fault} if fault else None)  # type: ignore[dict-item]
    if records:
        w.edit("contoso.com.", f"_25._tcp.{MX}.", "TLSA", *records)
        if fault is None:
            w.resign("contoso.com.", f"_25._tcp.{MX}.", "TLSA")
    return w


def with_chain(issued: Issued, ca: LabCA, **kw: object) -> object:
    d = dialogue(MX, **kw)  # type: ignore[arg-type]
    if d.tls is not None and d.tls.established:
        d.tls = dataclasses.replace(d.tls, chain=chain(issued, ca))
    return d


def judge(w: World, host: str = MX, *dialogues: object, name: str | None = None) -> dict:
    name = name or f"_25._tcp.{host}"
    found = dane.findings([dane.host_dane(host, w.chain(name, "TLSA"))],
                          {host: list(dialogues)})  # type: ignore[dict-item]
    return {f.tag: f for f in found}


def test_a_matching_record_in_a_signed_zone(issued: Issued, ca: LabCA) -> None:
    got = judge(tlsa_world(issued.tlsa_ee()), MX, with_chain(issued, ca))
    assert set(got) == {"DANE_OK"} and got["DANE_OK"].args["hosts"] == MX


def test_a_mismatch_puts_record_and_certificate_side_by_side(issued: Issued, ca: LabCA) -> None:
    got = judge(tlsa_world("3 1 1 " + "11" * 32), MX, with_chain(issued, ca))
    mismatch = got["DANE_TLSA_MISMATCH"]
    assert mismatch.args["hosts"] == MX
    side = mismatch.evidence[0]
    assert side["records"] == ["3 1 1 " + "11" * 32]
    assert side["presented"] == [f"3 1 1 {spki(issued.certificate)}"]
    assert side["dnssec"] == "secure"


def test_one_failing_host_beside_a_working_one_is_partial(issued: Issued, ca: LabCA) -> None:
    w = tlsa_world("3 1 1 " + "11" * 32)
    hosts = [dane.host_dane(MX, w.chain(f"_25._tcp.{MX}", "TLSA")),
             dane.host_dane("ns1.contoso.com", w.chain("_25._tcp.ns1.contoso.com", "TLSA"))]
    found = {f.tag: f for f in dane.findings(hosts, {MX: [with_chain(issued, ca)]})}
    assert set(found) == {"DANE_SOME_HOSTS_FAIL", "DANE_NOT_PUBLISHED"}
    assert found["DANE_NOT_PUBLISHED"].args["hosts"] == "ns1.contoso.com"


def test_tlsa_in_an_unsigned_zone_is_ignored_by_senders() -> None:
    w = World.signed(TEXTS)
    w.edit("outlook.com.", f"_25._tcp.{EDGE}.", "TLSA", "3 1 1 " + "22" * 32)
    got = judge(w, EDGE, dialogue(EDGE))
    assert got["DANE_TLSA_UNSIGNED_ZONE"].args["zone"] == "outlook.com."


def test_tlsa_in_a_bogus_zone_stops_dane_senders(issued: Issued, ca: LabCA) -> None:
    got = judge(tlsa_world(issued.tlsa_ee(), fault="expired-rrsig"), MX, with_chain(issued, ca))
    assert "expired" in got["DANE_TLSA_BOGUS"].args["detail"]


def test_only_pkix_records_are_unusable(issued: Issued, ca: LabCA) -> None:
    got = judge(tlsa_world("1 1 1 " + "33" * 32), MX, with_chain(issued, ca))
    assert "PKIX" in got["DANE_TLSA_UNUSABLE"].args["problems"]


def test_tlsa_without_starttls(issued: Issued, ca: LabCA) -> None:
    got = judge(tlsa_world(issued.tlsa_ee()), MX, dialogue(MX, tls=False))
    assert got["DANE_TLS_REQUIRED"].args["hosts"] == MX


def test_thousands_of_records_are_named_and_bounded(issued: Issued, ca: LabCA) -> None:
    records = [f"3 1 1 {i:064x}" for i in range(3000)] + [issued.tlsa_ee()]
    w = tlsa_world(*records)
    started = time.perf_counter()
    got = judge(w, MX, with_chain(issued, ca))
    assert time.perf_counter() - started < 5.0
    assert got["DANE_TLSA_TOO_MANY"].args["count"] == 3001
    assert got["DANE_TLSA_TOO_MANY"].args["limit"] == dane.MAX_TLSA
    # the matching record is past the bound: not considered, so DANE senders' view differs
    assert "DANE_TLSA_MISMATCH" in got


def test_a_failed_or_unparsable_tlsa_lookup(issued: Issued, ca: LabCA) -> None:
    w = tlsa_world(issued.tlsa_ee())
    chain_obs = w.chain(f"_25._tcp.{MX}", "TLSA")
    for outcome, tag in ((Outcome.TIMEOUT, "DANE_TLSA_LOOKUP_FAILED"),
                         (Outcome.MALFORMED, "DANE_TLSA_BOGUS")):
        broken = dataclasses.replace(chain_obs, answer=dataclasses.replace(
            chain_obs.answer, outcome=outcome, answer=()))
        found = dane.findings([dane.host_dane(MX, broken)], {MX: [with_chain(issued, ca)]})
        assert tag in {f.tag for f in found}


def test_a_hop_reads_dane_with_its_dialogues(issued: Issued, ca: LabCA) -> None:
    """Through the Exchange Online edge probe: a stale TLSA makes the tier fail."""
    w = tlsa_world("3 1 1 " + "44" * 32)
    d = with_chain(issued, ca)
    obs = HopObservation("exchange-online", "exchange-online", None, "alice@contoso.com",
                         (HostProbe(MX, addresses(MX, "127.0.2.1"), (d,)),),  # type: ignore[arg-type]
                         tlsa={MX: w.chain(f"_25._tcp.{MX}", "TLSA")})
    tags = {f.tag for f in exo_edge.evaluate(obs)}
    assert {"DANE_TLSA_MISMATCH", "SMTP_RCPT_ACCEPTED"} <= tags
