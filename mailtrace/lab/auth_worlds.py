"""Lab worlds for ``verify`` and ``precheck``, and a runner that points them at the lab.

Verify: a change made to contoso.com's SPF — live everywhere (converged), not yet on one
name server (a stale secondary), or live while one resolver of the panel still holds the
old record in its cache (:data:`VERIFY`); and records every server agrees on, judged
against the topology (:data:`FIT`): ones that contradict what it declares (SPF ``+all``
where it declares ``-all``, DMARC ``p=none`` where it declares quarantine, a subdomain
inheriting ``sp=none``) and ones that fit it (SPF handed over by ``redirect=`` to a
record ending in ``-all``; DKIM keys in testing mode, which are noted, not counted).
Precheck: the healthy worlds and change files, one safe and one per kind of unsafe
change. They are kept apart from the triage demo scenarios (whose verdicts the triage
tests pin down); each still records the triage verdict of its world.
``mailtrace.usecases.demo`` runs verify and precheck against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mailtrace.lab.scenarios import Expectation, Scenario, ZoneEdit

OLD_SPF = ('"v=spf1 include:spf-001234.pphosted.com include:spf.protection.outlook.com '
           '-all"')
NEW_SPF = ('"v=spf1 include:spf-001234.pphosted.com include:spf.protection.outlook.com '
           'ip4:127.0.9.0/24 -all"')
CACHED_TTL = 250


def _spf(record: str, servers: frozenset[str] | None = None) -> ZoneEdit:
    return ZoneEdit("contoso.com", "@", "TXT", (record,), servers=servers)


def _serial(serial: int, servers: frozenset[str]) -> ZoneEdit:
    soa = f"ns1.contoso.com. hostmaster.contoso.com. {serial} 7200 3600 1209600 300"
    return ZoneEdit("contoso.com", "@", "SOA", (soa,), servers=servers)


@dataclass(frozen=True)
class VerifyScenario:
    scenario: Scenario
    #: A second resolver whose cache still holds these answers: (name, type) ->
    #: (rdata, seconds left).
    cached: Mapping[tuple[str, str], tuple[tuple[str, ...], int]] = field(default_factory=dict)
    status: str = "converged"  # the verify status it is built to produce
    records: Mapping[str, str] = field(default_factory=dict)  # label -> status expected
    #: The domain verified (default: the topology's first); a subdomain is verified with
    #: the topology's flow and expectations.
    domain: str | None = None
    #: The DNS tier's expectations as this world's topology declares them, over the
    #: example file's: section -> {field: value} (None: not declared).
    expect: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


_CONTOSO = "contoso-proofpoint-exo.yaml"
_NS1 = frozenset({"ns1.contoso.com"})

VERIFY: dict[str, VerifyScenario] = {
    "verify-converged": VerifyScenario(
        Scenario("verify-converged", "contoso.com's new SPF is served everywhere.", _CONTOSO,
                 "alice@contoso.com", Expectation("healthy"), (_spf(NEW_SPF),)),
        status="converged", records={"SPF": "matches", "MX": "matches"}),
    "verify-ns-stale": VerifyScenario(
        Scenario("verify-ns-stale", "ns1.contoso.com has the new SPF (serial bumped); "
                 "ns2.contoso.com still serves the old zone.", _CONTOSO, "alice@contoso.com",
                 Expectation("healthy"), (_spf(NEW_SPF, _NS1), _serial(2026112902, _NS1))),
        status="differs", records={"SPF": "differs", "MX": "matches"}),
    "verify-resolver-cached": VerifyScenario(
        Scenario("verify-resolver-cached", "contoso.com's new SPF is served by both name "
                 "servers; one resolver still caches the old one.", _CONTOSO,
                 "alice@contoso.com", Expectation("healthy"), (_spf(NEW_SPF),)),
        cached={("contoso.com", "TXT"): ((OLD_SPF,), CACHED_TTL)},
        status="propagating", records={"SPF": "propagating", "MX": "matches"}),
}


# -- records judged against the topology ----------------------------------------------------

_TEAM_SPF = "include:spf-001234.pphosted.com include:spf.protection.outlook.com"
PLUS_ALL_SPF = f'"v=spf1 {_TEAM_SPF} +all"'
#: RFC 8463 ed25519 public keys (short enough for one TXT character-string).
ED25519_KEYS = ("7GxAC0yfoGZz41/T0iKQbglEmtGfM5oiYWu9+udaTzw=",
                "5RtjylIxPhgv2BoAjdi+tpRcFX7qrlGr5I3UymZwgPc=")
SUBDOMAIN = "eu.contoso.com"


def _contoso(name: str, rdtype: str, *records: str) -> ZoneEdit:
    return ZoneEdit("contoso.com", name, rdtype, records)


def _key(name: str, key: str, flags: str = "") -> ZoneEdit:
    """A DKIM key in the onmicrosoft.com zone, where the tenant's selectors lead."""
    return ZoneEdit("onmicrosoft.com", f"{name}._domainkey.contoso", "TXT",
                    (f'"v=DKIM1; k=ed25519; {flags}p={key}"',))


def _fit(name: str, description: str, *edits: ZoneEdit) -> Scenario:
    return Scenario(name, description, _CONTOSO, "alice@contoso.com", Expectation("healthy"),
                    edits)


FIT: dict[str, VerifyScenario] = {
    "verify-spf-plus-all": VerifyScenario(
        _fit("verify-spf-plus-all", "contoso.com's SPF ends in +all; the topology declares "
             "-all.", _contoso("@", "TXT", PLUS_ALL_SPF)),
        status="differs", records={"SPF": "differs", "MX": "matches", "DMARC": "matches"}),
    "verify-spf-plus-all-undeclared": VerifyScenario(
        _fit("verify-spf-plus-all-undeclared", "contoso.com's SPF ends in +all; the "
             "topology declares no all.", _contoso("@", "TXT", PLUS_ALL_SPF)),
        expect={"spf": {"all": None}},
        status="converged", records={"SPF": "matches"}),
    "verify-spf-redirect": VerifyScenario(
        _fit("verify-spf-redirect", "contoso.com hands its SPF over to _spf.contoso.com "
             "(redirect=), which ends in -all.",
             _contoso("@", "TXT", '"v=spf1 redirect=_spf.contoso.com"'),
             _contoso("_spf", "TXT", f'"v=spf1 {_TEAM_SPF} -all"')),
        status="converged", records={"SPF": "matches"}),
    "verify-dmarc-none": VerifyScenario(
        _fit("verify-dmarc-none", "contoso.com's DMARC is p=none; the topology declares "
             "quarantine.",
             _contoso("_dmarc", "TXT", '"v=DMARC1; p=none; rua=mailto:dmarc@contoso.com"')),
        status="differs", records={"DMARC": "differs", "SPF": "matches"}),
    "verify-dmarc-inherited-sp": VerifyScenario(
        _fit("verify-dmarc-inherited-sp", f"{SUBDOMAIN} publishes no DMARC record: it "
             "inherits sp=none from contoso.com's; the topology declares quarantine.",
             _contoso("_dmarc", "TXT",
                      '"v=DMARC1; p=quarantine; sp=none; rua=mailto:dmarc@contoso.com"'),
             _contoso("eu", "MX", "10 mx0a-001234.pphosted.com.",
                      "10 mx0b-001234.pphosted.com."),
             _contoso("eu", "TXT", f'"v=spf1 {_TEAM_SPF} -all"'),
             *(_contoso(f"{s}._domainkey.eu", "CNAME",
                        f"{s}-eu-contoso-com._domainkey.contoso.onmicrosoft.com.")
               for s in ("selector1", "selector2")),
             _key("selector1-eu-contoso-com", ED25519_KEYS[0]),
             _key("selector2-eu-contoso-com", ED25519_KEYS[1])),
        domain=SUBDOMAIN, status="differs",
        records={"DMARC": "differs", "SPF": "matches", "MX": "matches",
                 "DKIM selector1": "matches"}),
    "verify-dkim-testing": VerifyScenario(
        _fit("verify-dkim-testing", "contoso.com's DKIM keys are in testing mode (t=y).",
             _key("selector1-contoso-com", ED25519_KEYS[0], "t=y; "),
             _key("selector2-contoso-com", ED25519_KEYS[1], "t=y; ")),
        status="converged", records={"DKIM selector1": "matches", "DMARC": "matches"}),
}


# -- precheck -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrecheckScenario:
    name: str
    description: str
    scenario: Scenario  # the live world
    change: str  # the change file (YAML)
    verdict: str  # safe | unsafe
    unsafe: tuple[str, ...] = ()  # tags it is built to flag


_HEALTHY = Scenario("precheck-world", "contoso.com as it is (healthy).", _CONTOSO,
                    "alice@contoso.com", Expectation("healthy"))
_FABRIKAM_UNALIGNED = Scenario(
    "precheck-fabrikam", "fabrikam.com with Proofpoint Essentials' dispatch host left out of "
    "SPF (p=none: nothing blocked yet).", "fabrikam-essentials-exo.yaml", "bob@fabrikam.com",
    Expectation("healthy"),
    (ZoneEdit("fabrikam.com", "@", "TXT",
              ('"v=spf1 include:spf.protection.outlook.com -all"',)),))
_TOO_MANY = " ".join(f"a:{h}" for h in (
    "www.contoso.com", "ns1.contoso.com", "ns2.contoso.com", "mx0a-001234.pphosted.com",
    "mx0b-001234.pphosted.com", "dispatch-us.ppe-hosted.com", "mx1-us1.ppe-hosted.com",
    "mx2-us1.ppe-hosted.com", "contoso-com.mail.protection.outlook.com"))

PRECHECK: dict[str, PrecheckScenario] = {s.name: s for s in (
    PrecheckScenario(
        "safe-spf-addition", "Add a new sending range to SPF.", _HEALTHY,
        "change: add the new relay's range\nrecords:\n"
        "  - action: replace\n    name: \"@\"\n    type: TXT\n"
        f"    values: [{NEW_SPF}]\n", "safe"),
    PrecheckScenario(
        "spf-too-many-lookups", "SPF grows past 10 DNS lookups.", _HEALTHY,
        "records:\n  - action: replace\n    name: \"@\"\n    type: TXT\n    values:\n"
        "      - \"v=spf1 include:spf-001234.pphosted.com include:spf.protection.outlook.com "
        f"{_TOO_MANY} -all\"\n", "unsafe", ("SPF_LOOKUP_LIMIT",)),
    PrecheckScenario(
        "spf-void-lookups", "SPF names three hosts that do not exist.", _HEALTHY,
        "records:\n  - action: replace\n    name: \"@\"\n    type: TXT\n    values:\n"
        "      - \"v=spf1 include:spf-001234.pphosted.com include:spf.protection.outlook.com "
        "a:old1.contoso.com a:old2.contoso.com a:old3.contoso.com -all\"\n",
        "unsafe", ("SPF_VOID_LIMIT",)),
    PrecheckScenario(
        "mx-off-gateway", "MX moved straight to Exchange Online, skipping Proofpoint.",
        _HEALTHY,
        "planned: 2030-01-01T12:00:00Z\nrecords:\n"
        "  - {action: replace, name: \"@\", type: MX, values: "
        "[\"0 contoso-com.mail.protection.outlook.com.\"]}\n",
        "unsafe", ("DNS_MX_BYPASSES_GATEWAY", "PRECHECK_MX_TTL_LONG")),
    PrecheckScenario(
        "mx-cutover-long-ttl", "MX drops one of the gateway's hosts (which the topology "
        "declares) while the old MX TTL is an hour.", _HEALTHY,
        "records:\n  - {action: remove, name: \"@\", type: MX, "
        "values: [\"10 mx0b-001234.pphosted.com.\"]}\n",
        "unsafe", ("PRECHECK_MX_TTL_LONG", "DNS_MX_EXPECTED_HOST_MISSING")),
    PrecheckScenario(
        "dkim-revoked-key", "Signing moves to selector3, published with a revoked key.",
        _HEALTHY,
        "sign_with: [selector3]\nrecords:\n"
        "  - {action: add, name: selector3._domainkey, type: TXT, values: [\"v=DKIM1; p=\"]}\n",
        "unsafe", ("DKIM_KEY_REVOKED",)),
    PrecheckScenario(
        "dkim-not-yet-published", "Signing moves to selector3 before its CNAME exists.",
        _HEALTHY,
        "sign_with: [selector3]\nrecords:\n"
        "  - {action: replace, name: _dmarc, type: TXT, "
        "values: [\"v=DMARC1; p=quarantine; rua=mailto:dmarc@contoso.com\"]}\n",
        "unsafe", ("DKIM_SELECTOR_MISSING",)),
    PrecheckScenario(
        "spf-plus-all", "SPF moves from -all, which the topology declares, to +all.",
        _HEALTHY,
        "records:\n  - {action: replace, name: \"@\", type: TXT, "
        f"values: [{PLUS_ALL_SPF}]}}\n", "unsafe", ("SPF_ALL_DIFFERS",)),
    PrecheckScenario(
        "dmarc-downgrade", "DMARC moves from quarantine, which the topology declares, to "
        "none.", _HEALTHY,
        "records:\n  - {action: replace, name: _dmarc, type: TXT, "
        "values: [\"v=DMARC1; p=none; rua=mailto:dmarc@contoso.com\"]}\n",
        "unsafe", ("DMARC_POLICY_DIFFERS",)),
    PrecheckScenario(
        "safe-spf-redirect", "SPF handed over to _spf.contoso.com (redirect=), which ends "
        "in -all.", _HEALTHY,
        "records:\n  - {action: add, name: _spf, type: TXT, "
        f"values: [\"v=spf1 {_TEAM_SPF} -all\"]}}\n"
        "  - {action: replace, name: \"@\", type: TXT, "
        "values: [\"v=spf1 redirect=_spf.contoso.com\"]}\n", "safe"),
    PrecheckScenario(
        "dmarc-reject-unaligned", "DMARC to reject while Essentials' mail does not pass "
        "SPF and has no DKIM key.", _FABRIKAM_UNALIGNED,
        "records:\n  - {action: replace, name: _dmarc, type: TXT, "
        "values: [\"v=DMARC1; p=reject; rua=mailto:dmarc@fabrikam.com\"]}\n",
        "unsafe", ("DMARC_SENDER_NOT_ALIGNED",)),
)}


