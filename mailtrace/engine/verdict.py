"""The verdict: the first tier in flow order that fails, with the finding that decided it.

Order of reasoning (DESIGN, "Localize, don't guess"):
1. the observer (this machine's resolvers, its port 25) is broken → ``inconclusive`` at
   ``observer``: no tier is blamed for what the vantage point cannot see;
2. a tier fails → ``fault`` at the first failing tier in flow order when every path from
   public DNS to a mailbox crosses a failing tier, else ``degraded`` (another path works);
3. a finding says only some servers or paths fail (scope ``partial``) → ``degraded``;
4. otherwise ``healthy`` — and the verdict lists every tier that was not tested.
"""

from __future__ import annotations

from mailtrace import catalog
from mailtrace.engine.probe import OBSERVER_TIER
from mailtrace.findings import Finding, Scope, Status, TierResult, Verdict
from mailtrace.topology.graph import FlowGraph


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


def _observer_problem(tiers: list[TierResult]) -> Finding | None:
    """A failing finding about the vantage point, wherever a probe met it."""
    for tier in tiers:
        for probe in tier.probes:
            for f in probe.findings:
                info = catalog.info(f.tag)
                if info.scope is Scope.OBSERVER and info.fails:
                    return f
    return None


def decide(tiers: list[TierResult], flow: FlowGraph) -> Verdict:
    not_tested = [
        {"tier": t.id, "status": t.status.value, "reason": t.reason or _reason(t)}
        for t in tiers
        if t.id != OBSERVER_TIER and t.status in (Status.NOT_TESTED, Status.SKIPPED)
    ]

    problem = _observer_problem(tiers)
    if problem is not None:
        return Verdict(
            "inconclusive", OBSERVER_TIER, problem.tag,
            "The observer itself is limited, so no tier can be judged from here: "
            + catalog.message(problem), not_tested,
        )

    failing = [t for t in tiers if t.id != OBSERVER_TIER and t.status is Status.FAIL]
    if failing:
        first = failing[0]  # tiers arrive in flow order
        f = deciding_finding(first)
        degraded = flow.delivers_without({t.id for t in failing})
        prefix = "Another path still delivers; " if degraded else ""
        return Verdict(
            "degraded" if degraded else "fault", first.id, f.tag if f else None,
            prefix + (catalog.message(f) if f else f"tier {first.id} fails."), not_tested,
        )

    for t in tiers:
        f = deciding_finding(t, partial=True)
        if f is not None:
            return Verdict("degraded", t.id, f.tag, catalog.message(f), not_tested)

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

    tested = [
        t.id for t in tiers
        if t.id != OBSERVER_TIER and t.status in (Status.PASS, Status.WARN)
    ]
    summary = "No fault found in " + (", ".join(tested) if tested else "any tier")
    if not_tested:
        summary += "; not tested: " + ", ".join(n["tier"] for n in not_tested)
    return Verdict("healthy", None, None, summary + ".", not_tested)


def localized(tiers: list[TierResult], verdict: Verdict) -> list[Finding]:
    """The findings the fix is shown for: the failing ones of the verdict's tier or, for
    the observer, every failing observer finding wherever a probe met it."""
    found = []
    for tier in tiers:
        for f in tier.findings:
            info = catalog.info(f.tag)
            if not info.fails or verdict.tier is None:
                continue
            if verdict.tier == OBSERVER_TIER:
                if info.scope is Scope.OBSERVER:
                    found.append(f)
            elif tier.id == verdict.tier:
                found.append(f)
    return found


def _reason(tier: TierResult) -> str:
    reasons = [p.reason for p in tier.probes if p.reason]
    return reasons[0] if reasons else tier.reason or "not tested"
