"""``mailtrace verify``: is a change live everywhere, does it fit the topology, and when
will the old answers have expired from caches?

Every expected record (MX, SPF, each DKIM selector, DMARC, MTA-STS, TLS-RPT) is asked of
every authoritative server of the zone (directly, no recursion) and of every resolver of
the panel. Per record:

* ``matches`` — every server serves the zone's current answer, and it fits the topology;
* ``differs`` — an authoritative server serves something else (a stale secondary: named,
  with its SOA serial), or the current answer does not fit the topology: a finding that
  fails, or one that contradicts what the topology declares, even as a warning
  (:func:`~mailtrace.report.verify.does_not_fit`);
* ``propagating`` — the zone's servers agree, but a resolver still holds an older answer
  in its cache; it has expired everywhere at the latest ``old_expires_at`` (the time seen
  plus the TTL each such resolver still gives);
* ``inconclusive`` — a server did not answer, so agreement cannot be told (but a name the
  resolvers say does not exist, NXDOMAIN, with no zone to ask, ``differs``).

The zone's current answer is the one of the servers with the highest SOA serial (RFC 1996:
a secondary with a lower serial has not caught up yet).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence

from mailtrace.clients.dns import DnsClient, DnsObservation, Outcome, Server
from mailtrace.core.findings import Finding, Status, TierResult
from mailtrace.engine.clients import RunClients
from mailtrace.engine.runner import Engine
from mailtrace.engine.settings import Options
from mailtrace.mailauth.lookup import absolute, txt_text
from mailtrace.probes.auth import checks
from mailtrace.probes.base import Target
from mailtrace.probes.registry import RECORDS, TRIAGE
from mailtrace.report.verify import (
    ExpectedRecord,
    RecordReport,
    ServerAnswer,
    VerifyReport,
    does_not_fit,
    show_value,
)
from mailtrace.topology.flow import FlowGraph
from mailtrace.topology.model import Topology


def expected_records(topology: Topology, domain: str) -> list[ExpectedRecord]:
    _, expect = checks.dns_expectation(topology)
    records = [ExpectedRecord("MX", absolute(domain), "MX"),
               ExpectedRecord("SPF", absolute(domain), "TXT", "v=spf1")]
    for selector in expect.dkim.selectors if expect.dkim else []:
        records.append(ExpectedRecord(f"DKIM {selector}",
                                      absolute(f"{selector}._domainkey.{domain}"), "TXT"))
    records.append(ExpectedRecord("DMARC", absolute(f"_dmarc.{domain}"), "TXT", "v=DMARC1"))
    records.append(ExpectedRecord("MTA-STS", absolute(f"_mta-sts.{domain}"), "TXT", "v=STSv1"))
    records.append(ExpectedRecord("TLS-RPT", absolute(f"_smtp._tls.{domain}"), "TXT",
                                  "v=TLSRPTv1"))
    return records


def value_of(record: ExpectedRecord, obs: DnsObservation) -> tuple[str, ...] | None:
    """The comparable answer of one server: the record's own data (a CNAME at the name
    counts as its value: that is what the zone publishes), () for no record, None for
    no usable answer."""
    if obs.outcome in (Outcome.NXDOMAIN, Outcome.NODATA):
        return ()
    if obs.outcome is not Outcome.ANSWER:
        return None
    alias = [r for r in obs.answer if r.type == "CNAME" and r.name == obs.qname]
    if alias:
        return tuple(f"CNAME {absolute(r.data)}" for r in alias)
    data = [r.data for r in obs.records(record.rdtype)]
    if record.rdtype == "TXT":
        data = [txt_text(d) for d in data]
        if record.prefix:
            data = [d for d in data if d.lower().startswith(record.prefix.lower())]
    elif record.rdtype == "MX":
        data = [d.lower() for d in data]
    return tuple(sorted(data))


def judge(record: ExpectedRecord, authoritative: Sequence[ServerAnswer],
          resolvers: Sequence[ServerAnswer], fit: list[Finding],
          unjudged: str | None = None) -> RecordReport:
    """Pure: the status of one record from every server's answer and the fit findings;
    ``unjudged``: why the probe that judges its fit gave no result (then a record the
    servers agree on is inconclusive, never ``matches``: its fit is not known)."""
    answers = [*authoritative, *resolvers]
    silent = [a.server.label for a in answers if a.value is None]
    usable = [a for a in authoritative if a.value is not None]
    if not usable:
        gone = [a for a in resolvers if a.obs.outcome is Outcome.NXDOMAIN]
        if gone and not any(a.value for a in resolvers):
            # No zone to ask: the resolvers say the name does not exist at all (RFC 8020:
            # nothing below an NXDOMAIN exists either), which is what triage reports too.
            return RecordReport(record, "differs", (), answers,
                                [a.server.label for a in gone], findings=fit,
                                reason=f"{record.name.rstrip('.')} does not exist: NXDOMAIN "
                                f"from {', '.join(a.server.label for a in gone)}")
        return RecordReport(record, "inconclusive", None, answers, silent,
                            reason="no authoritative server answered")
    top = max((a.serial or 0) for a in usable)
    newest = [a for a in usable if (a.serial or 0) == top]
    current = Counter(a.value for a in newest).most_common(1)[0][0]
    stale = [a for a in usable if a.value != current]
    failing = [f for f in fit if does_not_fit(f)]
    report = RecordReport(record, "matches", current, answers, findings=fit)
    if stale:
        report.status = "differs"
        report.disagreeing = [a.server.label for a in stale]
        report.reason = "authoritative servers disagree: " + ", ".join(
            f"{a.server.label} serves {show_value(a.value)} (serial {a.serial})" for a in stale)
        return report
    cached = [a for a in resolvers if a.value is not None and a.value != current]
    if failing:
        report.status = "differs"
        report.reason = "does not fit the topology: " + ", ".join(f.tag for f in failing)
    elif cached:
        report.status = "propagating"
        report.reason = "resolvers still hold another answer in their cache"
    elif silent:
        report.status = "inconclusive"
        report.disagreeing = silent
        report.reason = "no answer from " + ", ".join(silent)
        return report
    elif unjudged:
        report.status = "inconclusive"
        report.reason = f"its fit to the topology was not checked: {unjudged}"
    if cached:
        report.disagreeing = [a.server.label for a in cached]
        report.old_expires_at = max(a.seen_at + (a.ttl or 0) for a in cached)
    return report


def findings_for(label: str, findings: list[Finding]) -> list[Finding]:
    """The fit findings about one record."""
    prefixes = {"MX": ("DNS_MX_",), "SPF": ("SPF_",), "DMARC": ("DMARC_",),
                "MTA-STS": ("MTASTS_",), "TLS-RPT": ("TLSRPT_",)}
    if label.startswith("DKIM "):
        selector = label.split(" ", 1)[1]
        return [f for f in findings if f.tag.startswith("DKIM_")
                and f.args.get("selector") == selector]
    return [f for f in findings if f.tag.startswith(prefixes.get(label, ("-",)))]


async def _ask(client: DnsClient, server: Server, record: ExpectedRecord,
               deadline: float) -> ServerAnswer:
    obs = await client.query(server, record.name, record.rdtype, deadline)
    return ServerAnswer(server, obs, value_of(record, obs), time.time())


async def _serial(client: DnsClient, server: Server, apex: str, deadline: float) -> int | None:
    obs = await client.query(server, apex, "SOA", deadline)
    soa = obs.records("SOA")
    try:
        return int(soa[0].data.split()[2]) if soa else None
    except (IndexError, ValueError):
        return None


def fit_findings(tier: TierResult, domain: str) -> list[Finding]:
    """What the probes found about the zone's records, those that could not run included:
    their evidence, and for a probe that gave none, why it could not judge."""
    found = [f for p in tier.probes for f in p.findings]
    for p in tier.probes:
        if p.status in (Status.NOT_TESTED, Status.SKIPPED) and not p.findings:
            found.append(Finding(checks.NOT_TESTED_TAG, {
                "name": domain, "type": JUDGED_BY.get(p.probe, p.probe),
                "error": p.reason or "not tested"}))
    return found


#: Which record each probe's judgement is about, for a probe that could not run.
JUDGED_BY = {"dns.mx": "MX", "auth.records": "SPF/DKIM/DMARC", "auth.mta-sts": "MTA-STS"}
#: The records (labels, or their start) whose fit each probe judges.
JUDGES = {"dns.mx": ("MX",), "auth.records": ("SPF", "DKIM ", "DMARC"),
          "auth.mta-sts": ("MTA-STS", "TLS-RPT")}


def unjudged(tier: TierResult) -> dict[str, str]:
    """The probes that gave no result — they overran their deadline or broke (the
    engine's ``ENGINE_*`` findings) —, each with why."""
    return {p.probe: p.reason or "no result" for p in tier.probes
            if p.status is Status.NOT_TESTED and any(f.tag.startswith("ENGINE_")
                                                     for f in p.findings)}


def unjudged_reason(label: str, unfinished: dict[str, str]) -> str | None:
    for probe, why in unfinished.items():
        if any(label == r or (r.endswith(" ") and label.startswith(r))
               for r in JUDGES.get(probe, ())):
            return f"probe {probe}: {why}"
    return None


async def judge_records(engine: Engine, topology: Topology) -> TierResult:
    """The records probes (``registry.RECORDS``) on the topology's DNS tier."""
    tier_id, _ = checks.dns_expectation(topology)
    return await engine.run_tier(tier_id, RECORDS, known=TRIAGE)


async def verify_once(topology: Topology, domain: str, options: Options,
                      flow: FlowGraph | None = None) -> VerifyReport:
    """One verification of ``domain`` against ``topology`` (its ``flow``, when the caller
    has it built: a fleet verifies thousands of domains against one topology)."""
    started, began = time.time(), time.monotonic()
    deadline = began + options.timeout
    client = RunClients(topology, options).dns
    records = expected_records(topology, domain)
    # Nothing here waits for anything else it does not need: the fit checks and the
    # resolvers' answers start at once, the name servers' once the zone's NS set is known.
    # The fit checks judge what the zone publishes: the panel's first resolver answers
    # them (sharing its queries with the comparison); every resolver is compared below.
    fit_client = dataclasses.replace(client, resolvers=client.resolvers[:1])
    fit_clients = RunClients(topology, options, dns=fit_client)
    engine = Engine(topology, flow or FlowGraph(topology), Target(domain), fit_clients,
                    options.timeout)
    fit_task = asyncio.ensure_future(judge_records(engine, topology))
    resolver_task = asyncio.gather(*(
        asyncio.gather(*(_ask(client, s, r, deadline) for s in client.resolvers))
        for r in records))
    try:
        delegation = await client.zone_servers(domain, deadline)
        servers = delegation.servers
        serials_task = asyncio.gather(*(_serial(client, s, delegation.apex, deadline)
                                        for s in servers))
        server_task = asyncio.gather(*(
            asyncio.gather(*(_ask(client, s, r, deadline) for s in servers)) for r in records))
        serials, at_servers, at_resolvers, fit_tier = await asyncio.gather(
            serials_task, server_task, resolver_task, fit_task)
    finally:
        await fit_clients.aclose()
    fit = fit_findings(fit_tier, domain)
    unfinished = unjudged(fit_tier)
    per_record = [[*a, *b] for a, b in zip(at_servers, at_resolvers, strict=True)]
    by_server = dict(zip(servers, serials, strict=True))
    reports = []
    for record, answers in zip(records, per_record, strict=True):
        auth = [ServerAnswer(a.server, a.obs, a.value, a.seen_at, by_server.get(a.server))
                for a in answers[: len(servers)]]
        resolvers = list(answers[len(servers):])
        mine = findings_for(record.label, fit)
        report = judge(record, auth, resolvers, mine,
                       unjudged_reason(record.label, unfinished))
        if record.label in ("MTA-STS", "TLS-RPT") and report.current == () and not any(
                does_not_fit(f) for f in mine):
            report.reason = report.reason or "not published (optional)"
        reports.append(report)
    labelled = {id(f) for r in reports for f in r.findings}
    other = [f for f in fit if id(f) not in labelled]
    return VerifyReport(topology.topology, domain, reports, [s.label for s in servers],
                        [s.label for s in client.resolvers], started,
                        (time.monotonic() - began) * 1000, other)


async def verify(topology: Topology, domain: str, options: Options, *, watch: bool = False,
                 interval: float = 5.0,
                 progress: Callable[[VerifyReport, float], None] | None = None) -> VerifyReport:
    """One verification, or (``watch``) one every ``interval`` seconds until every record
    matches or ``options.timeout`` runs out. Each poll uses fresh clients: nothing is
    cached between polls."""
    began = time.monotonic()
    polls = 0
    while True:
        polls += 1
        left = options.timeout - (time.monotonic() - began)
        poll = dataclasses.replace(options, timeout=min(max(left, 1.0), 30.0))
        report = await verify_once(topology, domain, poll)
        report.polls = polls
        if progress is not None:
            progress(report, time.monotonic() - began)
        left = options.timeout - (time.monotonic() - began)
        if not watch or report.status == "converged" or left < interval:
            report.elapsed_ms = (time.monotonic() - began) * 1000
            return report
        await asyncio.sleep(interval)
