"""One triage: build the clients, run the engine over the topology, decide the verdict."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from mailtrace.address import check_domain, check_mailbox
from mailtrace.clients.dns import DnsClient, Server
from mailtrace.clients.endpoints import ConnectTo, Endpoint, Redirects
from mailtrace.clients.smtp import SmtpClient, SmtpTimeouts
from mailtrace.engine.probe import Probe, Target
from mailtrace.engine.runner import Engine, Hook
from mailtrace.engine.verdict import decide
from mailtrace.findings import ProbeResult, TierResult, Verdict
from mailtrace.topology.graph import FlowGraph
from mailtrace.topology.model import Topology


class TargetError(ValueError):
    """An invalid recipient or domain (a usage error, exit 2)."""


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SINCE = timedelta(days=30)


def parse_since(text: str) -> timedelta:
    """``--since``: a duration with its unit, such as 90m, 24h or 7d (s, m, h, d)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"--since {text!r}: expected a duration such as 90m, 24h or 7d")
    since = timedelta(seconds=float(match[1]) * _UNIT[match[2]])
    if not timedelta(0) < since <= MAX_SINCE:
        raise ValueError(f"--since {text!r}: expected more than 0 and at most 30d")
    return since


def make_target(topology: Topology, recipient: str | None, domain: str | None,
                since: timedelta | None = None) -> Target:
    """Validate what to triage. Refuses CR, LF and non-ASCII: nothing here reaches a wire
    unchecked (no SMTP or DNS injection)."""
    if recipient is not None:
        try:
            recipient = check_mailbox(recipient)
        except ValueError as exc:
            raise TargetError(str(exc).replace("invalid address", "invalid recipient")) from None
        domain_from_recipient = recipient.rpartition("@")[2]
        if domain is not None and domain.lower().removesuffix(".") != domain_from_recipient:
            raise TargetError(f"--domain {domain} does not match the recipient's domain")
        domain = domain_from_recipient
    if domain is None:
        raise TargetError("give --recipient ADDRESS or --domain DOMAIN")
    try:
        domain = check_domain(domain)
    except ValueError as exc:
        raise TargetError(str(exc)) from None
    if domain not in topology.domains:
        raise TargetError(
            f"{domain} is not a domain of topology {topology.topology} "
            f"({', '.join(topology.domains)})"
        )
    if since is None:
        return Target(domain=domain, recipient=recipient)
    return Target(domain=domain, recipient=recipient, since=since)


@dataclass
class Timings:
    """A before/after hook: per-probe timings for --verbose."""

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


@dataclass(frozen=True)
class Options:
    resolvers: Sequence[Endpoint]
    connect_to: Sequence[ConnectTo] = ()
    timeout: float = 30.0
    #: Where credentials named in the topology (``*_env``) are read: the process
    #: environment, or the lab's own for a demo.
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)
    ca_file: Path | None = None  # trust these CAs (STARTTLS, HTTPS APIs), not the system's
    mail_from: str | None = None  # the SMTP probes' sender; default: the topology's
    helo: str | None = None  # the SMTP probes' EHLO name; default: the topology's
    smtp_timeouts: SmtpTimeouts = field(default_factory=SmtpTimeouts)
    #: Hosts ([HOST or ADDRESS][:PORT]) that show outbound SMTP works from here.
    smtp_references: Sequence[str] = ()


async def run_triage(
    topology: Topology,
    target: Target,
    options: Options,
    probes: Sequence[Probe] | None = None,
    hooks: Sequence[Hook] = (),
) -> TriageReport:
    if probes is None:
        from probes import ALL

        probes = ALL
    started = time.monotonic()
    flow = FlowGraph(topology)
    dns = DnsClient(
        resolvers=[Server("resolver", e.address, e.port) for e in options.resolvers],
        redirects=Redirects(tuple(options.connect_to)),
    )
    smtp = SmtpClient(
        redirects=dns.redirects,
        timeouts=options.smtp_timeouts,
        ca_file=options.ca_file,
        helo=options.helo or topology.smtp.helo,
        mail_from=topology.smtp.mail_from if options.mail_from is None else options.mail_from,
        references=tuple(options.smtp_references),
    )
    timings = Timings()
    engine = Engine(topology, flow, target, dns, probes, options.timeout, [timings, *hooks],
                    environ=options.environ, smtp=smtp, ca_file=options.ca_file)
    tiers = await engine.run()
    verdict = decide(tiers, flow)
    elapsed = (time.monotonic() - started) * 1000
    return TriageReport(topology, flow, target, tiers, verdict, elapsed, timings, dns.queries_sent)
