"""SPF: the record parser, macros, check_host() semantics on hand-built zones, the lookup
tree, and hostile records (property tests: any input gives a result, never an exception)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtrace.mailauth.spf import RESULTS, check_host
from mailtrace.mailauth.spf_record import (
    MacroEnv,
    SpfSyntaxError,
    expand,
    parse_record,
    parse_term,
)
from mailtrace.mailauth.spf_tree import lookup_tree
from tests.support.authzone import zone_lookup


def run(coro):
    return asyncio.run(coro)


def test_parse_a_typical_record():
    rec = parse_record("v=spf1 include:spf.protection.outlook.com a:dispatch-us.ppe-hosted.com"
                       " ip4:192.0.2.0/24 ip6:2001:db8::/32 mx/24//64 ~all exp=why.%{d}")
    assert [m.name for m in rec.mechanisms] == ["include", "a", "ip4", "ip6", "mx", "all"]
    assert rec.mechanisms[4].cidr4 == 24 and rec.mechanisms[4].cidr6 == 64
    assert rec.all is not None and rec.all.result == "softfail"
    assert rec.exp == "why.%{d}" and rec.lookup_terms == 3


@pytest.mark.parametrize("text", [
    "v=spf1 ip4:192.0.2.0/33 -all", "v=spf1 moo -all", "v=spf1 -all.", "v=spf1 a:foo-bar -all",
    "v=spf1 redirect=a.example redirect=b.example", "v=spf1 include:%{z}.example -all",
    "v=spf1 a:example.com\x0dptr -all", "v=spf1 a:caf\u00e9.example -all", "v=spf1 ip6::CAFE::BABE",
    "v=spf1 ip4:01.2.3.4 -all", "v=spf1 =x -all",
])
def test_invalid_records_raise_a_syntax_error(text):
    with pytest.raises(SpfSyntaxError):
        parse_record(text)


def test_macros_expand_as_rfc7208_section_7_4_shows():
    env = MacroEnv("strong-bad@email.example.com", "email.example.com",
                   ipaddress.ip_address("192.0.2.3"), "mx.example.org")
    assert expand("%{s}", env) == "strong-bad@email.example.com"
    assert expand("%{d4}", env) == "email.example.com"
    assert expand("%{d2}", env) == "example.com"
    assert expand("%{dr}", env) == "com.example.email"
    assert expand("%{l-}", env) == "strong.bad"
    assert expand("%{ir}.%{v}._spf.%{d2}", env) == "3.2.0.192.in-addr._spf.example.com"
    assert expand("%{lr-}", env) == "bad.strong"
    v6 = MacroEnv("a@b.example", "b.example", ipaddress.ip_address("2001:db8::cb01"), "h")
    assert expand("%{ir}.%{v}", v6).startswith("1.0.b.c.0.0.0.0") and expand("%{v}", v6) == "ip6"


def test_a_term_is_checked_before_it_enters_a_topology():
    assert parse_term("a:dispatch-us.ppe-hosted.com").name == "a"
    with pytest.raises(SpfSyntaxError):
        parse_term("a:dispatch us")


CONTOSO = {
    "contoso.com": {"TXT": ["v=spf1 include:spf.pp.example include:spf.ms.example -all",
                            "google-site-verification=abc"]},
    "spf.pp.example": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]},
    "spf.ms.example": {"TXT": ["v=spf1 ip4:198.51.100.0/24 include:spf2.ms.example -all"]},
    "spf2.ms.example": {"TXT": ["v=spf1 ip6:2001:db8::/32 -all"]},
}


@pytest.mark.parametrize(("ip", "result", "matched"), [
    ("192.0.2.10", "pass", "include:spf.pp.example > ip4:192.0.2.0/24"),
    ("2001:db8::5", "pass",
     "include:spf.ms.example > include:spf2.ms.example > ip6:2001:db8::/32"),
    ("203.0.113.9", "fail", "-all"),
    ("::ffff:192.0.2.10", "pass", "include:spf.pp.example > ip4:192.0.2.0/24"),
])
def test_check_host_follows_includes(ip, result, matched):
    spf = run(check_host(zone_lookup(CONTOSO), ip, "contoso.com", "alice@contoso.com"))
    assert (spf.result, spf.matched) == (result, matched)
    assert spf.lookups >= 1


def test_an_include_loop_is_a_permerror_and_named():
    zone = {"a.example": {"TXT": ["v=spf1 include:b.example -all"]},
            "b.example": {"TXT": ["v=spf1 include:a.example -all"]}}
    spf = run(check_host(zone_lookup(zone), "192.0.2.1", "a.example", "x@a.example"))
    assert spf.result == "permerror" and "loop" in (spf.problem or "")
    tree = run(lookup_tree(zone_lookup(zone), "a.example"))
    assert [(p.kind, p.via) for p in tree.problems] == [("loop", "include")]


REDIRECTED = {
    "a.example": {"TXT": ["v=spf1 redirect=b.example"]},
    "b.example": {"TXT": ["v=spf1 ip4:192.0.2.0/24 redirect=c.example"]},
    "c.example": {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]},
}


@pytest.mark.parametrize(("ip", "result", "matched"), [
    ("192.0.2.10", "pass", "redirect=b.example > ip4:192.0.2.0/24"),
    ("198.51.100.7", "pass", "redirect=b.example > redirect=c.example > ip4:198.51.100.0/24"),
    ("203.0.113.9", "fail", "redirect=b.example > redirect=c.example > -all"),
])
def test_a_result_through_redirects_names_the_terms_that_matched(ip, result, matched):
    """RFC 7208 §6.1: the target's result is the domain's; the path says how it came."""
    spf = run(check_host(zone_lookup(REDIRECTED), ip, "a.example", "x@a.example"))
    assert (spf.result, spf.matched) == (result, matched)


@pytest.mark.parametrize(("records", "term", "at", "result"), [
    ({}, "-all", "c.example", "fail"),  # followed through both redirects
    ({"a.example": {"TXT": ["v=spf1 ~all redirect=b.example"]}}, "~all", "a.example",
     "softfail"),  # an all makes the redirect ignored (RFC 7208 §6.1)
    ({"c.example": {"TXT": ["v=spf1 ip4:198.51.100.0/24"]}}, None, "c.example", "neutral"),
    ({"c.example": {"TXT": ["v=spf1 all"]}}, "all", "c.example", "pass"),
    ({"c.example": {"TXT": ["v=spf1 +all"]}}, "+all", "c.example", "pass"),
])
def test_the_effective_all_follows_redirects(records, term, at, result):
    tree = run(lookup_tree(zone_lookup({**REDIRECTED, **records}), "a.example"))
    final = tree.effective_all()
    assert final is not None and (final.term, final.record, final.result) == (term, at, result)


@pytest.mark.parametrize("records", [
    {"b.example": None},  # the target does not exist
    {"a.example": {"TXT": ["v=spf1 redirect=%{d2}.example"]}},  # depends on the sender
    {"c.example": {"TXT": ["v=spf1 redirect=a.example"]}},  # a loop
])
def test_an_effective_all_that_cannot_be_told_is_none(records):
    zone = {n: r for n, r in {**REDIRECTED, **records}.items() if r is not None}
    tree = run(lookup_tree(zone_lookup(zone), "a.example"))
    assert tree.effective_all() is None


def test_a_redirect_loop_is_named_as_a_redirect():
    zone = {"a.example": {"TXT": ["v=spf1 redirect=b.example"]},
            "b.example": {"TXT": ["v=spf1 redirect=a.example"]}}
    spf = run(check_host(zone_lookup(zone), "192.0.2.1", "a.example", "x@a.example"))
    assert spf.result == "permerror"
    assert "redirect=a.example leads back to a.example" in (spf.problem or "")
    tree = run(lookup_tree(zone_lookup(zone), "a.example"))
    assert [(p.kind, p.name, p.via) for p in tree.problems] == [("loop", "a.example",
                                                                  "redirect")]


def test_eleven_lookups_is_a_permerror_ten_are_fine():
    names = [f"h{i}.example" for i in range(11)]
    zone = {n: {"A": ["198.51.100.1"]} for n in names}
    zone["ten.example"] = {"TXT": ["v=spf1 " + " ".join(f"a:{n}" for n in names[:10]) + " -all"]}
    zone["eleven.example"] = {"TXT": ["v=spf1 " + " ".join(f"a:{n}" for n in names) + " -all"]}
    assert run(check_host(zone_lookup(zone), "192.0.2.1", "ten.example", "x@ten.example")
               ).result == "fail"
    over = run(check_host(zone_lookup(zone), "192.0.2.1", "eleven.example", "x@eleven.example"))
    assert over.result == "permerror" and over.lookups == 11
    assert run(lookup_tree(zone_lookup(zone), "eleven.example")).lookups == 11


def test_a_dns_failure_is_temperror_not_none():
    spf = run(check_host(zone_lookup({}, errors=[("contoso.com", "TXT")]), "192.0.2.1",
                         "contoso.com", "x@contoso.com"))
    assert spf.result == "temperror"
    assert run(check_host(zone_lookup({}), "192.0.2.1", "contoso.com", "x@contoso.com")
               ).result == "none"


def test_lookups_are_prefetched_but_only_counted_when_evaluated():
    lookup = zone_lookup(CONTOSO)
    spf = run(check_host(lookup, "192.0.2.10", "contoso.com", "alice@contoso.com"))
    # The match is in the first include; the second one was prefetched, never counted.
    assert spf.lookups == 1
    assert ("spf.ms.example.", "TXT") in lookup.asked


def test_the_tree_shows_the_cost_of_each_include():
    tree = run(lookup_tree(zone_lookup(CONTOSO), "contoso.com"))
    assert tree.lookups == 3
    costs = {c.term: c.total for c in tree.tree.children}
    assert costs == {"include:spf.pp.example": 1, "include:spf.ms.example": 2, "-all": 0}
    assert "include:spf.ms.example  [2 lookups]" in "\n".join(tree.tree.lines())


def test_a_4000_byte_record_is_evaluated_and_reported_long():
    big = "v=spf1 " + " ".join(f"ip4:10.{i // 250}.{i % 250}.0/24" for i in range(228)) + " -all"
    assert 3990 < len(big) < 4100
    zone = {"big.example": {"TXT": [big]}}
    spf = run(check_host(zone_lookup(zone), "10.0.5.1", "big.example", "x@big.example"))
    assert spf.result == "pass"
    tree = run(lookup_tree(zone_lookup(zone), "big.example"))
    assert tree.long_records == (("big.example", len(big)),)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_text_parses_or_raises_the_syntax_error(text):
    with contextlib.suppress(SpfSyntaxError):
        parse_record("v=spf1 " + text)


TERM = st.one_of(
    st.sampled_from(["a", "mx", "ptr", "-all", "~all", "?all", "+all", "a/24", "mx//64",
                     "include:inc.example", "exists:%{i}.ex.example", "redirect=inc.example",
                     "exp=exp.example", "a:%{d2}", "ip4:192.0.2.0/24", "ip6:2001:db8::/32",
                     "include:loop.example", "a:nx.example", "%{z}", "a:%{p}.example"]),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TERM, max_size=12), st.sampled_from(["192.0.2.7", "2001:db8::7"]))
def test_check_host_on_any_record_gives_one_of_the_seven_results(terms, ip):
    zone = {"t.example": {"TXT": ["v=spf1 " + " ".join(terms)], "A": ["192.0.2.7"],
                          "MX": ["10 t.example."]},
            "inc.example": {"TXT": ["v=spf1 ip4:192.0.2.0/28 -all"]},
            "loop.example": {"TXT": ["v=spf1 include:t.example"]},
            "exp.example": {"TXT": ["denied %{i}"]}}
    spf = run(check_host(zone_lookup(zone), ip, "t.example", "x@t.example", "h.example"))
    assert spf.result in RESULTS
    tree = run(lookup_tree(zone_lookup(zone), "t.example"))
    assert tree.lookups >= 0
    final = tree.effective_all()
    assert final is None or final.result in ("pass", "fail", "softfail", "neutral")
