"""What a probe is: a thin ``collect`` through the engine's clients, a pure ``evaluate``.

``collect(ctx)`` gathers an observation (everything ``evaluate`` needs, expectations
included); ``evaluate(observation)`` turns it into findings with no I/O, so tests can
call it on hand-built observations. A probe declares the tags it may emit, the probes
whose observations it reads (``depends``) and the probes whose failure makes its own
result meaningless (``gates``): a gated probe runs at once, speculatively, and is
turned into *not tested* if its gate fails — this keeps the observer check off the
critical path without ever blaming a tier for the observer's problem.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from mailtrace.clients.dns import DnsClient
from mailtrace.clients.smtp import SmtpClient
from mailtrace.core.findings import Finding
from mailtrace.topology.flow import FlowGraph
from mailtrace.topology.model import Topology

OBSERVER_TIER = "observer"
OBSERVER_KIND = "observer"


class NotTested(Exception):
    """Raised by ``collect`` or ``evaluate``: the probe could not judge, and says why.

    Distinct from a failure (DESIGN, "Could not test is not failed"): missing
    credentials, a 403, nothing to compare. ``findings`` keep any evidence gathered.
    """

    def __init__(self, reason: str, findings: list[Finding] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.findings = findings or []


@dataclass(frozen=True)
class Target:
    domain: str
    recipient: str | None = None
    #: How far back logs and message traces are searched (``--since``).
    since: timedelta = timedelta(hours=24)


class Closable(Protocol):
    async def aclose(self) -> None: ...


C = TypeVar("C", bound=Closable)


@dataclass
class RunClients:
    """Clients shared by the probes of a run (one Graph client per tier, say), made on
    first use and closed by the engine when the run ends."""

    _open: dict[tuple[str, str], Closable] = field(default_factory=dict)

    def get(self, key: tuple[str, str], make: Callable[[], C]) -> C:
        if key not in self._open:
            self._open[key] = make()
        return cast(C, self._open[key])

    async def aclose(self) -> None:
        for client in reversed(list(self._open.values())):
            with contextlib.suppress(Exception):
                await client.aclose()
        self._open.clear()


@dataclass
class ProbeContext:
    topology: Topology
    flow: FlowGraph
    tier: str
    target: Target
    dns: DnsClient
    deadline: float  # time.monotonic() value
    smtp: SmtpClient = field(default_factory=SmtpClient)
    observations: dict[str, Any] = field(default_factory=dict)
    #: Where credentials named by the topology (``*_env``) are read. Never logged.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: CA certificates to trust for HTTPS APIs instead of the system's (``--ca-file``).
    ca_file: Path | None = None
    clients: RunClients = field(default_factory=RunClients)

    def observation(self, probe_id: str) -> Any:
        """The observation of a declared dependency (``None`` if it could not run)."""
        return self.observations.get(probe_id)


@dataclass(frozen=True)
class Probe:
    id: str
    kinds: frozenset[str]
    tags: frozenset[str]
    collect: Callable[[ProbeContext], Awaitable[Any]]
    evaluate: Callable[[Any], list[Finding]]
    depends: tuple[str, ...] = ()
    gates: tuple[str, ...] = ()
    deadline: float = 10.0
    summary: str = ""
    #: Whether the probe applies to one tier of a topology (e.g. only when the tier declares
    #: an API to ask); a probe that does not apply is not planned at all.
    applies: Callable[[Topology, str], bool] = lambda topology, tier: True
    #: The probe asks about one recipient (its quarantine, its mailbox): a triage by domain
    #: does not plan it, and says so.
    needs_recipient: bool = False
    #: The API permissions the probe needs, as data (``mailtrace permissions``): for
    #: Microsoft Graph, the least-privileged permission names.
    permissions: tuple[str, ...] = ()
