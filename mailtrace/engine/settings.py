"""What a run is given besides the topology: where to send packets, which CAs to trust,
how the SMTP probes introduce themselves, the budget — and where the credentials the
topology names are read. The engine builds every client from these (``engine.clients``);
probes never see them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailtrace.clients.dns_pool import DnsPool
from mailtrace.clients.smtp import SmtpTimeouts
from mailtrace.clients.trust_anchor import TrustAnchor
from mailtrace.core.network import ConnectTo, Endpoint


@dataclass(frozen=True)
class Options:
    resolvers: Sequence[Endpoint]
    connect_to: Sequence[ConnectTo] = ()
    timeout: float = 30.0
    #: Where credentials named in the topology (``*_env``) are read: the process
    #: environment, or the lab's own for a demo. Never logged.
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)
    ca_file: Path | None = None  # trust these CAs (STARTTLS, HTTPS APIs), not the system's
    mail_from: str | None = None  # the SMTP probes' sender; default: the topology's
    helo: str | None = None  # the SMTP probes' EHLO name; default: the topology's
    smtp_timeouts: SmtpTimeouts = field(default_factory=SmtpTimeouts)
    #: Hosts ([HOST or ADDRESS][:PORT]) that show outbound SMTP works from here.
    smtp_references: Sequence[str] = ()
    #: Where DNSSEC validation starts: IANA's root keys, unless told otherwise.
    trust_anchor: TrustAnchor = field(default_factory=TrustAnchor)
    #: Shared with the other runs of this process (a fleet): the caps on DNS queries in
    #: flight and the answers they have in common. None: the run's own.
    dns_pool: DnsPool | None = field(default=None, repr=False)
