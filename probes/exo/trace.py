"""Message trace for the recipient over a window (``--since``, default 24 h).

Graph v1.0 ``GET /admin/exchange/tracing/messageTraces`` filtered by recipient and
``receivedDateTime`` (both bounds, at most 10 days, reference §5), then, for the
messages that were not delivered, ``getDetailsByRecipient`` — at the same time, a few at
most (the API allows 100 requests per 5 minutes per tenant). Global cloud only. Before
the first call works, the tenant must have the service principal of Microsoft's app
8bd644d1-64a1-4d4b-ae52-2e0cbf64e373; until then Graph answers 401.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mailtrace.clients.msgraph.client import GraphDenied, GraphError
from mailtrace.clients.msgraph.models import MessageTrace, MessageTraceDetail
from mailtrace.core.evidence import Evidence, Observed
from mailtrace.core.findings import Finding
from mailtrace.probes.base import NotTested, Probe, ProbeContext
from mailtrace.probes.exo.common import GRAPH_FAILURE_TAGS, client, has_graph, not_tested
from mailtrace.probes.exo.directory import quoted

PERMISSION = "ExchangeMessageTrace.Read.All"
TRACE_APP_ID = "8bd644d1-64a1-4d4b-ae52-2e0cbf64e373"
PREREQUISITE = (f"the tenant needs the service principal of Microsoft's message trace app "
                f"{TRACE_APP_ID} (New-MgServicePrincipal -AppId {TRACE_APP_ID})")
MAX_WINDOW = dt.timedelta(days=10)
MAX_DETAILS = 5
NOT_DELIVERED = ("quarantined", "failed", "filteredasspam", "pending", "gettingstatus",
                 "unknown")


@dataclass(frozen=True)
class TracedMessage:
    id: str
    sender: str
    subject: str
    received: str | None
    status: str  # lower-case exchangeMessageTraceStatus, "unknown" when unreadable
    events: tuple[dict[str, Any], ...] = ()  # details by recipient, when asked

    def evidence(self) -> dict[str, Any]:
        ev: dict[str, Any] = {"id": self.id, "senderAddress": self.sender, "subject": self.subject,
                        "receivedDateTime": self.received, "status": self.status}
        if self.events:
            ev["details"] = list(self.events)
        return ev


@dataclass(frozen=True)
class TraceCheck:
    address: str
    window: str  # e.g. "24 h"
    messages: tuple[TracedMessage, ...]
    truncated: bool = False
    evidence: tuple[Evidence, ...] = ()


def window_text(since: dt.timedelta) -> str:
    hours = since.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def trace_filter(address: str, start: dt.datetime, end: dt.datetime) -> str:
    return (f"recipientAddress eq {quoted(address)} and receivedDateTime ge {_time(start)} "
            f"and receivedDateTime le {_time(end)}")


def _status(value: str | None) -> str:
    return value.lower() if value else "unknown"


def _denied(ctx: ProbeContext, exc: GraphError, call: str) -> NotTested:
    outcome = not_tested(ctx, exc, call, PERMISSION)
    if isinstance(exc, GraphDenied) and "service principal" in str(exc).lower():
        return NotTested(f"message trace refused: {PREREQUISITE}", [Finding(
            "EXO_TRACE_PREREQUISITE_MISSING", {"app_id": TRACE_APP_ID},
            [exc.exchange.evidence(error=str(exc))])])
    if isinstance(exc, GraphDenied):
        return NotTested(f"{outcome.reason}; and {PREREQUISITE}", outcome.findings)
    return outcome


async def collect(ctx: ProbeContext) -> TraceCheck:
    graph = await client(ctx)  # first: it loads the SDK without holding the event loop
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.admin.exchange.tracing.message_traces.message_traces_request_builder import (  # noqa: E501
        MessageTracesRequestBuilder,
    )

    address = ctx.target.recipient
    if address is None:
        raise NotTested("triage by domain: message trace needs --recipient")
    if not graph.target.cloud.message_trace:
        raise NotTested(f"Graph message trace exists in the global cloud only, not in "
                        f"{graph.target.cloud.name}", [Finding(
                            "EXO_TRACE_NOT_AVAILABLE", {"cloud": graph.target.cloud.name})])
    since = min(ctx.target.since, MAX_WINDOW)
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    params = MessageTracesRequestBuilder.MessageTracesRequestBuilderGetQueryParameters(
        filter=trace_filter(address, end - since, end), top=1000)
    config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=params)
    try:
        listing, exchange = await graph.ask_all(
            "list message traces",
            lambda sdk: sdk.admin.exchange.tracing.message_traces.to_get_request_information(
                config), MessageTrace, ctx.deadline)
    except GraphError as exc:
        raise _denied(ctx, exc, "list message traces") from None
    messages = [TracedMessage(str(m.id or ""), str(m.sender_address or ""),
                              str(m.subject or ""),
                              _time(m.received_date_time) if m.received_date_time else None,
                              _status(m.status))
                for m in listing.items
                if (m.recipient_address or address).lower() == address.lower()]
    evidence = [exchange.evidence(count=len(messages))]

    async def details(message: TracedMessage) -> TracedMessage:
        call = "get message trace details by recipient"
        try:
            answer, ex = await graph.ask_all(
                call, lambda sdk: sdk.admin.exchange.tracing.message_traces
                .by_exchange_message_trace_id(message.id)
                .get_details_by_recipient_with_recipient_address(address)
                .to_get_request_information(), MessageTraceDetail, ctx.deadline)
        except GraphError as exc:  # the trace itself still stands as evidence
            return TracedMessage(**{**vars(message), "events": (
                {"error": str(exc), "request": exc.exchange.evidence()["request"]},)})
        events = tuple({"dateTime": _time(d.date_time) if d.date_time else None,
                        "event": d.event, "action": d.action, "description": d.description}
                       for d in answer.items)
        evidence.append(ex.evidence(message=message.id, events=len(events)))
        return TracedMessage(**{**vars(message), "events": events})

    undelivered = [m for m in messages if m.status in NOT_DELIVERED and m.id][:MAX_DETAILS]
    detailed = {m.id: m for m in await asyncio.gather(*(details(m) for m in undelivered))}
    messages = [detailed.get(m.id, m) for m in messages]
    return TraceCheck(address, window_text(since), tuple(messages),
                      not listing.complete, tuple(evidence))


TAG_OF = {"quarantined": "EXO_TRACE_QUARANTINED", "failed": "EXO_TRACE_FAILED",
          "filteredasspam": "EXO_TRACE_FILTERED_AS_SPAM", "pending": "EXO_TRACE_PENDING",
          "gettingstatus": "EXO_TRACE_PENDING"}


def evaluate(check: TraceCheck) -> list[Finding]:
    counts = Counter(m.status for m in check.messages)
    base = {"address": check.address, "window": check.window}
    if not check.messages:
        return [Finding("EXO_TRACE_NO_MESSAGES", base, list(check.evidence))]
    findings = []
    for tag in dict.fromkeys(TAG_OF[m.status] for m in check.messages if m.status in TAG_OF):
        these = [m for m in check.messages if TAG_OF.get(m.status) == tag]
        senders = ", ".join(sorted({m.sender for m in these if m.sender})) or "unknown"
        findings.append(Finding(tag, {**base, "count": len(these), "senders": senders},
                                [*(Observed(m.evidence()) for m in these), *check.evidence]))
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    if check.truncated:
        statuses += " (not every page read)"
    findings.append(Finding("EXO_TRACE_SUMMARY", {**base, "statuses": statuses},
                            list(check.evidence)))
    return findings


PROBE = Probe(
    id="exo.trace",
    needs_recipient=True,
    kinds=frozenset({"exchange-online"}),
    tags=frozenset({"EXO_TRACE_QUARANTINED", "EXO_TRACE_FAILED", "EXO_TRACE_FILTERED_AS_SPAM",
                    "EXO_TRACE_PENDING", "EXO_TRACE_NO_MESSAGES", "EXO_TRACE_SUMMARY",
                    "EXO_TRACE_PREREQUISITE_MISSING", "EXO_TRACE_NOT_AVAILABLE",
                    *GRAPH_FAILURE_TAGS}),
    collect=collect,
    evaluate=evaluate,
    deadline=12.0,
    summary="message trace for the recipient over --since: what was quarantined, filtered "
            "as spam, failed or pending, with the details by recipient",
    applies=has_graph,
    permissions=(PERMISSION,),
)
