"""What many verifications running together in one process share when they ask DNS: one
budget of queries in flight, a cap per server, and the answers they have in common.

A fleet verifies thousands of domains behind the same gateway and tenant: each asks the
same parent zones, the gateway's MX hosts and its SPF include, and most are served by a
handful of DNS providers. :class:`QueryBudget` keeps the whole process to
``max_in_flight`` exchanges at once and any one server (an authoritative server or a
resolver, by the address really connected to) to ``per_server``: a fleet never hammers a
provider's name servers or the panel's resolvers. :class:`SharedAnswers` is the
clients' table of questions (:class:`~mailtrace.clients.dns.DnsClient` shares identical
questions in flight through it): shared by every domain's client, it answers a question
another domain asked while its answer is fresh — no longer than the answer's TTL (RFC 1035
§3.2.1; a negative answer the SOA's minimum, RFC 2308 §5) and ``max_age`` — and holds at
most ``capacity`` finished answers, the least recently used going first, so its memory
does not grow with the fleet. A failure (a timeout, SERVFAIL) is shared only while it is
in flight: the next domain asks again.

Nothing here changes an observation: a shared answer is the same
:class:`~mailtrace.clients.dns.DnsObservation`, with the server, timing and attempts of
the exchange that produced it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from mailtrace.core.network import Endpoint

#: Outcomes worth sharing once finished: the server gave a usable DNS answer.
_ANSWERED = frozenset({"ANSWER", "NODATA", "NXDOMAIN"})


class _ServerGate:
    """At most ``limit`` exchanges with one server; first come, first served."""

    def __init__(self, limit: int) -> None:
        self.semaphore = asyncio.Semaphore(limit)
        self.users = 0  # holding or waiting: the gate goes when nobody is


@dataclass
class BudgetStats:
    sent: int = 0  # exchanges that went through the budget
    peak_in_flight: int = 0
    peak_per_server: int = 0
    waited: int = 0  # exchanges that had to wait for a slot


class QueryBudget:
    """Caps on DNS exchanges in flight: for the whole process, per authoritative server
    and per resolver (a recursive resolver is built for a client's load, a zone's server
    for the world's share of it).

    A server's slot is taken before the process's, so an exchange waiting for a busy
    server never holds a slot other servers' exchanges could use. One budget belongs to
    one event loop (its semaphores do).
    """

    def __init__(self, max_in_flight: int = 256, per_server: int = 16,
                 per_resolver: int = 64) -> None:
        if min(max_in_flight, per_server, per_resolver) < 1:
            raise ValueError("query caps must be at least 1")
        self.max_in_flight = max_in_flight
        self.per_server = per_server
        self.per_resolver = per_resolver
        self._all = asyncio.Semaphore(max_in_flight)
        self._servers: dict[Endpoint, _ServerGate] = {}
        self._in_flight = 0
        self._busy: dict[Endpoint, int] = {}
        self.stats = BudgetStats()

    @contextlib.asynccontextmanager
    async def slot(self, server: Endpoint, resolver: bool = False) -> AsyncIterator[None]:
        """Hold one exchange's place with ``server`` (the endpoint really connected to;
        ``resolver``: asked as a recursive resolver)."""
        gate = self._servers.get(server)
        if gate is None:
            gate = self._servers[server] = _ServerGate(
                self.per_resolver if resolver else self.per_server)
        gate.users += 1
        try:
            if gate.semaphore.locked() or self._all.locked():
                self.stats.waited += 1
            async with gate.semaphore, self._all:
                self._in_flight += 1
                busy = self._busy[server] = self._busy.get(server, 0) + 1
                self.stats.sent += 1
                self.stats.peak_in_flight = max(self.stats.peak_in_flight, self._in_flight)
                self.stats.peak_per_server = max(self.stats.peak_per_server, busy)
                try:
                    yield
                finally:
                    self._in_flight -= 1
                    if busy := self._busy[server] - 1:
                        self._busy[server] = busy
                    else:
                        del self._busy[server]
        finally:
            gate.users -= 1
            if not gate.users:
                del self._servers[server]  # the table holds only servers in use

    @property
    def in_flight(self) -> int:
        return self._in_flight


def _fresh_for(result: Any, max_age: float) -> float:
    """How long a finished question may answer others: a DNS observation for its TTL (the
    answer's smallest, or a negative answer's SOA), at most ``max_age``; a failure not at
    all; anything else (a delegation, built of observations) ``max_age``."""
    outcome = getattr(result, "outcome", None)
    if outcome is None:
        return max_age
    if str(outcome) not in _ANSWERED:
        return 0.0
    ttls: list[float] = [r.ttl for r in getattr(result, "answer", ())]
    if not ttls:
        ttls = [r.ttl for r in getattr(result, "authority", ()) if r.type == "SOA"]
    return min([max_age, *ttls])


class SharedAnswers(MutableMapping[Hashable, "asyncio.Future[Any]"]):
    """The clients' question table, shared by every domain of a fleet (see the module
    docstring): questions in flight always, finished ones while fresh, ``capacity`` at
    most."""

    def __init__(self, capacity: int = 4096, max_age: float = 300.0) -> None:
        self.capacity = capacity
        self.max_age = max_age
        self._entries: OrderedDict[Hashable, asyncio.Future[Any]] = OrderedDict()
        self._expires: dict[Hashable, float] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, default: Any = None) -> Any:
        future = self._entries.get(key)
        if future is None:
            self.misses += 1
            return default
        if future.done():
            expires = self._expires.get(key, 0.0)
            if time.monotonic() >= expires:
                self._drop(key)
                self.misses += 1
                return default
        self._entries.move_to_end(key)
        self.hits += 1
        return future

    def __getitem__(self, key: Hashable) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] | None = self.get(key)
        if future is None:
            raise KeyError(key)
        return future

    def __setitem__(self, key: Hashable, future: asyncio.Future[Any]) -> None:
        self._entries[key] = future
        self._entries.move_to_end(key)
        self._expires.pop(key, None)

        def finished(done: asyncio.Future[Any]) -> None:
            # Its freshness counts from when the answer came (RFC 1035 §3.2.1).
            if self._entries.get(key) is done:
                self._expires[key] = self._finished(done)

        future.add_done_callback(finished)
        self._evict()

    def __delitem__(self, key: Hashable) -> None:
        self._drop(key)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def _finished(self, future: asyncio.Future[Any]) -> float:
        if future.cancelled() or future.exception() is not None:
            return 0.0
        return time.monotonic() + _fresh_for(future.result(), self.max_age)

    def _drop(self, key: Hashable) -> None:
        self._entries.pop(key, None)
        self._expires.pop(key, None)

    def _evict(self) -> None:
        """Finished answers beyond ``capacity`` go, the least recently used first;
        questions in flight stay (the budget bounds how many there are)."""
        excess = len(self._entries) - self.capacity
        if excess <= 0:
            return
        victims = []
        for key, future in self._entries.items():
            if future.done():
                victims.append(key)
                if len(victims) == excess:
                    break
        for key in victims:
            self._drop(key)


@dataclass
class DnsPool:
    """What the DNS clients of many runs in one process share: the budget and the
    answers (``Options.dns_pool``; the engine's clients take both)."""

    budget: QueryBudget
    answers: SharedAnswers = field(default_factory=SharedAnswers)
