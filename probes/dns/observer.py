"""Observer: do this machine's resolvers answer at all?

Before public DNS is blamed, the resolvers in use must be shown to work: each is asked
for the root NS set, which any working recursive resolver answers (RFC 8109 priming),
and for the NS set of the target's top-level domain, which only a resolver that really
recurses can answer.
When none answers, the verdict is ``inconclusive`` at ``observer``, never a DNS fault.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from mailtrace.clients.dns import DnsObservation, Outcome
from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.probes.base import OBSERVER_KIND, Probe, ProbeContext


@dataclass(frozen=True)
class ResolverCheck:
    answers: list[DnsObservation]  # the root NS set, from each resolver
    tld: list[DnsObservation] = field(default_factory=list)  # the target's TLD, likewise


async def collect(ctx: ProbeContext) -> ResolverCheck:
    tld = ctx.target.domain.rstrip(".").rsplit(".", 1)[-1] + "."
    root, below = await asyncio.gather(ctx.dns.ask_resolvers(".", "NS", ctx.deadline),
                                       ctx.dns.ask_resolvers(tld, "NS", ctx.deadline))
    return ResolverCheck(root, below)


def _works(root: DnsObservation, tld: DnsObservation | None) -> bool:
    """Answers the root, and resolves one step below it (any answer, NXDOMAIN included:
    a resolver that can only answer from its root hints does not recurse)."""
    return root.outcome is Outcome.ANSWER and (tld is None or tld.outcome.answered)


def _described(obs: DnsObservation) -> str:
    return f"{obs.server.label}: {obs.qname} {obs.outcome.value}"


def evaluate(check: ResolverCheck) -> list[Finding]:
    pairs = [(root, check.tld[i] if i < len(check.tld) else None)
             for i, root in enumerate(check.answers)]
    working = [(r, t) for r, t in pairs if _works(r, t)]
    broken = [(r, t) for r, t in pairs if not _works(r, t)]

    def failure(r: DnsObservation, t: DnsObservation | None) -> DnsObservation:
        return r if r.outcome is not Outcome.ANSWER or t is None else t

    def evidence(group: list[tuple[DnsObservation, DnsObservation | None]]) -> list[Evidence]:
        return [o.evidence() for r, t in group for o in (r, t) if o is not None]

    if not working:
        return [Finding("OBSERVER_RESOLVER_UNREACHABLE",
                        {"resolvers": ", ".join(_described(failure(r, t)) for r, t in broken)},
                        evidence(broken))]
    findings = [Finding("OBSERVER_RESOLVER_OK",
                        {"resolvers": ", ".join(r.server.label for r, _ in working)},
                        evidence(working))]
    if broken:
        findings.append(Finding("OBSERVER_RESOLVER_PARTIAL",
                                {"resolvers": ", ".join(_described(failure(r, t))
                                                        for r, t in broken)},
                                evidence(broken)))
    return findings


PROBE = Probe(
    id="dns.observer",
    asks="dns",
    kinds=frozenset({OBSERVER_KIND}),
    tags=frozenset(
        {"OBSERVER_RESOLVER_UNREACHABLE", "OBSERVER_RESOLVER_PARTIAL", "OBSERVER_RESOLVER_OK"}
    ),
    collect=collect,
    evaluate=evaluate,
    deadline=4.0,
    summary="the resolvers in use answer the root and the target TLD NS sets",
)
