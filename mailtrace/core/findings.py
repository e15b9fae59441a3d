"""Findings, probe results and the verdict: the vocabulary every part of mailtrace shares.

A *finding* is a stable tag plus structured arguments plus the raw evidence it rests on.
Its level, message and remediation are not stored here: they come from the probe
catalog (``probes/catalog/``) when a report is rendered, so tests assert on
``(tag, args)`` and never on prose.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mailtrace.core.evidence import Evidence
from mailtrace.core.journey import JourneyStep


class Level(StrEnum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]


_LEVEL_RANK = {
    Level.CRITICAL: 4,
    Level.ERROR: 3,
    Level.WARNING: 2,
    Level.NOTICE: 1,
    Level.INFO: 0,
}


class Scope(StrEnum):
    """What a failing finding says about the mail flow."""

    TIER = "tier"  # the tier itself is broken for every path through it
    PARTIAL = "partial"  # only some servers or paths fail: the flow is degraded
    OBSERVER = "observer"  # the vantage point is broken: nothing downstream can be judged


class Status(StrEnum):
    """Status of a probe or a tier. ``not_tested`` is never ``fail``."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    NOT_TESTED = "not_tested"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Finding:
    tag: str
    args: dict[str, Any] = field(default_factory=dict)
    evidence: Sequence[Evidence] = field(default_factory=list)
    #: The tier this evidence is about, when it is not the reporting probe's own tier: the
    #: gateway's log showing the next hop refusing the mail is about the next hop. The
    #: engine files the finding under that tier, so the verdict follows the evidence, not
    #: the API that reported it.
    about: str | None = None

    def __post_init__(self) -> None:
        # An audit event (PEP 578) for whoever listens: the test suite's closed-catalog
        # check does. Without a listener it costs next to nothing.
        sys.audit("mailtrace.finding", self.tag, tuple(self.args))


@dataclass
class ProbeResult:
    probe: str
    tier: str
    status: Status
    findings: list[Finding] = field(default_factory=list)
    reason: str | None = None  # why not tested / skipped
    elapsed_ms: float = 0.0
    reported_by: str | None = None  # the tier whose probe reported these findings, if not this
    blocked_by: str | None = None  # the failed gate probe that made this one untested
    #: What this probe's source says happened to the message asked about (its journey).
    journey: list[JourneyStep] = field(default_factory=list)
    asks: str = ""  # dns | smtp | api | threats: what kind of evidence the probe gathers

    @property
    def ran(self) -> bool:
        return self.status not in (Status.NOT_TESTED, Status.SKIPPED)


@dataclass
class TierResult:
    id: str
    kind: str
    status: Status
    probes: list[ProbeResult] = field(default_factory=list)
    reason: str | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for p in self.probes for f in p.findings]

    @property
    def own(self) -> list[ProbeResult]:
        """The tier's own probes (not findings another tier's probe filed here)."""
        return [p for p in self.probes if p.reported_by is None]

    @property
    def coverage(self) -> str:
        """``full`` (every probe ran), ``partial``, or ``none`` (no probe ran, or none
        applies to the tier)."""
        own = self.own
        ran = [p for p in own if p.ran]
        return "none" if not ran else "full" if len(ran) == len(own) else "partial"

    @property
    def untested(self) -> bool:
        """Not tested on what matters: no probe ran (or none applies), or a whole kind of
        evidence the tier has probes for is missing: none of its SMTP probes (can mail get
        in?) or none of its API probes (what did the tier do with it?) could run."""
        if self.coverage == "none":
            return True
        for kind in ("smtp", "api"):
            probes = [p for p in self.own if p.asks == kind]
            if probes and not any(p.ran for p in probes):
                return True
        return False


@dataclass(frozen=True)
class Attention:
    """A warning beside a verdict: something the user must act on that does not change
    where the fault is (or that there is none)."""

    tier: str
    tag: str
    summary: str

    def as_json(self) -> dict[str, str]:
        return {"tier": self.tier, "tag": self.tag, "summary": self.summary}


@dataclass(frozen=True)
class Verdict:
    status: str  # healthy | degraded | fault | inconclusive
    tier: str | None
    tag: str | None
    summary: str
    not_tested: list[dict[str, str]] = field(default_factory=list)
    #: Warnings that need attention, beside whatever the verdict is.
    attention: list[Attention] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return {"healthy": 0, "degraded": 1, "fault": 1, "inconclusive": 3}[self.status]
