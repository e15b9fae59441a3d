"""DNSSEC against real servers: Knot DNS signing the zones itself, Unbound validating
from the root's key, ``mailtrace triage`` in a subprocess given the same anchor.

What is checked is what a validating sender lives by: a signed domain validates (and
Unbound sets AD), a domain whose DS names no key of its is bogus — Unbound answers
SERVFAIL, mailtrace names the broken link at public-dns and reads Unbound's SERVFAIL as
the domain's fault, never the resolver's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from .conftest import DnsServer, connect_to_args
from .lab_smtp import lab_smtp_hosts
from .signed import signed_world, validating_unbound
from .test_knot_unbound import (
    CLI_DEADLINE_S,
    REPO,
    TRIAGE_TIMEOUT_S,
    RunTriage,
    Triage,
    explain,
    tier_of,
    verdict_of,
    write_topology,
)

pytestmark = pytest.mark.integration

World = tuple[DnsServer, DnsServer, Path]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with signed_world(tmp_path_factory) as servers:
        yield servers


@pytest.fixture(scope="module")
def validating(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    parent, child, anchor = world
    with validating_unbound(tmp_path_factory, parent, child, anchor) as server:
        yield server


@pytest.fixture
def run_triage() -> RunTriage:
    """``mailtrace triage ... --format json`` in a subprocess, as test_knot_unbound runs it."""

    def run(topology: Path, recipient: str, resolver: str, flags: list[str]) -> Triage:
        argv = [sys.executable, "-m", "mailtrace", "triage", "--topology", str(topology),
                "--recipient", recipient, "--resolver", resolver, *flags, "--format", "json",
                "--timeout", str(TRIAGE_TIMEOUT_S)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_DEADLINE_S,
                              cwd=REPO, check=False)
        try:
            return done.returncode, json.loads(done.stdout), done
        except json.JSONDecodeError:
            pytest.fail(f"triage printed no JSON (exit {done.returncode}):\n{done.stderr}")

    return run


def ask(server: DnsServer, name: str, rdtype: str, cd: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, want_dnssec=True)
    if cd:
        query.flags |= dns.flags.CD
    return dns.query.udp(query, server.host, port=server.port, timeout=3.0)


def test_knot_signs_and_unbound_validates(world: World, validating: DnsServer) -> None:
    _, child, _ = world
    signed = ask(child, "contoso.com", "MX")
    assert any(r.rdtype == 46 for r in signed.answer), "Knot must serve RRSIGs to DO queries"
    secure = ask(validating, "contoso.com", "MX")
    assert secure.rcode() == dns.rcode.NOERROR and secure.flags & dns.flags.AD
    bogus = ask(validating, "bogus.example", "MX")
    assert bogus.rcode() == dns.rcode.SERVFAIL
    unchecked = ask(validating, "bogus.example", "MX", cd=True)
    assert unchecked.rcode() == dns.rcode.NOERROR and unchecked.answer
    insecure = ask(validating, "mx0a-001234.pphosted.com", "A")
    assert insecure.rcode() == dns.rcode.NOERROR and not insecure.flags & dns.flags.AD


def test_a_signed_domain_validates_through_unbound(
    world: World, validating: DnsServer, tmp_path: Path, run_triage: RunTriage
) -> None:
    parent, child, anchor = world
    with lab_smtp_hosts() as smtp_flags:
        code, report, completed = run_triage(
            write_topology(tmp_path, "contoso.com"), "alice@contoso.com", validating.address,
            connect_to_args(child, parent) + smtp_flags + ["--trust-anchor", str(anchor)])
    why = explain(report, completed)
    dns_tier = tier_of(report, "public-dns")
    signed = [f for f in dns_tier["findings"] if f["tag"] == "DNSSEC_SIGNED"]
    assert signed, why
    assert signed[0]["args"]["chain"] == ". → com. → contoso.com.", why
    assert signed[0]["args"]["resolvers"].startswith("validated by"), why
    zones = [f for f in dns_tier["findings"] if f["tag"] == "DNSSEC_MX_HOST_ZONES"]
    assert zones and zones[0]["args"]["unsigned"] == "pphosted.com.", why
    assert verdict_of(report)[0] == "healthy" and code == 0, why


def test_a_bogus_domain_is_a_fault_at_public_dns_not_at_the_resolver(
    world: World, validating: DnsServer, tmp_path: Path, run_triage: RunTriage
) -> None:
    parent, child, anchor = world
    code, report, completed = run_triage(
        write_topology(tmp_path, "bogus.example"), "alice@bogus.example", validating.address,
        [*connect_to_args(child, parent), "--trust-anchor", str(anchor)])
    why = explain(report, completed)
    assert verdict_of(report) == ("fault", "public-dns", "DNSSEC_DS_MISMATCH"), why
    dns_tier = tier_of(report, "public-dns")
    tags = {f["tag"]: f for f in dns_tier["findings"]}
    assert tags["DNSSEC_DS_MISMATCH"]["args"]["zone"] == "bogus.example.", why
    assert "4711" in tags["DNSSEC_DS_MISMATCH"]["args"]["record"], why
    assert "DNSSEC_RESOLVER_BOGUS" in tags, why
    observer = tier_of(report, "observer")  # the resolver works: it validates
    assert "OBSERVER_RESOLVER_OK" in {f["tag"] for f in observer["findings"]}, why
    assert code == 1, why


def test_the_wrong_anchor_judges_nothing(
    world: World, validating: DnsServer, tmp_path: Path, run_triage: RunTriage
) -> None:
    """Without --trust-anchor mailtrace expects IANA's root: this root is not it, so DNSSEC
    is not judged — and nothing is blamed for it."""
    parent, child, _ = world
    _, report, completed = run_triage(
        write_topology(tmp_path, "contoso.com"), "alice@contoso.com", validating.address,
        connect_to_args(child, parent))
    why = explain(report, completed)
    dns_tier = tier_of(report, "public-dns")
    assert "DNSSEC_TRUST_ANCHOR_MISMATCH" in {f["tag"] for f in dns_tier["findings"]}, why
    assert verdict_of(report)[1] != "public-dns", why
