"""The domain in the tenant, and Microsoft's expected records read through the topology.

Graph ``GET /domains/{domain}`` and ``/serviceConfigurationRecords`` (graph-exo reference
§1): the domain must exist in the tenant, be verified and carry the ``Email`` service.
Microsoft's expected MX is the host Exchange Online receives on: with a gateway in front
it is *not* published in public DNS (the gateway is the MX) and that is no fault, but the
gateway must deliver there; with no gateway the MX must be that host. SPF must name
Microsoft's include and, with a gateway in front, the gateway's part the topology declares
(reference §8). The live records are read from public DNS at the same time.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailtrace.clients.dns import DnsObservation, Outcome
from mailtrace.clients.msgraph.client import Exchange, GraphNotFound
from mailtrace.clients.msgraph.models import Domain, DomainDnsRecord
from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.probes.base import NotTested, Probe, ProbeContext
from mailtrace.probes.dns.expect import bare, matches
from mailtrace.probes.exo.common import (
    GRAPH_FAILURE_TAGS,
    ask,
    ask_all,
    first_failure,
    has_graph,
    not_tested,
)
from mailtrace.topology.model import GATEWAY_KINDS, DnsTier, ExchangeOnlineTier

if TYPE_CHECKING:
    from msgraph.generated.domains.item.domain_item_request_builder import (
        DomainItemRequestBuilder,
    )
    from msgraph.graph_service_client import GraphServiceClient

PERMISSION = "Domain.Read.All"


@dataclass(frozen=True)
class ExpectedRecord:
    """One ``domainDnsRecord`` (its @odata.type subclass flattened)."""

    record_type: str  # Mx | Txt | CName | Srv | Unavailable
    label: str
    service: str
    value: str  # mailExchange, text or canonicalName
    preference: int | None = None
    ttl: int | None = None


@dataclass(frozen=True)
class TenantDomain:
    id: str
    verified: bool | None
    services: tuple[str, ...]
    authentication: str | None = None


@dataclass(frozen=True)
class DomainCheck:
    domain: str
    tenant: str | None
    inbound_host: str  # what the topology declares
    gateway: str | None  # the gateway in front of Exchange Online, if any
    dns_tier: str
    gateway_spf: tuple[str, ...]  # the gateway's SPF includes the topology declares
    record: TenantDomain | None  # None: the tenant has no such domain (404)
    expected: tuple[ExpectedRecord, ...]
    live_mx: DnsObservation
    live_txt: DnsObservation
    evidence: tuple[Evidence, ...] = field(default=())


def _expected(item: DomainDnsRecord) -> ExpectedRecord:
    value = item.mail_exchange or item.text or item.canonical_name or ""
    return ExpectedRecord(
        record_type=item.record_type or "", label=item.label or "",
        service=item.supported_service or "", value=value, preference=item.preference,
        ttl=item.ttl)


def _gateway_in_front(ctx: ProbeContext) -> str | None:
    for hop in ctx.flow.first_hops():
        if (ctx.topology.tiers[hop].kind in GATEWAY_KINDS
                and ctx.tier in ctx.flow.downstream_of(hop)):
            return hop
    return None


async def collect(ctx: ProbeContext) -> DomainCheck:
    domain = ctx.target.domain
    tier = ctx.topology.tiers[ctx.tier]
    assert isinstance(tier, ExchangeOnlineTier)
    dns_id = ctx.flow.dns_tier()
    dns_tier = ctx.topology.tiers[dns_id]
    declared = (dns_tier.expect.spf.include if isinstance(dns_tier, DnsTier)
                and dns_tier.expect.spf else [])
    gateway = _gateway_in_front(ctx)

    def by_id(sdk: GraphServiceClient) -> DomainItemRequestBuilder:
        return sdk.domains.by_domain_id(domain)

    results = await asyncio.gather(
        ask(ctx, "get domain", PERMISSION, lambda sdk: by_id(sdk).to_get_request_information(),
            Domain),
        ask_all(ctx, "list serviceConfigurationRecords", PERMISSION,
                lambda sdk: by_id(sdk).service_configuration_records
                .to_get_request_information(), DomainDnsRecord),
        ctx.dns.lookup(domain, "MX", ctx.deadline),
        ctx.dns.lookup(domain, "TXT", ctx.deadline),
        return_exceptions=True)
    got_domain, got_records, live_mx, live_txt = results
    record: TenantDomain | None = None
    expected: tuple[ExpectedRecord, ...] = ()
    evidence: list[Evidence] = []
    if isinstance(got_domain, GraphNotFound):
        evidence.append(got_domain.exchange.evidence(error=str(got_domain)))
    else:
        failure = first_failure([got_domain, got_records, live_mx, live_txt])
        if isinstance(got_records, GraphNotFound):
            raise not_tested(ctx, got_records, "list serviceConfigurationRecords", PERMISSION)
        if failure is not None:
            raise failure
        assert isinstance(got_domain, tuple) and isinstance(got_records, tuple)
        model, exchange = got_domain
        record = TenantDomain(str(model.id or domain), model.is_verified,
                              tuple(str(s) for s in model.supported_services or ()),
                              model.authentication_type)
        records, records_exchange = got_records
        expected = tuple(_expected(r) for r in records.items)
        evidence += [_ev(exchange, id=record.id, isVerified=record.verified,
                         supportedServices=list(record.services)),
                     _ev(records_exchange, records=[_record_ev(e) for e in expected])]
    if not isinstance(live_mx, DnsObservation) or not isinstance(live_txt, DnsObservation):
        raise NotTested("public DNS could not be asked for the live MX and SPF")
    return DomainCheck(domain, tier.tenant, tier.inbound_host, gateway, dns_id,
                       tuple(bare(h) for h in declared if not _microsoft(h)),
                       record, expected, live_mx, live_txt, tuple(evidence))


def _ev(exchange: Exchange, **record: object) -> Evidence:
    return exchange.evidence(record=record)


def _record_ev(r: ExpectedRecord) -> dict[str, Any]:
    ev: dict[str, Any] = {"recordType": r.record_type, "label": r.label,
                    "supportedService": r.service, "value": r.value}
    if r.preference is not None:
        ev["preference"] = r.preference
    return ev


def _microsoft(host: str) -> bool:
    return matches(host, ["spf.protection.outlook.com", "*.protection.outlook.com",
                          "*.mail.microsoft", "*.outlook.com"])


def spf_text(obs: DnsObservation) -> str | None:
    """The domain's SPF record (RFC 7208 §3.3: the strings of one TXT joined)."""
    for r in obs.records("TXT"):
        text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', r.data)) or r.data
        if text.lower().startswith("v=spf1"):
            return text
    return None


def spf_terms(text: str) -> set[str]:
    # Microsoft's own example reads "include: spf.protection.outlook.com" (reference §1).
    text = re.sub(r"(?i)\b(include|a|mx|exists|redirect)\s*([:=])\s+", r"\1\2", text)
    return {t.lower().rstrip(".") for t in text.split()[1:]}


def required_includes(check: DomainCheck) -> list[str]:
    microsoft = [t for e in check.expected
                 if e.record_type.lower() == "txt" and e.value.lower().startswith("v=spf1")
                 for t in sorted(spf_terms(e.value)) if t.startswith("include:")]
    gateway = [f"include:{h}" for h in check.gateway_spf] if check.gateway else []
    return microsoft + gateway


def evaluate(check: DomainCheck) -> list[Finding]:
    ev = list(check.evidence)
    domain = check.domain
    if check.record is None:
        return [Finding("EXO_DOMAIN_NOT_IN_TENANT",
                        {"domain": domain, "tenant": check.tenant or "the tenant"}, ev)]
    if check.record.verified is False:
        return [Finding("EXO_DOMAIN_UNVERIFIED", {"domain": domain}, ev)]
    services = {s.lower() for s in check.record.services}
    if "email" not in services:
        return [Finding("EXO_DOMAIN_NO_EMAIL_SERVICE",
                        {"domain": domain,
                         "services": ", ".join(check.record.services) or "none"}, ev)]

    findings: list[Finding] = []
    mx_expected = [e for e in check.expected
                   if e.record_type.lower() == "mx" and e.service.lower() == "email" and e.value]
    live_ev = [check.live_mx.evidence()]
    if mx_expected:
        hosts = [bare(e.value) for e in mx_expected]
        if bare(check.inbound_host) not in hosts:
            findings.append(Finding("EXO_INBOUND_HOST_DIFFERS",
                                    {"declared": check.inbound_host,
                                     "expected": ", ".join(hosts)}, ev))
        if check.gateway is not None:
            findings.append(Finding("EXO_MX_BEHIND_GATEWAY",
                                    {"domain": domain, "expected": ", ".join(hosts),
                                     "gateway": check.gateway}, ev))
        elif check.live_mx.outcome is Outcome.ANSWER:
            published = [bare(r.data.partition(" ")[2]) for r in check.live_mx.records("MX")]
            if not set(hosts) & set(published):
                findings.append(Finding(
                    "EXO_MX_NOT_MICROSOFTS",
                    {"domain": domain, "expected": ", ".join(hosts),
                     "published": ", ".join(published) or "none"},
                    [*ev, *live_ev], about=check.dns_tier))

    if check.live_txt.outcome in (Outcome.ANSWER, Outcome.NODATA):
        spf = spf_text(check.live_txt)
        terms = spf_terms(spf) if spf else set()
        missing = [t for t in required_includes(check) if t not in terms]
        if missing:
            findings.append(Finding(
                "EXO_SPF_INCOMPLETE",
                {"domain": domain, "missing": " ".join(missing), "spf": spf or "(no SPF record)"},
                [*ev, check.live_txt.evidence()], about=check.dns_tier))
    if not any(f.tag in ("EXO_INBOUND_HOST_DIFFERS",) or f.about for f in findings):
        findings.append(Finding("EXO_DOMAIN_OK",
                                {"domain": domain, "services": ", ".join(check.record.services)},
                                ev))
    return findings


PROBE = Probe(
    id="exo.domain",
    asks="api",
    kinds=frozenset({"exchange-online"}),
    tags=frozenset({
        "EXO_DOMAIN_NOT_IN_TENANT", "EXO_DOMAIN_UNVERIFIED", "EXO_DOMAIN_NO_EMAIL_SERVICE",
        "EXO_INBOUND_HOST_DIFFERS", "EXO_MX_BEHIND_GATEWAY", "EXO_MX_NOT_MICROSOFTS",
        "EXO_SPF_INCOMPLETE", "EXO_DOMAIN_OK", *GRAPH_FAILURE_TAGS,
    }),
    collect=collect,
    evaluate=evaluate,
    # the live MX and SPF are asked of the resolvers: worthless if they do not work
    gates=("dns.observer",),
    deadline=10.0,
    summary="the domain is in the tenant, verified, with Email; MX and SPF fit Microsoft's "
            "expected records through the topology",
    applies=has_graph,
    permissions=(PERMISSION,),
)
