"""A fleet's DNS budget against real servers on loopback: no more queries in flight than
allowed, in all and per server, the waiting not counted against a server; answers shared
between clients while fresh, failures never reused, the table bounded."""

from __future__ import annotations

import asyncio
import time

from mailtrace.clients.dns import DnsClient, Outcome, Server
from mailtrace.clients.dns_pool import DnsPool, QueryBudget, SharedAnswers
from mailtrace.core.network import ConnectTo, Redirects
from mailtrace.lab.dns_server import AuthoritativeServer, Fault

ZONE = """$ORIGIN example.com.
$TTL 300
@ IN SOA ns1.example.com. hostmaster.example.com. 7 3600 600 86400 60
@ IN NS ns1.example.com.
ns1 IN A 127.0.1.1
short 2 IN TXT "expires soon"
"""


def server(name: str, role: str = "authoritative") -> Server:
    return Server(role, "127.0.1.1", 53, name)  # type: ignore[arg-type]


async def _many(per_server: int, max_in_flight: int, names: list[str], delay: float,
                questions: int, role: str = "authoritative", per_resolver: int = 64
                ) -> tuple[QueryBudget, list[Outcome], float]:
    fault = Fault(delay=delay)
    servers = [AuthoritativeServer([ZONE], fault=fault) for _ in names]
    for s in servers:
        await s.start()
    try:
        rules = tuple(ConnectTo(n, 53, "127.0.0.1", s.port) for n, s in zip(names, servers,
                                                                           strict=True))
        budget = QueryBudget(max_in_flight, per_server, per_resolver)
        pool = DnsPool(budget)
        client = DnsClient([], Redirects(rules), attempt_timeout=2.0, _tasks=pool.answers,
                           budget=budget)
        deadline = time.monotonic() + 10
        started = time.monotonic()
        found = await asyncio.gather(*(
            client.query(server(n, role), f"q{i}.example.com", "A", deadline)
            for n in names for i in range(questions)))
        return budget, [o.outcome for o in found], time.monotonic() - started
    finally:
        for s in servers:
            await s.stop()


def test_no_server_gets_more_than_its_share_and_waiting_is_not_a_timeout():
    budget, outcomes, elapsed = asyncio.run(_many(4, 256, ["ns1.example.com"], 0.1, 20))
    assert set(outcomes) == {Outcome.NXDOMAIN}  # each waited its turn; none timed out
    assert budget.stats.peak_per_server == 4 and budget.stats.sent == 20
    assert budget.stats.waited > 0 and elapsed >= 0.45  # 20 questions, 4 at a time, 0.1 s
    assert budget.in_flight == 0


def test_a_resolver_has_a_cap_of_its_own():
    budget, outcomes, _ = asyncio.run(_many(2, 256, ["ns1.example.com"], 0.05, 12,
                                            role="resolver", per_resolver=6))
    assert set(outcomes) == {Outcome.NXDOMAIN} and budget.stats.peak_per_server == 6


def test_the_process_wide_cap_holds_across_servers():
    names = [f"ns{i}.example.com" for i in range(4)]
    budget, outcomes, _ = asyncio.run(_many(16, 6, names, 0.05, 5))
    assert set(outcomes) == {Outcome.NXDOMAIN}
    assert budget.stats.peak_in_flight == 6 and budget.stats.sent == 20


async def _shared(name: str, wait: float = 0.0) -> tuple[list[Outcome], int, SharedAnswers]:
    async with AuthoritativeServer([ZONE]) as lab:
        rules = (ConnectTo("ns1.example.com", 53, "127.0.0.1", lab.port),)
        answers = SharedAnswers(capacity=3)
        one = DnsClient([], Redirects(rules), _tasks=answers)
        two = DnsClient([], Redirects(rules), _tasks=answers)
        deadline = time.monotonic() + 5
        first = await one.query(server("ns1.example.com"), name, "TXT", deadline)
        await asyncio.sleep(wait)
        second = await two.query(server("ns1.example.com"), name, "TXT", deadline)
        return [first.outcome, second.outcome], lab.queries, answers


def test_a_fresh_answer_is_shared_between_clients_and_an_expired_one_asked_again():
    outcomes, asked, _ = asyncio.run(_shared("example.com"))
    assert outcomes == [Outcome.NODATA, Outcome.NODATA] and asked == 1
    outcomes, asked, _ = asyncio.run(_shared("short.example.com", wait=2.1))
    assert outcomes == [Outcome.ANSWER, Outcome.ANSWER] and asked == 2  # its TTL was 2 s


def test_a_failure_is_asked_again_and_the_table_stays_bounded():
    async def body() -> tuple[list[Outcome], int]:
        answers = SharedAnswers()
        client = DnsClient([], Redirects((ConnectTo("ns9.example.com", 53, "127.0.0.1", 9),)),
                           attempt_timeout=0.2, _tasks=answers)
        deadline = time.monotonic() + 1
        got = [await client.query(server("ns9.example.com"), "a.example.com", "A", deadline)
               for _ in range(2)]
        return [g.outcome for g in got], client.queries_sent

    outcomes, sent = asyncio.run(body())
    assert outcomes == [Outcome.NETWORK_ERROR] * 2 and sent == 2  # port 9 refuses: asked twice

    async def bounded() -> SharedAnswers:
        async with AuthoritativeServer([ZONE]) as lab:
            answers = SharedAnswers(capacity=3)
            client = DnsClient([], Redirects((ConnectTo("ns1.example.com", 53, "127.0.0.1",
                                                        lab.port),)), _tasks=answers)
            deadline = time.monotonic() + 5
            for i in range(10):
                await client.query(server("ns1.example.com"), f"n{i}.example.com", "A",
                                   deadline)
            return answers

    assert len(asyncio.run(bounded())) == 3
