"""The verdict: the first tier in flow order that fails, with the finding that decided it.

Order of reasoning (DESIGN, "Localize, don't guess"):
1. the observer (this machine's resolvers, its port 25) is broken → ``inconclusive`` at
   ``observer``, unless a hop *before* the ones it keeps from being judged already
   fails: no tier is blamed for what the vantage point cannot see;
2. a tier fails → ``fault`` at the first failing tier in flow order when every path from
   public DNS to a mailbox crosses a failing tier, else ``degraded`` (another path works);
3. a finding says only some servers or paths fail (scope ``partial``) → ``degraded``;
4. otherwise ``healthy`` — and the verdict lists every tier that was not tested.
"""

from __future__ import annotations

from mailtrace.core import catalog
from mailtrace.core.findings import Finding, Scope, Status, TierResult, Verdict
from mailtrace.probes.base import OBSERVER_TIER
from mailtrace.topology.flow import FlowGraph


def deciding_finding(tier: TierResult, *, partial: bool = False) -> Finding | None:
    """The most severe failing finding of a tier (the first emitted among equals)."""
    best: Finding | None = None
    best_rank = -1
    for probe in tier.probes:
        if probe.status in (Status.NOT_TESTED, Status.SKIPPED):
            continue
        for f in probe.findings:
            info = catalog.info(f.tag)
            if not info.fails or (info.scope is Scope.PARTIAL) != partial:
                continue
            if info.level.rank > best_rank:
                best, best_rank = f, info.level.rank
    return best


def _observer_problem(tiers: list[TierResult]) -> tuple[Finding, int] | None:
    """A failing finding about the vantage point, and the first hop it keeps from being
    judged: where a probe met it, or where a probe it gates could not run."""
    problem: Finding | None = None
    gates: set[str] = set()
    for tier in tiers:
        for probe in tier.probes:
            for f in probe.findings:
                info = catalog.info(f.tag)
                if info.scope is Scope.OBSERVER and info.fails:
                    problem = problem or f
                    if tier.id == OBSERVER_TIER:
                        gates.add(probe.probe)
    if problem is None:
        return None
    hops = [t for t in tiers if t.id != OBSERVER_TIER]
    for index, tier in enumerate(hops):
        for probe in tier.probes:
            if probe.blocked_by in gates or any(
                catalog.info(f.tag).scope is Scope.OBSERVER and catalog.info(f.tag).fails
                for f in probe.findings
            ):
                return problem, index
    return problem, 0  # nothing says where: judge nothing (never blame a tier for it)


def _first(tiers: list[TierResult], partial: bool) -> tuple[int, TierResult] | None:
    for index, tier in enumerate(tiers):
        if partial and deciding_finding(tier, partial=True) is not None:
            return index, tier
        if not partial and tier.status is Status.FAIL and deciding_finding(tier) is not None:
            return index, tier
    return None


def decide(tiers: list[TierResult], flow: FlowGraph) -> Verdict:
    not_tested = [
        {"tier": t.id, "status": t.status.value, "reason": t.reason or _reason(t)}
        for t in tiers
        if t.id != OBSERVER_TIER and t.status in (Status.NOT_TESTED, Status.SKIPPED)
    ]
    hops = [t for t in tiers if t.id != OBSERVER_TIER]  # in flow order
    observer = _observer_problem(tiers)
    failing = _first(hops, partial=False)
    partial = _first(hops, partial=True)
    # A failing hop decides if it comes before the hops the observer's problem keeps from
    # being judged; the observer wins a tie, so no tier is blamed for what the vantage
    # point cannot see. Partial findings decide only when nothing fails.
    if failing is not None and (observer is None or failing[0] < observer[1]):
        first = failing[1]
        f = deciding_finding(first)
        failed = {t.id for t in hops if t.status is Status.FAIL}
        degraded = flow.delivers_without(failed)
        prefix = "Another path still delivers; " if degraded else ""
        return Verdict(
            "degraded" if degraded else "fault", first.id, f.tag if f else None,
            prefix + (catalog.message(f) if f else f"tier {first.id} fails."), not_tested,
        )

    if observer is not None and (partial is None or observer[1] <= partial[0]):
        problem = observer[0]
        return Verdict(
            "inconclusive", OBSERVER_TIER, problem.tag,
            "The observer itself is limited, so no tier can be judged from here: "
            + catalog.message(problem), not_tested,
        )

    if partial is not None:
        f = deciding_finding(partial[1], partial=True)
        assert f is not None
        return Verdict("degraded", partial[1].id, f.tag, catalog.message(f), not_tested)

    # Never a silent pass: without the first hop's evidence nothing downstream is sound.
    dns_tier = next((t for t in tiers if t.id == flow.dns_tier()), None)
    if dns_tier is not None and dns_tier.status in (Status.NOT_TESTED, Status.SKIPPED):
        tag = next((f.tag for p in dns_tier.probes if p.status in (Status.NOT_TESTED,
                                                                   Status.SKIPPED)
                    for f in p.findings), None)
        return Verdict("inconclusive", dns_tier.id, tag,
                       f"{dns_tier.id} could not be fully tested: "
                       f"{dns_tier.reason or _reason(dns_tier)}.",
                       not_tested)

    tested = [t.id for t in hops if t.status in (Status.PASS, Status.WARN)]
    summary = "No fault found in " + (", ".join(tested) if tested else "any tier")
    if not_tested:
        summary += "; not tested: " + ", ".join(n["tier"] for n in not_tested)
    return Verdict("healthy", None, None, summary + ".", not_tested)


def _reason(tier: TierResult) -> str:
    reasons = [p.reason for p in tier.probes if p.reason]
    return reasons[0] if reasons else tier.reason or "not tested"
