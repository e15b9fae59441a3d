"""End to end in the lab: DNSSEC on a signed world, DANE on Exchange Online's DANE host,
Exchange hybrid with its on-premises tier, and Mimecast — the evidence behind each verdict
(the verdicts themselves are in test_triage_lab.SCENARIOS)."""

from __future__ import annotations

import asyncio
import time

from mailtrace.engine.clients import RunClients
from mailtrace.lab import scenarios
from mailtrace.lab.lab import Lab
from mailtrace.probes.base import ProbeContext
from mailtrace.probes.exo import hybrid, trace
from mailtrace.topology import FlowGraph, load_topology
from mailtrace.usecases.demo import lab_options
from mailtrace.usecases.triage import make_target
from tests.support.labrun import finding, tags, triage, variant, verdict


def test_a_bogus_domain_names_the_expired_signature_and_the_resolver_that_refuses():
    report = triage("dnssec-bogus")
    expired = finding(report, "DNSSEC_RRSIG_EXPIRED")
    assert expired.args["zone"] == "contoso.com."
    assert " RRSIG " in expired.args["record"] and expired.args["record"].startswith(
        "contoso.com.")
    resolvers = finding(report, "DNSSEC_RESOLVER_BOGUS")
    assert [e["rcode"] for e in resolvers.evidence] == ["SERVFAIL", "NOERROR"]
    assert "CD" in resolvers.evidence[1]["flags"]
    # the non-validating resolver still answers: the MX itself is fine
    assert "DNS_MX_OK" in tags(report, "public-dns")


def test_a_ds_for_a_key_the_zone_lacks_is_bogus_at_public_dns():
    report = triage(variant("healthy", dnssec={"contoso.com": "ds-mismatch"}))
    assert verdict(report) == ("fault", "public-dns", "DNSSEC_DS_MISMATCH")


def test_an_unsigned_zone_is_fine():
    report = triage(variant("healthy", dnssec={"contoso.com": "unsigned"}))
    assert verdict(report)[0] == "healthy"
    assert finding(report, "DNSSEC_UNSIGNED").args["zone"] == "contoso.com."


def test_inbound_dane_on_exchange_online_is_matched_and_the_gateway_hosts_are_fine():
    report = triage("hybrid-user-on-prem")
    ok = finding(report, "DANE_OK")
    assert ok.args["hosts"] == "litware-com.l-v1.mx.microsoft"
    assert finding(report, "DNSSEC_SIGNED").args["resolvers"].startswith("validated by")
    assert finding(report, "DNSSEC_MX_HOST_ZONES").args["signed"] == "mx.microsoft."
    assert "DANE_NOT_PUBLISHED" in tags(report, "onprem")


def test_a_stale_tlsa_record_shows_record_and_certificate_side_by_side():
    report = triage("dane-mismatch")
    mismatch = finding(report, "DANE_TLSA_MISMATCH")
    side = mismatch.evidence[0]
    [record] = side["records"]
    [presented] = side["presented"]
    assert record.startswith("3 1 1 ") and presented.startswith("3 1 1 ")
    assert record != presented and side["dnssec"] == "secure"
    assert any(e.get("smtp", "").startswith("litware-com.l-v1.mx.microsoft")
               for e in mismatch.evidence)


def test_the_hybrid_recipient_is_routed_to_the_onprem_tier_and_judged_there():
    report = triage("hybrid-user-on-prem")
    routed = finding(report, "EXO_RECIPIENT_ON_PREMISES")
    assert (routed.args["tier"], routed.args["hosts"]) == ("onprem", "mail.litware.com")
    assert "EXO_NO_MAILBOX" not in tags(report, "exchange-online")
    assert "EXO_NO_MAILBOX_PLAN" not in tags(report, "exchange-online")
    assert {f.args["call"] for t in report.tiers for f in t.findings
            if f.tag == "EXO_MAILBOX_ON_PREMISES"} == {"list inbox rules", "get MailTips"}
    ok = finding(report, "ONPREM_TLS_OK")
    assert ok.args["expected"] == "mail.litware.com"
    assert report.verdict.not_tested == []


def test_the_certificate_name_exchange_online_expects():
    report = triage("onprem-cert-name-mismatch")
    bad = finding(report, "ONPREM_CERT_NAME_MISMATCH")
    assert bad.args["expected"] == "mail.litware.com"
    assert "mx.wrong-name.example" in bad.args["detail"]


def test_onprem_down_is_blamed_on_the_onprem_tier_not_on_exchange_online():
    report = triage("onprem-down")
    assert finding(report, "EXO_RECIPIENT_ON_PREMISES").args["tier"] == "onprem"
    assert {t.id: t.status.value for t in report.tiers}["exchange-online"] == "pass"
    # Message trace holds the message in Exchange Online's queue; the Defer event names
    # the on-premises endpoint by address: the deferral is filed on that tier
    deferred = finding(report, "EXO_TRACE_DEFERRED")
    assert (deferred.args["count"], deferred.about) == (1, "onprem")
    assert "EXO_TRACE_DEFERRED" in tags(report, "onprem")


def test_message_trace_hand_offs_continue_the_journey_on_premises():
    async def main():
        async with Lab(scenarios.get("hybrid-user-on-prem")) as lab:
            topology = load_topology(lab.topology_path)
            clients = RunClients(topology, lab_options(lab, 20))
            try:
                ctx = ProbeContext(topology, FlowGraph(topology), "exchange-online",
                                   make_target(topology, lab.recipient, None), clients.dns,
                                   time.monotonic() + 15, clients, clients.smtp)
                return await trace.collect(ctx)
            finally:
                await clients.aclose()

    check = asyncio.run(main())
    assert [r.tier for r in check.routes] == ["onprem"]
    steps = hybrid.onprem_journey(check.messages, check.address, check.tier, check.routes)
    assert [(s.tier, s.event.value) for s in steps] == [("exchange-online", "relayed"),
                                                        ("onprem", "received")]
    assert "mail.litware.com" in steps[0].detail


def test_mimecast_names_its_reply_and_the_region_hosts():
    report = triage("mimecast-rcpt-rejected")
    invalid = finding(report, "MC_RECIPIENT_INVALID")
    assert invalid.args["reply"].startswith("550 Invalid Recipient")
    healthy = triage("mimecast-healthy")
    assert "DNS_MX_OK" in tags(healthy, "public-dns")
    assert "DANE_NOT_PUBLISHED" in tags(healthy, "mimecast")


# --- hostile DNSSEC data over the wire: a finding inside the deadline ------------------------

def test_unparsable_dnskey_replies_are_bogus_not_a_hang():
    """The zone's servers send garbage for DNSKEY: the resolver can only SERVFAIL, and the
    zone (whose parent vouches it is signed) is bogus for validators."""
    from mailtrace.lab.dns_server import Fault

    garbage = Fault("garbage", qtypes=frozenset({"DNSKEY"}))
    started = time.monotonic()
    report = triage(variant("healthy", faults={"ns1.contoso.com": garbage,
                                               "ns2.contoso.com": garbage}))
    assert time.monotonic() - started < 20
    assert verdict(report) == ("fault", "public-dns", "DNSSEC_DNSKEY_UNAVAILABLE")


def test_a_resolver_that_mangles_dnssec_answers_is_no_fault_of_the_domain():
    from mailtrace.lab.dns_server import Fault

    report = triage(variant("healthy", faults={
        "resolver": Fault("garbage", qtypes=frozenset({"DNSKEY"}))}))
    assert verdict(report)[0] == "healthy"
    assert "no usable DNSKEY for the root" in finding(
        report, "DNSSEC_NOT_CHECKED").args["detail"]


def test_a_thousand_tlsa_records_are_named_and_matched_within_bounds():
    from mailtrace.lab.scenarios import ZoneEdit

    host = "litware-com.l-v1.mx.microsoft"
    records = tuple(f"3 1 1 {i:064x}" for i in range(1000))
    scenario = variant("hybrid-user-on-prem", tlsa={host: None}, zone_edits=(
        ZoneEdit("mx.microsoft", f"_25._tcp.{host}.", "TLSA", records),))
    started = time.monotonic()
    report = triage(scenario)
    assert time.monotonic() - started < 20
    too_many = finding(report, "DANE_TLSA_TOO_MANY")
    assert (too_many.args["count"], too_many.args["host"]) == (1000, host)
    assert verdict(report) == ("fault", "exchange-online", "DANE_TLSA_MISMATCH")
