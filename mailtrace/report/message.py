"""Whether the message asked about (``--from``, ``--message-id``, ``--subject``) could be
followed, and if not, why: the probes that read a per-message source (those with a
``journey``: the gateway's logs, the tenant's message trace) that the triage planned, and
which of them ran. Without any, the triage checked the path, not the message, and every
rendering says so under the verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailtrace.probes.base import Probe
from mailtrace.report.model import TriageReport


@dataclass(frozen=True)
class Source:
    """A per-message source the triage planned: where, and whether it could run."""

    tier: str
    probe: str
    ran: bool
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"tier": self.tier, "probe": self.probe, "ran": self.ran, "reason": self.reason}


@dataclass(frozen=True)
class MessageFollowed:
    asked: str  # the message asked about, in words
    followed: bool
    sources: tuple[Source, ...]
    why: str | None  # why it could not be followed

    def as_json(self) -> dict[str, Any]:
        return {"asked": self.asked, "followed": self.followed,
                "sources": [s.as_json() for s in self.sources], "why": self.why}

    def line(self) -> str:
        state = "followed" if self.followed else f"not followed: {self.why}"
        return f"Message asked about: {self.asked} — {state}"


def _registry() -> Sequence[Probe]:
    from mailtrace.probes.registry import ALL

    return ALL


def message_followed(report: TriageReport, probes: Sequence[Probe] | None = None
                     ) -> MessageFollowed | None:
    """None when no message was asked about."""
    target = report.target
    if not target.asks_message:
        return None
    journeys = [p for p in (probes if probes is not None else _registry())
                if p.journey is not None]
    ids = {p.id for p in journeys}
    sources = tuple(Source(t.id, r.probe, r.ran, None if r.ran else r.reason)
                    for t in report.tiers for r in t.probes if r.probe in ids)
    if any(s.ran for s in sources):
        return MessageFollowed(target.message, True, sources, None)
    if sources:
        why = "its sources could not run (" + "; ".join(
            f"{s.tier} {s.probe}: {s.reason or 'not run'}" for s in sources) + ")"
    else:
        by_kind: dict[str, list[str]] = {}
        for p in journeys:
            for kind in sorted(p.kinds):
                by_kind.setdefault(kind, []).append(p.id)
        declared = "; ".join(f"{', '.join(ids_)} on {kind} tiers"
                             for kind, ids_ in by_kind.items())
        why = (f"no tier of topology {report.topology.topology} declares a per-message "
               f"source ({declared}): the path was checked, not the message")
    return MessageFollowed(target.message, False, sources, why)
