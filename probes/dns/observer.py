"""Observer: do this machine's resolvers answer at all?

Before public DNS is blamed, the resolvers in use must be shown to work: each is asked
for the root NS set, which any working recursive resolver answers (RFC 8109 priming).
When none answers, the verdict is ``inconclusive`` at ``observer``, never a DNS fault.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailtrace.clients.dns import DnsObservation, Outcome
from mailtrace.engine.probe import OBSERVER_KIND, Probe, ProbeContext
from mailtrace.findings import Finding


@dataclass(frozen=True)
class ResolverCheck:
    answers: list[DnsObservation]


async def collect(ctx: ProbeContext) -> ResolverCheck:
    return ResolverCheck(await ctx.dns.ask_resolvers(".", "NS", ctx.deadline))


def _described(obs: DnsObservation) -> str:
    return f"{obs.server.label}: {obs.outcome.value}"


def evaluate(check: ResolverCheck) -> list[Finding]:
    working = [o for o in check.answers if o.outcome is Outcome.ANSWER]
    broken = [o for o in check.answers if o.outcome is not Outcome.ANSWER]
    evidence = [o.evidence() for o in check.answers]
    if not working:
        return [
            Finding(
                "OBSERVER_RESOLVER_UNREACHABLE",
                {"resolvers": ", ".join(_described(o) for o in broken)},
                evidence,
            )
        ]
    findings = [
        Finding(
            "OBSERVER_RESOLVER_OK",
            {"resolvers": ", ".join(o.server.label for o in working)},
            [o.evidence() for o in working],
        )
    ]
    if broken:
        findings.append(
            Finding(
                "OBSERVER_RESOLVER_PARTIAL",
                {"resolvers": ", ".join(_described(o) for o in broken)},
                [o.evidence() for o in broken],
            )
        )
    return findings


PROBE = Probe(
    id="dns.observer",
    kinds=frozenset({OBSERVER_KIND}),
    tags=frozenset(
        {"OBSERVER_RESOLVER_UNREACHABLE", "OBSERVER_RESOLVER_PARTIAL", "OBSERVER_RESOLVER_OK"}
    ),
    collect=collect,
    evaluate=evaluate,
    deadline=4.0,
    summary="the resolvers in use answer a root NS query",
)
