"""Unresolved Exchange Online service health issues: incidents and advisories.

Graph ``GET /admin/serviceAnnouncement/issues`` filtered to Exchange Online and not
resolved (graph-exo reference §4). Values are compared case-insensitively: the schema is
camelCase, the documented examples PascalCase. An incident affects some users of the
service, not necessarily this recipient: the flow is *degraded*, not broken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailtrace.clients.msgraph.models import ServiceHealthIssue
from mailtrace.core.evidence import Evidence, Observed
from mailtrace.core.findings import Finding
from mailtrace.probes.base import Probe, ProbeContext
from mailtrace.probes.exo.common import GRAPH_FAILURE_TAGS, ask_all, client, has_graph

PERMISSION = "ServiceHealth.Read.All"
SERVICE = "Exchange Online"


@dataclass(frozen=True)
class HealthIssue:
    id: str
    title: str
    classification: str  # incident | advisory | unknown
    status: str
    feature: str
    resolved: bool | None
    started: str | None = None

    def evidence(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class HealthCheck:
    issues: tuple[HealthIssue, ...]
    evidence: tuple[Evidence, ...] = ()


def _enum(value: str | None) -> str:
    return value.lower() if value is not None else "unknown"


async def collect(ctx: ProbeContext) -> HealthCheck:
    await client(ctx)  # first: it loads the SDK without holding the event loop
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.admin.service_announcement.issues.issues_request_builder import (
        IssuesRequestBuilder,
    )

    params = IssuesRequestBuilder.IssuesRequestBuilderGetQueryParameters(
        filter=f"service eq '{SERVICE}' and isResolved eq false")
    config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=params)
    listing, exchange = await ask_all(
        ctx, "list service health issues", PERMISSION,
        lambda sdk: sdk.admin.service_announcement.issues.to_get_request_information(config),
        ServiceHealthIssue)
    issues = tuple(
        HealthIssue(str(i.id or ""), str(i.title or ""), _enum(i.classification),
                    _enum(i.status), str(i.feature or i.feature_group or ""), i.is_resolved,
                    i.start_date_time.isoformat() if i.start_date_time else None)
        for i in listing.items
        # the filter is asked of Graph, and checked again here
        if (i.service or "").lower() == SERVICE.lower() and i.is_resolved is not True)
    return HealthCheck(issues, (exchange.evidence(issues=[i.evidence() for i in issues]),))


def evaluate(check: HealthCheck) -> list[Finding]:
    ev = list(check.evidence)
    findings = []
    for issue in check.issues:
        args = {"id": issue.id, "title": issue.title, "feature": issue.feature or "unknown",
                "status": issue.status}
        tag = "EXO_SERVICE_INCIDENT" if issue.classification == "incident" else \
            "EXO_SERVICE_ADVISORY"
        findings.append(Finding(tag, args, [Observed(issue.evidence()), *ev]))
    if not findings:
        findings.append(Finding("EXO_SERVICE_HEALTHY", {"service": SERVICE}, ev))
    return findings


PROBE = Probe(
    id="exo.health",
    asks="api",
    kinds=frozenset({"exchange-online"}),
    tags=frozenset({"EXO_SERVICE_INCIDENT", "EXO_SERVICE_ADVISORY", "EXO_SERVICE_HEALTHY",
                    *GRAPH_FAILURE_TAGS}),
    collect=collect,
    evaluate=evaluate,
    deadline=10.0,
    summary="no unresolved Exchange Online incident or advisory in service health",
    applies=has_graph,
    permissions=(PERMISSION,),
)
