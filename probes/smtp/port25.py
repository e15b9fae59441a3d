"""Observer: does outbound SMTP (port 25) work from here at all?

Before a tier is blamed for refusing or ignoring SMTP, some host must be shown to accept
a TCP connection on port 25 from this machine: any declared SMTP host of the topology,
or a reference host given with ``--smtp-reference``. Many networks (home and office ISPs,
cloud providers) block outbound port 25; when nothing answers anywhere, the verdict is
``inconclusive`` at ``observer``. The check only connects: it sends no command.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from dataclasses import dataclass

from mailtrace.clients.smtp import Dialogue, Outcome
from mailtrace.core.findings import Finding
from mailtrace.core.network import parse_host_port
from mailtrace.probes.base import OBSERVER_KIND, NotTested, Probe, ProbeContext
from mailtrace.topology.model import DnsTier, Topology


@dataclass(frozen=True)
class Port25Check:
    attempts: tuple[Dialogue, ...]  # connection attempts, the first that worked last


def _smtp_hosts(topology: Topology) -> list[str]:
    return list(dict.fromkeys(
        host for tier_id, tier in topology.tiers.items() if not isinstance(tier, DnsTier)
        for host in topology.inbound_hosts(tier_id)
    ))


async def collect(ctx: ProbeContext) -> Port25Check:
    targets = [parse_host_port(r, ctx.smtp.port) for r in ctx.smtp.references]
    targets += [(host, ctx.smtp.port) for host in _smtp_hosts(ctx.topology)]
    attempts: list[Dialogue] = []

    async def addresses(host: str) -> list[str]:
        with contextlib.suppress(ValueError):
            return [str(ipaddress.ip_address(host))]
        return (await ctx.dns.addresses(host, ctx.deadline)).addresses

    async def connect(host: str, port: int) -> bool:
        for address in await addresses(host):
            d = await ctx.smtp.reachable(host, address, ctx.deadline, port)
            attempts.append(d)
            if d.connected:
                return True
        return False

    tasks = [asyncio.ensure_future(connect(host, port)) for host, port in targets]
    try:
        for next_done in asyncio.as_completed(tasks):
            if await next_done:
                break
    finally:
        for task in tasks:
            task.cancel()
    if not attempts:
        raise NotTested("no SMTP host of the topology has an address to try")
    attempts.sort(key=lambda d: d.connected)
    return Port25Check(tuple(attempts))


def evaluate(check: Port25Check) -> list[Finding]:
    working = [d for d in check.attempts if d.connected]
    if working:
        d = working[0]
        return [Finding("OBSERVER_PORT25_OK", {"host": f"{d.host} [{d.address}]:{d.port}"},
                        [d.evidence()])]
    tried = "; ".join(f"{d.host} [{d.address}]:{d.port} {d.outcome.value}"
                      for d in check.attempts)
    if all(d.outcome is Outcome.OUT_OF_TIME for d in check.attempts):
        raise NotTested(f"no time left to try port 25 ({tried})")
    return [Finding("OBSERVER_PORT25_BLOCKED", {"tried": tried},
                    [d.evidence() for d in check.attempts])]


PROBE = Probe(
    id="observer.port25",
    asks="smtp",
    kinds=frozenset({OBSERVER_KIND}),
    tags=frozenset({"OBSERVER_PORT25_OK", "OBSERVER_PORT25_BLOCKED"}),
    collect=collect,
    evaluate=evaluate,
    gates=("dns.observer",),  # the hosts are found through the resolvers it checks
    deadline=12.0,
    summary="some SMTP host accepts a connection on port 25 from this machine",
    applies=lambda topology, tier: bool(_smtp_hosts(topology)),
)
