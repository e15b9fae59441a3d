"""``mailtrace precheck``: judge a DNS change before it is made.

The same checks run twice — on the live answers, and on the live answers with the change
laid over them (:class:`~mailtrace.mailauth.lookup.Overlay`) — and the report is the
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
from collections.abc import Callable
from dataclasses import dataclass, field

from mailtrace.clients.dns import DnsClient, DnsObservation, Outcome, Record, Server
from mailtrace.clients.mta_sts import collect as collect_mta_sts
from mailtrace.core.findings import Finding
from mailtrace.core.network import Endpoint
from mailtrace.mailauth.lookup import DnsLookup, Lookup, Overlay, absolute
from mailtrace.probes.auth import checks
from mailtrace.probes.base import NotTested, ProbeContext, Target
from mailtrace.report.precheck import PrecheckReport
from mailtrace.topology.change import ChangeFile, overlay_records
from mailtrace.topology.flow import FlowGraph
from mailtrace.topology.model import DkimExpectation, Topology

#: An MX TTL above this makes a cutover slow to take effect (RFC 1035 §3.2.1 TTL).
LONG_TTL = 900
LOWER_TO = 300
_CHANGE_SERVER = Server("authoritative", "0.0.0.0", 0, "change-file.invalid")


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


async def _mx_findings(client: DnsClient, topology: Topology, domain: str, deadline: float,
                       mx_data: tuple[str, ...] | None) -> list[Finding]:
    """The dns.mx probe's own judgement, of the live MX or of the changed one."""
    from mailtrace.probes.dns import mx
    from mailtrace.probes.dns.expect import mx_expectation

    tier_id, _ = checks.dns_expectation(topology)
    ctx = ProbeContext(topology, FlowGraph(topology), tier_id, Target(domain), client, deadline)
    try:
        if mx_data is None:
            return mx.evaluate(await mx.collect(ctx))
        qname = absolute(domain)
        records = tuple(Record(qname, "MX", LOWER_TO, d) for d in mx_data)
        obs = DnsObservation(_CHANGE_SERVER, Endpoint("0.0.0.0", 0), qname, "MX",
                             Outcome.ANSWER if records else Outcome.NODATA, answer=records)
        pairs = sorted(mx.parse_mx(r.data) for r in records)
        hosts = [h for _, h in pairs if h != "." and not mx.is_ip_literal(h)]
        lookups = dict(zip(hosts, await asyncio.gather(
            *(client.addresses(h, deadline) for h in hosts)), strict=True))
        targets = [mx.MxTarget(p, h, lookups.get(h)) for p, h in pairs]
        return mx.evaluate(mx.MxCheck(domain, mx_expectation(ctx), obs, targets))
    except NotTested as exc:
        return [Finding(checks.NOT_TESTED_TAG, {"name": domain, "type": "MX",
                                                "error": exc.reason})]


async def assess(lookup: Lookup, client: DnsClient, topology: Topology, domain: str,
                 deadline: float, ca_file: str | None,
                 mx_data: tuple[str, ...] | None = None) -> list[Finding]:
    mx_hosts = None if mx_data is None else tuple(
        d.split()[1].rstrip(".").lower() for d in mx_data if len(d.split()) == 2)
    auth, sts, mx_findings = await asyncio.gather(
        checks.collect(lookup, topology, domain),
        collect_mta_sts(lookup, topology, domain, redirects=client.redirects, ca_file=ca_file,
                        mx_hosts=mx_hosts),
        _mx_findings(client, topology, domain, deadline, mx_data),
    )
    return checks.evaluate(auth) + sts.evaluate() + mx_findings


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
    if planned is not None:
        if planned.tzinfo is None:
            planned = planned.replace(tzinfo=dt.UTC)
        when = planned - dt.timedelta(seconds=ttl)
        lower_by = _iso(when) + (" (already past: postpone the change)" if when < now else "")
    else:
        lower_by = f"now, and make the change after {_iso(now + dt.timedelta(seconds=ttl))}"
    return [Finding("PRECHECK_MX_TTL_LONG", {"domain": domain, "ttl": ttl,
                                             "lower_to": LOWER_TO, "lower_by": lower_by})]


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def precheck(topology: Topology, change: ChangeFile, domain: str,
                   client_factory: Callable[[], DnsClient], *, timeout: float = 30.0,
                   ca_file: str | None = None) -> PrecheckReport:
    began = time.monotonic()
    deadline = began + timeout
    client = client_factory()
    live = DnsLookup(client, deadline)
    overlaid = await overlay_records(change, domain, live)
    changed = Overlay(live, overlaid.records)
    mx_key = (absolute(domain), "MX")
    mx_after = overlaid.records.get(mx_key)
    mx_moves = mx_after is not None and set(mx_after) != set(overlaid.before[mx_key].data)
    before, after, ttl = await asyncio.gather(
        assess(live, client, topology, domain, deadline, ca_file),
        assess(changed, client, with_signing(topology, change.sign_with), domain, deadline,
               ca_file, mx_after),
        _authoritative_ttl(client, domain, deadline) if mx_moves else _none(),
    )
    after += MxCutover(domain, ttl, change.planned).evaluate()
    report = PrecheckReport(topology.topology, domain, change, overlaid, before, after)
    report.elapsed_ms = (time.monotonic() - began) * 1000
    return report


async def _none() -> None:
    return None
