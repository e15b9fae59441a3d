"""Many domains verified at once in one process, each exactly as ``mailtrace verify``
verifies one (:func:`mailtrace.usecases.verify.verify_once`), from each vantage point.

Every domain's clients share one :class:`~mailtrace.clients.dns_pool.DnsPool` per
vantage: one budget of queries in flight for the process and per server, and the
answers many domains have in common (the gateway's hosts and SPF include, the DNS
providers' name servers). A vantage is a resolver panel: the one named, or this
machine's own resolvers (a Dask worker's, on its own network).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailtrace.clients.dns_pool import DnsPool, QueryBudget, SharedAnswers
from mailtrace.core.network import ConnectTo, Endpoint
from mailtrace.engine.settings import Options
from mailtrace.report.fleet import DEFAULT_VANTAGE, failed_vantage, vantage_doc
from mailtrace.topology.flow import FlowGraph
from mailtrace.topology.model import Topology
from mailtrace.usecases.verify import verify_once


class FleetError(Exception):
    """The fleet cannot run at all (no resolver on this machine, say): one line."""


@dataclass(frozen=True)
class Vantage:
    """A point the domains are verified from: its name and its resolver panel (None:
    the resolvers of the machine that runs it)."""

    name: str = DEFAULT_VANTAGE
    resolvers: tuple[Endpoint, ...] | None = None


@dataclass(frozen=True)
class FleetSettings:
    """What every domain's verification is given; it travels to Dask workers as is."""

    timeout: float = 30.0  # per domain
    connect_to: tuple[ConnectTo, ...] = ()
    ca_file: Path | None = None
    max_in_flight: int = 256  # DNS queries in flight, per process
    per_server: int = 16  # ... to any one authoritative server, per process
    per_resolver: int = 64  # ... to any one resolver, per process
    concurrency: int = 64  # domains verified at once, per process
    verbose: bool = False  # each vantage's full verify-1 document


@dataclass(frozen=True)
class Work:
    """One domain to verify: its line in the list and its topology's key."""

    line: int
    domain: str
    topology: str


def machine_resolvers() -> tuple[Endpoint, ...]:
    """The resolvers this machine is configured with (``/etc/resolv.conf``, or the
    registry on Windows), as dnspython reads them."""
    import dns.resolver

    try:
        found = dns.resolver.Resolver(configure=True).nameservers
    except Exception as exc:
        raise FleetError(f"no resolver configured on this machine ({exc})") from None
    if not found:
        raise FleetError("no resolver configured on this machine")
    return tuple(Endpoint(str(address), 53) for address in found)


class Verifier:
    """Verifies domains in this process, on one event loop, under one budget."""

    def __init__(self, settings: FleetSettings, vantages: Sequence[Vantage]) -> None:
        self.settings = settings
        self.vantages = list(vantages)
        self.budget = QueryBudget(settings.max_in_flight, settings.per_server,
                                  settings.per_resolver)
        self.options: dict[str, Options] = {}
        self._flows: dict[int, tuple[Topology, FlowGraph]] = {}
        for vantage in self.vantages:
            panel = vantage.resolvers if vantage.resolvers else machine_resolvers()
            # Each vantage keeps its own answers (they are what it compares); the caps
            # are the process's.
            pool = DnsPool(self.budget, SharedAnswers())
            self.options[vantage.name] = Options(
                list(panel), settings.connect_to, settings.timeout,
                ca_file=settings.ca_file, dns_pool=pool)

    async def verify(self, work: Work, topology: Topology) -> dict[str, dict[str, Any]]:
        """Every vantage's document for one domain (a vantage whose verification broke
        says why, as an inconclusive document: the fleet goes on)."""
        docs = await asyncio.gather(*(self._one(work, topology, v) for v in self.vantages))
        return {v.name: doc for v, doc in zip(self.vantages, docs, strict=True)}

    def _flow(self, topology: Topology) -> FlowGraph:
        """The topology's flow graph, built once per topology (it is read only)."""
        kept = self._flows.get(id(topology))
        if kept is None or kept[0] is not topology:
            kept = self._flows[id(topology)] = (topology, FlowGraph(topology))
        return kept[1]

    async def _one(self, work: Work, topology: Topology, vantage: Vantage) -> dict[str, Any]:
        try:
            report = await verify_once(topology, work.domain, self.options[vantage.name],
                                       self._flow(topology))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one domain's bug is reported, never the fleet's end
            return failed_vantage(f"internal error: {type(exc).__name__}: {exc}")
        return vantage_doc(report, self.settings.verbose)


async def verify_all(works: Sequence[Work], topologies: Mapping[str, Topology],
                     settings: FleetSettings, vantages: Sequence[Vantage]
                     ) -> list[tuple[Work, dict[str, dict[str, Any]]]]:
    """A shard: these domains, ``settings.concurrency`` at a time (what a Dask worker
    runs for each task it is given)."""
    verifier = Verifier(settings, vantages)
    gate = asyncio.Semaphore(settings.concurrency)

    async def one(work: Work) -> tuple[Work, dict[str, dict[str, Any]]]:
        async with gate:
            return work, await verifier.verify(work, topologies[work.topology])

    return list(await asyncio.gather(*(one(w) for w in works)))
