"""Plan the probes of each tier in flow order and run them concurrently, within deadlines.

Each planned probe starts as soon as the probes it depends on have finished; probes
with no dependency between them run at the same time. A probe that raises becomes an
``ENGINE_PROBE_ERROR`` finding, one that overruns its deadline ``ENGINE_PROBE_TIMEOUT``:
both are *not tested*, never *failed*. Hooks see every probe before and after it runs.

Two entry points: :meth:`Engine.run` (a triage: every tier of the flow) and
:meth:`Engine.run_tier` (chosen probes on one tier: verify and precheck, over live DNS or
a change laid over it). Both use the run's clients (``engine.clients``), which the caller
closes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mailtrace.core import catalog
from mailtrace.core.findings import Finding, ProbeResult, Scope, Status, TierResult
from mailtrace.core.journey import JourneyStep
from mailtrace.engine.clients import RunClients
from mailtrace.probes.base import (
    OBSERVER_KIND,
    OBSERVER_TIER,
    NotTested,
    Probe,
    ProbeContext,
    Target,
)
from mailtrace.topology.flow import FlowGraph
from mailtrace.topology.model import Topology


class PlanError(Exception):
    """The probe catalog is inconsistent (unknown dependency, undeclared tag)."""


class Hook(Protocol):
    def before(self, tier: str, probe: str) -> None: ...
    def after(self, result: ProbeResult) -> None: ...


@dataclass(frozen=True)
class PlannedProbe:
    tier: str
    probe: Probe

    @property
    def key(self) -> tuple[str, str]:
        return (self.tier, self.probe.id)


@dataclass(frozen=True)
class Plan:
    hops: list[tuple[str, str]]  # (tier id, kind) in flow order, observer first
    probes: list[PlannedProbe]
    need_recipient: dict[str, list[str]] = field(default_factory=dict)  # tier -> probe ids

    def of_tier(self, tier: str) -> list[PlannedProbe]:
        return [p for p in self.probes if p.tier == tier]


def validate(probes: Iterable[Probe], known: Iterable[Probe] = ()) -> None:
    """Check the catalog when it is loaded, not when a probe runs (as pluggy does). A
    dependency may name a probe of ``known`` that is not planned (a gate of the triage
    that verify does not run): it then gates nothing."""
    declared = catalog.load()
    probes = list(probes)
    ids = {p.id for p in [*probes, *known]}
    for p in probes:
        for dep in (*p.depends, *p.gates):
            if dep not in ids:
                raise PlanError(f"probe {p.id}: unknown dependency {dep}")
        for tag in p.tags:
            if tag not in declared:
                raise PlanError(f"probe {p.id}: tag {tag} missing from probes/catalog/")


def build_plan(topology: Topology, flow: FlowGraph, probes: Sequence[Probe],
               recipient: bool = True) -> Plan:
    """The probes of each hop; without a recipient, those that ask about one are left
    out (``Plan.need_recipient`` names them)."""
    validate(probes)
    hops = [(OBSERVER_TIER, OBSERVER_KIND)]
    hops += [(t, topology.tiers[t].kind) for t in flow.hops()]
    fitting = [
        PlannedProbe(tier, p)
        for tier, kind in hops
        for p in probes
        if kind in p.kinds and p.applies(topology, tier)
    ]
    planned = [pp for pp in fitting if recipient or not pp.probe.needs_recipient]
    left_out: dict[str, list[str]] = {}
    for pp in fitting:
        if pp not in planned:
            left_out.setdefault(pp.tier, []).append(pp.probe.id)
    return Plan(hops, planned, left_out)


def probe_status(findings: list[Finding]) -> Status:
    status = Status.PASS
    for f in findings:
        info = catalog.info(f.tag)
        if info.fails and info.scope is not Scope.PARTIAL:
            return Status.FAIL
        if info.fails or info.level == "warning":
            status = Status.WARN
    return status


def tier_status(results: list[ProbeResult]) -> Status:
    """The status of what was tested; a tier tested in part says so through its coverage
    (``TierResult.coverage``), and the verdict lists it: never a silent pass."""
    ran = [r for r in results if r.ran]
    if not ran:
        if results and all(r.status is Status.SKIPPED for r in results):
            return Status.SKIPPED
        return Status.NOT_TESTED
    for s in (Status.FAIL, Status.WARN):
        if any(r.status is s for r in ran):
            return s
    return Status.PASS


@dataclass
class Engine:
    topology: Topology
    flow: FlowGraph
    target: Target
    clients: RunClients
    timeout: float = 30.0
    hooks: list[Hook] = field(default_factory=list)

    async def run(self, probes: Sequence[Probe]) -> list[TierResult]:
        """Every tier of the flow, in flow order, with the probes that apply to it."""
        plan = build_plan(self.topology, self.flow, probes,
                          recipient=self.target.recipient is not None)
        return self._tiers(plan, await self._run(plan))

    async def run_tier(self, tier: str, probes: Sequence[Probe],
                       known: Sequence[Probe] = ()) -> TierResult:
        """These probes on this one tier (those of its kind that apply), with the same
        deadlines, error mapping and tag checks as a triage."""
        validate(probes, known)
        kind = self.topology.tiers[tier].kind
        planned = [PlannedProbe(tier, p) for p in probes
                   if kind in p.kinds and p.applies(self.topology, tier)]
        plan = Plan([(tier, kind)], planned)
        [result] = self._tiers(plan, await self._run(plan))
        return result

    async def _run(self, plan: Plan) -> dict[tuple[str, str], ProbeResult]:
        run_deadline = time.monotonic() + self.timeout
        results: dict[tuple[str, str], ProbeResult] = {}
        observations: dict[tuple[str, str], Any] = {}
        tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        by_id = {p.key: p for p in plan.probes}

        def dep_key(tier: str, probe_id: str) -> tuple[str, str]:
            return (tier, probe_id) if (tier, probe_id) in by_id else (OBSERVER_TIER, probe_id)

        async def run_one(pp: PlannedProbe) -> None:
            deps = [dep_key(pp.tier, d) for d in pp.probe.depends]
            waits = [tasks[d] for d in deps if d in tasks]
            if waits:
                await asyncio.wait(waits)
            for d in deps:
                if d not in results or results[d].status in (Status.NOT_TESTED, Status.SKIPPED):
                    results[pp.key] = ProbeResult(
                        pp.probe.id, pp.tier, Status.SKIPPED,
                        reason=f"depends on {d[1]}, which did not run", asks=pp.probe.asks,
                    )
                    return
            for hook in self.hooks:
                hook.before(pp.tier, pp.probe.id)
            results[pp.key] = await self._execute(pp, run_deadline, observations, deps)
            for hook in self.hooks:
                hook.after(results[pp.key])

        for pp in plan.probes:
            tasks[pp.key] = asyncio.ensure_future(run_one(pp))
        await self._watch_gates(plan, tasks, results, dep_key)
        return results

    async def _execute(
        self,
        pp: PlannedProbe,
        run_deadline: float,
        observations: dict[tuple[str, str], Any],
        deps: list[tuple[str, str]],
    ) -> ProbeResult:
        started = time.monotonic()
        deadline = min(started + pp.probe.deadline, run_deadline)
        ctx = ProbeContext(
            topology=self.topology,
            flow=self.flow,
            tier=pp.tier,
            target=self.target,
            dns=self.clients.dns,
            deadline=deadline,
            clients=self.clients,
            smtp=self.clients.smtp,
            observations={d[1]: observations.get(d) for d in deps},
        )

        journey: list[JourneyStep] = []

        def result(
            status: Status, findings: list[Finding], reason: str | None = None,
            journey: list[JourneyStep] | None = None,
        ) -> ProbeResult:
            elapsed = (time.monotonic() - started) * 1000
            return ProbeResult(pp.probe.id, pp.tier, status, findings, reason, elapsed,
                               journey=journey or [], asks=pp.probe.asks)

        def broken(error: str) -> ProbeResult:
            finding = Finding("ENGINE_PROBE_ERROR", {"probe": pp.probe.id, "error": error})
            return result(Status.NOT_TESTED, [finding], "the probe itself failed")

        try:
            # A little grace past the probe's own deadline: clients stop at the deadline
            # and report what they saw; the engine only steps in when a probe does not.
            async with asyncio.timeout(max(deadline - time.monotonic(), 0) + 0.25):
                observation = await pp.probe.collect(ctx)
            observations[pp.key] = observation
            journey = pp.probe.journey(observation) if pp.probe.journey else []
            findings = pp.probe.evaluate(observation)
        except NotTested as exc:
            return result(Status.NOT_TESTED, exc.findings, exc.reason, journey)
        except TimeoutError:
            budget = round(deadline - started, 2)
            finding = Finding("ENGINE_PROBE_TIMEOUT", {"probe": pp.probe.id, "seconds": budget})
            return result(Status.NOT_TESTED, [finding], f"no result within {budget} s")
        except Exception as exc:
            return broken(f"{type(exc).__name__}: {exc}")
        undeclared = [f.tag for f in findings if f.tag not in pp.probe.tags]
        if undeclared:
            return broken(f"emitted undeclared tags {undeclared}")
        return result(probe_status(findings), findings, journey=journey)

    async def _watch_gates(
        self,
        plan: Plan,
        tasks: dict[tuple[str, str], asyncio.Task[None]],
        results: dict[tuple[str, str], ProbeResult],
        dep_key: Callable[[str, str], tuple[str, str]],
    ) -> None:
        """Wait for every probe; when a gate does not pass, stop what it gates (not tested)."""
        gated: dict[tuple[str, str], list[PlannedProbe]] = {}
        for pp in plan.probes:
            for g in pp.probe.gates:
                gated.setdefault(dep_key(pp.tier, g), []).append(pp)
        pending = set(tasks.values())
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for key, task in tasks.items():
                if task not in done or key not in gated:
                    continue
                gate = results.get(key)
                # Only a gate that passed vouches for what it gates: one that could not
                # run proves nothing either.
                if gate is None or gate.status in (Status.PASS, Status.WARN):
                    continue
                for pp in gated[key]:
                    tasks[pp.key].cancel()
                    previous = results.get(pp.key)
                    results[pp.key] = ProbeResult(
                        pp.probe.id, pp.tier, Status.NOT_TESTED,
                        findings=previous.findings if previous else [],
                        reason=f"{gate.probe} {_outcome(gate.status)}: this probe's answers "
                               "cannot be trusted",
                        elapsed_ms=previous.elapsed_ms if previous else 0.0,
                        blocked_by=gate.probe, asks=pp.probe.asks,
                    )
        for task in tasks.values():
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def _tiers(self, plan: Plan, results: dict[tuple[str, str], ProbeResult]) -> list[TierResult]:
        by_tier: dict[str, list[ProbeResult]] = {tier: [] for tier, _ in plan.hops}
        for pp in plan.probes:
            if pp.key in results:
                by_tier[pp.tier].append(results[pp.key])
        _file_by_subject(by_tier)
        tiers = []
        for tier, kind in plan.hops:
            probes = by_tier[tier]
            # Each untested probe says why on its own result (reported once); the tier's
            # reason is only for what no probe result says.
            reason = None if probes else f"no probe applies to this '{kind}' tier"
            if tier in plan.need_recipient and probes:
                reason = (f"by domain: {', '.join(plan.need_recipient[tier])} not run "
                          "(give --recipient)")
            tiers.append(TierResult(tier, kind, tier_status(probes), probes, reason))
        return tiers


def _file_by_subject(by_tier: dict[str, list[ProbeResult]]) -> None:
    """Move each finding that is about another tier (``Finding.about``) to that tier, as a
    result of the same probe marked ``reported_by``; the reporting probe's status is then
    judged on what is left."""
    moved: dict[str, list[ProbeResult]] = {}
    for tier, results in by_tier.items():
        for i, r in enumerate(results):
            away = [f for f in r.findings if f.about not in (None, tier) and f.about in by_tier]
            if not away or r.status in (Status.NOT_TESTED, Status.SKIPPED):
                continue
            kept = [f for f in r.findings if f not in away]
            results[i] = dataclasses.replace(r, findings=kept, status=probe_status(kept))
            for subject in dict.fromkeys(f.about for f in away if f.about):
                mine = [f for f in away if f.about == subject]
                moved.setdefault(subject, []).append(ProbeResult(
                    r.probe, subject, probe_status(mine), mine,
                    elapsed_ms=r.elapsed_ms, reported_by=tier, asks=r.asks,
                ))
    for subject, results in moved.items():
        by_tier[subject].extend(results)


def _outcome(status: Status) -> str:
    return "failed" if status is Status.FAIL else f"was {status.value.replace('_', ' ')}"
