"""``mailtrace triage`` against real DNS servers: Unbound recursing to Knot DNS on loopback.

The CLI runs in a subprocess exactly as an admin would run it; the assertions are on the
contract of DESIGN.md (exit code, verdict ``(status, tier, tag)``, finding tags), never on
prose. ``--connect-to`` sends each name server's port 53 (ns1/ns2.contoso.com, and the
parents' a.gtld-servers.com / a.nic.example) to the Knot serving it, so the delegation
probe talks to the real authoritative servers of the child *and* of the parent zone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from .conftest import DnsServer, connect_to_args, free_port
from .lab_smtp import lab_smtp_hosts

pytestmark = pytest.mark.integration

CLI_DEADLINE_S = 60
TRIAGE_TIMEOUT_S = 20
REPO = Path(__file__).resolve().parents[2]

CONTOSO_MX = {"10 mx0a-001234.pphosted.com.", "10 mx0b-001234.pphosted.com."}

Triage = tuple[int, dict[str, Any], subprocess.CompletedProcess[str]]
# run_triage(topology, recipient, resolver "IP:PORT", ["--connect-to", ...]) -> Triage
RunTriage = Callable[[Path, str, str, list[str]], Triage]


# --------------------------------------------------------------------------- helpers


def topology_yaml(domain: str) -> str:
    """public DNS -> Proofpoint on Demand -> Exchange Online, for ``domain``."""
    return textwrap.dedent(
        f"""\
        topology: integration-{domain.replace(".", "-")}
        description: Inbound mail for {domain}, resolved by Unbound from Knot DNS
        domains: [{domain}]
        flow:
          - public-dns -> proofpoint -> exchange-online
        tiers:
          public-dns:
            kind: dns
            expect:
              mx: [mx0a-001234.pphosted.com, mx0b-001234.pphosted.com]
          proofpoint:
            kind: proofpoint
            flavour: pod
            hosts: [mx0a-001234.pphosted.com, mx0b-001234.pphosted.com]
          exchange-online:
            kind: exchange-online
            inbound_host: contoso-com.mail.protection.outlook.com
            accepts_only_from: proofpoint
        """
    )


def write_topology(tmp_path: Path, domain: str) -> Path:
    path = tmp_path / f"{domain}.yaml"
    path.write_text(topology_yaml(domain))
    return path


def query(server: DnsServer, qname: str, rdtype: str, tcp: bool = False) -> dns.message.Message:
    request = dns.message.make_query(qname, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(request, server.host, port=server.port, timeout=2.0)


def rrset_texts(response: dns.message.Message, rdtype: str, section: str = "answer") -> set[str]:
    wanted = dns.rdatatype.from_text(rdtype)
    rrsets = getattr(response, section)
    return {rd.to_text() for rrset in rrsets if rrset.rdtype == wanted for rd in rrset}


@pytest.fixture
def run_triage() -> RunTriage:
    """Run ``mailtrace triage ... --format json``; return (exit code, parsed JSON, run)."""

    def run(topology: Path, recipient: str, resolver: str, connect_to: list[str]) -> Triage:
        argv = [
            sys.executable,
            "-m",
            "mailtrace",
            "triage",
            "--topology",
            str(topology),
            "--recipient",
            recipient,
            "--resolver",
            resolver,
            *connect_to,
            "--format",
            "json",
            "--timeout",
            str(TRIAGE_TIMEOUT_S),
        ]
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=CLI_DEADLINE_S, cwd=REPO, check=False
        )
        try:
            report = json.loads(completed.stdout)
        except json.JSONDecodeError:
            pytest.fail(
                f"triage did not print JSON (exit {completed.returncode});\n"
                f"argv: {argv}\nstdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
            )
        return completed.returncode, report, completed

    return run


def verdict_of(report: dict[str, Any]) -> tuple[str, str | None, str | None]:
    verdict = report["verdict"]
    return verdict["status"], verdict["tier"], verdict["tag"]


def tier_of(report: dict[str, Any], tier_id: str) -> dict[str, Any]:
    for tier in report["tiers"]:
        if tier["id"] == tier_id:
            return dict(tier)
    pytest.fail(f"no tier {tier_id!r} in report: {[t['id'] for t in report['tiers']]}")


def tags_of(tier: dict[str, Any]) -> set[str]:
    return {finding["tag"] for finding in tier["findings"]}


def evidence_of(tier: dict[str, Any], tag: str) -> list[Any]:
    return [entry for f in tier["findings"] if f["tag"] == tag for entry in f["evidence"]]


def explain(report: dict[str, Any], completed: subprocess.CompletedProcess[str]) -> str:
    """What to print when an assertion fails: verdict, statuses and tags per tier, stderr."""
    per_tier = {t["id"]: (t["status"], sorted(tags_of(t))) for t in report.get("tiers", [])}
    return f"verdict={report.get('verdict')}\ntiers={per_tier}\nstderr:\n{completed.stderr}"


# --------------------------------------------------------------------------- fixtures


def test_fixtures_answer(
    knot_parent: DnsServer, knot_server: DnsServer, unbound_resolver: DnsServer
) -> None:
    """The servers themselves: each Knot answers with authority, Unbound recurses to them."""
    direct = query(knot_server, "contoso.com", "MX")
    assert direct.rcode() == dns.rcode.NOERROR
    assert direct.flags & dns.flags.AA, "Knot must answer contoso.com authoritatively"
    assert rrset_texts(direct, "MX") == CONTOSO_MX

    soa = query(knot_server, "nomx.example", "SOA")
    assert soa.rcode() == dns.rcode.NOERROR and soa.flags & dns.flags.AA
    assert rrset_texts(soa, "SOA")
    no_mx = query(knot_server, "nomx.example", "MX")
    assert no_mx.rcode() == dns.rcode.NOERROR and not no_mx.answer  # NODATA

    # The parent refers (no AA, NS in authority, glue) — as com. does on the internet.
    referral = query(knot_parent, "contoso.com", "NS")
    assert referral.rcode() == dns.rcode.NOERROR and not referral.answer
    assert not referral.flags & dns.flags.AA
    assert rrset_texts(referral, "NS", "authority") == {"ns1.contoso.com.", "ns2.contoso.com."}
    assert rrset_texts(referral, "A", "additional") == {"127.0.0.1"}

    root = query(unbound_resolver, ".", "NS")
    assert root.rcode() == dns.rcode.NOERROR
    assert rrset_texts(root, "NS") == {"a.root.lab."}
    assert rrset_texts(query(unbound_resolver, "com", "NS"), "NS") == {"a.gtld-servers.com."}

    recursed = query(unbound_resolver, "contoso.com", "MX")
    assert recursed.rcode() == dns.rcode.NOERROR
    assert recursed.flags & dns.flags.RA and not recursed.flags & dns.flags.AA
    assert rrset_texts(recursed, "MX") == CONTOSO_MX

    for name, address in [
        ("mx0a-001234.pphosted.com", "127.0.2.1"),
        ("mx0b-001234.pphosted.com", "127.0.2.2"),
        ("contoso-com.mail.protection.outlook.com", "127.0.3.1"),
        ("ns1.contoso.com", "127.0.0.1"),
        ("ns2.contoso.com", "127.0.0.1"),
        ("a.gtld-servers.com", "127.0.0.1"),
    ]:
        assert rrset_texts(query(unbound_resolver, name, "A"), "A") == {address}, name

    nomx_soa = query(unbound_resolver, "nomx.example", "SOA")
    assert nomx_soa.rcode() == dns.rcode.NOERROR and rrset_texts(nomx_soa, "SOA")
    nomx_mx = query(unbound_resolver, "nomx.example", "MX")
    assert nomx_mx.rcode() == dns.rcode.NOERROR and not nomx_mx.answer

    # TCP too: a truncated answer, or a probe that prefers TCP, must reach every server.
    for server in (knot_server, unbound_resolver):
        assert rrset_texts(query(server, "contoso.com", "MX", tcp=True), "MX") == CONTOSO_MX
    assert query(knot_parent, ".", "SOA", tcp=True).rcode() == dns.rcode.NOERROR


# --------------------------------------------------------------------------- triage


def test_triage_healthy_through_unbound_and_knot(
    knot_parent: DnsServer,
    knot_server: DnsServer,
    unbound_resolver: DnsServer,
    tmp_path: Path,
    run_triage: RunTriage,
) -> None:
    with lab_smtp_hosts() as smtp_flags:  # the SMTP tiers answer too: healthy end to end
        code, report, completed = run_triage(
            write_topology(tmp_path, "contoso.com"),
            "alice@contoso.com",
            unbound_resolver.address,
            connect_to_args(knot_server, knot_parent) + smtp_flags,
        )
    why = explain(report, completed)
    assert report["schema"] == "mailtrace/triage-1", why
    assert report["target"]["domain"] == "contoso.com", why

    dns_tier = tier_of(report, "public-dns")
    assert dns_tier["kind"] == "dns", why
    assert dns_tier["status"] == "pass", why
    assert "DNS_MX_OK" in tags_of(dns_tier), why

    # Evidence names the server that answered (Unbound, or Knot for an authoritative
    # check) and the TTL it served.
    ports = {str(unbound_resolver.port), str(knot_server.port)}
    mx_evidence = evidence_of(dns_tier, "DNS_MX_OK")
    assert mx_evidence, why
    assert any(any(port in json.dumps(e) for port in ports) for e in mx_evidence), (
        f"no evidence entry names port {ports}: {mx_evidence}"
    )
    assert any("ttl" in json.dumps(e).lower() for e in mx_evidence), mx_evidence

    assert verdict_of(report)[0] == "healthy", why
    assert code == 0, why


def test_triage_missing_mx_is_a_public_dns_fault(
    knot_parent: DnsServer,
    knot_server: DnsServer,
    unbound_resolver: DnsServer,
    tmp_path: Path,
    run_triage: RunTriage,
) -> None:
    code, report, completed = run_triage(
        write_topology(tmp_path, "nomx.example"),
        "alice@nomx.example",
        unbound_resolver.address,
        connect_to_args(knot_server, knot_parent),
    )
    why = explain(report, completed)
    assert verdict_of(report) == ("fault", "public-dns", "DNS_MX_MISSING"), why
    dns_tier = tier_of(report, "public-dns")
    assert dns_tier["status"] == "fail", why
    assert "DNS_MX_MISSING" in tags_of(dns_tier), why
    assert code == 1, why


def test_triage_delegation_answers_are_authoritative(
    knot_parent: DnsServer,
    knot_server: DnsServer,
    unbound_resolver: DnsServer,
    tmp_path: Path,
    run_triage: RunTriage,
) -> None:
    """ns1/ns2.contoso.com:53 go to Knot (``--connect-to``), which answers with AA."""
    _, report, completed = run_triage(
        write_topology(tmp_path, "contoso.com"),
        "alice@contoso.com",
        unbound_resolver.address,
        connect_to_args(knot_server, knot_parent),
    )
    why = explain(report, completed)
    dns_tier = tier_of(report, "public-dns")
    assert "DNS_DELEGATION_OK" in tags_of(dns_tier), why
    evidence = evidence_of(dns_tier, "DNS_DELEGATION_OK")
    assert any(str(knot_server.port) in json.dumps(e) for e in evidence), evidence


def test_triage_dead_resolver_is_inconclusive_at_observer(
    knot_parent: DnsServer, knot_server: DnsServer, tmp_path: Path, run_triage: RunTriage
) -> None:
    """Nothing listens on the resolver port: blame the observer, not public DNS."""
    dead = free_port()
    started = time.monotonic()
    code, report, completed = run_triage(
        write_topology(tmp_path, "contoso.com"),
        "alice@contoso.com",
        f"127.0.0.1:{dead}",
        connect_to_args(knot_server, knot_parent),
    )
    took = time.monotonic() - started
    why = explain(report, completed)
    assert verdict_of(report) == ("inconclusive", "observer", "OBSERVER_RESOLVER_UNREACHABLE"), why
    assert code == 3, why
    # The run honours its own budget (plus interpreter start-up), not the test's deadline.
    assert took < TRIAGE_TIMEOUT_S + 10, f"triage took {took:.1f} s with --timeout 20"
