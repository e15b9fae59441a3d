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


@dataclass(frozen=True)
class RunInfo:
    """Where and when a report was made, so that a forwarded report can be trusted and
    reproduced: the time (UTC), the mailtrace that made it, the topology file it read (and
    a digest of its bytes), and the vantage point — this machine and the resolvers it
    asked."""

    started_at: str = ""  # ISO 8601 UTC
    version: str = ""  # "mailtrace-diagnostics 0.1.0"
    host: str = ""  # this machine's name
    resolvers: tuple[str, ...] = ()
    topology_file: str | None = None
    topology_sha256: str | None = None

    def as_json(self) -> dict[str, object]:
        return {"started_at": self.started_at, "mailtrace": self.version,
                "topology_file": self.topology_file, "topology_sha256": self.topology_sha256,
                "vantage": {"host": self.host, "resolvers": list(self.resolvers)}}


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
    #: When, where from and with what the triage ran.
    run: RunInfo = field(default_factory=RunInfo)
    #: ``--strict``: a tier not tested makes a healthy verdict exit 3 (inconclusive).
    strict: bool = False

    @property
    def strict_not_tested(self) -> list[str]:
        """The tiers not tested that turn this healthy verdict into exit 3 under
        ``--strict`` (empty when strict mode changes nothing)."""
        v = self.verdict
        if not self.strict or v.exit_code != 0:
            return []
        return [n["tier"] + (" (in part)" if n.get("status") == "partly_tested" else "")
                for n in v.not_tested]

    @property
    def exit_code(self) -> int:
        """The verdict's exit code, or 3 when ``--strict`` finds a tier not tested."""
        return 3 if self.strict_not_tested else self.verdict.exit_code

    def strict_line(self) -> str | None:
        """What strict mode did, in words, when it changed the exit code."""
        untested = self.strict_not_tested
        if not untested:
            return None
        return (f"STRICT: exit 3 (inconclusive): --strict and not tested: "
                f"{', '.join(untested)}")
