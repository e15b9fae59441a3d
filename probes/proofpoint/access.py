"""What every Proofpoint API probe shares: whether it applies, credentials, the search
window, the next hops, the tier's clients, and how an API that cannot be asked becomes
*not tested*."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from mailtrace.clients.proofpoint.http import ApiError, ApiResponse
from mailtrace.clients.proofpoint.records import PayloadError
from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.probes.base import ClientUnavailable, NotTested, ProbeContext
from mailtrace.topology.model import ProofpointApi, ProofpointTier, Topology

T = TypeVar("T")


def _tier(topology: Topology, tier: str) -> ProofpointTier | None:
    found = topology.tiers.get(tier)
    return found if isinstance(found, ProofpointTier) else None


def admin_api(flavour: str) -> Callable[[Topology, str], bool]:
    """``Probe.applies``: the tier is a Proofpoint of this flavour with its admin API."""
    def applies(topology: Topology, tier: str) -> bool:
        found = _tier(topology, tier)
        return found is not None and found.flavour == flavour and found.api is not None
    return applies


def tap_declared(topology: Topology, tier: str) -> bool:
    found = _tier(topology, tier)
    return found is not None and found.tap is not None


def api_of(ctx: ProbeContext) -> ProofpointApi:
    found = _tier(ctx.topology, ctx.tier)
    assert found is not None and found.api is not None  # Probe.applies saw to it
    return found.api


@dataclass(frozen=True)
class NextHop:
    """A tier that receives mail straight from the gateway, and its declared hosts."""

    tier: str
    hosts: tuple[str, ...]


def next_hops(ctx: ProbeContext) -> tuple[NextHop, ...]:
    return tuple(NextHop(t, tuple(ctx.topology.inbound_hosts(t)))
                 for t in ctx.flow.next_hops(ctx.tier))


def since(ctx: ProbeContext) -> dt.timedelta:
    """How far back to search (``--since``): the one place the probes read it."""
    return ctx.target.since


def window(ctx: ProbeContext) -> tuple[dt.datetime, dt.datetime]:
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return end - since(ctx), end


def duration(span: dt.timedelta) -> str:
    """``--since`` as an admin wrote it: 90m, 24h, 7d."""
    seconds = int(span.total_seconds())
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def unavailable(api: str, reason: str, evidence: Sequence[Evidence] | None = None
                ) -> NotTested:
    """*Not tested*, with the reason and the attempts as evidence — never a fault."""
    finding = Finding("PP_API_UNAVAILABLE", {"api": api, "reason": reason}, evidence or [])
    return NotTested(f"{api}: {reason}", [finding])


def client(api: str, make: Callable[[], T]) -> T:
    """The tier's client of this API, built by the engine; *not tested* when it cannot be
    (the reason names the credential variable that is unset, never its value)."""
    try:
        return make()
    except ClientUnavailable as exc:
        raise unavailable(api, exc.reason) from None


async def ask(api: str, call: Awaitable[T]) -> T:
    """Await one API call; an API that cannot be asked raises *not tested*."""
    try:
        return await call
    except ApiError as exc:
        raise unavailable(api, exc.reason, exc.evidence()) from None


def payload(api: str, response: ApiResponse, parse: Callable[[Any], T]) -> T:
    """Parse a response's body, or explain why it cannot be judged (*not tested*)."""
    if response.status == 404:
        raise unavailable(api, f"HTTP 404 for {response.url}: not this API, or not at this "
                          "URL", [response.evidence()])
    if not response.is_json:
        raise unavailable(api, "the answer is not JSON", [response.evidence()])
    try:
        return parse(response.data)
    except PayloadError as exc:
        raise unavailable(api, str(exc), [response.evidence()]) from None
