"""The verdict: where the mail stops, with the finding that decided it.

Order of reasoning (DESIGN, "Localize, don't guess", "The message is the question"):
1. the observer (this machine's resolvers, its port 25) is broken → ``inconclusive`` at
   ``observer``, unless a hop *before* the ones it keeps from being judged already
   fails: no tier is blamed for what the vantage point cannot see;
2. a tier fails → ``fault`` at the first failing tier in flow order when every path from
   public DNS to a mailbox crosses a failing tier, else ``degraded`` (another path works);
   when a probe says which tier holds the recipient's mailbox (:func:`recipient_mailbox`),
   only the tiers on the way to it count here;
3. the message asked about stopped at a tier (quarantined, refused, junked, deferred...):
   that tier, with the record that proves it, unless a path fault comes first in flow
   order; the gateway's or the tenant's own record of the message outweighs what the
   observer could not test (port 25 blocked here does not hide a quarantine);
4. a finding says only some servers or paths fail (scope ``partial``), a warning means
   lost redundancy or delayed or diverted mail (its catalog ``effect`` is ``degrades``),
   or a tier fails off the recipient's way (Exchange hybrid: on-premises is down, the
   mailbox asked about is in Exchange Online) → ``degraded``;
5. a tier that every path crosses could not be tested on what matters (no probe ran, or
   none of those that ask the tier's own record) → ``inconclusive``, naming what was
   missing; so is a public-DNS tier tested only in part;
6. otherwise ``healthy`` — saying so plainly when the message asked about was delivered.
A stop the message went on from (quarantined, then released and delivered; deferred, then
relayed) is history: its finding does not decide (:func:`superseded`).
Every warning that does not decide is listed under the verdict (``attention``), and every
tier not tested, or tested in part, in ``not_tested``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailtrace.core import catalog
from mailtrace.core.findings import Attention, Finding, Level, Scope, Status, TierResult, Verdict
from mailtrace.core.journey import Event, JourneyStep
from mailtrace.engine.journey import message_key, steps_of
from mailtrace.probes.base import OBSERVER_TIER
from mailtrace.topology.flow import FlowGraph

#: A journey's last event, and the verdict it makes at the tier where it happened.
STOP_STATUS = {Event.QUARANTINED: "fault", Event.REJECTED: "fault", Event.BOUNCED: "fault",
               Event.FAILED: "fault", Event.JUNKED: "degraded", Event.DEFERRED: "degraded",
               Event.NOT_SEEN: "inconclusive", Event.PENDING: "inconclusive"}


#: (tier, tag) of findings that do not decide: stops the message went on from.
Ignored = frozenset[tuple[str, str]]


def superseded(journey: Sequence[JourneyStep], others: Sequence[JourneyStep] = ()) -> Ignored:
    """The stops of a journey the message went on from (a quarantine released, a deferral
    retried and relayed): those before its last step that is not a stop. Their findings
    are history — unless another message (of ``others``, every source's steps) met the
    same stop there as late or later: the finding may be about that one (released, and
    the sender's next message held by the same rule)."""
    went_on = max((i for i, s in enumerate(journey) if s.event not in STOP_STATUS),
                  default=-1)
    ignored = set()
    for s in journey[:went_on]:
        if s.event not in STOP_STATUS or s.event is Event.NOT_SEEN or not s.tag:
            continue
        mine = message_key(s)
        if not any((o.tier, o.tag) == (s.tier, s.tag) and message_key(o) != mine
                   and (o.at or "") >= (s.at or "") for o in others):
            ignored.add((s.tier, s.tag))
    return frozenset(ignored)


def _decides(f: Finding, partial: bool) -> bool:
    """Does this finding, on its own, decide a verdict: a failing one (scope ``partial``
    or not, as asked), or, for ``partial``, a warning that degrades the flow?"""
    info = catalog.info(f.tag)
    if partial:
        return (info.fails and info.scope is Scope.PARTIAL) or info.degrades
    return info.fails and info.scope is not Scope.PARTIAL


def deciding_finding(tier: TierResult, *, partial: bool = False,
                     ignore: Ignored = frozenset()) -> Finding | None:
    """The most severe deciding finding of a tier (the first emitted among equals)."""
    best: Finding | None = None
    best_rank = -1
    for probe in tier.probes:
        if not probe.ran:
            continue
        for f in probe.findings:
            rank = catalog.info(f.tag).level.rank
            if (tier.id, f.tag) not in ignore and _decides(f, partial) and rank > best_rank:
                best, best_rank = f, rank
    return best


def _observer_problem(tiers: list[TierResult]) -> tuple[Finding, int] | None:
    """A failing finding about the vantage point, and the first hop it keeps from being
    judged: where a probe met it, or where a probe it gates could not run."""
    problem: Finding | None = None
    gates: set[str] = set()
    for tier in tiers:
        for probe in tier.probes:
            for f in probe.findings:
                info = catalog.info(f.tag)
                if info.scope is Scope.OBSERVER and info.fails:
                    problem = problem or f
                    if tier.id == OBSERVER_TIER:
                        gates.add(probe.probe)
    if problem is None:
        return None
    hops = [t for t in tiers if t.id != OBSERVER_TIER]
    for index, tier in enumerate(hops):
        for probe in tier.probes:
            if probe.blocked_by in gates or any(
                catalog.info(f.tag).scope is Scope.OBSERVER and catalog.info(f.tag).fails
                for f in probe.findings
            ):
                return problem, index
    return problem, 0  # nothing says where: judge nothing (never blame a tier for it)


def _first(tiers: list[TierResult], partial: bool, among: set[str] | None = None,
           ignore: Ignored = frozenset()) -> tuple[int, TierResult] | None:
    """The first tier (of ``among``, if given) with a deciding finding, and its index."""
    for index, tier in enumerate(tiers):
        if among is not None and tier.id not in among:
            continue
        if partial and deciding_finding(tier, partial=True, ignore=ignore) is not None:
            return index, tier
        if not partial and tier.status is Status.FAIL and deciding_finding(
                tier, ignore=ignore) is not None:
            return index, tier
    return None


#: Findings that say where the recipient's mailbox lives: in the tier that files them
#: (Exchange Online holds the mailbox), or in the tier they name (Exchange hybrid: the
#: mailbox is on Exchange Server on-premises, reached through Exchange Online).
MAILBOX_HERE = frozenset({"EXO_RECIPIENT_OK"})
MAILBOX_THERE = frozenset({"EXO_RECIPIENT_ON_PREMISES"})


def recipient_mailbox(hops: Sequence[TierResult]) -> tuple[str, Finding] | None:
    """The tier that holds the recipient's mailbox, and the finding that says so."""
    for tier in hops:
        for f in tier.findings:
            if f.tag in MAILBOX_THERE and f.args.get("tier"):
                return str(f.args["tier"]), f
            if f.tag in MAILBOX_HERE:
                return tier.id, f
    return None


def journey_stop(journey: Sequence[JourneyStep]) -> JourneyStep | None:
    """Where the message stopped: the last step, when it is one after which the message
    went no further (a delivery is not a stop) — the first of the sources that say the
    same there (Smart Search's record before the quarantine list's)."""
    if not journey or journey[-1].event not in STOP_STATUS:
        return None
    at = len(journey) - 1
    while at and (journey[at - 1].tier, journey[at - 1].event) == (
            journey[at].tier, journey[at].event):
        at -= 1
    return journey[at]


def _untested_reason(tier: TierResult) -> str:
    """What was missing, in the probes' own words: each reason once, with the probes it
    stopped (a probe skipped because another did not run follows from that one)."""
    by_reason: dict[str, list[str]] = {}
    for p in tier.own:
        if not p.ran and p.reason and p.status is not Status.SKIPPED:
            by_reason.setdefault(p.reason, []).append(p.probe)
    return "; ".join(f"{', '.join(probes)}: {reason}" for reason, probes in by_reason.items()
                     ) or tier.reason or "not tested"


def _not_tested(hops: list[TierResult]) -> list[dict[str, str]]:
    """Every tier not tested, or tested in part, once, with what was not tested."""
    out = []
    for t in hops:
        if t.coverage == "full":
            continue
        status = t.status.value if t.coverage == "none" else "partly_tested"
        out.append({"tier": t.id, "status": status, "reason": _untested_reason(t)})
    return out


def _attention(hops: list[TierResult], decided: Finding | None) -> list[Attention]:
    """Every warning that does not decide the verdict, once per tier and tag."""
    seen: set[tuple[str, str]] = set()
    out = []
    for tier in hops:
        for probe in tier.probes:
            for f in probe.findings:
                if f is decided or catalog.info(f.tag).level is not Level.WARNING:
                    continue
                if (tier.id, f.tag) not in seen:
                    seen.add((tier.id, f.tag))
                    out.append(Attention(tier.id, f.tag, catalog.message(f)))
    return out


def _api_record(tier: TierResult, ignore: Ignored) -> bool:
    """Whether a tier's deciding finding is a source's own record (an API's answer about
    the tier), which this machine's resolvers or port 25 do not stand between."""
    f = deciding_finding(tier, ignore=ignore)
    return f is not None and any(p.asks in ("api", "threats") and any(g is f for g in p.findings)
                                 for p in tier.probes)


def _untested_tag(tier: TierResult) -> str | None:
    return next((f.tag for p in tier.own if not p.ran for f in p.findings), None)


def decide(tiers: list[TierResult], flow: FlowGraph,
           journey: Sequence[JourneyStep] = (), *, asked: bool = False) -> Verdict:
    """The verdict over the tiers' results and the journey of the message followed: the
    one asked about (``asked``: where it stopped decides), else the latest one (its stops
    decide through the probes' findings)."""
    hops = [t for t in tiers if t.id != OBSERVER_TIER]  # in flow order
    index = {t.id: i for i, t in enumerate(hops)}
    not_tested = _not_tested(hops)
    observer = _observer_problem(tiers)
    # With the recipient's mailbox known (Exchange Online's, or on-premises behind it),
    # only the tiers on the way to it decide where its mail stops; a failing tier beside
    # or beyond that way fails other recipients' mail, which degrades the flow.
    mailbox = recipient_mailbox(hops)
    path = flow.upstream_of(mailbox[0]) | {mailbox[0]} if mailbox else set(index)
    ignore = superseded(journey, steps_of(tiers))
    failing = _first(hops, partial=False, among=path, ignore=ignore)
    aside = _first(hops, partial=False, among=set(index) - path, ignore=ignore)
    partial = _first(hops, partial=True, ignore=ignore)
    stop = journey_stop(journey) if asked else None
    stop_at = index.get(stop.tier, len(hops)) if stop is not None else None
    # A record of the message (not "not seen") is the source's own word, whatever this
    # machine could not test; so is a failing tier's record an API gave, where or after
    # the observer's problem begins (an API's answer, not an SMTP session it kept from
    # happening, nor a lookup through this machine's resolvers).
    recorded = stop is not None and stop.event not in (Event.NOT_SEEN, Event.PENDING)
    to = mailbox[0] if mailbox else None

    def verdict(status: str, tier: str | None, f: Finding | None, summary: str,
                tag: str | None = None) -> Verdict:
        return Verdict(status, tier, f.tag if f else tag, summary, not_tested,
                       _attention(hops, f))

    # A failing hop decides if it comes before the hops the observer's problem keeps from
    # being judged, or its record came from an API (not through what the observer cannot
    # do), and before where the message stopped (path faults come first in flow order);
    # otherwise the observer wins, so no tier is blamed for what it cannot see.
    if failing is not None and (observer is None or failing[0] < observer[1]
                                or _api_record(failing[1], ignore)) and (
            stop_at is None or failing[0] <= stop_at):
        first = failing[1]
        f = deciding_finding(first, ignore=ignore)
        failed = {t.id for t in hops if t.status is Status.FAIL
                  and deciding_finding(t, ignore=ignore) is not None}
        degraded = flow.delivers_without(failed, to)
        prefix = "Another path still delivers; " if degraded else ""
        return verdict("degraded" if degraded else "fault", first.id, f,
                       prefix + (catalog.message(f) if f else f"tier {first.id} fails."))

    if observer is not None and not recorded and (
            partial is None or observer[1] <= partial[0]) and (
            stop_at is None or observer[1] <= stop_at):
        problem = observer[0]
        return verdict("inconclusive", OBSERVER_TIER, problem,
                       "The observer itself is limited, so no tier can be judged from here: "
                       + catalog.message(problem))

    if stop is not None:
        status = STOP_STATUS[stop.event]
        tier = stop.tier if status != "inconclusive" else None
        decided = next((f for t in hops if t.id == stop.tier for f in t.findings
                        if f.tag == stop.tag), None)
        return verdict(status, tier, decided, stop.detail, stop.tag)

    if aside is not None and (partial is None or aside[0] < partial[0]):
        assert mailbox is not None
        f = deciding_finding(aside[1], ignore=ignore)
        address = mailbox[1].args.get("address") or "the recipient"
        return verdict("degraded", aside[1].id, f,
                       f"{address}'s mailbox is in {mailbox[0]}, and the way there works; "
                       f"mail for mailboxes in {aside[1].id} does not: "
                       + (catalog.message(f) if f else f"tier {aside[1].id} fails."))

    if partial is not None:
        f = deciding_finding(partial[1], partial=True, ignore=ignore)
        assert f is not None
        return verdict("degraded", partial[1].id, f, catalog.message(f))

    # Never a silent pass: without the first hop's evidence nothing downstream is sound,
    # and a tier every path crosses that could not be tested is not healthy.
    dns_tier = next((t for t in hops if t.id == flow.dns_tier()), None)
    if dns_tier is not None and dns_tier.coverage != "full":
        return verdict("inconclusive", dns_tier.id, None,
                       f"{dns_tier.id} could not be fully tested: "
                       f"{_untested_reason(dns_tier)}.", _untested_tag(dns_tier))
    for hop in hops:
        if hop.untested and not flow.delivers_without({hop.id}, to):
            return verdict("inconclusive", hop.id, None,
                           f"{hop.id} could not be tested, and every path crosses it: "
                           f"{_untested_reason(hop)}.", _untested_tag(hop))

    tested = [t.id for t in hops if t.status in (Status.PASS, Status.WARN)]
    if asked and journey and journey[-1].event is Event.DELIVERED:
        summary = journey[-1].detail
    else:
        summary = "No fault found in " + (", ".join(tested) if tested else "any tier") + "."
    if not_tested:
        summary = summary.rstrip(".") + "; not tested: " + ", ".join(
            n["tier"] + (" (in part)" if n["status"] == "partly_tested" else "")
            for n in not_tested) + "."
    return verdict("healthy", None, None, summary)
