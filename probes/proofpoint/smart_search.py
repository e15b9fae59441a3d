"""Smart Search (PPS / PoD ``/rest/v1/pss/filter``): what the gateway did with the latest
message for the recipient, and what the next hop said when the gateway passed it on.

The latest message decides. A rejected or quarantined latest message is the gateway's
fault only when no other message reached the recipient in the window: a gateway that
delivers the recipient's other mail and filters one message is doing its job (the
finding still names the rule, as a warning).

Over SMTP a gateway can look healthy while it rejects, quarantines, or cannot deliver
onward; its own message log says which. The filter's verdict is ``Final_Action`` with
``Final_Rule`` (and ``Quarantine_Folder``/``Quarantine_Rule``); the onward delivery is
sendmail's ``Sendmail_Stat``/``Sendmail_Errorcode``/``Sendmail_To``. When the gateway
accepted the mail and the next hop refused it, the finding is *about the next hop*: the
verdict follows the evidence, not the API that reported it. Empty strings mean "not set"
(reference/proofpoint.md §3).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailtrace.clients.proofpoint import SMART_SEARCH_COUNT
from mailtrace.clients.proofpoint.http import ApiResponse
from mailtrace.clients.proofpoint.records import SearchRecord, parse_smart_search
from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.probes.base import Probe, ProbeContext
from mailtrace.probes.proofpoint.access import (
    NextHop,
    admin_api,
    ask,
    client,
    duration,
    next_hops,
    payload,
    since,
    window,
)

API = "Proofpoint Smart Search"
ACCEPTED = frozenset({"accept", "continue"})


@dataclass(frozen=True)
class SearchCheck:
    recipient: str  # the address searched, or *@domain for a domain triage
    since: dt.timedelta
    count: int  # the count asked for
    response: ApiResponse
    next_hops: tuple[NextHop, ...]


def searched_for(ctx: ProbeContext) -> str:
    return ctx.target.recipient or f"*@{ctx.target.domain}"


async def collect(ctx: ProbeContext) -> SearchCheck:
    pps = client(API, lambda: ctx.clients.pps(ctx.tier))
    start, end = window(ctx)
    recipient = searched_for(ctx)
    response = await ask(API, pps.smart_search(recipient, start, end, ctx.deadline))
    return SearchCheck(recipient, since(ctx), SMART_SEARCH_COUNT, response, next_hops(ctx))


def _for_recipient(records: list[SearchRecord], recipient: str) -> list[SearchRecord]:
    """The records for the recipient (Smart Search matches partially; a record that lists
    no recipient is kept)."""
    if recipient.startswith("*"):
        return records
    wanted = recipient.lower()
    return [r for r in records if not r.recipients or wanted in r.recipients]


def _latest(records: list[SearchRecord]) -> SearchRecord:
    """The most recent record; records without a readable date count as the oldest."""
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return max(enumerate(records), key=lambda p: (p[1].when or epoch, p[0]))[1]


def _outcome(r: SearchRecord) -> str:
    """rejected | quarantined | accepted | retry | unknown, from the final action."""
    action = r.action
    if action == "reject" or (action == "discard" and not r.quarantine_folder):
        return "rejected"
    if action in ("quarantine", "discard") or (not action and r.quarantine_folder):
        return "quarantined"
    if action in ACCEPTED:
        return "accepted"
    if action == "retry":
        return "retry"
    return "unknown"


def _subject(r: SearchRecord, hops: tuple[NextHop, ...]) -> NextHop | None:
    """The next hop the onward result is about: the one sendmail relayed to, else the
    only one; None when it cannot be told (the finding then stays with the gateway)."""
    for hop in hops:
        if r.relay and r.relay in hop.hosts:
            return hop
    return hops[0] if len(hops) == 1 else None


def evaluate(check: SearchCheck) -> list[Finding]:
    records, _ = payload(API, check.response, parse_smart_search)
    span = duration(check.since)
    findings: list[Finding] = []
    if len(records) >= check.count:
        findings.append(Finding("PP_SEARCH_LIMIT_REACHED",
                                {"count": check.count, "recipient": check.recipient},
                                [check.response.evidence()]))
    mine = _for_recipient(records, check.recipient)
    if not mine:
        findings.append(Finding("PP_SEARCH_NO_MESSAGES",
                                {"recipient": check.recipient, "since": span},
                                [check.response.evidence()]))
        return findings
    latest = _latest(mine)
    evidence = [check.response.evidence(), latest.evidence()]
    evidence += [r.evidence() for r in mine if r is not latest][:9]
    base = {"recipient": check.recipient, "sender": latest.sender or "unknown sender",
            "date": latest.date or "unknown date", "rule": latest.final_rule or "none",
            "guid": latest.guid or ""}
    outcome = _outcome(latest)
    # Other messages delivered in the window: mail flows, and the gateway filtered this
    # one (spam is rejected every day) — shown, but no fault of the tier.
    delivered = [r for r in mine if r is not latest and _outcome(r) == "accepted"
                 and r.onward in ("sent", "unknown")]
    if outcome in ("rejected", "quarantined") and delivered:
        how = latest.action if outcome == "rejected" else \
            f"quarantined in {latest.quarantine_folder or 'an unknown folder'}"
        rule = latest.quarantine_rule or latest.final_rule or "none"
        findings.append(Finding("PP_MESSAGE_FILTERED", {
            **base, "outcome": how, "rule": rule, "delivered": len(delivered),
            "since": span}, evidence))
    elif outcome == "rejected":
        findings.append(Finding("PP_MESSAGE_REJECTED", {**base, "action": latest.action},
                                evidence))
    elif outcome == "quarantined":
        folder = latest.quarantine_folder or "unknown folder"
        rule = latest.quarantine_rule or latest.final_rule or "none"
        findings.append(Finding("PP_MESSAGE_QUARANTINED",
                                {**base, "folder": folder, "rule": rule}, evidence))
    elif outcome == "retry":
        findings.append(Finding("PP_MESSAGE_RETRY", base, evidence))
    elif outcome == "unknown":
        findings.append(Finding("PP_MESSAGE_ACTION_UNKNOWN",
                                {**base, "action": latest.final_action or "none"}, evidence))
    else:
        findings += _onward(latest, base, check, span, len(mine), evidence)
    return findings


def _onward(latest: SearchRecord, base: dict[str, Any], check: SearchCheck, span: str,
            count: int, evidence: Sequence[Evidence]) -> list[Finding]:
    onward = latest.onward
    stat = latest.sendmail_stat or "not logged"
    accepted = {**base, "count": count, "since": span, "stat": stat}
    if onward == "sent":
        return [Finding("PP_MESSAGE_DELIVERED", accepted, evidence)]
    if onward == "unknown":
        return [Finding("PP_MESSAGE_ACCEPTED", accepted, evidence)]
    hop = _subject(latest, check.next_hops)
    args = {**base, "code": latest.sendmail_errorcode or "", "stat": stat,
            "reply": latest.reply or stat,
            "next_tier": hop.tier if hop else "the next hop",
            "relay": latest.relay or latest.sendmail_to or ""}
    tag = "PP_ONWARD_DELIVERY_FAILED" if onward == "bounced" else "PP_ONWARD_DELIVERY_DEFERRED"
    return [Finding("PP_MESSAGE_ACCEPTED", accepted, evidence[:2]),
            Finding(tag, args, evidence, about=hop.tier if hop else None)]


PROBE = Probe(
    id="proofpoint.smart_search",
    asks="api",
    kinds=frozenset({"proofpoint"}),
    tags=frozenset({
        "PP_API_UNAVAILABLE", "PP_SEARCH_LIMIT_REACHED", "PP_SEARCH_NO_MESSAGES",
        "PP_MESSAGE_REJECTED", "PP_MESSAGE_QUARANTINED", "PP_MESSAGE_FILTERED",
        "PP_MESSAGE_RETRY",
        "PP_MESSAGE_ACTION_UNKNOWN", "PP_MESSAGE_DELIVERED", "PP_MESSAGE_ACCEPTED",
        "PP_ONWARD_DELIVERY_FAILED", "PP_ONWARD_DELIVERY_DEFERRED",
    }),
    collect=collect,
    evaluate=evaluate,
    deadline=12.0,
    summary="Smart Search: the gateway's final action on the latest message, and the "
    "next hop's answer when it passed it on",
    applies=admin_api("pod"),
)
