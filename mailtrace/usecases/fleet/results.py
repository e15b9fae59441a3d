"""What comes back from a fleet, reported exactly once per domain.

Every domain's vantages are joined into one line (``report.fleet.domain_doc``) and handed
to the sink as it finishes; a result for a domain already reported — a shard that ran
twice on a cluster, say — is dropped and counted (the last guard: the scheduler retries
a shard whose worker died, and must never make a domain appear twice). Problems,
duplicates and resumed domains are counted in the same summary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mailtrace.report.fleet import FleetSummary, domain_doc, error_doc
from mailtrace.topology.model import Topology
from mailtrace.usecases.fleet.plan import Duplicate, Item, Problem, Resumed
from mailtrace.usecases.fleet.seen import SeenSet
from mailtrace.usecases.fleet.verifying import Work

Sink = Callable[[dict[str, Any]], None]


class Results:
    def __init__(self, sink: Sink, topologies: Mapping[str, Topology],
                 summary: FleetSummary | None = None) -> None:
        """``topologies``: by key, the topologies the domains are verified against."""
        self.sink = sink
        self.topologies = topologies
        self.summary = summary or FleetSummary()
        self.reported = SeenSet()
        self.lines = 0  # lines of the list dealt with (verified, or set aside)

    def _emit(self, doc: dict[str, Any]) -> None:
        self.sink(doc)
        self.summary.add(doc)

    def domain(self, work: Work, vantages: dict[str, dict[str, Any]]) -> bool:
        """One domain's result; False when that domain was already reported."""
        if self.reported.add(work.domain, work.line) is not None:
            self.summary.dropped += 1
            return False
        self.lines += 1
        topology = self.topologies.get(work.topology)
        self._emit(domain_doc(work.line, work.domain,
                              topology.topology if topology is not None else "?", vantages))
        return True

    def unverified(self, work: Work, reason: str) -> None:
        """A domain no vantage could verify (its shard failed for good)."""
        if self.reported.add(work.domain, work.line) is not None:
            self.summary.dropped += 1
            return
        self.lines += 1
        self._emit(error_doc(work.line, reason, domain=work.domain))

    def set_aside(self, item: Item) -> None:
        """A line with nothing to verify: reported (a problem) or counted."""
        self.lines += 1
        if isinstance(item, Problem):
            self._emit(error_doc(item.line, item.reason, text=item.text, domain=item.domain))
        elif isinstance(item, Duplicate):
            self.summary.duplicate(item.line, item.first, item.domain)
        elif isinstance(item, Resumed):
            self.summary.resumed += 1
