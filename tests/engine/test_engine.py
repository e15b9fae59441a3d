"""The engine's promises: concurrency, dependencies, deadlines, gates, hooks, verdicts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from mailtrace.core.findings import Finding, Status
from mailtrace.engine.clients import RunClients
from mailtrace.engine.runner import Engine, PlanError, validate
from mailtrace.engine.settings import Options
from mailtrace.engine.verdict import decide
from mailtrace.probes.base import OBSERVER_KIND, NotTested, Probe, ProbeContext, Target
from mailtrace.topology import FlowGraph, parse_topology

CONTOSO = """
topology: t
domains: [contoso.com]
flow: ["public-dns -> proofpoint -> exchange-online"]
tiers:
  public-dns: {kind: dns}
  proofpoint: {kind: proofpoint, flavour: pod, hosts: [mx0a-001234.pphosted.com]}
  exchange-online: {kind: exchange-online, inbound_host: contoso-com.mail.protection.outlook.com}
"""

TWO_GATEWAYS = """
topology: t
domains: [contoso.com]
flow: ["dns -> gw1 -> exo", "dns -> gw2 -> exo"]
tiers:
  dns: {kind: dns}
  gw1: {kind: smtp-gateway, hosts: [gw1.contoso.com]}
  gw2: {kind: smtp-gateway, hosts: [gw2.contoso.com]}
  exo: {kind: exchange-online, inbound_host: contoso-com.mail.protection.outlook.com}
"""


def probe(pid: str, *, kinds: set[str] | None = None, emits: list[str] | None = None,
          sleep: float = 0.0, raises: bool = False, depends: tuple[str, ...] = (),
          gates: tuple[str, ...] = (), deadline: float = 5.0,
          seen: dict[str, Any] | None = None) -> Probe:
    async def collect(ctx: ProbeContext) -> Any:
        if seen is not None:
            seen[pid] = {d: ctx.observation(d) for d in depends}
        await asyncio.sleep(sleep)
        if raises:
            raise RuntimeError("boom")
        return pid

    def evaluate(_: Any) -> list[Finding]:
        return [Finding(t, {"domain": "contoso.com"}) for t in emits or []]

    return Probe(pid, frozenset(kinds or {"dns"}), frozenset(emits or ["DNS_MX_OK"]),
                 collect, evaluate, depends, gates, deadline)


def run(probes: list[Probe], text: str = CONTOSO, timeout: float = 10.0, hooks=()):
    topology = parse_topology(text)
    flow = FlowGraph(topology)
    clients = RunClients(topology, Options([]))
    engine = Engine(topology, flow, Target("contoso.com"), clients, timeout, list(hooks))
    tiers = asyncio.run(engine.run(probes))
    return tiers, decide(tiers, flow)


def tier(tiers, tid):
    return next(t for t in tiers if t.id == tid)


def test_independent_probes_run_concurrently():
    """Each sleeps while the other runs: their runs overlap (shown by the order of events,
    not by wall-clock time, which a loaded machine stretches)."""
    events: list[str] = []

    def traced(pid: str) -> Probe:
        async def collect(ctx: ProbeContext) -> Any:
            events.append(f"start {pid}")
            await asyncio.sleep(0.1)
            events.append(f"end {pid}")
            return pid

        return Probe(pid, frozenset({"dns"}), frozenset({"DNS_MX_OK"}), collect,
                     lambda o: [Finding("DNS_MX_OK", {"domain": "contoso.com"})])

    tiers, _verdict = run([traced("a"), traced("b")])
    assert events[:2] == ["start a", "start b"]
    assert tier(tiers, "public-dns").status is Status.PASS


def test_dependency_order_and_observation_passing():
    seen: dict[str, Any] = {}
    run([probe("a", sleep=0.05), probe("b", depends=("a",), seen=seen)])
    assert seen["b"] == {"a": "a"}


def test_probe_that_raises_is_not_tested_never_failed():
    tiers, verdict = run([probe("a", raises=True)])
    t = tier(tiers, "public-dns")
    assert t.status is Status.NOT_TESTED
    assert [f.tag for f in t.findings] == ["ENGINE_PROBE_ERROR"]
    # never a silent pass: without the DNS tier's evidence the verdict is inconclusive
    assert (verdict.status, verdict.tier, verdict.tag) == (
        "inconclusive", "public-dns", "ENGINE_PROBE_ERROR")
    assert verdict.exit_code == 3
    untested = {n["tier"] for n in verdict.not_tested}
    assert untested == {"public-dns", "proofpoint", "exchange-online"}


def test_probe_past_its_deadline_is_not_tested():
    started = time.monotonic()
    tiers, _ = run([probe("a", sleep=30, deadline=0.2)])
    assert time.monotonic() - started < 2
    [f] = tier(tiers, "public-dns").findings
    assert (f.tag, f.args["probe"]) == ("ENGINE_PROBE_TIMEOUT", "a")


def test_run_budget_caps_every_probe():
    started = time.monotonic()
    tiers, _ = run([probe("a", sleep=30, deadline=60)], timeout=0.3)
    assert time.monotonic() - started < 2
    assert tier(tiers, "public-dns").status is Status.NOT_TESTED


def test_failing_gate_cancels_and_untests_what_it_gates():
    started = time.monotonic()
    tiers, verdict = run([
        probe("obs", kinds={OBSERVER_KIND}, emits=["OBSERVER_RESOLVER_UNREACHABLE"], sleep=0.1),
        probe("slow", sleep=30, gates=("obs",), emits=["DNS_MX_MISSING"]),
    ])
    assert time.monotonic() - started < 2
    assert tier(tiers, "public-dns").status is Status.NOT_TESTED
    assert (verdict.status, verdict.tier, verdict.tag) == (
        "inconclusive", "observer", "OBSERVER_RESOLVER_UNREACHABLE")


def test_a_gate_that_could_not_run_vouches_for_nothing():
    async def collect(ctx: ProbeContext) -> Any:
        raise NotTested("no address to try")

    gate = Probe("obs", frozenset({OBSERVER_KIND}), frozenset({"DNS_MX_OK"}), collect,
                 lambda o: [])
    tiers, verdict = run([gate, probe("fast", gates=("obs",), emits=["DNS_MX_MISSING"])])
    [result] = tier(tiers, "public-dns").probes
    assert (result.status, result.blocked_by) == (Status.NOT_TESTED, "obs")
    assert result.reason == "obs was not tested: this probe's answers cannot be trusted"
    assert verdict.status == "inconclusive"


def test_gated_probe_that_finished_first_is_still_untested():
    tiers, verdict = run([
        probe("obs", kinds={OBSERVER_KIND}, emits=["OBSERVER_RESOLVER_UNREACHABLE"], sleep=0.2),
        probe("fast", gates=("obs",), emits=["DNS_MX_MISSING"]),
    ])
    t = tier(tiers, "public-dns")
    assert t.status is Status.NOT_TESTED and [f.tag for f in t.findings] == ["DNS_MX_MISSING"]
    assert verdict.status == "inconclusive"


def test_probe_that_cannot_judge_is_not_tested_with_its_reason():
    async def collect(ctx: ProbeContext) -> Any:
        raise NotTested("no credentials")

    quiet = Probe("q", frozenset({"dns"}), frozenset({"DNS_MX_OK"}), collect, lambda o: [])
    [p] = tier(run([quiet])[0], "public-dns").probes
    assert (p.status, p.reason) == (Status.NOT_TESTED, "no credentials")


def test_observer_problem_met_inside_a_tier_makes_the_verdict_inconclusive():
    async def collect(ctx: ProbeContext) -> Any:
        raise NotTested("blocked", [Finding("OBSERVER_DIRECT_DNS_BLOCKED", {"zone": "x"})])

    blocked = Probe("b", frozenset({"dns"}), frozenset({"OBSERVER_DIRECT_DNS_BLOCKED"}),
                    collect, lambda o: [])
    tiers, verdict = run([blocked, probe("m", emits=["DNS_MX_OK"])])
    assert tier(tiers, "public-dns").coverage == "partial"  # one probe could not judge
    assert (verdict.status, verdict.tier, verdict.tag) == (
        "inconclusive", "observer", "OBSERVER_DIRECT_DNS_BLOCKED")


def test_fault_or_degraded_is_decided_by_reachability_even_on_dense_flows():
    layers = 24
    tiers = ["  dns: {kind: dns}", "  exo: {kind: exchange-online, inbound_host: x.example}"]
    flow = []
    for i in range(layers):
        for side in "ab":
            tiers.append(f"  g{i}{side}: {{kind: smtp-gateway, hosts: [g{i}{side}.example]}}")
    for i in range(layers - 1):
        for s in "ab":
            flow += [f"g{i}{s} -> g{i + 1}a", f"g{i}{s} -> g{i + 1}b"]
    flow += ["dns -> g0a", "dns -> g0b", f"g{layers - 1}a -> exo", f"g{layers - 1}b -> exo"]
    text = ("topology: dense\ndomains: [contoso.com]\nflow:\n"
            + "".join(f"  - {c}\n" for c in flow) + "tiers:\n" + "\n".join(tiers) + "\n")
    graph = FlowGraph(parse_topology(text))  # 2**24 paths: never enumerated
    started = time.monotonic()
    assert graph.delivers_without({"g5a"})
    assert not graph.delivers_without({"g5a", "g5b"})
    assert not graph.delivers_without({"dns"})
    assert time.monotonic() - started < 1


def test_a_tier_where_one_probe_could_not_run_is_never_a_pass():
    """The tier says what passed and is listed, once, as tested in part; a public-DNS tier
    tested in part leaves the verdict inconclusive."""
    async def collect(ctx: ProbeContext) -> Any:
        raise NotTested("budget ran out")

    short = Probe("s", frozenset({"dns"}), frozenset({"DNS_MX_OK"}), collect, lambda o: [])
    tiers, verdict = run([probe("a", emits=["DNS_DELEGATION_OK"]), short])
    t = tier(tiers, "public-dns")
    assert (t.status, t.coverage) == (Status.PASS, "partial")
    [entry] = [n for n in verdict.not_tested if n["tier"] == "public-dns"]
    assert entry["status"] == "partly_tested" and entry["reason"] == "s: budget ran out"
    assert (verdict.status, verdict.tier, verdict.tag) == ("inconclusive", "public-dns", None)


def test_dependent_of_untested_probe_is_skipped():
    tiers, _ = run([probe("a", raises=True), probe("b", depends=("a",))])
    statuses = {p.probe: p.status for p in tier(tiers, "public-dns").probes}
    assert statuses == {"a": Status.NOT_TESTED, "b": Status.SKIPPED}


def test_undeclared_tag_is_a_probe_error():
    bad = probe("a", emits=["DNS_MX_OK"])
    bad = Probe(bad.id, bad.kinds, frozenset({"DNS_MX_MISSING"}), bad.collect, bad.evaluate)
    [f] = tier(run([bad])[0], "public-dns").findings
    assert f.tag == "ENGINE_PROBE_ERROR" and "undeclared" in f.args["error"]


def test_tier_without_probes_is_not_tested_with_a_reason():
    """Untested is not healthy: a tier every path crosses with no probe at all leaves the
    verdict inconclusive, naming it."""
    tiers, verdict = run([probe("a")])
    assert tier(tiers, "proofpoint").status is Status.NOT_TESTED
    assert "no probe" in (tier(tiers, "proofpoint").reason or "")
    assert (verdict.status, verdict.tier) == ("inconclusive", "proofpoint")
    assert [n["tier"] for n in verdict.not_tested] == ["proofpoint", "exchange-online"]


def test_a_tier_off_some_path_that_could_not_be_tested_is_listed_not_inconclusive():
    flows = "flow: ['dns -> gw1 -> exo', 'dns -> gw2 -> exo']\n"
    text = ("topology: t\ndomains: [contoso.com]\n" + flows + "tiers:\n"
            "  dns: {kind: dns}\n  gw1: {kind: smtp-gateway, hosts: [a.example]}\n"
            "  gw2: {kind: proofpoint, flavour: pod, hosts: [b.example]}\n"
            "  exo: {kind: exchange-online, inbound_host: x.example}\n")
    _tiers, verdict = run([probe("a"), probe("g", kinds={"smtp-gateway"}),
                           probe("e", kinds={"exchange-online"})], text)
    assert (verdict.status, [n["tier"] for n in verdict.not_tested]) == ("healthy", ["gw2"])


def test_a_tier_whose_api_could_not_be_asked_is_not_tested_on_what_matters():
    """SMTP passed, but none of the tier's own records (its API) could be read: the
    tier is tested in part and the verdict, since every path crosses it, inconclusive."""
    async def denied(ctx: ProbeContext) -> Any:
        raise NotTested("PROOFPOINT_API_USER unset", [Finding("PP_API_UNAVAILABLE", {
            "api": "Proofpoint Smart Search", "reason": "PROOFPOINT_API_USER unset"})])

    api = Probe("pp.api", frozenset({"proofpoint"}), frozenset({"PP_API_UNAVAILABLE"}),
                denied, lambda o: [], asks="api")
    smtp = probe("pp.smtp", kinds={"proofpoint"})
    tiers, verdict = run([probe("a"), smtp, api, probe("e", kinds={"exchange-online"})])
    assert (tier(tiers, "proofpoint").status, tier(tiers, "proofpoint").coverage) == (
        Status.PASS, "partial")
    assert (verdict.status, verdict.tier, verdict.tag) == (
        "inconclusive", "proofpoint", "PP_API_UNAVAILABLE")
    assert "PROOFPOINT_API_USER unset" in verdict.summary


def test_first_failing_tier_in_flow_order_decides():
    _tiers, verdict = run([
        probe("d", emits=["DNS_MX_MISSING"]),
        probe("g", kinds={"proofpoint"}, emits=["DNS_MX_NULL"]),
    ])
    assert (verdict.status, verdict.tier, verdict.tag) == ("fault", "public-dns", "DNS_MX_MISSING")


def test_most_severe_finding_of_the_tier_decides():
    _tiers, verdict = run([probe("d", emits=["DNS_MX_EXPECTED_HOST_MISSING",
                                            "DNS_MX_UNEXPECTED_HOST", "DNS_MX_BYPASSES_GATEWAY"])])
    assert verdict.tag == "DNS_MX_BYPASSES_GATEWAY"


def test_partial_finding_degrades():
    tiers, verdict = run([probe("d", emits=["DNS_NS_STALE"])])
    assert tier(tiers, "public-dns").status is Status.WARN
    assert (verdict.status, verdict.tier, verdict.tag) == ("degraded", "public-dns", "DNS_NS_STALE")


def test_one_of_two_parallel_gateways_failing_is_degraded_both_is_fault():
    gw1 = probe("g", kinds={"smtp-gateway"}, emits=["DNS_MX_NULL"])
    _, verdict = run([gw1], TWO_GATEWAYS)
    assert verdict.status == "fault"  # the probe runs on both gateway tiers

    calls = {"n": 0}

    async def collect(ctx: ProbeContext) -> str:
        calls["n"] += 1
        return ctx.tier

    def evaluate(tier_id: str) -> list[Finding]:
        return [Finding("DNS_MX_NULL", {"domain": "x"})] if tier_id == "gw1" else []

    one = Probe("g", frozenset({"smtp-gateway"}), frozenset({"DNS_MX_NULL"}), collect, evaluate)
    _, verdict = run([one], TWO_GATEWAYS)
    assert (verdict.status, verdict.tier, verdict.tag) == ("degraded", "gw1", "DNS_MX_NULL")
    assert calls["n"] == 2


def test_hooks_see_every_probe():
    events: list[tuple[str, str]] = []

    class Recorder:
        def before(self, tier: str, probe: str) -> None:
            events.append(("before", probe))

        def after(self, result) -> None:
            events.append(("after", result.probe))

    run([probe("a"), probe("b", depends=("a",))], hooks=[Recorder()])
    assert events.index(("before", "a")) < events.index(("after", "a")) < events.index(
        ("before", "b")) < events.index(("after", "b"))


def test_catalog_is_validated_when_the_plan_is_built():
    with pytest.raises(PlanError, match="unknown dependency"):
        validate([probe("a", depends=("nope",))])
    with pytest.raises(PlanError, match="NOT_A_TAG"):
        validate([probe("a", emits=["NOT_A_TAG"])])


def test_a_finding_about_the_next_tier_is_filed_under_it_and_decides_there():
    """The gateway's own record of the next hop refusing mail blames the next hop."""

    async def collect(ctx: ProbeContext) -> Any:
        return ctx.flow.next_hops(ctx.tier)

    def evaluate(downstream: Any) -> list[Finding]:
        return [Finding("DNS_MX_OK", {"domain": "contoso.com"}),
                Finding("DNS_MX_MISSING", {"domain": "contoso.com"}, about=downstream[0])]

    reporter = Probe("gw.log", frozenset({"proofpoint"}),
                     frozenset({"DNS_MX_OK", "DNS_MX_MISSING"}), collect, evaluate, asks="api")
    tiers, verdict = run([probe("a"), reporter])
    gateway, exo = tier(tiers, "proofpoint"), tier(tiers, "exchange-online")
    assert [f.tag for f in gateway.findings] == ["DNS_MX_OK"]
    assert gateway.status is Status.PASS
    assert [(p.probe, p.reported_by, p.status, p.asks) for p in exo.probes] == [
        ("gw.log", "proofpoint", Status.FAIL, "api")]
    assert (verdict.status, verdict.tier, verdict.tag) == (
        "fault", "exchange-online", "DNS_MX_MISSING")


def test_a_probe_that_does_not_apply_to_a_tier_is_not_planned():
    only_pod = probe("pod-only", kinds={"proofpoint"}, emits=["DNS_MX_OK"])
    never = Probe("never", frozenset({"proofpoint"}), frozenset({"DNS_MX_OK"}),
                  only_pod.collect, only_pod.evaluate,
                  applies=lambda topology, tier: False)
    tiers, _ = run([probe("a"), only_pod, never])
    assert [p.probe for p in tier(tiers, "proofpoint").probes] == ["pod-only"]
    exo = tier(tiers, "exchange-online")
    assert exo.reason == "no probe applies to this 'exchange-online' tier"


def test_a_warning_that_degrades_decides_and_a_note_is_listed_for_attention():
    """The catalog states for every warning whether it means lost redundancy or delayed
    or diverted mail (degrades) or only a note; neither is ever silent."""
    _tiers, verdict = run([probe("d", emits=["DNS_MX_TARGET_CNAME"]),
                           probe("g", kinds={"proofpoint"}, emits=["SMTP_TLS_CERT_EXPIRING"]),
                           probe("e", kinds={"exchange-online"})])
    assert (verdict.status, verdict.tier, verdict.tag) == (
        "degraded", "public-dns", "DNS_MX_TARGET_CNAME")
    assert [(a.tier, a.tag) for a in verdict.attention] == [
        ("proofpoint", "SMTP_TLS_CERT_EXPIRING")]
    _tiers, verdict = run([probe("d"), probe("g", kinds={"proofpoint"},
                                             emits=["SMTP_TLS_CERT_EXPIRING"]),
                           probe("e", kinds={"exchange-online"})])
    assert (verdict.status, [a.tag for a in verdict.attention]) == (
        "healthy", ["SMTP_TLS_CERT_EXPIRING"])
