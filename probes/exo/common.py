"""What every Exchange Online probe shares: the tier's Graph client, and how a Graph
failure becomes *not tested* with its evidence (never a failed tier)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from mailtrace.clients.msgraph.client import (
    Exchange,
    GraphBadResponse,
    GraphClient,
    GraphDenied,
    GraphError,
    GraphNotFound,
    GraphThrottled,
    GraphUnavailable,
    Listing,
    Request,
    load_sdk,
    sdk_loaded,
)
from mailtrace.core.findings import Finding
from mailtrace.probes.base import ClientUnavailable, NotTested, ProbeContext
from mailtrace.topology.model import ExchangeOnlineTier, GraphAccess, Topology

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

GRAPH_FAILURE_TAGS = frozenset({
    "EXO_GRAPH_NOT_CONFIGURED", "EXO_GRAPH_DENIED", "EXO_GRAPH_THROTTLED",
    "EXO_GRAPH_UNAVAILABLE", "EXO_GRAPH_BAD_RESPONSE",
})


def graph_access(topology: Topology, tier: str) -> GraphAccess | None:
    t = topology.tiers.get(tier)
    return t.graph if isinstance(t, ExchangeOnlineTier) else None


def has_graph(topology: Topology, tier: str) -> bool:
    """``Probe.applies``: the Graph probes run only for a tier that declares ``graph:``."""
    return graph_access(topology, tier) is not None


def tenant_of(topology: Topology, tier: str) -> str | None:
    t = topology.tiers.get(tier)
    return t.tenant if isinstance(t, ExchangeOnlineTier) else None


async def client(ctx: ProbeContext) -> GraphClient:
    """The tier's Graph client, made once per run and shared by its probes."""
    # msgraph's request path takes a few tenths of a second to import: in a thread, so
    # the event loop (the DNS probes running meanwhile) is not held up.
    if not sdk_loaded():
        await asyncio.to_thread(load_sdk)
    try:
        return ctx.clients.graph(ctx.tier)
    except ClientUnavailable as exc:
        raise NotTested(f"Microsoft Graph is not usable as declared: {exc.reason}", [Finding(
            "EXO_GRAPH_NOT_CONFIGURED", {"tier": ctx.tier, "reason": exc.reason})]) from None


def permission_kind(ctx: ProbeContext) -> str:
    access = graph_access(ctx.topology, ctx.tier)
    return "delegated" if access is not None and access.auth == "device-code" else "application"


async def ask(ctx: ProbeContext, call: str, permission: str, request: Request,
              model: type[M]) -> tuple[M, Exchange]:
    """One Graph call, its answer read as ``model``; a 404 is raised as
    :class:`GraphNotFound` for the caller to read, every other failure becomes *not
    tested* naming what is missing."""
    graph = await client(ctx)
    try:
        return await graph.ask(call, request, model, ctx.deadline)
    except GraphNotFound:
        raise
    except GraphError as exc:
        raise not_tested(ctx, exc, call, permission) from None


async def ask_all(ctx: ProbeContext, call: str, permission: str, request: Request,
                  item: type[M]) -> tuple[Listing[M], Exchange]:
    """Like :func:`ask`, for a collection read page after page (``@odata.nextLink``)."""
    graph = await client(ctx)
    try:
        return await graph.ask_all(call, request, item, ctx.deadline)
    except GraphNotFound:
        raise
    except GraphError as exc:
        raise not_tested(ctx, exc, call, permission) from None


def not_tested(ctx: ProbeContext, exc: GraphError, call: str, permission: str) -> NotTested:
    """The *not tested* outcome of a failed Graph call, with the exchange as evidence."""
    status = exc.exchange.status
    evidence = [exc.exchange.evidence(error=str(exc))]
    if isinstance(exc, GraphDenied):
        kind = permission_kind(ctx)
        args: dict[str, Any] = {"call": call, "status": status, "code": exc.code or "",
                                "permission": permission, "kind": kind}
        return NotTested(f"Graph refused {call} ({status} {exc.code or ''}): grant the "
                         f"{kind} permission {permission}",
                         [Finding("EXO_GRAPH_DENIED", args, evidence)])
    if isinstance(exc, GraphThrottled):
        wait = exc.retry_after
        after = f"{wait:g} s" if wait is not None else "unknown"
        return NotTested(f"Graph throttled {call} ({status}; Retry-After {after}, past the "
                         "deadline)", [Finding("EXO_GRAPH_THROTTLED",
                                               {"call": call, "status": status,
                                                "retry_after": after}, evidence)])
    if isinstance(exc, GraphBadResponse):
        return NotTested(f"Graph's answer to {call} could not be read: {exc}",
                         [Finding("EXO_GRAPH_BAD_RESPONSE", {"call": call, "status": status,
                                                             "error": str(exc)}, evidence)])
    assert isinstance(exc, GraphUnavailable | GraphNotFound)
    return NotTested(f"Graph did not answer {call}: {exc}",
                     [Finding("EXO_GRAPH_UNAVAILABLE", {"call": call, "error": str(exc)},
                              evidence)])


def first_failure(results: list[Any]) -> BaseException | None:
    """The first exception among ``gather(..., return_exceptions=True)`` results."""
    return next((r for r in results if isinstance(r, BaseException)), None)
