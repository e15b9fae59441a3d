"""Lab worlds for ``verify`` and ``precheck``, and a runner that points them at the lab.

Verify: a change made to contoso.com's SPF — live everywhere (converged), not yet on one
name server (a stale secondary), or live while one resolver of the panel still holds the
old record in its cache. Precheck: the healthy worlds and change files, one safe and one
per kind of unsafe change. They are kept apart from the triage demo scenarios (whose
verdicts the triage tests pin down); each still records the triage verdict of its world.
``mailtrace.usecases.demo`` runs verify and precheck against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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
        "mx-cutover-long-ttl", "MX moved between the gateway's own hosts while the old MX "
        "TTL is an hour.", _HEALTHY,
        "records:\n  - {action: remove, name: \"@\", type: MX, "
        "values: [\"10 mx0b-001234.pphosted.com.\"]}\n",
        "unsafe", ("PRECHECK_MX_TTL_LONG",)),
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
        "dmarc-reject-unaligned", "DMARC to reject while Essentials' mail does not pass "
        "SPF and has no DKIM key.", _FABRIKAM_UNALIGNED,
        "records:\n  - {action: replace, name: _dmarc, type: TXT, "
        "values: [\"v=DMARC1; p=reject; rua=mailto:dmarc@fabrikam.com\"]}\n",
        "unsafe", ("DMARC_SENDER_NOT_ALIGNED",)),
)}


