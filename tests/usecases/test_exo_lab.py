"""End to end: the Exchange Online tier, asked through msgraph-sdk over real HTTP, against
the lab's Graph stand-in (with real DNS beside it)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import time
from typing import Any

import pytest

from mailtrace.core.findings import Status
from mailtrace.lab import scenarios
from mailtrace.lab.graph_api import TenantFaults, Throttle
from mailtrace.lab.http_server import Response
from mailtrace.lab.lab import GRAPH_TOKEN_ENV, Lab
from mailtrace.topology import load_topology
from mailtrace.usecases.demo import lab_options
from mailtrace.usecases.triage import TriageReport, make_target, run_triage
from tests.support.labrun import finding, tags, triage, variant, verdict
from tests.support.paths import ROOT as TOPOLOGY_ROOT

EXO = "exchange-online"


def tenant(**faults: Any) -> Any:
    return variant("healthy", tenant=TenantFaults(**faults))


def probe(report: TriageReport, probe_id: str) -> Any:
    return next(p for t in report.tiers for p in t.probes if p.probe == probe_id)


def test_healthy_tenant_evidence():
    report = triage("healthy")
    assert {t for t in tags(report, EXO) if not t.startswith(("SMTP_", "EXO_EDGE_", "DANE_"))} == {
        "EXO_MX_BEHIND_GATEWAY", "EXO_DOMAIN_OK", "EXO_RECIPIENT_OK", "EXO_RULES_OK",
        "EXO_MAILTIPS_OK", "EXO_SERVICE_HEALTHY", "EXO_TRACE_SUMMARY"}
    ok = finding(report, "EXO_RECIPIENT_OK")
    assert ok.args["kind"] == "user mailbox"
    users = ok.evidence[0]
    assert (users["call"], users["status"]) == ("list users by address", 200)
    assert "proxyAddresses/any(x:x eq 'smtp:alice@contoso.com')" in users["request"]
    assert finding(report, "EXO_TRACE_SUMMARY").args["statuses"] == "2 delivered"


def test_forbidden_names_each_missing_permission_and_the_trace_prerequisite():
    report = triage("exo-graph-forbidden")
    exo = next(t for t in report.tiers if t.id == EXO)
    assert exo.untested and exo.coverage == "partial"  # the edge answered over SMTP
    assert verdict(report) == ("inconclusive", EXO, "EXO_GRAPH_DENIED")
    denied = {(f.args["permission"], f.args["status"]) for p in exo.probes for f in p.findings
              if f.tag == "EXO_GRAPH_DENIED"}
    assert denied >= {("Domain.Read.All", 403), ("User.Read.All", 403),
                      ("ServiceHealth.Read.All", 403)}
    assert probe(report, "exo.trace").findings[0].tag == "EXO_TRACE_PREREQUISITE_MISSING"
    assert "New-MgServicePrincipal -AppId 8bd644d1" in probe(report, "exo.trace").reason
    [entry] = [n for n in report.verdict.not_tested if n["tier"] == EXO]
    assert "User.Read.All" in entry["reason"]  # the first probe of the tier (the lookup)


def test_a_missing_trace_permission_alone_also_names_the_prerequisite():
    report = triage(tenant(raw={"messageTraces": Response.json(
        {"error": {"code": "Forbidden", "message": "Missing role."}}, 403)}))
    trace = probe(report, "exo.trace")
    assert trace.status is Status.NOT_TESTED
    assert "ExchangeMessageTrace.Read.All" in trace.reason
    assert "8bd644d1-64a1-4d4b-ae52-2e0cbf64e373" in trace.reason


def test_throttling_that_fits_the_deadline_is_waited_out():
    report = triage(tenant(throttle={"*": Throttle(1, times=1)}))
    assert verdict(report) == ("healthy", None, None)
    exo = next(t for t in report.tiers if t.id == EXO)
    assert exo.status is Status.PASS
    assert finding(report, "EXO_DOMAIN_OK").evidence[0]["attempts"] == 2


def test_throttling_past_the_deadline_is_not_tested_never_a_fault():
    report = triage("exo-graph-throttled")
    trace = probe(report, "exo.trace")
    assert trace.status is Status.NOT_TESTED
    [f] = trace.findings
    assert (f.tag, f.args["status"], f.args["retry_after"]) == ("EXO_GRAPH_THROTTLED", 429,
                                                                "120 s")
    assert probe(report, "exo.recipient").status is Status.PASS  # its 1 s wait fitted


@pytest.mark.parametrize(("endpoint", "answer"), [
    ("users", Response(200, b"<html><body>Sign in to the proxy</body></html>",
                       {"Content-Type": "text/html; charset=utf-8"})),
    ("users", Response(200, b'{"value": [{"id": "5f0a", "accountEnabled": tr',
                       {"Content-Type": "application/json"})),
    ("issues", Response(200, b"", {"Content-Type": "application/json"})),
    ("getMailTips", Response.json({"value": []})),
], ids=["html-200", "malformed-json", "empty-body", "no-mailtips"])
def test_unreadable_answers_are_findings_with_evidence_not_crashes(endpoint, answer):
    report = triage(tenant(raw={endpoint: answer}))
    bad = [(p.probe, f) for t in report.tiers for p in t.probes for f in p.findings
           if f.tag == "EXO_GRAPH_BAD_RESPONSE"]
    assert bad, "no finding for the unreadable answer"
    assert all(p.status is Status.NOT_TESTED for t in report.tiers for p in t.probes
               if p.probe == bad[0][0])
    ev = bad[0][1].evidence[0]
    assert ev["api"] == "microsoft-graph" and ev["status"] == 200
    if b"<html" in answer.body:
        assert "<html>" in ev["body_excerpt"]
    assert "ENGINE_PROBE_ERROR" not in [f.tag for t in report.tiers for f in t.findings]
    assert verdict(report)[0] == "healthy"  # an unreadable answer blames no tier


def test_missing_fields_and_unknown_enum_values_are_read_as_unknown():
    user = {"accountEnabled": None, "provisionedPlans": None}
    report = triage(tenant(
        user=user, purpose="aNewKindOfMailbox",
        traces=({"status": "aBrandNewStatus", "subject": "Oops"},
                {"status": "delivered", "subject": "Hi"}),
        issues=({"id": "EX9", "title": "New kind", "classification": "somethingNew",
                 "status": "brandNewStatus"},)))
    assert finding(report, "EXO_RECIPIENT_OK").args["kind"] == "unknown mailbox"
    assert finding(report, "EXO_TRACE_SUMMARY").args["statuses"] == "1 delivered, 1 unknown"
    advisory = finding(report, "EXO_SERVICE_ADVISORY")  # not known as an incident
    assert (advisory.args["id"], advisory.args["status"]) == ("EX9", "unknown")


def test_the_trace_window_follows_since():
    async def main() -> tuple[TriageReport, list[Any]]:
        async with Lab(scenarios.get("healthy")) as lab:
            topology = load_topology(lab.topology_path)
            target = make_target(topology, lab.recipient, None, dt.timedelta(days=3))
            report = await run_triage(topology, target, lab_options(lab, 20))
            return report, lab.graph[EXO].requests

    report, requests = asyncio.run(main())
    [trace] = [r for r in requests if r.path.endswith("/messageTraces")]
    bounds = [dt.datetime.fromisoformat(v.rstrip("Z")) for v in
              __import__("re").findall(r"receivedDateTime (?:ge|le) (\S+)", trace.arg("$filter"))]
    assert bounds[1] - bounds[0] == dt.timedelta(days=3)
    assert finding(report, "EXO_TRACE_SUMMARY").args["window"] == "3 days"


def test_collections_answered_page_by_page_are_read_to_the_end():
    report = triage(tenant(page_size=1, traces=(
        {"status": "quarantined", "subject": "One", "sender": "billing@fabrikam.example"},
        {"status": "delivered", "subject": "Two"},
        {"status": "delivered", "subject": "Three"})))
    assert verdict(report) == ("degraded", EXO, "EXO_TRACE_QUARANTINED")
    summary = finding(report, "EXO_TRACE_SUMMARY")
    assert summary.args["statuses"] == "2 delivered, 1 quarantined"
    assert summary.evidence[0]["pages"] == 3
    events = [e["event"] for e in finding(report, "EXO_TRACE_QUARANTINED").evidence[0]["details"]]
    assert events == ["Receive", "Quarantine"]
    # serviceConfigurationRecords came a record a page: Microsoft's MX was still found
    assert {"EXO_MX_BEHIND_GATEWAY", "EXO_DOMAIN_OK"} <= set(tags(report, EXO))


def test_quarantined_message_comes_with_its_details_by_recipient():
    f = finding(triage("exo-trace-quarantined"), "EXO_TRACE_QUARANTINED")
    assert (f.args["count"], f.args["senders"]) == (1, "billing@fabrikam.example")
    events = [e["event"] for e in f.evidence[0]["details"]]
    assert events == ["Receive", "Quarantine"]


def test_only_reads_are_sent_to_the_tenant():
    async def main() -> list[Any]:
        async with Lab(scenarios.get("healthy")) as lab:
            topology = load_topology(lab.topology_path)
            await run_triage(topology, make_target(topology, lab.recipient, None),
                             lab_options(lab, 20))
            return lab.graph[EXO].requests

    requests = asyncio.run(main())
    assert {(r.method, r.path.rsplit("/", 1)[-1]) for r in requests if r.method != "GET"} == {
        ("POST", "getMailTips")}  # getMailTips is a read that Graph defines as a POST
    # the lab's copy of the topology keeps Graph's own URL: --connect-to leads it to the lab
    assert {r.headers["host"] for r in requests} == {"graph.microsoft.com"}
    # the recipient lookup is asked once for the three probes that need it
    assert sum(r.path.endswith("/users") for r in requests) == 1


def test_a_domain_triage_tests_the_domain_and_says_why_not_the_rest():
    async def main() -> TriageReport:
        async with Lab(scenarios.get("healthy")) as lab:
            topology = load_topology(lab.topology_path)
            return await run_triage(topology, make_target(topology, None, "contoso.com"),
                                    lab_options(lab, 20))

    report = asyncio.run(main())
    assert probe(report, "exo.domain").status is Status.PASS
    exo = next(t for t in report.tiers if t.id == "exchange-online")
    assert exo.reason == ("by domain: exo.directory, exo.recipient, exo.rules, exo.mailtips, "
                          "exo.trace not run (give --recipient)")
    assert verdict(report) == ("healthy", None, None) and report.verdict.not_tested == []


def test_an_unset_token_variable_is_not_tested_and_names_the_variable():
    async def main() -> TriageReport:
        async with Lab(scenarios.get("healthy")) as lab:
            topology = load_topology(lab.topology_path)
            environ = {k: v for k, v in lab.environ.items() if k != GRAPH_TOKEN_ENV}
            options = dataclasses.replace(lab_options(lab, 20), environ=environ)
            return await run_triage(topology, make_target(topology, lab.recipient, None),
                                    options)

    report = asyncio.run(main())
    f = finding(report, "EXO_GRAPH_NOT_CONFIGURED")
    assert GRAPH_TOKEN_ENV in f.args["reason"]
    # untested is not healthy: the tenant's records could not be read, and every path
    # crosses it
    assert verdict(report) == ("inconclusive", EXO, "EXO_GRAPH_NOT_CONFIGURED")
    assert GRAPH_TOKEN_ENV in report.verdict.summary


def test_no_token_reaches_a_report_or_a_log(caplog: pytest.LogCaptureFixture):
    from mailtrace.report import html, text
    from mailtrace.report import json as json_report

    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "kiota_http", "kiota_abstractions", "azure",
                 "msgraph", "msgraph_core", "mailtrace"):
        logging.getLogger(name).setLevel(logging.DEBUG)

    async def main() -> tuple[TriageReport, str, str]:
        async with Lab(scenarios.get("exo-graph-forbidden")) as lab:
            token = lab.environ[GRAPH_TOKEN_ENV]
            path = lab.topology_path
            topology = load_topology(path)
            report = await run_triage(topology, make_target(topology, lab.recipient, None),
                                      lab_options(lab, 20))
            return report, token, path.read_text() + "\n".join(lab.describe())

    report, token, lab_files = asyncio.run(main())
    assert len(token) >= 32
    outputs = [json_report.render(report), text.render(report, verbose=True),
               html.render(report), repr(report), lab_files]
    assert caplog.records, "nothing was logged at DEBUG"
    for out in [*outputs, caplog.text]:
        assert token not in out
    assert json.loads(outputs[0])["verdict"]["status"] == "inconclusive"


def test_a_graph_server_error_is_unavailable_not_a_fault():
    answer = Response.json({"error": {"code": "InternalServerError", "message": "boom"}}, 500)
    report = triage(tenant(raw={"issues": answer}))
    [f] = probe(report, "exo.health").findings
    assert (f.tag, f.args["call"]) == ("EXO_GRAPH_UNAVAILABLE", "list service health issues")
    assert f.evidence[0]["status"] == 500
    assert verdict(report) == ("healthy", None, None)


def test_message_trace_is_not_asked_outside_the_global_cloud():
    """Graph message trace exists in the global cloud only (reference §5)."""
    from mailtrace.engine.clients import RunClients
    from mailtrace.engine.settings import Options
    from mailtrace.probes.base import NotTested, ProbeContext, Target
    from mailtrace.probes.exo import trace
    from mailtrace.topology import FlowGraph, parse_topology

    text = (TOPOLOGY_ROOT / "topologies"
            / "contoso-proofpoint-exo.yaml").read_text()
    text = text.replace("https://graph.microsoft.com/v1.0", "https://graph.microsoft.us/v1.0")
    text = text.replace("auth: client-certificate", "auth: token-env\n      token_env: T")
    topology = parse_topology(text)

    async def main() -> NotTested:
        clients = RunClients(topology, Options([], environ={"T": "token"}))
        ctx = ProbeContext(topology, FlowGraph(topology), EXO,
                           Target("contoso.com", "alice@contoso.com"), clients.dns,
                           time.monotonic() + 5, clients)
        try:
            with pytest.raises(NotTested) as info:
                await trace.PROBE.collect(ctx)
        finally:
            await clients.aclose()
        return info.value

    outcome = asyncio.run(main())
    [f] = outcome.findings
    assert (f.tag, f.args["cloud"]) == ("EXO_TRACE_NOT_AVAILABLE", "US Government L4")
