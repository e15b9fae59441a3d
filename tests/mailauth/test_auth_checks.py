"""A domain's records judged against its topology: collect() through an in-memory zone,
evaluate() into tagged findings. One world (contoso, Proofpoint + Exchange Online), each
test breaking one thing."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtrace.lab.lab import example_topology
from mailtrace.mailauth import mta_sts as sts
from mailtrace.mailauth.lookup import Answer
from mailtrace.probes.auth import checks
from mailtrace.topology import load_topology
from tests.support.authzone import zone_lookup

TOPOLOGY = load_topology(example_topology("contoso-proofpoint-exo.yaml"))
KEY = ("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA0K7mALxFxCr+Qic0dEDQhn9X"
       "qexycuGHOzjoj4ouR110ZzMBAcfgWWWAfRjopC12bpQOqnAxL9nXTOjh3+aQxLRFrvY0otpaSyTNKyYc8LGMw"
       "c6u8bCw/IWD4nKvNG71p0/h0NP2tBDyoKNMDQ5YWDzjrm7XMj3idcJQJYJ4uHD6wTJlt8Tk/wYKsemzpPBAdL"
       "fMMkR1fZ5uoWgbYRUgbdFqXDdMWIHDIZhdsE9xlfeyAPyNUfEIvJXmE28ZalLofEyftfj8QT8XRxyXZlKeXciD"
       "JM+SdAr4bDd0P92ydc5JXHJ06+FBhobxEk+sD0oExqTlVVzutn4K1CveErHE+QIDAQAB")
WORLD: dict[str, dict[str, Any]] = {
    "contoso.com": {"TXT": ["v=spf1 include:spf-001234.pphosted.com "
                            "include:spf.protection.outlook.com -all"]},
    "spf-001234.pphosted.com": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]},
    "spf.protection.outlook.com": {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]},
    "_dmarc.contoso.com": {"TXT": ["v=DMARC1; p=quarantine; rua=mailto:d@contoso.com"]},
    "selector1._domainkey.contoso.com": {
        "CNAME": ["selector1-contoso-com._domainkey.contoso.onmicrosoft.com."]},
    "selector2._domainkey.contoso.com": {
        "CNAME": ["selector2-contoso-com._domainkey.contoso.onmicrosoft.com."]},
    "selector1-contoso-com._domainkey.contoso.onmicrosoft.com": {"TXT": [KEY]},
    "selector2-contoso-com._domainkey.contoso.onmicrosoft.com": {"TXT": [KEY]},
}


def judge(changes: dict[str, Any] | None = None, errors=(), topology=TOPOLOGY,
          domain: str = "contoso.com") -> list[Any]:
    world = copy.deepcopy(WORLD)
    for name, value in (changes or {}).items():
        if value is None:
            world.pop(name, None)
        else:
            world[name] = value
    obs = asyncio.run(checks.collect(zone_lookup(world, errors=errors), topology, domain))
    return checks.evaluate(obs)


def tags(findings) -> list[str]:
    return [f.tag for f in findings]


def test_the_healthy_world():
    found = judge()
    assert "SPF_LOOKUPS" in tags(found)
    passes = [f.args["sender"] for f in found if f.tag == "SPF_SENDER_PASSES"]
    assert passes == ["proofpoint (include:spf-001234.pphosted.com)",
                      "exchange-online (include:spf.protection.outlook.com)"]
    assert tags(found).count("DKIM_KEY_OK") == 2
    assert tags(found).count("DMARC_SENDER_ALIGNED") == 2 and "DMARC_OK" in tags(found)
    assert not [f for f in found if f.tag.endswith(("FAILS", "MISSING", "INVALID"))]


@pytest.mark.parametrize(("txt", "tag", "args"), [
    (["google-site-verification=x"], "SPF_MISSING", {"status": "answer"}),
    (["v=spf1 -all", "v=spf1 include:spf.protection.outlook.com -all"], "SPF_MULTIPLE",
     {"count": 2}),
    (["v=spf1 include:spf.protection.outlook.com -all \u00e9"], "SPF_SYNTAX", {}),
    (["v=spf1 a:x.example \x01 -all"], "SPF_SYNTAX", {}),
    (["\x96\x00garbage", "v=spf1 include:spf.protection.outlook.com "
      "include:spf-001234.pphosted.com -all"], "SPF_LOOKUPS", {"lookups": 2}),
])
def test_bad_spf_records(txt, tag, args):
    found = [f for f in judge({"contoso.com": {"TXT": txt}}) if f.tag == tag]
    assert found and all(found[0].args[k] == v for k, v in args.items())


def test_spf_is_not_tested_when_the_lookup_fails():
    found = judge(errors=[("contoso.com", "TXT")])
    failed = [f for f in found if f.tag == "AUTH_LOOKUP_FAILED"]
    assert failed and failed[0].args["name"] == "contoso.com"
    assert "SPF_MISSING" not in tags(found)


def test_a_sender_left_out_of_spf():
    found = judge({"contoso.com": {"TXT": ["v=spf1 include:spf.protection.outlook.com ~all"]}})
    fails = [f for f in found if f.tag == "SPF_SENDER_FAILS"]
    assert [(f.args["sender"], f.args["result"], f.args["matched"]) for f in fails] == [
        ("proofpoint (include:spf-001234.pphosted.com)", "softfail", "~all")]
    missing = [f.args["term"] for f in found if f.tag == "SPF_EXPECTED_TERM_MISSING"]
    assert missing == ["include:spf-001234.pphosted.com"]
    assert [f.args for f in found if f.tag == "SPF_ALL_DIFFERS"] == [
        {"domain": "contoso.com", "found": "~all", "at": "contoso.com", "expected": "-all"}]
    # DMARC is quarantine: the gateway's mail has neither SPF nor a DKIM key of its own.
    assert [f.args["sender"] for f in found if f.tag == "DMARC_SENDER_NOT_ALIGNED"] == [
        "proofpoint (include:spf-001234.pphosted.com)"]


def test_include_loop_and_broken_include():
    found = judge({"spf-001234.pphosted.com": {"TXT": ["v=spf1 include:contoso.com -all"]},
                   "spf.protection.outlook.com": {"TXT": ["nothing here"]}})
    assert [(f.args["name"], f.args["via"]) for f in found if f.tag == "SPF_INCLUDE_LOOP"] == [
        ("contoso.com", "include")]
    assert [(f.args["name"], f.args["via"]) for f in found if f.tag == "SPF_INCLUDE_BROKEN"] == [
        ("spf.protection.outlook.com", "include")]


TEAM = "include:spf-001234.pphosted.com include:spf.protection.outlook.com"


def declaring(**spf: Any) -> Any:
    """The contoso topology with its SPF expectation changed (None: no expectation)."""
    topology = TOPOLOGY.model_copy(deep=True)
    tier = topology.tiers["public-dns"]
    expect = tier.expect  # type: ignore[union-attr]
    new = None if spf.get("spf", True) is None else expect.spf.model_copy(update=spf)
    object.__setattr__(expect, "spf", new)
    return topology


def spf_all(found: list[Any]) -> list[tuple[str, str, str]]:
    return [(f.tag, f.args["found"], f.args["at"]) for f in found
            if f.tag.startswith("SPF_ALL_")]


@pytest.mark.parametrize(("target", "want"), [
    ("-all", []),  # the target's -all is the domain's: nothing to say
    ("~all", [("SPF_ALL_DIFFERS", "~all", "_spf.contoso.com")]),
])
def test_the_effective_all_is_the_redirect_targets(target, want):
    """RFC 7208 §6.1: with redirect= and no all, the target record decides."""
    found = judge({"contoso.com": {"TXT": ["v=spf1 redirect=_spf.contoso.com"]},
                   "_spf.contoso.com": {"TXT": [f"v=spf1 {TEAM} {target}"]}})
    assert spf_all(found) == want
    assert [f.args["matched"] for f in found if f.tag == "SPF_SENDER_PASSES"] == [
        "redirect=_spf.contoso.com > include:spf-001234.pphosted.com > ip4:192.0.2.0/24",
        "redirect=_spf.contoso.com > include:spf.protection.outlook.com > ip4:198.51.100.0/24"]


def test_an_all_beside_a_redirect_is_the_one_that_counts():
    found = judge({"contoso.com": {"TXT": [f"v=spf1 {TEAM} ~all redirect=_spf.contoso.com"]},
                   "_spf.contoso.com": {"TXT": ["v=spf1 -all"]}})
    assert spf_all(found) == [("SPF_ALL_DIFFERS", "~all", "contoso.com")]


@pytest.mark.parametrize(("declared", "want"), [
    ({"all": "-all"}, [("SPF_ALL_DIFFERS", "+all", "contoso.com"),
                       ("SPF_ALL_PASS", "+all", "contoso.com")]),
    ({"all": None}, [("SPF_ALL_PASS", "+all", "contoso.com")]),
    ({"spf": None}, [("SPF_ALL_PASS", "+all", "contoso.com")]),
    ({"all": "+all"}, [("SPF_ALL_PASS", "+all", "contoso.com")]),  # declared, still wrong
])
def test_plus_all_is_flagged_whatever_the_topology_declares(declared, want):
    found = judge({"contoso.com": {"TXT": [f"v=spf1 {TEAM} +all"]}},
                  topology=declaring(**declared))
    assert spf_all(found) == want


def test_plus_all_through_a_redirect_is_flagged_where_it_is():
    found = judge({"contoso.com": {"TXT": ["v=spf1 redirect=_spf.contoso.com"]},
                   "_spf.contoso.com": {"TXT": [f"v=spf1 {TEAM} all"]}},
                  topology=declaring(all=None))
    assert spf_all(found) == [("SPF_ALL_PASS", "all", "_spf.contoso.com")]


@pytest.mark.parametrize(("record", "declared", "want"), [
    (f"v=spf1 {TEAM} ?all", {"all": None}, [("SPF_ALL_NEUTRAL", "?all", "contoso.com")]),
    (f"v=spf1 {TEAM}", {"all": None}, [("SPF_ALL_NEUTRAL", "(none)", "contoso.com")]),
    (f"v=spf1 {TEAM} ?all", {"spf": None}, []),  # no declared senders: nothing to protect
    (f"v=spf1 {TEAM} ~all", {"all": None}, []),
])
def test_neutral_for_unlisted_hosts_is_flagged_when_senders_are_declared(record, declared,
                                                                         want):
    found = judge({"contoso.com": {"TXT": [record]}}, topology=declaring(**declared))
    assert spf_all(found) == want


def test_a_redirect_loop_and_a_broken_redirect_say_redirect():
    loop = judge({"contoso.com": {"TXT": ["v=spf1 redirect=_spf.contoso.com"]},
                  "_spf.contoso.com": {"TXT": ["v=spf1 redirect=contoso.com"]}})
    assert [(f.args["name"], f.args["via"], f.args["term"]) for f in loop
            if f.tag == "SPF_INCLUDE_LOOP"] == [("contoso.com", "redirect",
                                                  "redirect=contoso.com")]
    broken = judge({"contoso.com": {"TXT": ["v=spf1 redirect=_spf.contoso.com"]}})
    assert [(f.args["name"], f.args["via"]) for f in broken
            if f.tag == "SPF_INCLUDE_BROKEN"] == [("_spf.contoso.com", "redirect")]
    assert not spf_all(broken)  # the all cannot be told: no false "(none)"


def test_void_and_lookup_limits():
    terms = " ".join(f"a:gone{i}.contoso.com" for i in range(3))
    found = judge({"contoso.com": {"TXT": [f"v=spf1 {terms} include:spf.protection.outlook.com "
                                           "include:spf-001234.pphosted.com -all"]}})
    assert [f.args["voids"] for f in found if f.tag == "SPF_VOID_LIMIT"] == [3]
    many = " ".join(f"mx:m{i}.contoso.com" for i in range(10))
    found = judge({"contoso.com": {"TXT": [f"v=spf1 {many} include:spf.protection.outlook.com "
                                           "include:spf-001234.pphosted.com -all"]},
                   **{f"m{i}.contoso.com": {"MX": ["10 mx.contoso.com."]} for i in range(10)}})
    assert [f.args["lookups"] for f in found if f.tag == "SPF_LOOKUP_LIMIT"] == [12]


def test_a_sender_whose_spf_uses_macros_is_not_tested():
    topology = TOPOLOGY.model_copy(deep=True)
    spf = topology.tiers["public-dns"].expect.spf  # type: ignore[union-attr]
    assert spf is not None
    object.__setattr__(spf, "mechanisms", ["exists:%{i}._spf.contoso.com"])
    found = judge(topology=topology)
    assert [f.args["sender"] for f in found if f.tag == "SPF_SENDER_UNTESTED"] == [
        "exists:%{i}._spf.contoso.com"]


@pytest.mark.parametrize(("dmarc", "tag", "args"), [
    (None, "DMARC_MISSING", {"org": "contoso.com"}),
    (["v=DMARC1; p=none", "v=DMARC1; p=reject"], "DMARC_MULTIPLE", {"count": 2}),
    (["v=DMARC1; p=quarantine; pct=abc"], "DMARC_INVALID", {}),
    (["v=DMARC1; p=reject"], "DMARC_POLICY_DIFFERS", {"found": "reject",
                                                      "expected": "quarantine"}),
    (["v=DMARC1; p=quarantine; pct=20"], "DMARC_PCT_PARTIAL", {"pct": 20}),
    (["v=DMARC1; p=quarantine; t=y"], "DMARC_TESTING", {}),
    (["v=DMARC1; p=quarantine; rua=mailto:r@reports.example"], "DMARC_REPORT_UNAUTHORIZED",
     {"uri": "mailto:r@reports.example",
      "name": "contoso.com._report._dmarc.reports.example"}),
])
def test_dmarc_findings(dmarc, tag, args):
    found = judge({"_dmarc.contoso.com": {"TXT": dmarc} if dmarc else None})
    hit = [f for f in found if f.tag == tag]
    assert hit and all(hit[0].args[k] == v for k, v in args.items())


def test_an_authorized_report_destination_is_fine():
    found = judge({"_dmarc.contoso.com": {"TXT": ["v=DMARC1; p=quarantine; "
                                                  "rua=mailto:r@reports.example"]},
                   "contoso.com._report._dmarc.reports.example": {"TXT": ["v=DMARC1"]}})
    assert "DMARC_REPORT_UNAUTHORIZED" not in tags(found)


def test_a_subdomain_inherits_the_organizational_policy():
    topology = TOPOLOGY.model_copy(update={"domains": ["mail.contoso.com"]})
    found = judge({"mail.contoso.com": WORLD["contoso.com"]}, topology=topology,
                  domain="mail.contoso.com")
    assert [f.args["org"] for f in found if f.tag == "DMARC_INHERITED"] == ["contoso.com"]


@pytest.mark.parametrize(("dmarc", "want"), [
    ("v=DMARC1; p=quarantine; sp=none", [("none", "quarantine", "sp", "_dmarc.contoso.com")]),
    ("v=DMARC1; p=none", [("none", "quarantine", "p", "_dmarc.contoso.com")]),
    ("v=DMARC1; p=reject; sp=quarantine", []),
])
def test_a_subdomain_is_judged_by_the_policy_it_inherits(dmarc, want):
    """RFC 7489 §6.3, §6.6.3: sp= (else p=) of the organizational domain's record."""
    topology = TOPOLOGY.model_copy(update={"domains": ["mail.contoso.com"]})
    found = judge({"mail.contoso.com": WORLD["contoso.com"],
                   "_dmarc.contoso.com": {"TXT": [dmarc]}}, topology=topology,
                  domain="mail.contoso.com")
    assert [(f.args["found"], f.args["expected"], f.args["term"], f.args["at"])
            for f in found if f.tag == "DMARC_POLICY_DIFFERS"] == want


TESTING_KEY = KEY.replace("k=rsa;", "k=rsa; t=y;")


def test_a_key_in_testing_mode_does_not_count_toward_alignment():
    """RFC 6376 §3.6.1: mail signed by a t=y key is treated like unsigned mail."""
    keys = {f"{s}-contoso-com._domainkey.contoso.onmicrosoft.com": {"TXT": [TESTING_KEY]}
            for s in ("selector1", "selector2")}
    found = judge(keys)
    assert [f.args["selector"] for f in found if f.tag == "DKIM_TESTING"] == [
        "selector1", "selector2"]  # still listed
    assert [(f.args["sender"], f.args["via"]) for f in found
            if f.tag == "DMARC_SENDER_ALIGNED"] == [
        ("proofpoint (include:spf-001234.pphosted.com)", "spf"),
        ("exchange-online (include:spf.protection.outlook.com)", "spf")]
    # Without SPF, Exchange Online's mail rests on its keys alone, and they do not count.
    found = judge({**keys, "contoso.com": {"TXT": ["v=spf1 include:spf-001234.pphosted.com "
                                                   "-all"]}})
    assert [f.args["sender"] for f in found if f.tag == "DMARC_SENDER_NOT_ALIGNED"] == [
        "exchange-online (include:spf.protection.outlook.com)"]
    healthy = judge({"contoso.com": {"TXT": ["v=spf1 include:spf-001234.pphosted.com -all"]}})
    assert "DMARC_SENDER_NOT_ALIGNED" not in tags(healthy)  # a usable key does count


def test_an_unaligned_sender_under_p_none_is_only_noted():
    found = judge({"_dmarc.contoso.com": {"TXT": ["v=DMARC1; p=none"]},
                   "contoso.com": {"TXT": ["v=spf1 include:spf.protection.outlook.com -all"]}})
    assert [f.args["sender"] for f in found if f.tag == "DMARC_SENDER_UNALIGNED_MONITORED"] == [
        "proofpoint (include:spf-001234.pphosted.com)"]


# -- MTA-STS and TLS-RPT (pure) -----------------------------------------------------------------

POLICY = "version: STSv1\r\nmode: enforce\r\nmx: mx0a.contoso.com\r\nmx: *.pphosted.com\r\n" \
         "max_age: 86400\r\n"


def sts_check(record=("v=STSv1; id=2026",), tlsrpt=("v=TLSRPTv1; rua=mailto:t@contoso.com",),
              hosts=("mx0a.contoso.com", "mx0b-1.pphosted.com"), body=POLICY, status=200,
              ctype="text/plain", error=None, expected=None) -> list[str]:
    def answer(name, data):
        return Answer(name, "TXT", "answer" if data else "nodata", tuple(data or ()), 300)
    fetch = sts.PolicyFetch("https://mta-sts.contoso.com/.well-known/mta-sts.txt", status,
                            body, ctype, error)
    check = sts.MtaStsCheck("contoso.com", answer("_mta-sts.contoso.com.", record),
                            answer("_smtp._tls.contoso.com.", tlsrpt), hosts, fetch, expected)
    return tags(check.evaluate())


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, ["TLSRPT_OK", "MTASTS_OK"]),
    ({"record": (), "expected": "enforce"}, ["TLSRPT_OK", "MTASTS_MISSING"]),
    ({"record": ("v=STSv1; id=no-dashes-allowed",)}, ["TLSRPT_OK", "MTASTS_RECORD_INVALID",
                                                      "MTASTS_OK"]),
    ({"error": "TLS or certificate failure"}, ["TLSRPT_OK", "MTASTS_POLICY_UNREACHABLE"]),
    ({"status": 404}, ["TLSRPT_OK", "MTASTS_POLICY_UNREACHABLE"]),
    ({"body": "version: STSv1\nmode: on\nmx: *.pphosted.com\nmax_age: 99999999999\n",
      "hosts": ("mx0b-1.pphosted.com",)}, ["TLSRPT_OK", "MTASTS_POLICY_INVALID"]),
    ({"ctype": "text/html"}, ["TLSRPT_OK", "MTASTS_POLICY_INVALID"]),
    ({"hosts": ("contoso-com.mail.protection.outlook.com",)},
     ["TLSRPT_OK", "MTASTS_MX_NOT_COVERED"]),
    ({"expected": "testing"}, ["TLSRPT_OK", "MTASTS_MODE_DIFFERS", "MTASTS_OK"]),
    ({"tlsrpt": ()}, ["TLSRPT_MISSING", "MTASTS_OK"]),
    ({"tlsrpt": ("v=TLSRPTv1; rua=ftp://x",)}, ["TLSRPT_INVALID", "MTASTS_OK"]),
])
def test_mta_sts_and_tlsrpt(kwargs, expected):
    assert sts_check(**kwargs) == expected


def test_mx_patterns_match_one_label_only():
    assert sts.mx_covered("mx1.pphosted.com", ("*.pphosted.com",))
    assert not sts.mx_covered("a.mx1.pphosted.com", ("*.pphosted.com",))
    assert not sts.mx_covered("pphosted.com", ("*.pphosted.com",))
    assert sts.mx_covered("MX.Contoso.com.", ("mx.contoso.com",))


def test_a_4000_byte_record_is_flagged_long_yet_judged():
    big = ("v=spf1 " + " ".join(f"ip4:10.{i // 250}.{i % 250}.0/24" for i in range(226))
           + " include:spf-001234.pphosted.com include:spf.protection.outlook.com -all")
    assert len(big) > 4000
    found = judge({"contoso.com": {"TXT": [big]}})
    assert [f.args["length"] for f in found if f.tag == "SPF_RECORD_LONG"] == [len(big)]
    assert tags(found).count("SPF_SENDER_PASSES") == 2


RECORD_TEXT = st.one_of(
    st.text(max_size=120),
    st.builds(lambda t: "v=spf1 " + t, st.text(max_size=120)),
    st.builds(lambda t: "v=DMARC1; " + t, st.text(max_size=120)),
    st.builds(lambda t: "v=DKIM1; " + t, st.text(max_size=120)),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RECORD_TEXT, max_size=3), st.lists(RECORD_TEXT, max_size=2),
       st.lists(RECORD_TEXT, max_size=2))
def test_any_published_records_give_findings_never_an_exception(spf, dmarc, key):
    found = judge({"contoso.com": {"TXT": spf}, "_dmarc.contoso.com": {"TXT": dmarc},
                   "selector1-contoso-com._domainkey.contoso.onmicrosoft.com": {"TXT": key}})
    assert found and all(f.tag for f in found)
