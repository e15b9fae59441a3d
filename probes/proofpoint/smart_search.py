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
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailtrace.clients.proofpoint import SMART_SEARCH_COUNT
from mailtrace.clients.proofpoint.http import ApiResponse
from mailtrace.clients.proofpoint.records import PayloadError, SearchRecord, parse_smart_search
from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.core.journey import Event, JourneyStep, iso
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
    tier: str = "proofpoint"
    #: The message asked about, in words, when the triage follows one (--from...).
    asked: str | None = None


def searched_for(ctx: ProbeContext) -> str:
    return ctx.target.recipient or f"*@{ctx.target.domain}"


async def collect(ctx: ProbeContext) -> SearchCheck:
    pps = client(API, lambda: ctx.clients.pps(ctx.tier))
    start, end = window(ctx)
    recipient = searched_for(ctx)
    target = ctx.target
    response = await ask(API, pps.smart_search(
        recipient, start, end, ctx.deadline, sender=target.sender,
        message_id=target.message_id, subject=target.subject))
    return SearchCheck(recipient, since(ctx), SMART_SEARCH_COUNT, response, next_hops(ctx),
                       ctx.tier, target.message if target.asks_message else None)


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
    only one — unless sendmail names a host no next hop declares (the gateway routes the
    mail somewhere the topology does not say: that is the gateway's doing); None when it
    cannot be told (the finding then stays with the gateway)."""
    relay = _host(r.relay) if r.relay else None
    for hop in hops:
        if relay and relay in {_host(h) for h in hop.hosts}:
            return hop
    undeclared = relay is not None and not _is_address(relay)
    return hops[0] if len(hops) == 1 and not undeclared else None


def _host(text: str) -> str:
    """A host name or address as sendmail and the topology may write it: lower case, no
    trailing dot, an address in its canonical form (``[IPv6:2001:db8::25]``, RFC 5321
    §4.1.3, is ``2001:db8::25``)."""
    bare = text.strip().strip("[]").lower().rstrip(".").removeprefix("ipv6:")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return bare


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


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


def _steps(r: SearchRecord, check: SearchCheck) -> list[JourneyStep]:
    """What the gateway's log says of one message: received, then its final action and,
    when it passed it on, the next hop's answer (filed at that next hop's tier)."""
    common: dict[str, Any] = {"source": "smart-search", "message_id": r.message_id,
                              "sender": r.sender, "subject": r.subject,
                              "recipient": check.recipient, "at": iso(r.when)}
    who = r.sender or "an unknown sender"
    steps = [JourneyStep(check.tier, Event.RECEIVED,
                         f"Proofpoint received the message from {who}", **common)]
    rule = r.quarantine_rule or r.final_rule or "none"
    outcome = _outcome(r)
    if outcome == "rejected":
        steps.append(JourneyStep(check.tier, Event.REJECTED, f"Proofpoint refused the "
                                 f"message from {who}: final action {r.action}, rule {rule}",
                                 tag="PP_MESSAGE_REJECTED", **common))
    elif outcome == "quarantined":
        steps.append(JourneyStep(check.tier, Event.QUARANTINED, f"Proofpoint quarantined "
                                 f"the message from {who} in folder "
                                 f"{r.quarantine_folder or 'unknown'}, rule {rule}",
                                 tag="PP_MESSAGE_QUARANTINED", **common))
    elif outcome == "retry":
        steps.append(JourneyStep(check.tier, Event.DEFERRED, f"Proofpoint told the sender "
                                 f"to retry later (rule {rule})", tag="PP_MESSAGE_RETRY",
                                 **common))
    elif outcome == "accepted" and r.onward != "unknown":
        hop = _subject(r, check.next_hops)
        there = hop.tier if hop else check.tier
        name = hop.tier if hop else "the next hop"
        if r.onward == "sent":
            steps.append(JourneyStep(check.tier, Event.RELAYED, f"Proofpoint relayed it to "
                                     f"{name}: {r.sendmail_stat or 'sent'}",
                                     tag="PP_MESSAGE_DELIVERED", **common))
        elif r.onward == "deferred":
            steps.append(JourneyStep(there, Event.DEFERRED, f"{name} answered "
                                     f"{r.reply or 'a temporary error'} when Proofpoint passed "
                                     "the message on: it waits in Proofpoint's queue",
                                     tag="PP_ONWARD_DELIVERY_DEFERRED", **common))
        else:
            steps.append(JourneyStep(there, Event.BOUNCED, f"{name} refused the message when "
                                     f"Proofpoint passed it on: {r.reply or 'refused'}",
                                     tag="PP_ONWARD_DELIVERY_FAILED", **common))
    return steps


def journey(check: SearchCheck) -> list[JourneyStep]:
    """Every message Smart Search found, step by step; for a message asked about that it
    did not find, that Proofpoint did not see it (itself evidence)."""
    try:
        records, _ = parse_smart_search(check.response.data) if check.response.is_json \
            else ([], 0)
    except PayloadError:
        return []  # evaluate says why the answer cannot be read
    mine = _for_recipient(records, check.recipient)
    if not mine:
        if check.asked is None:
            return []
        return [JourneyStep(check.tier, Event.NOT_SEEN,
                            f"Proofpoint has no {check.asked} for {check.recipient} in the "
                            f"last {duration(check.since)} (Smart Search)",
                            "smart-search", recipient=check.recipient,
                            tag="PP_SEARCH_NO_MESSAGES")]
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return [s for r in sorted(mine, key=lambda r: r.when or epoch) for s in _steps(r, check)]


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
    journey=journey,
    deadline=12.0,
    summary="Smart Search: the gateway's final action on the latest message, and the "
    "next hop's answer when it passed it on",
    applies=admin_api("pod"),
)
