"""The journey of one message across the tiers: what each per-message source (the
gateway's logs and quarantine, Exchange Online's message trace, the headers) says
happened to it, in flow order and time — and where it stopped, which is the answer to
"why did alice not get carol's mail?"."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Event(StrEnum):
    """What a tier did with the message. The last event of the last tier that saw it
    says where the journey stopped."""

    RECEIVED = "received"  # the tier accepted the message
    RELAYED = "relayed"  # passed to the next hop, which accepted it
    DEFERRED = "deferred"  # the next hop answered 4xx: still queued, retried later
    BOUNCED = "bounced"  # the next hop refused it (5xx), or delivery gave up
    REJECTED = "rejected"  # refused by this tier's own rule or policy
    QUARANTINED = "quarantined"  # held in a quarantine
    JUNKED = "junked"  # delivered to the Junk Email folder
    DELIVERED = "delivered"  # in the mailbox's inbox (or a folder a rule chose)
    FAILED = "failed"  # the tier failed to deliver it
    EXPANDED = "expanded"  # a group or forward: delivered to other recipients
    PENDING = "pending"  # the tier has it and has not finished with it
    NOT_SEEN = "not-seen"  # the source searched and found no such message


#: Events after which the message went no further.
STOPS = frozenset({Event.DEFERRED, Event.BOUNCED, Event.REJECTED, Event.QUARANTINED,
                   Event.JUNKED, Event.FAILED, Event.NOT_SEEN})


@dataclass(frozen=True)
class JourneyStep:
    tier: str
    event: Event
    detail: str  # one line: the rule and action, the next hop's reply, the trace event
    source: str  # smart-search | quarantine | message-trace | essentials | headers
    at: str | None = None  # ISO 8601 UTC, as the source gives it
    message_id: str | None = None
    sender: str | None = None
    recipient: str | None = None
    subject: str | None = None
    #: The finding that proves this step (it decides the verdict when the message stopped
    #: here), e.g. EXO_TRACE_FILTERED_AS_SPAM.
    tag: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"tier": self.tier, "at": self.at, "event": self.event.value,
                "detail": self.detail, "source": self.source, "message_id": self.message_id,
                "sender": self.sender, "recipient": self.recipient, "subject": self.subject,
                "tag": self.tag}


def iso(when: dt.datetime | None) -> str | None:
    """A time as journeys show it: ISO 8601 in UTC, to the second."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


@dataclass(frozen=True)
class TierOutcomes:
    """The recent messages to the recipient at one tier, by what the tier last did with
    each (the journey's summary when no message is asked about)."""

    tier: str
    outcomes: Counter[str]

    def as_json(self) -> dict[str, Any]:
        return {"tier": self.tier, "messages": sum(self.outcomes.values()),
                "outcomes": dict(self.outcomes)}

    def text(self) -> str:
        counts = ", ".join(f"{n} {event}" for event, n in self.outcomes.most_common())
        total = sum(self.outcomes.values())
        return f"{self.tier}: {total} message{'s' if total != 1 else ''} ({counts})"
