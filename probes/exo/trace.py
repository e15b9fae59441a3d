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
import dataclasses
import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mailtrace.clients.msgraph.client import GraphDenied, GraphError
from mailtrace.clients.msgraph.models import MessageTrace, MessageTraceDetail
from mailtrace.core.evidence import Evidence, Observed
from mailtrace.core.findings import Finding
from mailtrace.core.journey import Event, JourneyStep
from mailtrace.probes.base import NotTested, Probe, ProbeContext, Target
from mailtrace.probes.exo.common import GRAPH_FAILURE_TAGS, client, has_graph, not_tested
from mailtrace.probes.exo.directory import quoted
from mailtrace.probes.exo.hybrid import (
    OnPremRoute,
    handed_on,
    handoff,
    onprem_routes,
    with_addresses,
)

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
    message_id: str | None = None  # the Message-ID header, the join key across tiers

    def evidence(self) -> dict[str, Any]:
        ev: dict[str, Any] = {"id": self.id, "senderAddress": self.sender, "subject": self.subject,
                              "receivedDateTime": self.received, "status": self.status}
        if self.message_id:
            ev["messageId"] = self.message_id
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
    tier: str = "exchange-online"
    #: The message asked about, in words, when the triage follows one (--from...).
    asked: str | None = None
    #: Exchange hybrid: the on-premises tiers this tier hands mail to; their hand-offs
    #: (hybrid.handed_on) continue a message's journey there.
    routes: tuple[OnPremRoute, ...] = ()


def window_text(since: dt.timedelta) -> str:
    hours = since.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def trace_filter(address: str, start: dt.datetime, end: dt.datetime,
                 target: Target | None = None) -> str:
    """The $filter: the recipient and the window, and the keys of the message asked about
    that message trace can filter on (graph-exo reference §5: senderAddress and messageId
    eq, subject contains; a sending domain is matched here, after the answer)."""
    text = (f"recipientAddress eq {quoted(address)} and receivedDateTime ge {_time(start)} "
            f"and receivedDateTime le {_time(end)}")
    if target is not None:
        if target.sender and not target.sender.startswith("@"):
            text += f" and senderAddress eq {quoted(target.sender)}"
        if target.message_id:
            wanted = target.message_id.strip()
            wanted = wanted if wanted.startswith("<") else f"<{wanted}>"
            text += f" and messageId eq {quoted(wanted)}"
        if target.subject:
            text += f" and contains(subject,{quoted(target.subject)})"
    return text


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
        filter=trace_filter(address, end - since, end, ctx.target), top=1000)
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
                              _status(m.status), message_id=m.message_id or None)
                for m in listing.items
                if (m.recipient_address or address).lower() == address.lower()
                and _from_sender(str(m.sender_address or ""), ctx.target.sender)]
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
                        "event": d.event, "action": d.action, "description": d.description,
                        "data": (d.data or "")[:2048] or None}
                       for d in answer.items)
        evidence.append(ex.evidence(message=message.id, events=len(events)))
        return TracedMessage(**{**vars(message), "events": events})

    routes = onprem_routes(ctx.topology, ctx.flow, ctx.tier)
    # The details of what was not delivered; of the message asked about, whatever its
    # status (a message can be delivered to Junk Email); and, with an on-premises tier
    # behind, of delivered ones (a Send external event says it was handed on there). A few
    # at most, at the same time: the undelivered first, newest first (the latest decides).
    wanted = [m for m in messages if m.id and (
        m.status in NOT_DELIVERED or ctx.target.asks_message
        or (routes and m.status == "delivered"))]
    newest = sorted(wanted, key=lambda m: m.received or "", reverse=True)
    wanted = [*(m for m in newest if m.status in NOT_DELIVERED),
              *(m for m in newest if m.status not in NOT_DELIVERED)]
    detailed = {m.id: m for m in await asyncio.gather(
        *(details(m) for m in wanted[:MAX_DETAILS]))}
    messages = [detailed.get(m.id, m) for m in messages]
    if routes and any(_defers(m) for m in messages):  # Defer events name an endpoint by IP
        routes = await with_addresses(ctx, routes)
    return TraceCheck(address, window_text(since), tuple(messages),
                      not listing.complete, tuple(evidence), tier=ctx.tier,
                      asked=ctx.target.message if ctx.target.asks_message else None,
                      routes=routes)


def _from_sender(address: str, sender: str | None) -> bool:
    """A sending domain (``@domain``) is matched here; an address, by the $filter."""
    return not sender or not sender.startswith("@") or address.lower().endswith(sender)


TAG_OF = {"quarantined": "EXO_TRACE_QUARANTINED", "failed": "EXO_TRACE_FAILED",
          "filteredasspam": "EXO_TRACE_FILTERED_AS_SPAM", "pending": "EXO_TRACE_PENDING",
          "gettingstatus": "EXO_TRACE_PENDING", "deferred": "EXO_TRACE_DEFERRED"}
EVENT_OF = {"delivered": Event.DELIVERED, "filteredasspam": Event.JUNKED,
            "quarantined": Event.QUARANTINED, "failed": Event.FAILED,
            "pending": Event.PENDING, "gettingstatus": Event.PENDING,
            "expanded": Event.EXPANDED, "deferred": Event.DEFERRED}
#: How each status reads in a sentence about earlier messages.
OUTCOME_OF = {"quarantined": "quarantined", "failed": "not delivered (failed)",
              "filteredasspam": "filtered as spam", "pending": "still pending",
              "gettingstatus": "still pending", "deferred": "deferred"}
_MEP = re.compile(r'Name="(SCL|SFV|CAT)"\s+(?:Integer|String)="([^"]{1,16})"')


def junked(m: TracedMessage) -> bool:
    """Moved to Junk Email (the MoveToJmf event), whatever the status says."""
    return any(str(e.get("event") or "").lower() == "movetojmf" for e in m.events)


def status_of(m: TracedMessage) -> str:
    """The status as judged: a message moved to Junk Email was filtered as spam; a pending
    one whose details hold a Defer event waits in Exchange Online's queue (the next hop,
    e.g. Exchange Server on-premises, answered 4xx or could not be reached)."""
    if junked(m) and m.status == "delivered":
        return "filteredasspam"
    if m.status in ("pending", "gettingstatus") and _defers(m):
        return "deferred"
    return m.status


def spam_verdict(m: TracedMessage) -> str:
    """SCL, SFV and CAT from the details' event data (exchangeMessageTraceDetail.data)."""
    found = {k: v for e in m.events for k, v in _MEP.findall(str(e.get("data") or "")[:4096])}
    return ", ".join(f"{k} {found[k]}" for k in ("SCL", "SFV", "CAT") if k in found)


def journey(check: TraceCheck) -> list[JourneyStep]:
    """What message trace says Exchange Online did with each message: received, then
    its outcome (the details' events — Spam, MoveToJmf, Deliver, Fail, Quarantine — in
    the detail); for a message asked about that is not there, that it was not seen."""
    if not check.messages:
        if check.asked is None:
            return []
        return [JourneyStep(check.tier, Event.NOT_SEEN,
                            f"Exchange Online's message trace has no {check.asked} for "
                            f"{check.address} in the last {check.window}",
                            "message-trace", recipient=check.address,
                            tag="EXO_TRACE_NO_MESSAGES")]
    steps = []
    for m in sorted(check.messages, key=lambda m: m.received or ""):
        common: dict[str, Any] = {"source": "message-trace", "message_id": m.message_id,
                                  "sender": m.sender or None, "recipient": check.address,
                                  "subject": m.subject or None}
        steps.append(JourneyStep(check.tier, Event.RECEIVED,
                                 f"Exchange Online received the message from "
                                 f"{m.sender or 'an unknown sender'}", at=m.received,
                                 **common))
        status = status_of(m)
        event = EVENT_OF.get(status, Event.PENDING)
        onward = handed_on(m, check.address, check.tier, check.routes) if (
            event is Event.DELIVERED) else []
        if onward:  # Exchange hybrid: delivered to the connector to on-premises
            steps.extend(onward)
            continue
        # Queued for the connector to on-premises: the deferral is that tier's
        where = deferred_at(m, check) if event is Event.DEFERRED else check.tier
        events = [e for e in m.events if str(e.get("event") or "").lower() != "receive"]
        names = [str(e.get("event")) for e in events if e.get("event")]
        failure = next((str(e.get("description")) for e in events if str(
            e.get("event") or "").lower() in ("fail", "defer") and e.get("description")), "")
        verdict = spam_verdict(m)
        whose = f"the message from {m.sender}" if m.sender else "the message"
        detail = {
            Event.DELIVERED: f"Exchange Online delivered {whose} to the mailbox",
            Event.JUNKED: f"Exchange Online delivered {whose} to Junk Email",
            Event.QUARANTINED: f"Exchange Online quarantined {whose}",
            Event.FAILED: f"Exchange Online could not deliver {whose}",
            Event.EXPANDED: f"Exchange Online expanded {whose} to the group's members",
            Event.DEFERRED: f"Exchange Online holds {whose} in its queue and retries",
        }.get(event, f"Exchange Online has not finished with {whose} ({m.status})")
        detail += "".join((f": {verdict}" if verdict else "",
                           f": {failure}" if failure else "",
                           f" (events: {', '.join(names)})" if names else ""))
        at = max((str(e.get("dateTime")) for e in events if e.get("dateTime")),
                 default=m.received)
        steps.append(JourneyStep(where, event, detail, at=at,
                                 tag=TAG_OF.get(status, "EXO_TRACE_SUMMARY"), **common))
    return steps


def _defers(m: TracedMessage) -> list[dict[str, Any]]:
    return [e for e in m.events if str(e.get("event") or "").strip().lower() == "defer"]


def deferred_at(m: TracedMessage, check: TraceCheck) -> str:
    """The tier a deferral is about: the on-premises tier whose smart host or connector
    the Defer event names (Exchange hybrid), else Exchange Online itself."""
    found = handoff(_defers(m), check.routes) if check.routes else None
    return found[0].tier if found else check.tier


def evaluate(check: TraceCheck) -> list[Finding]:
    """The latest message decides: what became of it, if it was not delivered, is the
    tier's finding; what became of earlier ones (spam quarantined or junked every day, a
    message that failed and was sent again) is a note, counted."""
    messages = [dataclasses.replace(m, status=status_of(m)) for m in check.messages]
    check = dataclasses.replace(check, messages=tuple(messages))
    counts = Counter(m.status for m in check.messages)
    base = {"address": check.address, "window": check.window}
    if not check.messages:
        return [Finding("EXO_TRACE_NO_MESSAGES", base, list(check.evidence))]
    latest = max(check.messages, key=lambda m: m.received or "")
    findings = []
    for status in dict.fromkeys(m.status for m in check.messages if m.status in TAG_OF):
        these = [m for m in check.messages if m.status == status]
        senders = ", ".join(sorted({m.sender for m in these if m.sender})) or "unknown"
        evidence = [*(Observed(m.evidence()) for m in these), *check.evidence]
        args = {**base, "count": len(these), "senders": senders}
        if latest.status == status:
            about = deferred_at(latest, check) if status == "deferred" else None
            findings.append(Finding(TAG_OF[status], args, evidence,
                                    about=about if about != check.tier else None))
        else:
            findings.append(Finding("EXO_TRACE_EARLIER_NOT_DELIVERED", {
                **args, "outcome": OUTCOME_OF[status], "latest": latest.status}, evidence))
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    if check.truncated:
        statuses += " (not every page read)"
    findings.append(Finding("EXO_TRACE_SUMMARY", {**base, "statuses": statuses},
                            list(check.evidence)))
    return findings


PROBE = Probe(
    id="exo.trace",
    asks="api",
    needs_recipient=True,
    kinds=frozenset({"exchange-online"}),
    tags=frozenset({"EXO_TRACE_QUARANTINED", "EXO_TRACE_FAILED", "EXO_TRACE_FILTERED_AS_SPAM",
                    "EXO_TRACE_PENDING", "EXO_TRACE_DEFERRED", "EXO_TRACE_EARLIER_NOT_DELIVERED",
                    "EXO_TRACE_NO_MESSAGES", "EXO_TRACE_SUMMARY",
                    "EXO_TRACE_PREREQUISITE_MISSING", "EXO_TRACE_NOT_AVAILABLE",
                    *GRAPH_FAILURE_TAGS}),
    collect=collect,
    evaluate=evaluate,
    journey=journey,
    deadline=12.0,
    summary="message trace for the recipient over --since: what was quarantined, filtered "
            "as spam, failed or pending, with the details by recipient",
    applies=has_graph,
    permissions=(PERMISSION,),
)
