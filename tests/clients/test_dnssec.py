"""DNSSEC chain validation on signed zones in memory: each broken link is named, hostile
key and signature sets cost bounded work, and a trust anchor file is read or refused."""

from __future__ import annotations

import time
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdataset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mailtrace.clients.dnssec import ancestors
from mailtrace.clients.dnssec_validate import PER_RRSET, Failure, Security, validate
from mailtrace.clients.trust_anchor import IANA_ROOT_DS, TrustAnchor, TrustAnchorError
from tests.support.dnssec_world import TEXTS, World


def world(**faults: str) -> World:
    return World.signed(TEXTS, {k.replace("_", "."): v for k, v in faults.items()})  # type: ignore[misc]


def test_ancestors_run_from_the_name_to_the_root() -> None:
    assert ancestors("Mx.Contoso.COM") == ["mx.contoso.com.", "contoso.com.", "com.", "."]
    assert ancestors(".") == ["."]


def test_a_signed_zone_validates_from_the_anchor() -> None:
    verdict = validate(world().chain("contoso.com", "MX"))
    assert verdict.security is Security.SECURE
    assert [link.zone for link in verdict.links] == [".", "com.", "contoso.com."]
    assert verdict.zone == "contoso.com." and verdict.failure is None
    assert 1 <= verdict.validations <= 8


def test_a_name_below_the_apex_and_a_negative_answer_are_judged_by_their_zone() -> None:
    w = world()
    assert validate(w.chain("mx.contoso.com", "A")).security is Security.SECURE
    nodata = validate(w.chain("_25._tcp.mx.contoso.com", "TLSA"))
    assert nodata.security is Security.SECURE and nodata.negative
    assert nodata.zone == "contoso.com."


def test_an_unsigned_delegation_is_insecure_not_bogus() -> None:
    verdict = validate(world().chain("contoso-com.mail.protection.outlook.com", "A"))
    assert verdict.security is Security.INSECURE
    assert verdict.zone == "outlook.com." and verdict.failure is None
    assert [(link.zone, link.security) for link in verdict.links][-1] == (
        "outlook.com.", Security.INSECURE)


def test_an_expired_signature_names_the_rrsig() -> None:
    verdict = validate(world(**{"contoso.com.": "expired-rrsig"}).chain("contoso.com", "MX"))
    assert (verdict.security, verdict.failure, verdict.zone) == (
        Security.BOGUS, Failure.RRSIG_EXPIRED, "contoso.com.")
    assert verdict.record is not None and verdict.record.startswith("contoso.com. RRSIG ")


def test_a_ds_for_a_key_the_zone_lacks() -> None:
    verdict = validate(world(**{"contoso.com.": "ds-mismatch"}).chain("contoso.com", "MX"))
    assert (verdict.security, verdict.failure, verdict.zone) == (
        Security.BOGUS, Failure.DS_NO_MATCHING_DNSKEY, "contoso.com.")
    assert verdict.record is not None and " DS " in verdict.record


def test_a_record_changed_after_signing_does_not_verify() -> None:
    w = world()
    w.edit("contoso.com.", "contoso.com.", "MX", "10 evil.example.", ttl=300)
    verdict = validate(w.chain("contoso.com", "MX"))
    assert (verdict.security, verdict.failure) == (Security.BOGUS, Failure.SIGNATURE_INVALID)


def test_a_signed_zone_serving_an_unsigned_rrset() -> None:
    w = world()
    w.edit("contoso.com.", "contoso.com.", "RRSIG", covers="MX")
    verdict = validate(w.chain("contoso.com", "MX"))
    assert (verdict.security, verdict.failure) == (Security.BOGUS, Failure.SIGNATURE_MISSING)


def test_a_root_that_is_not_the_anchors_root() -> None:
    verdict = validate(world().chain("contoso.com", "MX", anchor=TrustAnchor()))
    assert (verdict.security, verdict.failure, verdict.zone) == (
        Security.INDETERMINATE, Failure.ANCHOR_MISMATCH, ".")


def test_signatures_are_judged_at_the_observation_time() -> None:
    later = time.time() + 90 * 86400
    verdict = validate(world().chain("contoso.com", "MX", at=later))
    assert verdict.failure is Failure.RRSIG_EXPIRED
    earlier = time.time() - 90 * 86400
    assert validate(world().chain("contoso.com", "MX", at=earlier)).failure is (
        Failure.RRSIG_NOT_YET_VALID)


def test_a_ds_with_only_unknown_algorithms_is_treated_as_unsigned() -> None:
    w = world()
    w.edit("com.", "contoso.com.", "DS", "12345 253 2 " + "ab" * 32)
    # re-sign com.'s DS RRset so only the algorithm is at fault
    w.resign("com.", "contoso.com.", "DS")
    verdict = validate(w.chain("contoso.com", "MX"))
    assert (verdict.security, verdict.failure) == (Security.INSECURE,
                                                   Failure.ALGORITHM_UNSUPPORTED)


def test_malformed_key_data_is_named_not_raised() -> None:
    """A key that parses as DNS data but is no point on the curve: the signature naming
    it cannot be checked, and the chain is bogus with the reason, not a traceback."""
    w = world()
    z = w.zones[dns.name.from_text("contoso.com.")]
    keys = z.get_rdataset("contoso.com.", "DNSKEY")
    assert keys is not None
    proto = next(k for k in keys if k.flags == 256)
    bad = type(proto)(proto.rdclass, proto.rdtype, 256, 3, 13, bytes([7]) * 64)
    w.edit("contoso.com.", "contoso.com.", "DNSKEY", *(k.to_text() for k in keys),
           bad.to_text())
    w.resign("contoso.com.", "contoso.com.", "DNSKEY", ksk=True)
    sigs = z.get_rdataset("contoso.com.", "RRSIG", "MX")
    assert sigs is not None
    fields = next(iter(sigs)).to_text().split()
    fields[6] = str(dns.dnssec.key_id(bad))  # the MX signature now names the bad key
    w.edit("contoso.com.", "contoso.com.", "RRSIG", " ".join(fields), covers="MX")
    verdict = validate(w.chain("contoso.com", "MX"))
    assert (verdict.security, verdict.failure) == (Security.BOGUS, Failure.MALFORMED)


def test_unparsable_data_from_a_server_is_bogus() -> None:
    import dataclasses

    from mailtrace.clients.dns import Outcome

    w = world()
    chain = w.chain("contoso.com", "MX")
    broken = dataclasses.replace(chain.dnskey["contoso.com."], outcome=Outcome.MALFORMED,
                                 answer=())
    chain = dataclasses.replace(chain, dnskey={**chain.dnskey, "contoso.com.": broken})
    verdict = validate(chain)
    assert (verdict.security, verdict.failure) == (Security.BOGUS, Failure.MALFORMED)


def test_a_ds_signed_by_the_child_itself_is_a_loop() -> None:
    w = world()
    contoso = w.zones[dns.name.from_text("contoso.com.")]
    com = w.zones[dns.name.from_text("com.")]
    sigs = com.get_rdataset("contoso.com.", "RRSIG", "DS")
    assert sigs is not None
    child_keys = contoso.get_rdataset("contoso.com.", "DNSKEY")
    assert child_keys is not None
    looped = [s.to_text().replace(" com. ", " contoso.com. ") for s in sigs]
    w.edit("com.", "contoso.com.", "RRSIG", *looped, covers="DS")
    verdict = validate(w.chain("contoso.com", "MX"))
    assert (verdict.security, verdict.failure) == (Security.BOGUS, Failure.CHAIN_LOOP)


def test_hundreds_of_keys_with_one_key_tag_cost_bounded_work() -> None:
    """KeyTrap (CVE-2023-50387): a validly signed DNSKEY set of hundreds of keys sharing
    the key tag of a signature none of them made. The validator tries at most PER_RRSET
    of them and calls the chain bogus, naming the limit."""
    w = world()
    z = w.zones[dns.name.from_text("contoso.com.")]
    sigs = z.get_rdataset("contoso.com.", "RRSIG", "MX")
    assert sigs is not None
    tag = next(iter(sigs)).key_tag
    keys = [r for r in z.get_rdataset("contoso.com.", "DNSKEY") or () if r.flags == 257]
    w.edit("contoso.com.", "contoso.com.", "DNSKEY", *(k.to_text() for k in keys),
           *_keys_with_tag(tag, 300))
    w.resign("contoso.com.", "contoso.com.", "DNSKEY", ksk=True)
    started = time.perf_counter()
    verdict = validate(w.chain("contoso.com", "MX"))
    elapsed = time.perf_counter() - started
    assert (verdict.security, verdict.failure) == (Security.BOGUS, Failure.VALIDATION_LIMIT)
    assert verdict.validations <= PER_RRSET + 5  # the five DS and DNSKEY links, then 8
    assert elapsed < 5.0, elapsed


def test_trust_anchor_file(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    path.write_text("; the lab root\n. 3600 IN DS " + IANA_ROOT_DS[0] + "\n\n")
    anchor = TrustAnchor.from_file(path)
    assert len(anchor.ds) == 1 and anchor.source == str(path)
    for text, where in ((". IN A 127.0.0.1\n", ":1:"), ("com. IN DS " + IANA_ROOT_DS[0], ":1:"),
                        ("; nothing\n", "no DS"), (". IN DS not a ds\n", ":1:")):
        path.write_text(text)
        with pytest.raises(TrustAnchorError, match=where):
            TrustAnchor.from_file(path)


# --- helpers ------------------------------------------------------------------------------

def _keys_with_tag(tag: int, count: int) -> list[str]:
    """``count`` distinct zone keys (algorithm 13) whose key tag is ``tag``: the public
    key's last bytes are adjusted until the RFC 4034 Appendix B checksum matches."""
    found: list[str] = []
    base = ec.generate_private_key(ec.SECP256R1()).public_key()
    proto = dns.dnssec.make_dnskey(base, dns.dnssec.Algorithm.ECDSAP256SHA256, flags=256)
    for n in range(count):
        key = bytearray(proto.key)
        key[0:2] = n.to_bytes(2, "big")
        candidate = type(proto)(proto.rdclass, proto.rdtype, proto.flags, proto.protocol,
                                proto.algorithm, bytes(key))
        diff = (tag - dns.dnssec.key_id(candidate)) & 0xFFFF
        # the tag is a 16-bit sum with the carry folded in: shift the last word by diff,
        # give or take the carry
        base = int.from_bytes(key[-2:], "big")
        for carry in (0, -1, 1, -2, 2):
            key[-2:] = ((base + diff + carry) & 0xFFFF).to_bytes(2, "big")
            candidate = type(proto)(proto.rdclass, proto.rdtype, proto.flags, proto.protocol,
                                    proto.algorithm, bytes(key))
            if dns.dnssec.key_id(candidate) == tag:
                found.append(candidate.to_text())
                break
    assert len(found) >= count // 2, len(found)
    return found


# --- collecting: what is asked ---------------------------------------------------------------

class WorldClient:
    """A DNS client answering from a World, recording the questions (DO and CD set)."""

    def __init__(self, w: World) -> None:
        self.world = w
        self.trust_anchor = w.anchor
        self.asked: list[tuple[str, str]] = []

    async def lookup(self, qname: str, qtype: str, deadline: float, *, dnssec: bool = False,
                     cd: bool = False) -> object:
        assert dnssec and cd
        self.asked.append((qname, qtype))
        return self.world.answer(qname, qtype)


def collected(w: World, name: str, rdtype: str) -> tuple[object, list[tuple[str, str]]]:
    import asyncio

    from mailtrace.clients.dnssec import collect_chain

    client = WorldClient(w)
    chain = asyncio.run(collect_chain(client, name, rdtype, time.monotonic() + 5))  # type: ignore[arg-type]
    return chain, client.asked


def test_a_hosts_own_keys_are_not_asked_unless_it_is_a_zone() -> None:
    chain, asked = collected(world(), "mx.contoso.com", "A")
    assert ("mx.contoso.com.", "DNSKEY") not in asked and ("mx.contoso.com.", "DS") not in asked
    assert validate(chain).security is Security.SECURE  # type: ignore[arg-type]
    _, tlsa = collected(world(), "_25._tcp.mx.contoso.com", "TLSA")
    assert not any(n.startswith("_") or n == "mx.contoso.com."
                   for n, t in tlsa if t in ("DNSKEY", "DS"))


def test_a_host_that_is_its_own_zone_gets_its_keys_in_a_second_round() -> None:
    texts = dict(TEXTS)
    texts["contoso.com."] += "mx IN NS ns1.contoso.com.\n"
    texts["mx.contoso.com."] = ("@ IN SOA ns1.contoso.com. h.contoso.com. 1 7200 3600 1209600 300\n"
                                "@ IN NS ns1.contoso.com.\n@ IN A 127.0.1.25\n")
    w = World.signed(texts)
    chain, asked = collected(w, "mx.contoso.com", "A")
    assert ("mx.contoso.com.", "DNSKEY") in asked and ("mx.contoso.com.", "DS") in asked
    verdict = validate(chain)  # type: ignore[arg-type]
    assert verdict.security is Security.SECURE and verdict.zone == "mx.contoso.com."


def test_an_unsigned_domains_zone_is_told_by_its_dnskey_answer() -> None:
    """No SOA asked for a domain's MX: the NODATA answer to its DNSKEY names its zone."""
    chain, asked = collected(World.signed(TEXTS, {"contoso.com.": "unsigned"}),
                             "contoso.com", "MX")
    assert ("contoso.com.", "SOA") not in asked
    verdict = validate(chain)  # type: ignore[arg-type]
    assert (verdict.security, verdict.zone) == (Security.INSECURE, "contoso.com.")
