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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from mailtrace.core.findings import Finding
from mailtrace.core.journey import JourneyStep

if TYPE_CHECKING:  # the clients are the engine's to build: what the probes see is typed here,
    # and the reports and the catalog, which read this module, do not load network stacks
    from mailtrace.clients.dns import DnsClient
    from mailtrace.clients.msgraph.client import GraphClient
    from mailtrace.clients.mta_sts import PolicyFetcher
    from mailtrace.clients.proofpoint import EssentialsClient, PpsClient, TapClient
    from mailtrace.clients.smtp import SmtpClient
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
    #: The message asked about (``--from``, ``--message-id``, ``--subject``): the sender's
    #: address, or a whole sending domain as ``@domain``.
    sender: str | None = None
    message_id: str | None = None  # as written, angle brackets or not
    subject: str | None = None  # a part of the subject

    @property
    def asks_message(self) -> bool:
        """Is the triage about one message (or one sender's), not only the path?"""
        return any((self.sender, self.message_id, self.subject))

    @property
    def message(self) -> str:
        """The message asked about, in words: "carol@fabrikam.example's message"."""
        if self.message_id:
            return f"message {self.message_id}"
        who = f"{self.sender}'s" if self.sender and not self.sender.startswith("@") else (
            f"{self.sender[1:]}'s" if self.sender else "the")
        about = f" about {self.subject!r}" if self.subject else ""
        return f"{who} message{about}"


class ClientUnavailable(Exception):
    """The tier's client for an API cannot be built as the topology declares it (a
    credential variable unset, a certificate file missing): the probe is *not tested*,
    and ``reason`` says what is missing — never the secret itself."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Clients(Protocol):
    """The API clients of a run, built once per tier by the engine from the topology and
    the run's options (credentials included) and closed when the run ends. A probe asks
    for its tier's client and never sees where the credentials came from; each accessor
    raises :class:`ClientUnavailable` when the client cannot be built."""

    def graph(self, tier: str) -> GraphClient: ...
    def pps(self, tier: str) -> PpsClient: ...
    def essentials(self, tier: str) -> EssentialsClient: ...
    def tap(self, tier: str) -> TapClient: ...
    def policy_fetcher(self) -> PolicyFetcher: ...


def _smtp_client() -> SmtpClient:
    from mailtrace.clients.smtp import SmtpClient

    return SmtpClient()


@dataclass
class ProbeContext:
    topology: Topology
    flow: FlowGraph
    tier: str
    target: Target
    dns: DnsClient
    deadline: float  # time.monotonic() value
    clients: Clients
    smtp: SmtpClient = field(default_factory=_smtp_client)
    observations: dict[str, Any] = field(default_factory=dict)

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
    #: What the probe asks: ``dns``, ``smtp`` (reachability: can mail get in), ``api`` (the
    #: tier's own record of what it does with mail: a gateway's logs, the tenant), or
    #: ``threats`` (threat-only feeds, never the tier's whole story). A tier whose ``api``
    #: probes all could not run was not tested on what it did with the mail.
    asks: str = ""
    #: For a per-message source (gateway logs, message trace): what its observation says
    #: happened to the messages asked about, as journey steps (pure, like ``evaluate``).
    journey: Callable[[Any], list[JourneyStep]] | None = None
