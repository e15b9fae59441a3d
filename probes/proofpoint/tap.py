"""TAP SIEM v2 (``/v2/siem/all``): threat messages for the recipient, blocked or delivered.

Threat-only, and every finding says so: TAP lists only messages tied to a known threat
(URL or attachment defense). It never shows a clean message, so "no threat" is no
evidence that mail was delivered, and nothing here can fail a tier. Limits
(reference/proofpoint.md §1): at most one hour per request, at most twelve hours back,
1 800 requests per 24 h per credential, then HTTP 429 without Retry-After — so the probe
asks hour by hour, newest first (a few hours at once), asks no new hour after the first
refusal, and reports how many hours it covered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from dataclasses import dataclass

from mailtrace.clients.proofpoint import TAP_LOOKBACK, TAP_WINDOW
from mailtrace.clients.proofpoint.http import ApiError, ApiResponse
from mailtrace.clients.proofpoint.records import ThreatMessage, parse_siem
from mailtrace.core.findings import Finding
from mailtrace.probes.base import Probe, ProbeContext
from mailtrace.probes.proofpoint.access import (
    client,
    payload,
    since,
    tap_declared,
    unavailable,
)

API = "Proofpoint TAP SIEM"
TAP_SHORTEST = dt.timedelta(minutes=1)  # the API refuses intervals under 30 s
WORKERS = 3  # hours asked at once


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    response: ApiResponse


@dataclass(frozen=True)
class TapCheck:
    recipient: str | None
    domain: str
    asked: dt.timedelta  # min(--since, 12 h)
    windows: tuple[Window, ...]
    stopped: str | None = None  # why later windows were not asked


def windows(end: dt.datetime, since: dt.timedelta) -> list[tuple[dt.datetime, dt.datetime]]:
    """One-hour intervals, newest first, covering ``min(since, 12 h)`` back from ``end``."""
    span = max(min(since, TAP_LOOKBACK), TAP_SHORTEST)
    count = max(1, math.ceil(span / TAP_WINDOW))
    out = []
    for i in range(count):
        stop = end - i * TAP_WINDOW
        out.append((max(stop - TAP_WINDOW, end - span), stop))
    return out


async def collect(ctx: ProbeContext) -> TapCheck:
    tap = client(API, lambda: ctx.clients.tap(ctx.tier))
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    pending = windows(end, since(ctx))  # newest first
    done: list[Window] = []
    refused: list[ApiError] = []

    async def worker() -> None:
        # After the first refusal no new window is asked: a 429 means the quota is spent,
        # and asking again would only spend tomorrow's.
        while pending and not refused:
            start, stop = pending.pop(0)
            try:
                done.append(Window(start, stop, await tap.siem_all(start, stop, ctx.deadline)))
            except ApiError as exc:
                refused.append(exc)

    await asyncio.gather(*(worker() for _ in range(min(WORKERS, len(pending)))))
    if refused and not done:
        raise unavailable(API, refused[0].reason, refused[0].evidence())
    done.sort(key=lambda w: w.end, reverse=True)
    return TapCheck(ctx.target.recipient, ctx.target.domain, min(since(ctx), TAP_LOOKBACK),
                    tuple(done), refused[0].reason if refused else None)


def _hours(span: dt.timedelta) -> str:
    return f"{span.total_seconds() / 3600:g}"


def _mine(check: TapCheck, message: ThreatMessage) -> bool:
    if check.recipient:
        return check.recipient.lower() in message.recipients
    return any(r.endswith("@" + check.domain) for r in message.recipients)


def evaluate(check: TapCheck) -> list[Finding]:
    blocked: list[ThreatMessage] = []
    delivered: list[ThreatMessage] = []
    for w in check.windows:
        siem = payload(API, w.response, parse_siem)
        blocked += [m for m in siem.blocked if _mine(check, m)]
        delivered += [m for m in siem.delivered if _mine(check, m)]
    covered = sum((w.end - w.start for w in check.windows), dt.timedelta())
    who = check.recipient or f"@{check.domain}"
    hours = _hours(covered)
    requests = [w.response.evidence() for w in check.windows]
    findings: list[Finding] = []
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    for tag, found in (("PP_TAP_THREATS_BLOCKED", blocked),
                       ("PP_TAP_THREATS_DELIVERED", delivered)):
        if not found:
            continue
        found.sort(key=lambda m: m.when or epoch, reverse=True)
        latest = found[0]
        findings.append(Finding(tag, {
            "recipient": who, "count": len(found), "hours": hours,
            "classification": latest.classifications,
            "sender": ", ".join(latest.from_address) or latest.sender or "unknown sender",
            "time": latest.time or "unknown time",
        }, [*(m.evidence() for m in found[:10]), *requests]))
    if not findings:
        findings.append(Finding("PP_TAP_NO_THREATS", {"recipient": who, "hours": hours},
                                requests))
    if check.stopped:
        findings.append(Finding("PP_TAP_PARTIAL", {"hours": hours,
                                                   "asked": _hours(check.asked),
                                                   "reason": check.stopped}))
    return findings


PROBE = Probe(
    id="proofpoint.tap",
    asks="threats",
    kinds=frozenset({"proofpoint"}),
    tags=frozenset({"PP_API_UNAVAILABLE", "PP_TAP_THREATS_BLOCKED", "PP_TAP_THREATS_DELIVERED",
                    "PP_TAP_NO_THREATS", "PP_TAP_PARTIAL"}),
    collect=collect,
    evaluate=evaluate,
    deadline=20.0,
    summary="TAP (threat-only): threat messages for the recipient blocked or delivered, "
    "hour by hour over up to 12 h",
    applies=tap_declared,
)
