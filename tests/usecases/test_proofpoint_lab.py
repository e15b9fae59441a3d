"""End to end: real triages whose Proofpoint probes make real ``requests`` calls to the lab's
stand-ins — the verdict of every scenario, the evidence behind it, GET only, and no
credential in any report or log."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from mailtrace import cli
from mailtrace.core.findings import Status
from mailtrace.lab import scenarios
from mailtrace.lab.http_server import Request
from mailtrace.lab.lab import Lab
from mailtrace.lab.proofpoint_api import ProofpointStandIn
from mailtrace.probes.proofpoint import tap
from mailtrace.report import html as html_report
from mailtrace.report import json as json_report
from mailtrace.report import text as text_report
from mailtrace.topology import load_topology
from mailtrace.usecases.demo import lab_options
from mailtrace.usecases.triage import TriageReport, make_target, run_triage
from tests.support.labrun import each_scenario, finding, scenario_run, tags, verdict
from tests.support.paths import ROOT as TOPOLOGY_ROOT

PP_SCENARIOS = ["healthy", "essentials-healthy", "pp-rejected-by-rule", "pp-quarantined",
                "pp-onward-delivery-failed", "pp-essentials-wrong-destination",
                "pp-api-unauthorized", "pp-api-throttled"]


@dataclass
class Run:
    report: TriageReport
    requests: dict[str, list[Request]]  # by API: pps, essentials, tap
    environ: dict[str, str]


def run(name: str, *, since: dt.timedelta = dt.timedelta(hours=24), recipient: bool = True,
        environ: dict[str, str] | None = None, timeout: float = 20.0) -> Run:
    async def main() -> Run:
        async with Lab(scenarios.get(name)) as lab:
            topology = load_topology(lab.topology_path)
            target = make_target(topology, lab.recipient if recipient else None,
                                 None if recipient else lab.recipient.split("@")[1], since)
            options = lab_options(lab, timeout)
            if environ is not None:
                options = dataclasses.replace(options, environ=environ)
            report = await run_triage(topology, target, options)
            seen = {s.api: list(s.server.requests) for s in lab.startables
                    if isinstance(s, ProofpointStandIn)}
            return Run(report, seen, dict(lab.environ))

    return asyncio.run(main())


def tier(report: TriageReport, tier_id: str) -> Any:
    return next(t for t in report.tiers if t.id == tier_id)


def test_rejected_by_rule_names_the_action_rule_and_message():
    r = run("pp-rejected-by-rule")
    assert verdict(r.report) == ("fault", "proofpoint", "PP_MESSAGE_REJECTED")
    f = finding(r.report, "PP_MESSAGE_REJECTED")
    assert (f.args["action"], f.args["rule"], f.args["recipient"]) == (
        "reject", "firewall.block_finance_inbound", "alice@contoso.com")
    assert f.evidence[1]["Final_Action"] == "reject" and f.evidence[1]["GUID"] == f.args["guid"]
    assert not [t for t in tags(r.report, "exchange-online") if t.startswith("PP_")]


def test_quarantined_message_and_the_quarantine_list_agree():
    r = run("pp-quarantined")
    assert verdict(r.report) == ("fault", "proofpoint", "PP_MESSAGE_QUARANTINED")
    f = finding(r.report, "PP_MESSAGE_QUARANTINED")
    assert (f.args["folder"], f.args["rule"]) == ("Quarantine", "impostor.policy_impostor")
    held = finding(r.report, "PP_QUARANTINE_HOLDS")
    assert (held.args["count"], held.args["folder"], held.args["rule"], held.args["sender"]) == (
        1, "Quarantine", "impostor.policy_impostor", "orders@fabrikam-supplier.example")
    [q] = [q for q in r.requests["pps"] if q.path == "/rest/v1/quarantine"]
    assert q.arg("rcpt") == "alice@contoso.com" and q.arg("startdate") and q.arg("enddate")


def test_onward_delivery_failure_is_the_next_tiers_fault():
    r = run("pp-onward-delivery-failed")
    assert verdict(r.report) == ("fault", "exchange-online", "PP_ONWARD_DELIVERY_FAILED")
    gateway, exo = tier(r.report, "proofpoint"), tier(r.report, "exchange-online")
    assert gateway.status is Status.PASS and "PP_MESSAGE_ACCEPTED" in tags(r.report, "proofpoint")
    assert [(p.probe, p.reported_by, p.status) for p in exo.probes if p.reported_by] == [
        ("proofpoint.smart_search", "proofpoint", Status.FAIL)]
    f = finding(r.report, "PP_ONWARD_DELIVERY_FAILED")
    assert f.args["code"] == "550 5.4.1"
    assert f.args["relay"] == "contoso-com.mail.protection.outlook.com"
    assert "Recipient address rejected" in f.args["reply"]
    # the fix shown is Exchange Online's, not the gateway's
    text = text_report.render(r.report)
    assert "Fix for exchange-online" in text and "Get-AcceptedDomain" in text


def test_essentials_wrong_destination_compares_with_the_next_tiers_host():
    r = run("pp-essentials-wrong-destination")
    assert verdict(r.report) == ("fault", "proofpoint", "PPE_DESTINATION_MISMATCH")
    f = finding(r.report, "PPE_DESTINATION_MISMATCH")
    assert (f.args["destination"], f.args["expected"], f.args["next_tier"]) == (
        "mail.fabrikam-old.example", "fabrikam-com.mail.protection.outlook.com",
        "exchange-online")
    paths = {q.path for q in r.requests["essentials"]}
    assert paths == {"/api/v1/endpoints/fabrikam.com", "/api/v1/orgs/fabrikam.com/domains",
                     "/api/v1/orgs/fabrikam.com/users"}
    assert all("x-password" in q.headers and "authorization" not in q.headers
               for q in r.requests["essentials"])


@pytest.mark.parametrize(("name", "status"), [("pp-api-unauthorized", "HTTP 401"),
                                              ("pp-api-throttled", "HTTP 429")])
def test_refused_or_throttled_apis_are_not_tested_never_a_fault(name, status):
    r = run(name)
    # not a fault, and not healthy either: the gateway's own records could not be read
    assert verdict(r.report) == ("inconclusive", "proofpoint", "PP_API_UNAVAILABLE")
    gateway = tier(r.report, "proofpoint")
    assert gateway.untested and gateway.coverage == "partial"  # SMTP answered
    api = [p for p in gateway.probes if p.probe.startswith("proofpoint.")]
    assert len(api) == 3 and {p.status for p in api} == {Status.NOT_TESTED}
    assert all(status in (p.reason or "") for p in api)
    assert "proofpoint" in [n["tier"] for n in r.report.verdict.not_tested]
    assert {f.tag for p in api for f in p.findings} == {"PP_API_UNAVAILABLE"}
    # TAP's 429 has no Retry-After: no retry, and no new hour asked after it (only the
    # hours already in flight, one per worker)
    assert 1 <= len(r.requests["tap"]) <= tap.WORKERS and len(r.requests["pps"]) == 2


def test_healthy_covers_the_gateways_api():
    r = run("healthy")
    assert verdict(r.report) == ("healthy", None, None)
    assert tier(r.report, "proofpoint").status is Status.PASS
    assert {"PP_MESSAGE_DELIVERED", "PP_QUARANTINE_CLEAR", "PP_TAP_THREATS_BLOCKED"} <= set(
        tags(r.report, "proofpoint"))
    e = run("essentials-healthy")
    assert verdict(e.report) == ("healthy", None, None)
    assert {"PPE_ROUTING_OK", "PPE_RECIPIENT_KNOWN"} <= set(tags(e.report, "proofpoint"))


def test_tap_is_asked_hour_by_hour_and_never_past_twelve_hours():
    r = run("healthy", since=dt.timedelta(hours=24))
    intervals = [q.arg("interval") or "" for q in r.requests["tap"]]
    assert len(intervals) == 12
    spans = []
    for interval in intervals:
        start, end = (dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
                      for t in interval.split("/"))
        spans.append(end - start)
    assert all(s == dt.timedelta(hours=1) for s in spans)
    assert all(q.arg("format") == "json" for q in r.requests["tap"])
    # the blocked threat is 2 h old and the delivered one 7 h: both seen, both labelled
    assert finding(r.report, "PP_TAP_THREATS_BLOCKED").args["hours"] == "12"
    short = run("healthy", since=dt.timedelta(minutes=90))
    assert len(short.requests["tap"]) == 2
    assert "PP_TAP_THREATS_DELIVERED" not in tags(short.report, "proofpoint")


def test_since_bounds_smart_search():
    r = run("pp-rejected-by-rule", since=dt.timedelta(hours=1))
    [q] = [q for q in r.requests["pps"] if q.path == "/rest/v1/pss/filter"]
    start = dt.datetime.strptime(q.arg("from") or "", "%Y-%m-%dT%H:%M:%S%z")
    end = dt.datetime.strptime(q.arg("to") or "", "%Y-%m-%dT%H:%M:%S%z")
    assert end - start == dt.timedelta(hours=1)
    assert (q.arg("env_rcpt"), q.arg("count")) == ("alice@contoso.com", "100")
    f = finding(r.report, "PP_MESSAGE_REJECTED")
    assert len(f.evidence) == 2  # only the latest message is in the last hour


def test_missing_credentials_are_not_tested_and_name_the_variable():
    r = run("healthy", environ={})
    gateway = tier(r.report, "proofpoint")
    assert gateway.untested
    assert verdict(r.report) == ("inconclusive", "proofpoint", "PP_API_UNAVAILABLE")
    assert "PROOFPOINT_API_USER" in r.report.verdict.summary
    reasons = " ".join(p.reason or "" for p in gateway.probes)
    assert "PROOFPOINT_API_USER" in reasons and "PROOFPOINT_TAP_SECRET" in reasons
    assert all(not v for v in r.requests.values())  # nothing was sent without them


def test_a_domain_triage_searches_the_domain_and_says_what_needs_a_recipient():
    r = run("pp-rejected-by-rule", recipient=False)
    assert verdict(r.report) == ("fault", "proofpoint", "PP_MESSAGE_REJECTED")
    [q] = [q for q in r.requests["pps"] if q.path == "/rest/v1/pss/filter"]
    assert q.arg("env_rcpt") == "*@contoso.com"
    gateway = tier(r.report, "proofpoint")
    assert "proofpoint.quarantine" not in {p.probe for p in gateway.probes}
    assert gateway.reason == "by domain: proofpoint.quarantine not run (give --recipient)"


def test_a_healthy_domain_triage_is_healthy_with_every_tier_tested():
    r = run("healthy", recipient=False)
    assert verdict(r.report) == ("healthy", None, None)
    assert r.report.verdict.not_tested == []
    reasons = {t.id: t.reason for t in r.report.tiers}
    assert "exo.recipient" in (reasons["exchange-online"] or "")
    assert "give --recipient" in (reasons["proofpoint"] or "")


@pytest.mark.parametrize("name", each_scenario())
def test_only_get_is_ever_sent_in_any_scenario(name):
    sent = [q for api, requests in scenario_run(name).requests.items()
            if not api.startswith("graph:") for q in requests]
    assert {q.method for q in sent} <= {"GET"}
    if name in PP_SCENARIOS:
        assert sent, "the gateway's APIs were not asked"


def test_credentials_never_reach_a_report_or_a_log(caplog):
    caplog.set_level(logging.DEBUG)  # root, hence urllib3's connection and request lines
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    secrets: set[str] = set()
    outputs: list[str] = []
    for name in ("healthy", "pp-onward-delivery-failed", "pp-api-unauthorized",
                 "essentials-healthy", "pp-essentials-wrong-destination"):
        r = run(name)
        secrets |= {v for k, v in r.environ.items()
                    if k.endswith(("PASSWORD", "SECRET", "_USER", "PRINCIPAL", "_KEY"))}
        outputs += [text_report.render(r.report, verbose=True), json_report.render(r.report),
                    html_report.render(r.report), repr(r.report)]
    assert len(secrets) >= 8
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "GET /rest/v1/pss/filter" in logged  # urllib3 did log its requests
    for secret in secrets:
        assert all(secret not in out for out in outputs), secret
        assert secret not in logged, secret


def test_demo_cli_takes_since_and_reports_json(capsys):
    code = cli.main(["demo", "pp-onward-delivery-failed", "--format", "json", "--since", "2h"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    v = doc["verdict"]
    assert (v["status"], v["tier"], v["tag"]) == (
        "fault", "exchange-online", "PP_ONWARD_DELIVERY_FAILED")
    exo = next(t for t in doc["tiers"] if t["id"] == "exchange-online")
    assert [p["id"] for p in exo["probes"] if p["reported_by"] == "proofpoint"] == [
        "proofpoint.smart_search"]
    [onward] = [f for f in exo["findings"] if f["tag"] == "PP_ONWARD_DELIVERY_FAILED"]
    assert onward["remediation"]["checked"] == "2026-11-29"
    assert cli.main(["demo", "healthy", "--since", "soon"]) == 2
    assert "--since" in capsys.readouterr().err
    assert cli.main(["demo", "pp-api-throttled", "--strict"]) == 3


def test_a_triage_from_another_shell_reads_the_credentials_from_its_environment():
    """`mailtrace lab` writes its lab file (never the values on screen); a triage in another
    shell reaches the stand-ins with it — and, as with real credentials, with the values
    in its own environment and the connection flags spelled out."""
    import os
    import shlex
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    root = TOPOLOGY_ROOT
    lab = subprocess.Popen([sys.executable, "-m", "mailtrace", "lab", "pp-onward-delivery-failed",
                            "--for", "30"], stdout=subprocess.PIPE, text=True, cwd=root)
    assert lab.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith(("stopping", "Ctrl-C")):
        lines.append(lab.stdout.readline().rstrip("\n"))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROOFPOINT_")}
        [path] = [line.split(": ", 1)[1] for line in lines if line.startswith("lab file: ")]
        assert os.stat(path).st_mode & 0o077 == 0  # only this user reads it
        access = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        shown = "\n".join(lines)
        assert not any(access["environ"][name] in shown for name in (
            "PROOFPOINT_API_PASSWORD", "PROOFPOINT_TAP_SECRET", "MAILTRACE_LAB_GRAPH_TOKEN"))
        start = lines.index("triage against it, with this scenario's topology or your own:")
        argv = shlex.split(lines[start + 1])[1:]  # drop the program name
        assert "--lab-file" in argv
        done = subprocess.run([sys.executable, "-m", "mailtrace", *argv, "--since", "2h",
                               "--format", "json"], capture_output=True, text=True,
                              timeout=60, cwd=root, env=env)
        doc = json.loads(done.stdout)
        v = doc["verdict"]
        assert (done.returncode, v["status"], v["tier"], v["tag"]) == (
            1, "fault", "exchange-online", "PP_ONWARD_DELIVERY_FAILED")
        # The same without the lab file: flags for the network, credentials from the
        # environment under the names the topology gives them.
        ca = Path(path).with_name("ca-for-test.pem")
        ca.write_text(access["ca"], encoding="ascii")
        plain = argv[: argv.index("--lab-file")]
        plain += ["--resolver", access["resolver"], "--ca-file", str(ca)]
        for rule in access["connect_to"]:
            plain += ["--connect-to", rule]
        done = subprocess.run([sys.executable, "-m", "mailtrace", *plain, "--since", "2h",
                               "--format", "json"], capture_output=True, text=True,
                              timeout=60, cwd=root, env={**env, **access["environ"]})
        v = json.loads(done.stdout)["verdict"]
        assert (done.returncode, v["tag"]) == (1, "PP_ONWARD_DELIVERY_FAILED")
        bad = subprocess.run([sys.executable, "-m", "mailtrace", *argv, "--since", "yesterday"],
                             capture_output=True, text=True, timeout=60, cwd=root, env=env)
        assert bad.returncode == 2 and "--since" in bad.stderr and bad.stdout == ""
    finally:
        lab.terminate()
        lab.communicate(timeout=30)
    # stopped by SIGTERM, the lab still removed its files: the lab file and its credentials
    assert lab.returncode == 143
    assert not Path(path).exists()


def test_the_objects_that_carry_credentials_do_not_print_them():
    async def main() -> None:
        async with Lab(scenarios.get("healthy")) as lab:
            options = lab_options(lab, 5)
            secret = lab.environ["PROOFPOINT_API_PASSWORD"]
            topology = load_topology(lab.topology_path)
            from mailtrace.engine.clients import RunClients
            from mailtrace.engine.runner import Engine
            from mailtrace.probes.base import ProbeContext, Target
            from mailtrace.topology import FlowGraph

            flow = FlowGraph(topology)
            clients = RunClients(topology, options)
            ctx = ProbeContext(topology, flow, "proofpoint", Target("contoso.com"),
                               clients.dns, 0.0, clients)
            engine = Engine(topology, flow, Target("contoso.com"), clients)
            made = [clients.pps("proofpoint"), clients.tap("proofpoint")]
            try:
                for thing in (options, ctx, engine, lab, clients, *made):
                    assert secret not in repr(thing)
            finally:
                await clients.aclose()

    asyncio.run(main())


def test_the_unchanged_topology_reaches_the_stand_ins_through_connect_to():
    """The topology keeps the real API URLs; --connect-to sends each host:port to the
    lab, and TLS is still checked against the real name."""
    from urllib.parse import urlsplit

    import yaml

    from mailtrace.core.network import ConnectTo
    from mailtrace.lab.lab import example_topology
    from mailtrace.topology import parse_topology

    async def main() -> TriageReport:
        async with Lab(scenarios.get("pp-onward-delivery-failed")) as lab:
            data = yaml.safe_load(example_topology("contoso-proofpoint-exo.yaml").read_text())
            data["tiers"]["exchange-online"].pop("graph")  # its sign-in is not the lab's
            topology = parse_topology(yaml.safe_dump(data))
            rules = list(lab.connect_to)
            for (tier, key), url in lab.urls.items():
                if tier != "proofpoint":
                    continue
                real = getattr(topology.tiers[tier], key).url
                parts, lab_parts = urlsplit(real), urlsplit(url)
                rules.append(ConnectTo(parts.hostname or "", parts.port or 443,
                                       lab_parts.hostname or "", lab_parts.port or 443))
            options = dataclasses.replace(lab_options(lab, 20), connect_to=rules)
            return await run_triage(topology, make_target(topology, lab.recipient, None),
                                    options)

    report = asyncio.run(main())
    assert verdict(report) == ("fault", "exchange-online", "PP_ONWARD_DELIVERY_FAILED")
    assert "PP_TAP_THREATS_BLOCKED" in tags(report, "proofpoint")


def test_each_quarantine_folder_the_topology_names_is_listed():
    import yaml

    from mailtrace.topology import parse_topology

    async def main() -> tuple[TriageReport, list[Request]]:
        async with Lab(scenarios.get("pp-quarantined")) as lab:
            data = yaml.safe_load(lab.topology_path.read_text())
            data["tiers"]["proofpoint"]["api"]["quarantine_folders"] = ["Phish", "Quarantine"]
            topology = parse_topology(yaml.safe_dump(data))
            report = await run_triage(topology, make_target(topology, lab.recipient, None),
                                      lab_options(lab, 20))
            pps = next(s for s in lab.startables
                       if isinstance(s, ProofpointStandIn) and s.api == "pps")
            return report, list(pps.server.requests)

    report, requests = asyncio.run(main())
    folders = [q.arg("folder") for q in requests if q.path == "/rest/v1/quarantine"]
    assert sorted(folders) == ["Phish", "Quarantine"]  # type: ignore[type-var]
    held = finding(report, "PP_QUARANTINE_HOLDS")
    assert (held.args["count"], held.args["folder"]) == (1, "Quarantine")
