"""Any bytes a server sends back become an observation, never an exception or a hang."""

from __future__ import annotations

import asyncio
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtrace.clients.dns import DnsClient, Outcome, Server
from mailtrace.core.network import ConnectTo, Redirects


class _Replier(asyncio.DatagramProtocol):
    """Answers every query with the query's id followed by the given bytes."""

    def __init__(self, tail: bytes, keep_id: bool) -> None:
        self.tail, self.keep_id = tail, keep_id
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        assert self.transport is not None
        self.transport.sendto((data[:2] if self.keep_id else b"") + self.tail, addr)


async def _ask(tail: bytes, keep_id: bool):
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Replier(tail, keep_id), local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        client = DnsClient([], Redirects((ConnectTo("hostile.test", 53, "127.0.0.1", port),)),
                           attempt_timeout=0.2)
        server = Server("authoritative", "127.0.0.1", 53, "hostile.test.")
        started = time.monotonic()
        obs = await client.query(server, "example.com", "MX", time.monotonic() + 0.5)
        return obs, time.monotonic() - started
    finally:
        transport.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tail=st.binary(max_size=600), keep_id=st.booleans())
def test_any_reply_is_an_observation_inside_the_deadline(tail, keep_id):
    obs, took = asyncio.run(_ask(tail, keep_id))
    assert isinstance(obs.outcome, Outcome)
    assert took < 0.9
    obs.evidence()  # always serialisable as evidence


def test_typical_hostile_replies():
    # a response header without the question: a reply, but not to what was asked
    assert asyncio.run(_ask(b"\x81\x80" + b"\x00" * 8, True))[0].outcome is Outcome.MISMATCH
    # three bytes: not DNS at all
    assert asyncio.run(_ask(b"\xff", True))[0].outcome is Outcome.MALFORMED
    # empty datagrams never answer anything
    assert asyncio.run(_ask(b"", False))[0].outcome is Outcome.TIMEOUT
