"""``mailtrace precheck``: judge a DNS change before it is made.

The same probes run twice through the engine — over live DNS, and over live DNS with the
change laid over it (:class:`~mailtrace.clients.dns_overlay.OverlaidDnsClient`) — and
the report is the
difference: findings the change introduces, and findings it resolves. The change is
unsafe (exit 1) when it introduces a failing finding (SPF over 10 lookups or 2 void
lookups, MX off the declared gateway, a DKIM selector signing will use but nobody
publishes, DMARC enforcing while a declared sender does not pass it, an MTA-STS policy
that no longer covers the MX...), one that contradicts what the topology declares (an
SPF ``all`` or DMARC policy other than the declared one: verify's rule,
:func:`~mailtrace.report.verify.does_not_fit`) or when it cuts the MX over while the old
TTL is long.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field

from mailtrace.clients.dns import DnsClient, Outcome
from mailtrace.clients.dns_lookup import DnsLookup
from mailtrace.clients.dns_overlay import OverlaidDnsClient
from mailtrace.core.findings import Finding, Status
from mailtrace.engine.clients import RunClients
from mailtrace.engine.runner import Engine
from mailtrace.engine.settings import Options
from mailtrace.mailauth.lookup import absolute
from mailtrace.probes.auth import checks
from mailtrace.probes.base import Target
from mailtrace.report.precheck import PrecheckReport
from mailtrace.topology.change import ChangeFile, overlay_records
from mailtrace.topology.flow import FlowGraph
from mailtrace.topology.model import DkimExpectation, Topology
from mailtrace.usecases.verify import fit_findings, judge_records

#: What precheck itself emits (the probes' tags are theirs).
TAGS = frozenset({"PRECHECK_MX_TTL_LONG"})
#: An MX TTL above this makes a cutover slow to take effect (RFC 1035 §3.2.1 TTL).
LONG_TTL = 900
LOWER_TO = 300


def with_signing(topology: Topology, selectors: list[str]) -> Topology:
    """The topology with the selectors signing will use after the change declared."""
    if not selectors:
        return topology
    tier_id, expect = checks.dns_expectation(topology)
    dkim = expect.dkim or DkimExpectation()
    merged = [*dkim.selectors, *(s for s in selectors if s not in dkim.selectors)]
    new_expect = expect.model_copy(update={"dkim": dkim.model_copy(update={"selectors": merged})})
    tier = topology.tiers[tier_id].model_copy(update={"expect": new_expect})
    return topology.model_copy(update={"tiers": {**topology.tiers, tier_id: tier}})


async def assess(clients: RunClients, topology: Topology, domain: str,
                 timeout: float) -> tuple[list[Finding], list[str]]:
    """The records probes through the engine, over live DNS or the change laid over it:
    their findings, and why any probe could not judge."""
    engine = Engine(topology, FlowGraph(topology), Target(domain), clients, timeout)
    tier = await judge_records(engine, topology)
    untested = [f"{p.probe}: {p.reason}" for p in tier.probes
                if p.status in (Status.NOT_TESTED, Status.SKIPPED)]
    return fit_findings(tier, domain), untested


async def _authoritative_ttl(client: DnsClient, domain: str, deadline: float) -> int | None:
    """The MX TTL as the zone publishes it (a resolver's is already counting down)."""
    zone = await client.zone_servers(domain, deadline)
    for server in zone.servers:
        obs = await client.query(server, domain, "MX", deadline)
        if obs.outcome is Outcome.ANSWER and obs.records("MX"):
            return max(r.ttl for r in obs.records("MX"))
    return None


@dataclass(frozen=True)
class MxCutover:
    """An MX change: the TTL the zone publishes the old MX with, and when it is planned.
    ``ttl`` None: no cutover (or no MX today)."""

    domain: str
    ttl: int | None
    planned: dt.datetime | None
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def evaluate(self) -> list[Finding]:
        return ttl_finding(self.domain, self.ttl, self.planned, self.now)


def ttl_finding(domain: str, ttl: int | None, planned: dt.datetime | None,
                now: dt.datetime) -> list[Finding]:
    """PRECHECK_MX_TTL_LONG when the old MX will linger in caches: lower the TTL one old
    TTL ahead of the cutover."""
    if ttl is None or ttl <= LONG_TTL:
        return []
    old_ttl = dt.timedelta(seconds=ttl)
    if planned is not None and planned.tzinfo is None:
        planned = planned.replace(tzinfo=dt.UTC)
    if planned is not None and planned - old_ttl >= now:
        lower_by, change_after = planned - old_ttl, planned
    else:  # no plan, or too close to it: lower it now, change one old TTL later
        lower_by, change_after = now, now + old_ttl
    return [Finding("PRECHECK_MX_TTL_LONG", {
        "domain": domain, "ttl": ttl, "lower_to": LOWER_TO, "lower_by": _iso(lower_by),
        "change_after": _iso(change_after),
        "planned": _iso(planned) if planned is not None else None})]


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def precheck(topology: Topology, change: ChangeFile, domain: str,
                   options: Options) -> PrecheckReport:
    began = time.monotonic()
    deadline = began + options.timeout
    live = RunClients(topology, options)
    overlaid = await overlay_records(change, domain, DnsLookup(live.dns, deadline))
    changed = RunClients(with_signing(topology, change.sign_with), options,
                         dns=OverlaidDnsClient(live.dns, overlaid.records, LOWER_TO))
    mx_key = (absolute(domain), "MX")
    mx_after = overlaid.records.get(mx_key)
    mx_moves = mx_after is not None and set(mx_after) != set(overlaid.before[mx_key].data)
    try:
        (before, _), (after, untested), ttl = await asyncio.gather(
            assess(live, topology, domain, options.timeout),
            assess(changed, changed.topology, domain, options.timeout),
            _authoritative_ttl(live.dns, domain, deadline) if mx_moves else _none(),
        )
    finally:
        await asyncio.gather(live.aclose(), changed.aclose())
    after += MxCutover(domain, ttl, change.planned).evaluate()
    report = PrecheckReport(topology.topology, domain, change, overlaid, before, after,
                            not_tested=untested)
    report.elapsed_ms = (time.monotonic() - began) * 1000
    return report


async def _none() -> None:
    return None
