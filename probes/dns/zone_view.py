"""The zone as its own servers publish it: MX and SOA asked of each name server.

Both the MX probe and the consistency probe judge from this view, so they agree on
which answer is *current*: the one served under the newest SOA serial (RFC 1982
arithmetic), which is what every server converges to once transfers complete. Among
servers at the same serial the answer that fits the topology wins, then the majority.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from mailtrace.clients.dns import DnsObservation, Server
from mailtrace.probes.base import ProbeContext
from mailtrace.probes.dns.delegation import latest_serial, serial
from mailtrace.probes.dns.expect import fits, mx_set


@dataclass(frozen=True)
class ServerView:
    server: Server
    mx: DnsObservation
    soa: DnsObservation

    @property
    def serial(self) -> int | None:
        return serial(self.soa)


async def server_views(ctx: ProbeContext) -> list[ServerView]:
    """MX and SOA from every server of the zone (queries shared with the other probes).

    The zone's own NS set is used when it resolves; otherwise the parent's referral
    names the servers (a resolver that says NXDOMAIN or SERVFAIL is not the last word).
    """
    domain, deadline = ctx.target.domain, ctx.deadline
    zone = await ctx.dns.zone_servers(domain, deadline)
    if not zone.servers:
        zone = await ctx.dns.delegation(domain, deadline)

    async def ask(server: Server) -> ServerView:
        mx, soa = await asyncio.gather(ctx.dns.query(server, domain, "MX", deadline),
                                       ctx.dns.query(server, zone.apex, "SOA", deadline))
        return ServerView(server, mx, soa)

    return list(await asyncio.gather(*(ask(s) for s in zone.servers)))


def authoritative(views: list[ServerView]) -> list[ServerView]:
    """Views with an authoritative, usable MX answer; lame or failing servers are the
    delegation probe's findings, not a second opinion on the data."""
    return [v for v in views if v.mx.authoritative and mx_set(v.mx) is not None]


def current(views: list[ServerView], expected: list[str]) -> ServerView | None:
    """The view whose MX answer the zone is converging to (see the module docstring)."""
    usable = authoritative(views)
    if not usable:
        return None
    newest = latest_serial([v.serial for v in usable])
    candidates = [v for v in usable if v.serial == newest] or usable
    fitting = [v for v in candidates if fits(mx_set(v.mx) or frozenset(), expected)]
    if fitting:
        return fitting[0]
    majority = Counter(mx_set(v.mx) for v in candidates).most_common(1)[0][0]
    return next(v for v in candidates if mx_set(v.mx) == majority)
