"""Follow one message across the tiers: the steps every per-message source reported
(the gateway's Smart Search and quarantine, Exchange Online's message trace), joined by
Message-ID — by sender and subject where a source has none — and put in flow order.

The message followed is the one asked about (``--message-id``), else the latest one that
matches the keys given (``--from``, ``--subject``), else the latest message to the
recipient. Where its journey stopped is the answer; the steps after a stop that only say
"not seen" are dropped (the message never got there), and a run of "not seen" keeps only
its first, the tier the message never reached — unless the tier before handed the message
on moments ago: a tier's records are written after the fact, so the message is not seen
there *yet* (pending), not lost. A second source saying what the one before said at the
same tier (the quarantine list after Smart Search) is shown once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable

from mailtrace.core.findings import TierResult
from mailtrace.core.journey import STOPS, Event, JourneyStep, TierOutcomes
from mailtrace.topology.flow import FlowGraph


def bare_id(message_id: str | None) -> str | None:
    """A Message-ID as a join key: without angle brackets and surrounding space."""
    if not message_id:
        return None
    return message_id.strip().strip("<>").strip() or None


def message_key(step: JourneyStep) -> tuple[str, ...]:
    """Which message a step is about: its Message-ID, else its sender and subject."""
    found = bare_id(step.message_id)
    if found:
        return ("id", found)
    return ("from", (step.sender or "").lower(), (step.subject or "").lower())


def steps_of(tiers: Iterable[TierResult]) -> list[JourneyStep]:
    """Every step every per-message source reported, of every message."""
    return [s for t in tiers for p in t.probes if p.reported_by is None for s in p.journey]


def _order(flow: FlowGraph) -> dict[str, int]:
    return {tier: i for i, tier in enumerate(flow.hops())}


#: How long after a hand-off the next tier's records may not show the message yet.
#: Microsoft documents no figure for message trace; a few minutes is usual, half an hour
#: is seen; the gateway's logs are quicker.
RECORD_LAG = dt.timedelta(minutes=30)


def follow(tiers: list[TierResult], flow: FlowGraph, message_id: str | None = None,
           now: dt.datetime | None = None) -> list[JourneyStep]:
    """The journey of one message, in flow order (``now``: when the sources were asked)."""
    steps = steps_of(tiers)
    order = _order(flow)
    seen = [s for s in steps if s.event is not Event.NOT_SEEN]
    groups: dict[tuple[str, ...], list[JourneyStep]] = {}
    for s in seen:
        groups.setdefault(message_key(s), []).append(s)
    chosen: list[JourneyStep] = []
    wanted = bare_id(message_id)
    if wanted is not None:
        chosen = groups.get(("id", wanted), [])
    elif groups:
        chosen = max(groups.values(), key=lambda g: max(s.at or "" for s in g))
    saw = {s.tier for s in chosen}
    asked_none = [s for s in steps if s.event is Event.NOT_SEEN and s.tier not in saw]
    journey = sorted([*chosen, *asked_none], key=lambda s: (
        order.get(s.tier, len(order)), s.event is not Event.RECEIVED, s.at or ""))
    return _not_yet(_trim(journey), now)


def _not_yet(journey: list[JourneyStep], now: dt.datetime | None) -> list[JourneyStep]:
    """A "not seen" right after the tier before relayed the message, within
    :data:`RECORD_LAG` of ``now``: pending there, its record not written yet."""
    out: list[JourneyStep] = []
    for step in journey:
        before = out[-1] if out else None
        relayed = _when(before.at) if before and before.event is Event.RELAYED else None
        if step.event is Event.NOT_SEEN and relayed and now and now - relayed <= RECORD_LAG:
            ago = max(int((now - relayed).total_seconds() // 60), 0)
            step = dataclasses.replace(step, event=Event.PENDING, detail=(
                f"not in {step.tier}'s records yet: {before.tier if before else ''} relayed "
                f"it {ago} min ago, and records can take up to "
                f"{int(RECORD_LAG.total_seconds() // 60)} min to show a message — ask again "
                f"later ({step.detail})"))
        out.append(step)
    return out


def _when(at: str | None) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(at.replace("Z", "+00:00")) if at else None
    except ValueError:
        return None
    return when.replace(tzinfo=dt.UTC) if when and when.tzinfo is None else when


def _trim(journey: list[JourneyStep]) -> list[JourneyStep]:
    out: list[JourneyStep] = []
    stopped = False
    for step in journey:
        if step.event is Event.NOT_SEEN and (stopped or (out and out[-1].event
                                                          is Event.NOT_SEEN)):
            continue  # it never got there: that is already said
        if out and (out[-1].tier, out[-1].event) == (step.tier, step.event) and \
                out[-1].source != step.source and step.event is not Event.RECEIVED:
            continue  # a second source saying the same (the quarantine list after Smart
            # Search): the first says it, the second's record is in its findings
        out.append(step)
        stopped = stopped or step.event in STOPS
    return out


def outcomes(tiers: list[TierResult], flow: FlowGraph) -> list[TierOutcomes]:
    """Per tier in flow order, how many of the recent messages ended how there."""
    per: dict[str, dict[tuple[str, ...], JourneyStep]] = {}
    for s in steps_of(tiers):
        if s.event is Event.NOT_SEEN:
            continue
        last = per.setdefault(s.tier, {})
        previous = last.get(message_key(s))
        if previous is None or (s.at or "") >= (previous.at or ""):
            last[message_key(s)] = s
    order = _order(flow)
    return [TierOutcomes(tier, Counter(s.event.value for s in last.values()))
            for tier, last in sorted(per.items(), key=lambda kv: order.get(kv[0], 99))]
