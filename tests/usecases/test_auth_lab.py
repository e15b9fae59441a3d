"""verify, precheck, SPF and MTA-STS end to end against the lab: real DNS (UDP, TCP
fallback) and real HTTPS on loopback, through the command line as an admin runs it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailtrace.cli import main
from mailtrace.clients.dns import DnsClient, Server
from mailtrace.clients.dns_lookup import DnsLookup
from mailtrace.clients.mta_sts import fetch_policy
from mailtrace.core.network import ConnectTo, Redirects
from mailtrace.lab import auth_worlds as auth_scenarios
from mailtrace.lab import scenarios
from mailtrace.lab.lab import Lab
from mailtrace.lab.mta_sts import CA_FILE_ENV, PolicyHost
from mailtrace.mailauth.spf import check_host
from mailtrace.topology import load_topology
from mailtrace.usecases.demo import lab_options, precheck_in_lab, verify_in_lab
from mailtrace.usecases.triage import make_target, run_triage
from tests.support.paths import ROOT as TOPOLOGY_ROOT

VERIFY = auth_scenarios.VERIFY
FIT = auth_scenarios.FIT
PRECHECK = auth_scenarios.PRECHECK


@pytest.mark.parametrize("name", sorted(VERIFY))
def test_verify_scenarios(name):
    vs = VERIFY[name]
    started = time.time()
    report = asyncio.run(verify_in_lab(vs))
    elapsed = time.time() - started
    assert report.status == vs.status
    assert report.exit_code == (0 if vs.status == "converged" else 1)
    statuses = {r.record.label: r.status for r in report.records}
    for label, status in vs.records.items():
        assert statuses[label] == status, label
    assert set(statuses) == {"MX", "SPF", "DKIM selector1", "DKIM selector2", "DMARC",
                             "MTA-STS", "TLS-RPT"}
    assert len(report.servers) == 2 and len(report.resolvers) == 1 + bool(vs.cached)
    spf = next(r for r in report.records if r.record.label == "SPF")
    assert spf.current == (auth_scenarios.NEW_SPF.strip('"'),)
    if name == "verify-ns-stale":
        assert spf.disagreeing == ["ns2.contoso.com (127.0.1.2:53)"]
    if name == "verify-resolver-cached":
        assert spf.disagreeing == [report.resolvers[1]]
        left = (report.old_expires_at or 0) - started
        # the resolver cached the answer (full TTL) somewhere inside this run
        assert auth_scenarios.CACHED_TTL - 5 <= left <= auth_scenarios.CACHED_TTL + elapsed + 1
        assert report.as_json()["old_answers_expired_everywhere_at"] is not None


#: What each FIT world is built to show: (record label, tag, key arguments).
FIT_MEANING = {
    "verify-spf-plus-all": ("SPF", "SPF_ALL_DIFFERS", {"found": "+all", "expected": "-all"}),
    "verify-spf-plus-all-undeclared": ("SPF", "SPF_ALL_PASS", {"found": "+all",
                                                               "at": "contoso.com"}),
    "verify-spf-redirect": ("SPF", "SPF_SENDER_PASSES", {
        "matched": "redirect=_spf.contoso.com > include:spf.protection.outlook.com > "
                   "ip4:127.0.3.0/24"}),
    "verify-dmarc-none": ("DMARC", "DMARC_POLICY_DIFFERS", {
        "found": "none", "expected": "quarantine", "term": "p"}),
    "verify-dmarc-inherited-sp": ("DMARC", "DMARC_POLICY_DIFFERS", {
        "found": "none", "expected": "quarantine", "term": "sp", "at": "_dmarc.contoso.com"}),
    "verify-dkim-testing": ("DKIM selector1", "DKIM_TESTING", {"selector": "selector1"}),
}


def _meant(findings, tag, args) -> bool:
    return any(f.tag == tag and all(f.args.get(k) == v for k, v in args.items())
               for f in findings)


@pytest.mark.parametrize("name", sorted(FIT))
def test_records_are_judged_against_what_the_topology_declares(name):
    vs = FIT[name]
    report = asyncio.run(verify_in_lab(vs))
    assert report.status == vs.status
    assert report.exit_code == (0 if vs.status == "converged" else 1)
    records = {r.record.label: r for r in report.records}
    for label, status in vs.records.items():
        assert records[label].status == status, label
    label, tag, args = FIT_MEANING[name]
    assert _meant(records[label].findings, tag, args)
    # A differing record is the contradiction alone: every other record still matches.
    assert [r.record.label for r in report.records if r.status == "differs"] == [
        label for label, status in vs.records.items() if status == "differs"]


def test_a_redirect_to_a_record_ending_in_minus_all_is_clean():
    report = asyncio.run(verify_in_lab(FIT["verify-spf-redirect"]))
    spf = next(r for r in report.records if r.record.label == "SPF")
    assert not [f for f in spf.findings if f.tag.startswith("SPF_ALL_")]
    assert spf.current == ("v=spf1 redirect=_spf.contoso.com",)


def test_plus_all_is_flagged_beside_the_contradiction():
    report = asyncio.run(verify_in_lab(FIT["verify-spf-plus-all"]))
    spf = next(r for r in report.records if r.record.label == "SPF")
    assert _meant(spf.findings, "SPF_ALL_PASS", {"found": "+all"})
    assert spf.reason == "does not fit the topology: SPF_ALL_DIFFERS"


def test_keys_in_testing_mode_are_listed_but_do_not_align():
    report = asyncio.run(verify_in_lab(FIT["verify-dkim-testing"]))
    dmarc = next(r for r in report.records if r.record.label == "DMARC")
    assert [(f.args["sender"], f.args["via"]) for f in dmarc.findings
            if f.tag == "DMARC_SENDER_ALIGNED"] == [
        ("proofpoint (include:spf-001234.pphosted.com)", "spf"),
        ("exchange-online (include:spf.protection.outlook.com)", "spf")]


def test_verify_watch_polls_until_the_timeout_when_a_cache_holds_on():
    vs = VERIFY["verify-resolver-cached"]
    report = asyncio.run(verify_in_lab(vs, watch=True, timeout=2.5,
                                                      interval=0.5))
    assert report.status == "propagating" and report.polls >= 2


def test_verify_watch_stops_at_once_when_converged():
    report = asyncio.run(verify_in_lab(VERIFY["verify-converged"], watch=True,
                                                      timeout=10, interval=5))
    assert report.polls == 1 and report.status == "converged"


@pytest.mark.parametrize("name", sorted(PRECHECK))
def test_precheck_scenarios(name):
    ps = PRECHECK[name]
    report = asyncio.run(precheck_in_lab(ps))
    assert report.verdict == ps.verdict
    assert set(ps.unsafe) <= {f.tag for f in report.unsafe}
    if ps.verdict == "safe":
        assert report.unsafe == [] and report.exit_code == 0
    else:
        assert report.exit_code == 1


def test_precheck_mx_ttl_advice_names_when_to_lower_it():
    report = asyncio.run(precheck_in_lab(PRECHECK["mx-off-gateway"]))
    ttl = next(f for f in report.unsafe if f.tag == "PRECHECK_MX_TTL_LONG")
    assert ttl.args["ttl"] == 3600 and ttl.args["lower_to"] == 300
    assert ttl.args["lower_by"] == "2030-01-01T11:00:00Z"
    assert ttl.args["change_after"] == "2030-01-01T12:00:00Z"
    bypass = next(f for f in report.unsafe if f.tag == "DNS_MX_BYPASSES_GATEWAY")
    assert bypass.args["gateway"] == "proofpoint"
    assert "MTASTS_MX_NOT_COVERED" in {f.tag for f in report.unsafe}


def test_precheck_mx_ttl_advice_when_the_plan_is_too_close_or_absent():
    import datetime as dt

    from mailtrace.usecases.precheck import ttl_finding

    now = dt.datetime(2026, 12, 1, 17, 30, tzinfo=dt.UTC)
    [close] = ttl_finding("contoso.com", 3600, dt.datetime(2026, 12, 1, 18, 0), now)
    assert (close.args["lower_by"], close.args["change_after"], close.args["planned"]) == (
        "2026-12-01T17:30:00Z", "2026-12-01T18:30:00Z", "2026-12-01T18:00:00Z")
    [unplanned] = ttl_finding("contoso.com", 3600, None, now)
    assert (unplanned.args["lower_by"], unplanned.args["change_after"]) == (
        "2026-12-01T17:30:00Z", "2026-12-01T18:30:00Z")
    assert ttl_finding("contoso.com", 900, None, now) == []


def test_precheck_reports_what_a_change_resolves():
    world = dataclasses.replace(auth_scenarios.PRECHECK["dmarc-reject-unaligned"].scenario)
    fix = auth_scenarios.PrecheckScenario(
        "fix", "put the dispatch host back", world,
        "records:\n  - {action: replace, name: \"@\", type: TXT, values: [\"v=spf1 "
        "include:spf.protection.outlook.com a:dispatch-us.ppe-hosted.com -all\"]}\n", "safe")
    report = asyncio.run(precheck_in_lab(fix))
    assert report.verdict == "safe"
    resolved = {f.tag for f in report.resolved}
    assert {"SPF_SENDER_FAILS", "SPF_EXPECTED_TERM_MISSING",
            "DMARC_SENDER_UNALIGNED_MONITORED"} <= resolved


@pytest.mark.parametrize("vs", [*VERIFY.values(), *FIT.values()],
                         ids=[*VERIFY, *FIT])
def test_the_verify_worlds_triage_as_they_say(vs):
    """The worlds are real lab worlds: triage reaches the verdict each one records (mail
    still arrives where a record contradicts the topology: verify is what says so)."""
    async def run() -> Any:
        async with Lab(vs.scenario) as lab:
            topology = load_topology(lab.topology_path)
            return await run_triage(topology, make_target(topology, lab.recipient, None),
                                    lab_options(lab, 20))
    verdict = asyncio.run(run()).verdict
    expect = vs.scenario.expect
    assert (verdict.status, verdict.tier, verdict.tag) == (expect.status, expect.tier,
                                                           expect.tag)


def test_a_4000_byte_spf_record_goes_over_tcp_and_evaluates():
    big = "v=spf1 " + " ".join(f"ip4:10.{i // 250}.{i % 250}.0/24" for i in range(228)) + \
        " include:spf.protection.outlook.com -all"
    strings = " ".join(f'"{big[i:i + 250]}"' for i in range(0, len(big), 250))
    world = dataclasses.replace(scenarios.get("healthy"), zone_edits=(
        scenarios.ZoneEdit("contoso.com", "@", "TXT", (strings,)),))

    async def run() -> Any:
        async with Lab(world) as lab:
            client = DnsClient([Server("resolver", *lab.resolver)])
            lookup = DnsLookup(client, time.monotonic() + 10)
            return await check_host(lookup, "127.0.3.7", "contoso.com", "a@contoso.com")
    spf = asyncio.run(run())
    assert spf.result == "pass" and spf.matched == \
        "include:spf.protection.outlook.com > ip4:127.0.3.0/24"
    assert any(e["query"] == "contoso.com. TXT" for e in spf.evidence)


# -- MTA-STS over real HTTPS ----------------------------------------------------------------


def _fetch_from(policy_host_setup) -> Any:
    async def run() -> Any:
        from mailtrace.lab.ca import LabCA

        ca = LabCA()
        try:
            host, connect = policy_host_setup(ca)
            async with host:
                redirects = Redirects((connect(host),))
                return await asyncio.to_thread(fetch_policy, "contoso.com", redirects,
                                               str(ca.ca_file), 5.0)
        finally:
            ca.close()
    return asyncio.run(run())


def test_the_policy_is_fetched_with_the_certificate_checked_against_the_name():
    fetch = _fetch_from(lambda ca: (PolicyHost("contoso.com", "version: STSv1\n", ca),
                                    lambda h: h.connect_to))
    assert (fetch.status, fetch.body, fetch.error) == (200, "version: STSv1\n", None)


def test_a_certificate_for_another_name_is_refused():
    fetch = _fetch_from(lambda ca: (PolicyHost("fabrikam.com", "version: STSv1\n", ca),
                                    lambda h: ConnectTo("mta-sts.contoso.com", 443, h.host,
                                                        h.port)))
    assert fetch.status is None and "certificate" in (fetch.error or "")


def test_a_redirect_is_not_followed():
    from mailtrace.lab.http_server import HttpServer, Response

    def setup(ca):
        tls = ca.issue("mta-sts.contoso.com").server_context()
        server = HttpServer(lambda r: Response(301, b"", {"Location": "https://evil.example/"}),
                            tls=tls)
        return server, lambda h: ConnectTo("mta-sts.contoso.com", 443, h.host, h.port)
    fetch = _fetch_from(setup)
    assert fetch.status == 301 and "refused" in (fetch.error or "")


def test_the_lab_policy_host_and_tls_rpt_pass_the_mta_sts_probe():
    """The records probes run through the engine on the DNS tier, as verify runs them."""
    from mailtrace.engine.clients import RunClients
    from mailtrace.engine.runner import Engine
    from mailtrace.probes.base import Target
    from mailtrace.probes.registry import RECORDS, TRIAGE
    from mailtrace.topology.flow import FlowGraph

    async def run() -> Any:
        async with Lab(scenarios.get("healthy")) as lab:
            topology = load_topology(lab.topology_path)
            clients = RunClients(topology, lab_options(lab, 10))
            engine = Engine(topology, FlowGraph(topology), Target("contoso.com"), clients, 10)
            try:
                return await engine.run_tier("public-dns", RECORDS, known=TRIAGE)
            finally:
                await clients.aclose()
    tier = asyncio.run(run())
    by_probe = {p.probe: [f.tag for f in p.findings] for p in tier.probes}
    assert by_probe["auth.mta-sts"] == ["TLSRPT_OK", "MTASTS_OK"]
    assert "DMARC_OK" in by_probe["auth.records"]
    assert "DNS_MX_OK" in by_probe["dns.mx"]


def test_a_policy_that_misses_an_mx_host_is_caught_in_the_lab():
    world = dataclasses.replace(scenarios.get("healthy"), mta_sts_policies={
        "contoso.com": "version: STSv1\nmode: enforce\nmx: mx0a-001234.pphosted.com\n"
                       "max_age: 86400\n"})
    report = asyncio.run(verify_in_lab(
        auth_scenarios.VerifyScenario(world)))
    sts = next(r for r in report.records if r.record.label == "MTA-STS")
    assert sts.status == "differs"
    assert [f.args["hosts"] for f in sts.findings if f.tag == "MTASTS_MX_NOT_COVERED"] == [
        "mx0b-001234.pphosted.com"]


# -- the command line -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def running_lab() -> Iterator[Lab]:
    """The healthy lab, served from a thread, for in-process command-line runs."""
    with _serving(scenarios.get("healthy")) as lab:
        yield lab


@contextlib.contextmanager
def _serving(scenario: scenarios.Scenario) -> Iterator[Lab]:
    """A lab world served from a thread while the block runs."""
    loop = asyncio.new_event_loop()
    lab = Lab(scenario)
    ready = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        async with lab:
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield lab
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def _flags(lab: Lab) -> list[str]:
    host, port = lab.resolver
    flags = ["--topology", str(lab.topology_path), "--resolver", f"{host}:{port}",
             "--ca-file", lab.environ[CA_FILE_ENV]]
    for rule in lab.connect_to:
        flags += ["--connect-to", str(rule)]
    return flags


def test_cli_verify_json(running_lab, capsys):
    code = main(["verify", *_flags(running_lab), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["schema"] == "mailtrace/verify-1" and out["status"] == "converged"
    assert {r["record"]: r["status"] for r in out["records"]}["SPF"] == "matches"
    assert all(len(r["servers"]) == 3 for r in out["records"])  # 2 NS + 1 resolver


def test_cli_verify_text_and_watch(running_lab, capsys):
    assert main(["verify", *_flags(running_lab), "--watch", "--interval", "1",
                 "--timeout", "5"]) == 0
    captured = capsys.readouterr()
    assert "CONVERGED" in captured.out and "poll 1: 7/7 match" in captured.err


def test_cli_precheck_junit_and_json(running_lab, capsys, tmp_path: Path):
    change = tmp_path / "change.yaml"
    change.write_text(PRECHECK["dkim-not-yet-published"].change, encoding="utf-8")
    assert main(["precheck", *_flags(running_lab), "--change", str(change),
                 "--format", "junit"]) == 1
    suite = ET.fromstring(capsys.readouterr().out.split("?>", 1)[1])
    failed = {c.get("name"): [f.get("type") for f in c.findall("failure")]
              for c in suite.findall("testcase")}
    assert failed["DKIM"] == ["DKIM_SELECTOR_MISSING"] and failed["SPF"] == []
    assert suite.get("failures") == "1"
    assert main(["precheck", *_flags(running_lab), "--change", str(change),
                 "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == "mailtrace/precheck-1" and out["verdict"] == "unsafe"
    assert [f["tag"] for f in out["unsafe"]] == ["DKIM_SELECTOR_MISSING"]


def _declared_topology(lab: Lab, vs: auth_scenarios.VerifyScenario, folder: Path) -> Path:
    """The lab's topology file as the world declares it (its domain, its expectations)."""
    data = yaml.safe_load(lab.topology_path.read_text(encoding="utf-8"))
    if vs.domain and vs.domain not in data["domains"]:
        data["domains"].append(vs.domain)
    for section, values in vs.expect.items():
        data["tiers"]["public-dns"]["expect"][section].update(values)
    path = folder / "topology.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["verify-spf-plus-all", "verify-dmarc-none",
                                  "verify-dmarc-inherited-sp", "verify-spf-plus-all-undeclared"])
def test_cli_verify_exits_1_on_each_contradiction(name, capsys, tmp_path: Path):
    vs = FIT[name]
    with _serving(vs.scenario) as lab:
        flags = _flags(lab)
        flags[flags.index("--topology") + 1] = str(_declared_topology(lab, vs, tmp_path))
        domain = ["--domain", vs.domain] if vs.domain else []
        code = main(["verify", *flags, *domain, "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == (1 if vs.status == "differs" else 0) and out["status"] == vs.status
    statuses = {r["record"]: r["status"] for r in out["records"]}
    assert {k: statuses[k] for k in vs.records} == dict(vs.records)
    label, tag, args = FIT_MEANING[name]
    record = next(r for r in out["records"] if r["record"] == label)
    assert any(f["tag"] == tag and all(f["args"].get(k) == v for k, v in args.items())
               for f in record["findings"])


def test_cli_precheck_a_dmarc_downgrade_is_unsafe(running_lab, capsys, tmp_path: Path):
    change = tmp_path / "change.yaml"
    change.write_text(PRECHECK["dmarc-downgrade"].change, encoding="utf-8")
    assert main(["precheck", *_flags(running_lab), "--change", str(change),
                 "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [(f["tag"], f["args"]["found"], f["args"]["expected"]) for f in out["unsafe"]] == [
        ("DMARC_POLICY_DIFFERS", "none", "quarantine")]


def test_cli_precheck_safe_change_text(running_lab, capsys, tmp_path: Path):
    change = tmp_path / "change.yaml"
    change.write_text(PRECHECK["safe-spf-addition"].change, encoding="utf-8")
    assert main(["precheck", *_flags(running_lab), "--change", str(change)]) == 0
    out = capsys.readouterr().out
    assert "SAFE" in out and "ip4:127.0.9.0/24" in out


@pytest.mark.parametrize(("text", "where", "needle"), [
    ("records:\n  - action: add\n    name: x\n    type: TXT\n    values: [a]\n"
     "  - action: move\n    name: y\n    type: TXT\n", ":6:", "action"),
    ("records:\n  - {action: add, name: \"@\", type: MX, values: [\"ten mx.example.\"]}\n",
     ":2:", "not a valid MX"),
    ("records: []\n", ":1:", "records"),
    ("change: x\nrecords:\n  - {action: add, name: a, type: TXT, values: [b]}\nextra: 1\n",
     ":4:", "unknown key 'extra'"),
    ("records:\n  - {action: add, name: a, type: TXT, values: [b]\n", ":3:", ""),
    ("records:\n  - {action: replace, name: a, type: TXT}\n", ":2:", "needs values"),
    ("records:\n  - {action: add, name: a, type: TXT, values: [\"" + "x" * 4100 + "\"]}\n",
     ":2:", "4000"),
    ("", "", "empty file"),
])
def test_a_malformed_change_file_is_exit_2_with_the_line(capsys, tmp_path, text, where, needle):
    change = tmp_path / "change.yaml"
    change.write_text(text, encoding="utf-8")
    topology = TOPOLOGY_ROOT / "topologies" / "contoso-proofpoint-exo.yaml"
    code = main(["precheck", "--topology", str(topology), "--change", str(change),
                 "--resolver", "127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"{change}{where}" in err and needle in err


def test_cli_refuses_a_domain_outside_the_topology(capsys):
    topology = TOPOLOGY_ROOT / "topologies" / "contoso-proofpoint-exo.yaml"
    assert main(["verify", "--topology", str(topology), "--domain", "fabrikam.com",
                 "--resolver", "127.0.0.1:9"]) == 2
    assert "not a domain of topology" in capsys.readouterr().err


def test_cli_verify_panel_with_the_system_resolver(running_lab, capsys, monkeypatch):
    """--system-resolver adds the system's resolvers to the panel (here: stood in for by
    the lab's, so nothing leaves the machine)."""
    from mailtrace.cli import options
    from mailtrace.core.network import Endpoint

    host, port = running_lab.resolver
    monkeypatch.setattr(options, "system_resolvers", lambda: [Endpoint(host, port)])
    extra = ["--system-resolver", "--format", "json"]
    assert main(["verify", *_flags(running_lab), *extra]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["resolvers"]) == 2


def test_cli_verify_text_shows_the_spf_tree(running_lab, capsys):
    assert main(["verify", *_flags(running_lab)]) == 0
    out = capsys.readouterr().out
    assert "| contoso.com  [2 lookups]" in out
    assert "|   include:spf.protection.outlook.com  [1 lookup]" in out


@pytest.mark.parametrize(("raw", "needle"), [
    (b"records:\n  - {action: add, name: a, type: TXT, values: [\xff]}\n", "not UTF-8"),
    (b"- action: add\n", "expected a mapping with keys change, domain"),
    (b"records:\n  - {action: add, name: a, type: TXT, values: [b]}\nrecords: []\n",
     "duplicate key 'records'"),
])
def test_other_unusable_change_files(capsys, tmp_path, raw, needle):
    change = tmp_path / "change.yaml"
    change.write_bytes(raw)
    topology = TOPOLOGY_ROOT / "topologies" / "contoso-proofpoint-exo.yaml"
    assert main(["precheck", "--topology", str(topology), "--change", str(change),
                 "--resolver", "127.0.0.1:9"]) == 2
    assert needle in capsys.readouterr().err


def test_a_policy_host_taken_away_is_unreachable_yet_local():
    world = dataclasses.replace(scenarios.get("healthy"),
                                mta_sts_policies={"contoso.com": None})
    report = asyncio.run(verify_in_lab(auth_scenarios.VerifyScenario(world)))
    sts = next(r for r in report.records if r.record.label == "MTA-STS")
    unreachable = [f for f in sts.findings if f.tag == "MTASTS_POLICY_UNREACHABLE"]
    assert sts.status == "differs" and unreachable
    assert "ConnectionError" in unreachable[0].args["error"]
