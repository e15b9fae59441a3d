"""The triage report: what a triage found, as every rendering (text, JSON, HTML) reads it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mailtrace.core.findings import ProbeResult, TierResult, Verdict
from mailtrace.core.journey import JourneyStep, TierOutcomes
from mailtrace.probes.base import Target
from mailtrace.topology.flow import FlowGraph
from mailtrace.topology.model import Topology


@dataclass
class Timings:
    """A before/after hook of the engine: per-probe timings for --verbose."""

    started: float = field(default_factory=time.monotonic)
    rows: list[tuple[str, str, float, float]] = field(default_factory=list)
    _open: dict[tuple[str, str], float] = field(default_factory=dict)

    def before(self, tier: str, probe: str) -> None:
        self._open[(tier, probe)] = time.monotonic()

    def after(self, result: ProbeResult) -> None:
        start = self._open.pop((result.tier, result.probe), time.monotonic())
        self.rows.append(
            (result.tier, result.probe, (start - self.started) * 1000, result.elapsed_ms)
        )


@dataclass
class TriageReport:
    topology: Topology
    flow: FlowGraph
    target: Target
    tiers: list[TierResult]
    verdict: Verdict
    elapsed_ms: float
    timings: Timings
    queries_sent: int
    #: The message asked about (or the latest one), tier by tier, in flow order (empty: no
    #: per-message source).
    journey: list[JourneyStep] = field(default_factory=list)
    #: The recent messages to the recipient per tier, by outcome.
    journey_summary: list[TierOutcomes] = field(default_factory=list)
