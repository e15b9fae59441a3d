"""End to end: a real triage over real DNS (UDP and TCP) against the embedded lab."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
import yaml

from mailtrace.core.findings import Status
from mailtrace.lab import scenarios
from mailtrace.lab.dns_server import Fault
from mailtrace.lab.lab import Lab
from mailtrace.lab.scenarios import ZoneEdit
from mailtrace.topology import load_topology, parse_topology
from mailtrace.usecases.demo import lab_options
from mailtrace.usecases.triage import TriageReport, make_target, run_triage
from tests.support.labrun import finding, scenario_param, tags, triage, variant, verdict

# The expectations are written here, not read from the scenario table, so a scenario
# that drifts from what it claims to show fails this test.
SCENARIOS = [
    ("healthy", ("healthy", None, None)),
    ("mx-missing", ("fault", "public-dns", "DNS_MX_MISSING")),
    ("mx-bypasses-gateway", ("fault", "public-dns", "DNS_MX_BYPASSES_GATEWAY")),
    ("mx-target-unresolvable", ("fault", "public-dns", "DNS_MX_TARGET_UNRESOLVABLE")),
    ("stale-ns", ("degraded", "public-dns", "DNS_NS_STALE")),
    ("all-ns-servfail", ("fault", "public-dns", "DNS_ALL_NS_FAILING")),
    ("observer-resolver-dead", ("inconclusive", "observer", "OBSERVER_RESOLVER_UNREACHABLE")),
    ("exo-recipient-missing", ("fault", "exchange-online", "EXO_RECIPIENT_NOT_FOUND")),
    ("exo-account-disabled", ("fault", "exchange-online", "EXO_ACCOUNT_DISABLED")),
    ("exo-no-mailbox-plan", ("fault", "exchange-online", "EXO_NO_MAILBOX_PLAN")),
    ("exo-rule-deletes-all", ("fault", "exchange-online", "EXO_RULE_DELETES_ALL")),
    ("exo-mailbox-full", ("fault", "exchange-online", "EXO_MAILBOX_FULL")),
    ("exo-service-incident", ("degraded", "exchange-online", "EXO_SERVICE_INCIDENT")),
    ("exo-trace-quarantined", ("degraded", "exchange-online", "EXO_TRACE_QUARANTINED")),
    # could not test is never a fault: DNS is sound, the tenant is listed as not tested
    ("exo-graph-forbidden", ("inconclusive", "exchange-online", "EXO_GRAPH_DENIED")),
    ("exo-graph-throttled", ("healthy", None, None)),
    ("essentials-healthy", ("healthy", None, None)),
    ("direct-healthy", ("healthy", None, None)),
    ("pp-rejected-by-rule", ("fault", "proofpoint", "PP_MESSAGE_REJECTED")),
    ("pp-quarantined", ("fault", "proofpoint", "PP_MESSAGE_QUARANTINED")),
    ("pp-onward-delivery-failed", ("fault", "exchange-online", "PP_ONWARD_DELIVERY_FAILED")),
    ("pp-essentials-wrong-destination", ("fault", "proofpoint", "PPE_DESTINATION_MISMATCH")),
    ("pp-api-unauthorized", ("inconclusive", "proofpoint", "PP_API_UNAVAILABLE")),
    ("journey-delivered", ("healthy", None, None)),
    ("exo-junked", ("degraded", "exchange-online", "EXO_TRACE_FILTERED_AS_SPAM")),
    ("pp-onward-deferred", ("degraded", "exchange-online", "PP_ONWARD_DELIVERY_DEFERRED")),
    ("pp-quarantined-phish", ("fault", "proofpoint", "PP_MESSAGE_QUARANTINED")),
    ("mx-one-host-cname", ("degraded", "public-dns", "DNS_MX_EXPECTED_HOST_MISSING")),
    ("tenant-untested", ("inconclusive", "exchange-online", "EXO_GRAPH_NOT_CONFIGURED")),
    ("pp-api-throttled", ("inconclusive", "proofpoint", "PP_API_UNAVAILABLE")),
    ("gateway-port-closed", ("fault", "proofpoint", "SMTP_CONNECT_REFUSED")),
    ("gateway-banner-421", ("fault", "proofpoint", "SMTP_BANNER_REJECTED")),
    ("gateway-tarpit", ("fault", "proofpoint", "SMTP_BANNER_TIMEOUT")),
    ("gateway-no-starttls", ("degraded", "proofpoint", "SMTP_STARTTLS_MISSING")),
    ("gateway-cert-expired", ("degraded", "proofpoint", "SMTP_TLS_CERT_EXPIRED")),
    ("gateway-cert-wrong-name", ("degraded", "proofpoint", "SMTP_TLS_CERT_NAME_MISMATCH")),
    ("gateway-rcpt-unknown", ("fault", "proofpoint", "PP_RECIPIENT_UNKNOWN")),
    ("gateway-greylisting", ("degraded", "proofpoint", "SMTP_RCPT_DEFERRED")),
    ("gateway-one-host-down", ("degraded", "proofpoint", "SMTP_SOME_HOSTS_DOWN")),
    ("exo-edge-dbeb-reject", ("fault", "exchange-online", "EXO_EDGE_RECIPIENT_UNKNOWN")),
    ("exo-edge-connector-reject", ("fault", "exchange-online", "EXO_EDGE_CONNECTOR_REJECTED")),
    ("observer-port25-blocked", ("inconclusive", "observer", "OBSERVER_PORT25_BLOCKED")),
    # DNSSEC, DANE, Exchange hybrid and Mimecast (tests/usecases/test_layers_lab.py)
    ("dnssec-bogus", ("fault", "public-dns", "DNSSEC_RRSIG_EXPIRED")),
    ("hybrid-user-on-prem", ("healthy", None, None)),
    ("dane-mismatch", ("fault", "exchange-online", "DANE_TLSA_MISMATCH")),
    ("onprem-cert-name-mismatch", ("fault", "onprem", "ONPREM_CERT_NAME_MISMATCH")),
    ("onprem-down", ("fault", "onprem", "SMTP_CONNECT_REFUSED")),
    ("onprem-down-cloud-mailbox", ("degraded", "onprem", "SMTP_CONNECT_REFUSED")),
    ("mimecast-healthy", ("healthy", None, None)),
    ("mimecast-rcpt-rejected", ("fault", "mimecast", "MC_RECIPIENT_INVALID")),
]


@pytest.mark.parametrize(("name", "expected"), [scenario_param(*s) for s in SCENARIOS])
def test_scenario_verdict(name, expected):
    assert verdict(triage(name)) == expected


def test_every_scenario_is_covered():
    assert {s for s, _ in SCENARIOS} == set(scenarios.SCENARIOS)


def test_healthy_shows_its_evidence_in_every_tier():
    report = triage("healthy")
    assert set(tags(report, "public-dns")) == {
        "DNS_DELEGATION_OK", "DNS_MX_OK", "DNS_ANSWERS_CONSISTENT", "DNSSEC_SIGNED",
        "DNSSEC_NO_VALIDATING_RESOLVER", "DNSSEC_MX_HOST_ZONES"}
    mx = finding(report, "DNS_MX_OK")
    first = mx.evidence[0]
    assert first["query"] == "contoso.com. MX" and first["rcode"] == "NOERROR"
    assert {r["ttl"] for r in first["answer"]} == {3600}
    assert set(tags(report, "proofpoint")) == {
        "SMTP_TLS_OK", "SMTP_RCPT_ACCEPTED",  # over SMTP
        "PP_MESSAGE_DELIVERED", "PP_QUARANTINE_CLEAR",  # and through its own API
        "PP_TAP_THREATS_BLOCKED", "PP_TAP_THREATS_DELIVERED",
        "DANE_NOT_PUBLISHED"}  # pphosted.com is unsigned and publishes no TLSA
    # beside the tenant's own (Graph) findings, tests/test_exo_lab.py
    assert {"SMTP_TLS_OK", "EXO_EDGE_RESTRICTED_TO_GATEWAY"} <= set(tags(report,
                                                                        "exchange-online"))
    assert report.verdict.not_tested == []


def test_mx_missing_evidence_is_nodata_with_the_soa():
    f = finding(triage("mx-missing"), "DNS_MX_MISSING")
    [ev] = f.evidence
    assert (ev["outcome"], ev["rcode"]) == ("NODATA", "NOERROR")
    assert ev["authority"][0]["type"] == "SOA"


def test_all_ns_servfail_names_each_server_from_the_parent_referral():
    f = finding(triage("all-ns-servfail"), "DNS_ALL_NS_FAILING")
    assert {e["server"].split()[0] for e in f.evidence} == {"ns1.contoso.com", "ns2.contoso.com"}
    assert {e["rcode"] for e in f.evidence} == {"SERVFAIL"}


def test_dead_resolver_is_not_blamed_on_dns_and_ends_inside_the_deadline():
    started = time.monotonic()
    report = triage("observer-resolver-dead")
    assert time.monotonic() - started < 6
    dns = next(t for t in report.tiers if t.id == "public-dns")
    assert dns.status is Status.NOT_TESTED


@pytest.mark.parametrize(("mode", "tag", "outcome"), [
    ("garbage", "DNS_NS_BAD_REPLY", "MALFORMED"),
    ("wrong-question", "DNS_NS_BAD_REPLY", "MISMATCH"),
    ("drop", "DNS_NS_UNREACHABLE", "TIMEOUT"),
    ("refused", "DNS_NS_LAME", "REFUSED"),
    ("servfail", "DNS_NS_SERVFAIL", "SERVFAIL"),
])
def test_hostile_secondary_becomes_a_finding_with_evidence(mode, tag, outcome):
    scenario = variant("healthy", faults={"ns2.contoso.com": Fault(mode=mode)})
    started = time.monotonic()
    report = triage(scenario, timeout=10)
    assert time.monotonic() - started < 10 + 1  # the run's budget held (lab start aside)
    f = finding(report, tag)
    assert (f.args["ns"], f.args["outcome"]) == ("ns2.contoso.com", outcome)
    assert f.evidence[0]["outcome"] == outcome
    assert verdict(report) == ("degraded", "public-dns", tag)


def test_truncated_answers_are_retried_over_tcp():
    scenario = variant("healthy", faults={"ns1.contoso.com": Fault(mode="truncate"),
                                          "ns2.contoso.com": Fault(mode="truncate")})
    report = triage(scenario)
    assert verdict(report) == ("healthy", None, None)
    ev = finding(report, "DNS_DELEGATION_OK").evidence[0]
    assert ev["transport"] == "tcp"
    assert [(a["transport"], a["result"]) for a in ev["attempts"]] == [
        ("udp", "truncated"), ("tcp", "reply")]


def _triage_domain(domain: str, scenario, recipient: str | None = None) -> TriageReport:
    """Triage the contoso topology rewritten for another domain, in the lab (DNS only:
    the lab tenant knows contoso.com alone)."""

    async def main() -> TriageReport:
        async with Lab(scenario) as lab:
            data = yaml.safe_load(lab.topology_path.read_text())
            data["domains"] = [domain]
            data["tiers"]["exchange-online"].pop("graph", None)
            topology = parse_topology(yaml.safe_dump(data))
            target = make_target(topology, recipient, None if recipient else domain)
            return await run_triage(topology, target, lab_options(lab, 10))

    return asyncio.run(main())


def test_domain_that_is_not_delegated_is_nxdomain():
    report = _triage_domain("gone.com", scenarios.get("healthy"))
    assert verdict(report) == ("fault", "public-dns", "DNS_DOMAIN_NXDOMAIN")


@pytest.mark.parametrize("record", [
    ("MX", ("10 mx0a-001234.pphosted.com.", "10 mx0b-001234.pphosted.com.")),  # below apex
    ("CNAME", ("contoso.com.",)),  # an alias: RFC 5321 §5.1 follows it
], ids=["below-the-apex", "alias"])
def test_a_mail_domain_inside_a_zone_is_judged_in_that_zone(record):
    rdtype, records = record
    scenario = variant("healthy", zone_edits=(ZoneEdit("contoso.com", "eu", rdtype, records),))
    report = _triage_domain("eu.contoso.com", scenario, "bob@eu.contoso.com")
    assert verdict(report) == ("healthy", None, None)
    assert finding(report, "DNS_DELEGATION_OK").args["zone"] == "contoso.com"


def test_mx_pointing_to_undeclared_host_and_cname():
    scenario = variant("healthy", zone_edits=(
        ZoneEdit("contoso.com", "@", "MX", ("10 mx0a-001234.pphosted.com.",
                                            "10 mx0b-001234.pphosted.com.",
                                            "20 backup.contoso.com.")),
        ZoneEdit("contoso.com", "backup", "CNAME", ("www.contoso.com.",)),
    ))
    report = triage(scenario)
    assert verdict(report) == ("fault", "public-dns", "DNS_MX_UNEXPECTED_HOST")
    assert ("DNS_MX_TARGET_CNAME", "backup.contoso.com") in [
        (f.tag, f.args.get("host")) for t in report.tiers for f in t.findings]


# --- the observer's limits are never a tier's fault -------------------------------------

async def _triage_with(scenario, *, timeout=20.0, extra_resolvers=(), redirect_to=None,
                       hosts=(), dns_delay=0.0):
    """Triage in the lab with a changed vantage point: more resolvers in front, or the
    listed hosts' direct connections sent to ``redirect_to`` (a server that drops)."""
    from mailtrace.core.network import ConnectTo, Endpoint

    async with Lab(scenario, dns_delay=dns_delay) as lab:
        topology = load_topology(lab.topology_path)
        rules = [c for c in lab.connect_to if c.host not in hosts]
        if redirect_to is not None:
            rules += [ConnectTo(h, 53, "127.0.0.1", redirect_to) for h in hosts]
        resolvers = [Endpoint("127.0.0.1", p) for p in extra_resolvers]
        options = dataclasses.replace(lab_options(lab, timeout), connect_to=rules,
                                      resolvers=[*resolvers, lab.resolver_endpoint])
        return await run_triage(topology, make_target(topology, lab.recipient, None), options)


async def _with_black_hole(body):
    from mailtrace.lab.dns_server import AuthoritativeServer

    async with AuthoritativeServer([], fault=Fault(mode="drop")) as hole:
        return await body(hole.port)


def test_stale_copy_on_the_first_server_is_still_degraded_not_a_fault():
    scenario = variant("stale-ns", zone_edits=tuple(
        dataclasses.replace(e, servers=frozenset({"ns1.contoso.com"}))
        for e in scenarios.get("stale-ns").zone_edits))
    report = triage(scenario)
    assert verdict(report) == ("degraded", "public-dns", "DNS_NS_STALE")
    assert finding(report, "DNS_NS_STALE").args["ns"] == "ns1.contoso.com"


def test_a_dead_resolver_in_front_of_a_working_one_is_no_fault():
    started = time.monotonic()
    report = asyncio.run(_with_black_hole(
        lambda port: _triage_with(scenarios.get("healthy"), extra_resolvers=(port,))))
    # the observer check's deadline, not every probe's, is what a dead resolver costs
    assert time.monotonic() - started < 6
    assert verdict(report) == ("healthy", None, None)
    assert "OBSERVER_RESOLVER_PARTIAL" in tags(report, "observer")


def test_direct_dns_filtered_from_here_is_inconclusive_at_the_observer():
    hosts = ("ns1.contoso.com", "ns2.contoso.com", "a.gtld-servers.com")
    report = asyncio.run(_with_black_hole(
        lambda port: _triage_with(scenarios.get("healthy"), redirect_to=port, hosts=hosts,
                                  timeout=5)))
    assert verdict(report) == ("inconclusive", "observer", "OBSERVER_DIRECT_DNS_BLOCKED")


def test_a_budget_too_short_is_inconclusive_never_a_fault():
    # every answer takes 50 ms; the whole run may take 30 ms
    report = asyncio.run(_triage_with(scenarios.get("healthy"), timeout=0.03, dns_delay=0.05))
    status, tier, _ = verdict(report)
    assert status == "inconclusive" and tier in ("observer", "public-dns")


def test_the_observer_fix_is_shown_wherever_the_observer_problem_was_met():
    from mailtrace.report import json as json_report
    from mailtrace.report import text as text_report

    hosts = ("ns1.contoso.com", "ns2.contoso.com", "a.gtld-servers.com")
    report = asyncio.run(_with_black_hole(
        lambda port: _triage_with(scenarios.get("healthy"), redirect_to=port, hosts=hosts,
                                  timeout=5)))
    doc = json_report.report_json(report)
    fixed = [f["tag"] for t in doc["tiers"] for f in t["findings"] if f["remediation"]]
    assert fixed == ["OBSERVER_DIRECT_DNS_BLOCKED"]
    assert "Test-NetConnection" in text_report.render(report)


# --- the verdict must follow the zone, not luck or the vantage point --------------------

NEW_SOA = ("ns1.contoso.com. hostmaster.contoso.com. 2026113001 7200 3600 1209600 300",)
NS1_ONLY = frozenset({"ns1.contoso.com"})
MX_OK = ("10 mx0a-001234.pphosted.com.", "10 mx0b-001234.pphosted.com.")


@pytest.mark.parametrize(("changes", "expected"), [
    # the newest zone version (ns1) lost its MX while ns2 still serves the old, good one
    (dict(zone_edits=(ZoneEdit("contoso.com", "@", "SOA", NEW_SOA, servers=NS1_ONLY),
                      ZoneEdit("contoso.com", "@", "MX", None, servers=NS1_ONLY))),
     ("fault", "public-dns", "DNS_MX_MISSING")),
    # one server answers the zone but fails the MX question
    (dict(faults={"ns2.contoso.com": Fault(mode="servfail", qtypes=frozenset({"MX"}))}),
     ("degraded", "public-dns", "DNS_NS_MX_QUERY_FAILS")),
    # the servers publish the MX, the resolvers cannot resolve it (a DNSSEC failure, say)
    (dict(faults={"resolver": Fault(mode="servfail", qtypes=frozenset({"MX"}))}),
     ("fault", "public-dns", "DNS_MX_RESOLVERS_FAIL")),
    # every server of the zone is silent while direct DNS to the parent works
    (dict(faults={"ns1.contoso.com": Fault(mode="drop"), "ns2.contoso.com": Fault(mode="drop")}),
     ("fault", "public-dns", "DNS_ALL_NS_FAILING")),
    # the registrar delegates only to a server that does not answer
    (dict(zone_edits=(ZoneEdit("com", "contoso", "NS", ("ns3.contoso.com.",)),
                      ZoneEdit("com", "ns3.contoso", "A", ("127.0.1.3",)))),
     ("fault", "public-dns", "DNS_DELEGATED_NS_ALL_FAILING")),
    # a backup MX behind the gateway: mail still flows through the gateway first
    (dict(zone_edits=(ZoneEdit("contoso.com", "@", "MX", (
        *MX_OK, "20 contoso-com.mail.protection.outlook.com.")),)),
     ("degraded", "public-dns", "DNS_MX_BACKUP_BYPASSES_GATEWAY")),
    # an MX target that is an alias of one declared gateway host: mail flows, but the
    # alias is forbidden (RFC 2181 §10.3) and the other gateway host is lost: degraded
    (dict(zone_edits=(ZoneEdit("contoso.com", "@", "MX", ("10 mail.contoso.com.",)),
                      ZoneEdit("contoso.com", "mail", "CNAME", ("mx0a-001234.pphosted.com.",)))),
     ("degraded", "public-dns", "DNS_MX_EXPECTED_HOST_MISSING")),
    # ... and an alias of Exchange Online's host is still a bypass
    (dict(zone_edits=(ZoneEdit("contoso.com", "@", "MX", ("10 mail.contoso.com.",)),
                      ZoneEdit("contoso.com", "mail", "CNAME",
                               ("contoso-com.mail.protection.outlook.com.",)))),
     ("fault", "public-dns", "DNS_MX_BYPASSES_GATEWAY")),
    # a resolver that answers the root but cannot resolve below it does not recurse
    (dict(faults={"resolver": Fault(mode="servfail", qnames=frozenset({"com."}))}),
     ("inconclusive", "observer", "OBSERVER_RESOLVER_UNREACHABLE")),
], ids=["newest-serial-broken", "ns-fails-mx-only", "resolvers-fail-mx", "all-ns-silent",
        "parent-delegates-to-dead-ns", "backup-mx-bypass", "mx-alias-of-gateway",
        "mx-alias-of-exo", "resolver-root-only"])
def test_verdict_follows_the_zone(changes, expected):
    assert verdict(triage(variant("healthy", **changes), timeout=8)) == expected


