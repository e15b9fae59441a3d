"""A fleet's lines turned into work: each domain with its topology, once.

Topologies are loaded once each (a line naming one that does not load is reported with
the loader's file:line:column error, and the lines after it go on). A domain met again
is a duplicate (verified once, reported with the line it was first met on); a domain a
previous run reported (``--resume``) is skipped. Both checks hold fingerprints, not
names (:mod:`mailtrace.usecases.fleet.seen`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mailtrace.topology import TopologyError, load_topology
from mailtrace.topology.model import Topology
from mailtrace.usecases.fleet.domains import BadLine, DomainLine
from mailtrace.usecases.fleet.seen import SeenSet
from mailtrace.usecases.fleet.verifying import Work

#: More distinct topology files than this in one list is no fleet file.
MAX_TOPOLOGIES = 1000


@dataclass(frozen=True)
class Problem:
    """A line that gives nothing to verify: unreadable, or its topology does not load."""

    line: int
    reason: str
    text: str | None = None
    domain: str | None = None


@dataclass(frozen=True)
class Duplicate:
    line: int
    domain: str
    first: int  # the line it was first met on


@dataclass(frozen=True)
class Resumed:
    line: int
    domain: str


Item = Work | Problem | Duplicate | Resumed


class Planner:
    """Turns the list's lines into :data:`Item`s, in order."""

    def __init__(self, default_topology: Path | None, base: Path,
                 done: SeenSet | None = None, done_lines: SeenSet | None = None) -> None:
        self.default = default_topology
        self.base = base
        self.done = done  # domains a previous run reported
        self.done_lines = done_lines  # lines a previous run reported as unreadable
        self.seen = SeenSet()
        self.topologies: dict[str, Topology] = {}
        self._failed: dict[str, str] = {}

    def topology(self, named: str | None) -> tuple[str | None, str | None]:
        """The key of a line's topology (loaded once), or why it cannot be had."""
        if named is None:
            if self.default is None:
                return None, "no topology: give --topology, or a second column naming one"
            path = self.default
        else:
            path = Path(named).expanduser()
            if not path.is_absolute():
                path = self.base / path
        key = str(path.resolve())
        if key in self.topologies:
            return key, None
        if key in self._failed:
            return None, self._failed[key]
        if len(self.topologies) + len(self._failed) >= MAX_TOPOLOGIES:
            return None, f"more than {MAX_TOPOLOGIES} topology files in one list"
        try:
            self.topologies[key] = load_topology(path)
        except TopologyError as exc:
            self._failed[key] = f"topology {exc}"
            return None, self._failed[key]
        except OSError as exc:
            self._failed[key] = f"topology {path}: {exc.strerror or exc}"
            return None, self._failed[key]
        return key, None

    def items(self, lines: Iterable[DomainLine | BadLine]) -> Iterator[Item]:
        for line in lines:
            if isinstance(line, BadLine):
                if self.done_lines is not None and f"#{line.line}" in self.done_lines:
                    continue
                yield Problem(line.line, line.reason, text=line.text)
                continue
            if self.done is not None and line.domain in self.done:
                yield Resumed(line.line, line.domain)
                continue
            key, error = self.topology(line.topology)
            if key is None:
                if self.done_lines is not None and f"#{line.line}" in self.done_lines:
                    continue
                yield Problem(line.line, error or "no topology", domain=line.domain)
                continue
            first = self.seen.add(line.domain, line.line)
            if first is not None:
                yield Duplicate(line.line, line.domain, first)
                continue
            yield Work(line.line, line.domain, key)
