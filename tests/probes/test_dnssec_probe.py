"""DNSSEC at public DNS (pure): each broken link becomes the tag naming it, the panel's
validating resolvers are read with and without Checking Disabled, MX hosts' zones too."""

from __future__ import annotations

import dataclasses

import dns.name
import pytest

from mailtrace.clients.dns import Outcome, Server
from mailtrace.clients.trust_anchor import TrustAnchor
from mailtrace.probes.dns.dnssec import DnssecCheck, ResolverView, evaluate
from tests.support.builders import obs
from tests.support.dnssec_world import TEXTS, World

PLAIN = Server("resolver", "127.0.0.1", 53)
VALIDATING = Server("resolver", "127.0.0.2", 53)
MX = ("contoso.com.", "MX", 3600, "10 mx.contoso.com.")


def view(server: Server, checked: Outcome, ad: bool = False) -> ResolverView:
    answer = [MX] if checked is Outcome.ANSWER else []
    flags = ("RD", "RA", "AD") if ad else ("RD", "RA")
    return ResolverView(server, obs(server, "contoso.com.", "MX", checked, answer, flags=flags),
                        obs(server, "contoso.com.", "MX", Outcome.ANSWER, [MX]))


def check(w: World, *views: ResolverView, hosts: tuple[str, ...] = ("mx.contoso.com",),
          anchor: TrustAnchor | None = None) -> DnssecCheck:
    return DnssecCheck("contoso.com", w.chain("contoso.com", "MX", anchor=anchor),
                       tuple(w.chain(h, "A", anchor=anchor) for h in hosts),
                       views or (view(PLAIN, Outcome.ANSWER),))


def tags(c: DnssecCheck) -> dict[str, dict]:
    """Each tag's first finding (the domain's comes before its MX hosts')."""
    found: dict[str, dict] = {}
    for f in evaluate(c):
        found.setdefault(f.tag, f.args)
    return found


def test_signed_and_validated_by_a_resolver_of_the_panel() -> None:
    got = tags(check(World.signed(TEXTS), view(PLAIN, Outcome.ANSWER),
                     view(VALIDATING, Outcome.ANSWER, ad=True)))
    assert got["DNSSEC_SIGNED"]["chain"] == ". → com. → contoso.com."
    assert "validated by" in got["DNSSEC_SIGNED"]["resolvers"]
    assert got["DNSSEC_MX_HOST_ZONES"]["signed"] == "contoso.com."
    assert "DNSSEC_NO_VALIDATING_RESOLVER" not in got


def test_signed_with_no_validating_resolver_says_so() -> None:
    got = tags(check(World.signed(TEXTS)))
    assert "DNSSEC_SIGNED" in got and "DNSSEC_NO_VALIDATING_RESOLVER" in got


def test_unsigned_is_information_not_a_fault() -> None:
    w = World.signed(TEXTS, {"contoso.com.": "unsigned"})
    got = tags(check(w))
    assert got["DNSSEC_UNSIGNED"]["zone"] == "contoso.com."


def test_bogus_names_the_link_and_the_resolver_that_servfails() -> None:
    w = World.signed(TEXTS, {"contoso.com.": "expired-rrsig"})
    findings = evaluate(check(w, view(PLAIN, Outcome.ANSWER), view(VALIDATING, Outcome.SERVFAIL)))
    assert [f.tag for f in findings][:2] == ["DNSSEC_RRSIG_EXPIRED", "DNSSEC_RESOLVER_BOGUS"]
    assert findings[0].args["zone"] == "contoso.com."
    assert findings[0].args["record"].startswith("contoso.com. RRSIG DNSKEY")
    assert findings[1].args["resolvers"] == VALIDATING.label


def test_a_root_whose_signatures_read_expired_is_this_machines_clock() -> None:
    w = World.signed(TEXTS, {".": "expired-rrsig"})
    findings = evaluate(check(w, view(VALIDATING, Outcome.ANSWER)))
    assert [f.tag for f in findings] == ["OBSERVER_CLOCK_WRONG"]


@pytest.mark.parametrize(("edit", "tag"), [
    ("ds-mismatch", "DNSSEC_DS_MISMATCH"),
    ("tampered", "DNSSEC_SIGNATURE_INVALID"),
    ("stripped", "DNSSEC_SIGNATURE_MISSING"),
    ("loop", "DNSSEC_CHAIN_LOOP"),
])
def test_each_broken_link_has_its_tag(edit: str, tag: str) -> None:
    w = World.signed(TEXTS, {"contoso.com.": "ds-mismatch"} if edit == "ds-mismatch" else None)
    if edit == "tampered":
        w.edit("contoso.com.", "contoso.com.", "MX", "10 evil.example.")
    elif edit == "stripped":
        w.edit("contoso.com.", "contoso.com.", "RRSIG", covers="MX")
    elif edit == "loop":
        com = w.zones[dns.name.from_text("com.")]
        sigs = com.get_rdataset("contoso.com.", "RRSIG", "DS")
        assert sigs is not None
        w.edit("com.", "contoso.com.", "RRSIG",
               *(s.to_text().replace(" com. ", " contoso.com. ") for s in sigs), covers="DS")
    got = tags(check(w))
    assert got[tag]["name"] == "contoso.com"


def test_times_and_bounds_and_unreadable_data() -> None:
    w = World.signed(TEXTS)
    later = dataclasses.replace(check(w), mx=w.chain("contoso.com", "MX", at=0.0))
    assert "OBSERVER_CLOCK_WRONG" in tags(later)  # the root not yet valid: our clock
    ahead = World.signed(TEXTS, {"contoso.com.": "future-rrsig"})
    assert tags(check(ahead))["DNSSEC_RRSIG_NOT_YET_VALID"]["zone"] == "contoso.com."
    c = check(w)
    broken = dataclasses.replace(c.mx.dnskey["contoso.com."], outcome=Outcome.MALFORMED,
                                 answer=())
    malformed = dataclasses.replace(c, mx=dataclasses.replace(
        c.mx, dnskey={**c.mx.dnskey, "contoso.com.": broken}))
    assert "DNSSEC_MALFORMED" in tags(malformed)


def test_a_validation_limit_is_bogus(monkeypatch: pytest.MonkeyPatch) -> None:
    from mailtrace.clients import dnssec_validate

    monkeypatch.setattr(dnssec_validate, "TOTAL", 2)
    assert "DNSSEC_VALIDATION_LIMIT" in tags(check(World.signed(TEXTS)))


def test_unknown_algorithms_leave_the_zone_unsigned() -> None:
    w = World.signed(TEXTS)
    w.edit("com.", "contoso.com.", "DS", "12345 253 2 " + "ab" * 32)
    w.resign("com.", "contoso.com.", "DS")
    assert "DNSSEC_ALGORITHM_UNSUPPORTED" in tags(check(w))


def test_what_cannot_be_judged_is_said_not_failed() -> None:
    w = World.signed(TEXTS)
    other_root = tags(check(w, anchor=TrustAnchor()))
    assert "DNSSEC_TRUST_ANCHOR_MISMATCH" in other_root
    c = check(w)
    dead = dataclasses.replace(c, mx=dataclasses.replace(c.mx, answer=dataclasses.replace(
        c.mx.answer, outcome=Outcome.TIMEOUT, answer=())))
    assert "DNSSEC_NOT_CHECKED" in tags(dead)


def test_mx_hosts_in_bogus_zones() -> None:
    fabrikam = TEXTS["contoso.com."].replace("contoso", "fabrikam")
    com = TEXTS["com."] + "fabrikam IN NS ns1.fabrikam.com.\nns1.fabrikam IN A 127.0.6.1\n"
    w = World.signed({**TEXTS, "com.": com, "fabrikam.com.": fabrikam},
                     {"fabrikam.com.": "expired-rrsig"})
    some = tags(check(w, hosts=("mx.contoso.com", "mx.fabrikam.com")))
    assert some["DNSSEC_SOME_MX_HOSTS_BOGUS"]["hosts"] == "mx.fabrikam.com"
    every = evaluate(check(w, hosts=("mx.fabrikam.com",)))
    assert [f.tag for f in every if f.args.get("name") == "mx.fabrikam.com"] == [
        "DNSSEC_RRSIG_EXPIRED"]
