"""Exchange hybrid, as Exchange Online sees it: which mailboxes live on-premises, and the
message-trace events that hand a message to the connector to on-premises.

A user synchronized from the on-premises directory (``onPremisesSyncEnabled``) whose
Exchange Online mailbox Graph cannot find (``mailboxSettings`` answers 404
``MailboxNotEnabledForRESTAPI``: "inactive, soft-deleted, or hosted on-premise",
graph-exo reference §3) has its mailbox on Exchange Server: Exchange Online routes its
mail through the outbound connector to on-premises (the Hybrid Configuration Wizard's
"Outbound to <org>", TlsDomain and smart hosts), so it is judged there, not blamed on
Exchange Online. A cloud-only user with the same 404 has no mailbox at all.

Message trace shows the hand-off as a "Send external" event (or an event naming the
connector) whose text names the smart host: the journey goes on at the on-premises tier.
A "Defer" event naming the smart host, or the endpoint it tried ("The last endpoint
attempted was 192.0.2.25:25"), is that tier's deferral. Pure functions over data the
probes already gather, but for :func:`with_addresses`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.core.journey import Event, JourneyStep
from mailtrace.probes.base import ProbeContext
from mailtrace.probes.exo.directory import DirectoryObject
from mailtrace.topology.flow import FlowGraph
from mailtrace.topology.model import ExchangeOnPremTier, Topology

#: mailboxSettings' 404 codes that say there is no Exchange Online mailbox (§3).
NO_CLOUD_MAILBOX = frozenset({"mailboxnotenabledforrestapi", "mailboxnotsupportedforrestapi"})
#: Message-trace events that pass a message to a connector or another host.
HANDOFF_EVENTS = frozenset({"send external", "send", "transfer", "redirect"})
#: Events that name the next hop without handing the message to it (its 4xx, its 5xx).
NOT_HANDED_ON = frozenset({"defer", "fail"})


@dataclass(frozen=True)
class OnPremRoute:
    """An Exchange Server on-premises tier Exchange Online delivers to."""

    tier: str
    hosts: tuple[str, ...]
    domains: tuple[str, ...]  # its accepted domains (default: the topology's)
    connector: str | None = None
    addresses: tuple[str, ...] = ()  # its hosts' addresses, when looked up

    def named_in(self, text: str) -> bool:
        """Whether an event's text names one of its hosts, addresses or its connector."""
        lowered = text.lower()
        return (any(h.lower() in lowered for h in self.hosts)
                or bool(self.connector and self.connector.lower() in lowered)
                or any(re.search(rf"(?<![\w.:]){re.escape(a.lower())}(?![\w.])", lowered)
                       for a in self.addresses))


async def with_addresses(ctx: ProbeContext, routes: Sequence[OnPremRoute]
                         ) -> tuple[OnPremRoute, ...]:
    """The routes with their hosts' addresses (message trace names an endpoint by IP)."""
    async def one(route: OnPremRoute) -> OnPremRoute:
        lookups = await asyncio.gather(*(ctx.dns.addresses(h, ctx.deadline)
                                         for h in route.hosts))
        found = tuple(dict.fromkeys(a for lookup in lookups for a in lookup.addresses))
        return OnPremRoute(route.tier, route.hosts, route.domains, route.connector, found)

    return tuple(await asyncio.gather(*(one(r) for r in routes)))


def onprem_routes(topology: Topology, flow: FlowGraph, tier: str) -> tuple[OnPremRoute, ...]:
    """The on-premises tiers the flow has Exchange Online hand mail to."""
    routes = []
    for hop in flow.next_hops(tier):
        spec = topology.tiers[hop]
        if isinstance(spec, ExchangeOnPremTier):
            routes.append(OnPremRoute(hop, tuple(spec.hosts),
                                      tuple(spec.accepted_domains or topology.domains),
                                      spec.connector))
    return tuple(routes)


@dataclass(frozen=True)
class MailboxPlace:
    """Where a user's mailbox lives, as far as Graph tells."""

    on_premises: bool
    route: OnPremRoute | None = None  # the on-premises tier it is routed to, if declared
    reason: str = ""


def mailbox_place(user: DirectoryObject, no_mailbox: str | None,
                  routes: Sequence[OnPremRoute], address: str) -> MailboxPlace:
    """On-premises when the user is synchronized from on-premises and Exchange Online has
    no mailbox for it; then routed to the on-premises tier that accepts the address's
    domain (or the only one)."""
    synced = user.on_premises_sync is True
    no_cloud = no_mailbox is not None and no_mailbox.lower() in NO_CLOUD_MAILBOX
    if not (synced and no_cloud):
        return MailboxPlace(False)
    domain = address.rpartition("@")[2].lower()
    fitting = [r for r in routes if domain in r.domains] or (
        list(routes) if len(routes) == 1 else [])
    reason = (f"{user.upn or user.id} is synchronized from on-premises "
              f"(onPremisesSyncEnabled) and Exchange Online has no mailbox for it "
              f"({no_mailbox})")
    return MailboxPlace(True, fitting[0] if fitting else None, reason)


@dataclass(frozen=True)
class OnPremisesMailbox:
    """What a probe on the Exchange Online mailbox (inbox rules, MailTips) observes of a
    mailbox that lives on-premises: nothing to read here, and why."""

    address: str
    tier: str
    call: str
    reason: str
    evidence: tuple[Evidence, ...] = ()

    def findings(self) -> list[Finding]:
        return [Finding("EXO_MAILBOX_ON_PREMISES", {
            "address": self.address, "tier": self.tier, "call": self.call,
            "reason": self.reason}, list(self.evidence))]


def on_premises_mailbox(ctx: ProbeContext, user: DirectoryObject, code: str | None,
                        call: str, evidence: Sequence[Evidence] = ()) -> OnPremisesMailbox | None:
    """A 404 on a mailbox call, read: the mailbox is on an on-premises tier of the flow
    (then there is nothing to judge in Exchange Online), or None."""
    address = ctx.target.recipient or ""
    place = mailbox_place(user, code, onprem_routes(ctx.topology, ctx.flow, ctx.tier), address)
    if not place.on_premises or place.route is None:
        return None
    return OnPremisesMailbox(address, place.route.tier, call, place.reason, tuple(evidence))


class TracedEvents(Protocol):
    """A traced message, as ``exo.trace`` keeps it."""

    @property
    def message_id(self) -> str | None: ...
    @property
    def received(self) -> str | None: ...
    @property
    def sender(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def events(self) -> tuple[dict[str, Any], ...]: ...


def handoff(events: Sequence[Mapping[str, Any]], routes: Sequence[OnPremRoute]
            ) -> tuple[OnPremRoute, Mapping[str, Any]] | None:
    """The event that passes the message to the connector to on-premises: a hand-off
    event, or any event naming the connector, whose text names a smart host, the
    connector, or — with a single on-premises tier — nothing more."""
    for event in events:
        name = str(event.get("event") or "").strip().lower()
        text = " ".join(str(event.get(k) or "") for k in ("description", "data", "action"))
        named = [r for r in routes if r.named_in(text)]
        if not named and name not in HANDOFF_EVENTS:
            continue
        if named:
            return named[0], event
        if len(routes) == 1:
            return routes[0], event
    return None


def handed_on(m: TracedEvents, recipient: str, tier: str,
              routes: Sequence[OnPremRoute]) -> list[JourneyStep]:
    """A traced message handed to on-premises: relayed by Exchange Online, then received
    by the on-premises tier (as Exchange Online's trace reports it); else nothing."""
    # A Defer or Fail names the smart host too, but hands nothing on (a 4xx or 5xx answer)
    found = handoff([e for e in m.events if str(e.get("event") or "").strip().lower()
                     not in NOT_HANDED_ON], routes)
    if found is None:
        return []
    route, event = found
    detail = str(event.get("description") or event.get("event") or "handed off")
    at = event.get("dateTime") or m.received
    common: dict[str, Any] = {"source": "message-trace", "message_id": m.message_id,
                              "sender": m.sender or None, "recipient": recipient,
                              "subject": m.subject or None, "at": str(at) if at else None}
    return [JourneyStep(tier, Event.RELAYED, f"to {route.tier}: {detail}", **common),
            JourneyStep(route.tier, Event.RECEIVED,
                        f"accepted from {tier}, as {tier}'s message trace reports", **common)]


def onprem_journey(messages: Sequence[TracedEvents], recipient: str, tier: str,
                   routes: Sequence[OnPremRoute]) -> list[JourneyStep]:
    """The hand-offs to on-premises of each traced message (:func:`handed_on`)."""
    return [step for m in messages for step in handed_on(m, recipient, tier, routes)]
