"""Quarantine (PPS / PoD ``GET /rest/v1/quarantine``): messages for the recipient held in
the gateway's quarantine folders over ``--since``, with folder, rule, sender and date.

Read-only: the list only; releasing a message is the admin's decision, made in the admin
console, never here. The list takes one folder per request (the server's default is
``Quarantine``); the topology's ``quarantine_folders`` names others
(reference/proofpoint.md §3).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mailtrace.clients.proofpoint.http import ApiResponse
from mailtrace.clients.proofpoint.records import QuarantineRecord, parse_quarantine
from mailtrace.core.findings import Finding
from mailtrace.core.journey import Event, JourneyStep, iso
from mailtrace.probes.base import NotTested, Probe, ProbeContext
from mailtrace.probes.proofpoint.access import (
    admin_api,
    api_of,
    ask,
    client,
    duration,
    payload,
    since,
    window,
)

API = "Proofpoint quarantine"
DEFAULT_FOLDER = "Quarantine"


@dataclass(frozen=True)
class QuarantineCheck:
    recipient: str
    since: dt.timedelta
    folders: tuple[str, ...]  # as asked; "" = the server's default folder
    responses: tuple[ApiResponse, ...]
    tier: str = "proofpoint"


async def collect(ctx: ProbeContext) -> QuarantineCheck:
    recipient = ctx.target.recipient
    if recipient is None:
        raise NotTested("the quarantine list is searched by recipient: give --recipient")
    pps = client(API, lambda: ctx.clients.pps(ctx.tier))
    start, end = window(ctx)
    folders = tuple(api_of(ctx).quarantine_folders) or ("",)
    responses = [await ask(API, pps.quarantine(recipient, start, end, ctx.deadline,
                                               folder or None, sender=ctx.target.sender,
                                               subject=ctx.target.subject))
                 for folder in folders]
    return QuarantineCheck(recipient, since(ctx), folders, tuple(responses), ctx.tier)


def _held(check: QuarantineCheck) -> list[QuarantineRecord]:
    held: list[QuarantineRecord] = []
    for response in check.responses:
        records, _ = payload(API, response, parse_quarantine)
        wanted = check.recipient.lower()
        held += [r for r in records if not r.recipients or wanted in r.recipients]
    return held


def journey(check: QuarantineCheck) -> list[JourneyStep]:
    """Each message held, in its folder: the quarantine list's part of the journey."""
    try:
        held = _held(check)
    except NotTested:
        return []  # evaluate says why the list cannot be read
    return [JourneyStep(check.tier, Event.QUARANTINED,
                        f"Proofpoint holds the message from {r.sender or 'an unknown sender'} "
                        f"in quarantine folder {r.folder or 'unknown'} "
                        f"(rule {r.rule or 'not listed'})",
                        "quarantine", at=iso(r.when), message_id=r.message_id,
                        sender=r.sender, recipient=check.recipient, subject=r.subject,
                        tag="PP_QUARANTINE_HOLDS")
            for r in held]


def evaluate(check: QuarantineCheck) -> list[Finding]:
    held = _held(check)
    folders = ", ".join(f or DEFAULT_FOLDER for f in check.folders)
    span = duration(check.since)
    evidence = [r.evidence() for r in check.responses]
    if not held:
        return [Finding("PP_QUARANTINE_CLEAR",
                        {"recipient": check.recipient, "folders": folders, "since": span},
                        evidence)]
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    held.sort(key=lambda r: r.when or epoch, reverse=True)
    latest = held[0]
    return [Finding("PP_QUARANTINE_HOLDS", {
        "recipient": check.recipient, "count": len(held), "since": span,
        "folder": latest.folder or "unknown folder", "rule": latest.rule or "not listed",
        "sender": latest.sender or "unknown sender", "date": latest.date or "unknown date",
    }, evidence + [r.evidence() for r in held[:10]])]


PROBE = Probe(
    id="proofpoint.quarantine",
    asks="api",
    needs_recipient=True,
    kinds=frozenset({"proofpoint"}),
    tags=frozenset({"PP_API_UNAVAILABLE", "PP_QUARANTINE_CLEAR", "PP_QUARANTINE_HOLDS"}),
    collect=collect,
    evaluate=evaluate,
    journey=journey,
    deadline=12.0,
    summary="the gateway's quarantine: messages held for the recipient (folder, rule, "
    "sender, date)",
    applies=admin_api("pod"),
)
