"""Proofpoint Essentials (v1 admin API): where Essentials delivers the domain's mail, and
whether it knows the recipient.

Essentials relays each domain to its ``destination`` (with ``failovers``); when that is
not the next hop the topology declares (usually the Exchange Online inbound host), mail
that passed every filter still goes to the wrong place. A recipient that is neither a
user nor an alias of the organisation is refused or held by Essentials unless user
discovery adds it. The organisation is named by its primary domain; ``/endpoints/{org}``
says which stack serves it (reference/proofpoint.md §5).
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from mailtrace.clients.proofpoint import EssentialsClient
from mailtrace.clients.proofpoint.http import ApiError, ApiResponse
from mailtrace.clients.proofpoint.records import (
    EssentialsDomain,
    parse_domains,
    parse_endpoints,
    parse_users,
)
from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.probes.base import NotTested, Probe, ProbeContext
from mailtrace.probes.proofpoint.access import (
    NextHop,
    admin_api,
    api_of,
    ask,
    client,
    next_hops,
    payload,
)

API = "Proofpoint Essentials API"


def _org(ctx: ProbeContext) -> str:
    return api_of(ctx).org or ctx.topology.domains[0]


def _client(ctx: ProbeContext) -> EssentialsClient:
    return client(API, lambda: ctx.clients.essentials(ctx.tier))


# --- routing ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RoutingCheck:
    org: str
    domain: str
    api_host: str
    endpoints: ApiResponse | None  # None: the stack look-up could not be made
    domains: ApiResponse
    next_hops: tuple[NextHop, ...]


async def collect_routing(ctx: ProbeContext) -> RoutingCheck:
    org, essentials = _org(ctx), _client(ctx)
    endpoints, domains = await asyncio.gather(  # at once: the client is thread-safe
        essentials.endpoints(org, ctx.deadline),
        ask(API, essentials.domains(org, ctx.deadline)),
        return_exceptions=True)
    if isinstance(domains, BaseException):
        raise domains
    stack = endpoints if isinstance(endpoints, ApiResponse) else None
    if isinstance(endpoints, BaseException) and not isinstance(endpoints, ApiError):
        raise endpoints
    return RoutingCheck(org, ctx.target.domain, essentials.host, stack, domains,
                        next_hops(ctx))


def relay_host(destination: str) -> str:
    """A destination as a bare host: brackets, port and final dot removed, lowercased."""
    host = destination.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _stack_hosts(endpoints: list[str]) -> set[str]:
    return {((urlsplit(e).hostname or "") if "//" in e else e.split("/", 1)[0]).lower()
            for e in endpoints if e}


def evaluate_routing(check: RoutingCheck) -> list[Finding]:
    findings: list[Finding] = []
    evidence: list[Evidence] = []
    if check.endpoints is not None and check.endpoints.status == 200:
        stacks = parse_endpoints(check.endpoints.data) if check.endpoints.is_json else []
        evidence.append(check.endpoints.evidence())
        hosts = _stack_hosts(stacks)
        on_stack = check.api_host in hosts or any(check.api_host.startswith(h + ".")
                                                  for h in hosts)
        if hosts and not on_stack:
            findings.append(Finding("PPE_OTHER_STACK", {
                "org": check.org, "endpoints": ", ".join(stacks), "host": check.api_host},
                [check.endpoints.evidence()]))
    domains, _ = payload(API, check.domains, parse_domains)
    evidence.append(check.domains.evidence())
    domain = next((d for d in domains if d.name == check.domain), None)
    if domain is None or domain.active is False:
        state = "not listed" if domain is None else "inactive"
        evidence += [d.evidence() for d in domains[:10]]
        return [*findings, Finding("PPE_DOMAIN_NOT_ACTIVE",
                                   {"domain": check.domain, "org": check.org, "state": state},
                                   evidence)]
    return findings + _destination(check, domain, [*evidence, domain.evidence()])


def _destination(check: RoutingCheck, domain: EssentialsDomain,
                 evidence: list[Evidence]) -> list[Finding]:
    expected = [h for hop in check.next_hops for h in hop.hosts]
    hop = ", ".join(hop.tier for hop in check.next_hops) or "none declared"
    wanted = ", ".join(expected) or "none declared"
    args = {"domain": domain.name, "destination": domain.destination or "not set",
            "expected": wanted, "next_tier": hop}
    if not expected:
        return []
    findings: list[Finding] = []
    host = relay_host(domain.destination or "")
    if host and _is_address(host):
        findings.append(Finding("PPE_DESTINATION_IS_ADDRESS", args, evidence))
    elif host not in expected:
        findings.append(Finding("PPE_DESTINATION_MISMATCH", args, evidence))
    else:
        findings.append(Finding("PPE_ROUTING_OK", args, evidence))
    astray = [f for f in domain.failovers
              if not _is_address(relay_host(f)) and relay_host(f) not in expected]
    if astray:
        findings.append(Finding("PPE_FAILOVER_MISMATCH",
                                {**args, "failovers": ", ".join(astray)}, evidence))
    return findings


ROUTING = Probe(
    id="proofpoint.essentials_routing",
    asks="api",
    kinds=frozenset({"proofpoint"}),
    tags=frozenset({"PP_API_UNAVAILABLE", "PPE_OTHER_STACK", "PPE_DOMAIN_NOT_ACTIVE",
                    "PPE_DESTINATION_MISMATCH", "PPE_DESTINATION_IS_ADDRESS",
                    "PPE_FAILOVER_MISMATCH", "PPE_ROUTING_OK"}),
    collect=collect_routing,
    evaluate=evaluate_routing,
    deadline=12.0,
    summary="Essentials delivers the domain to the declared next hop",
    applies=admin_api("essentials"),
)


# --- the recipient ----------------------------------------------------------------------

@dataclass(frozen=True)
class UserCheck:
    org: str
    recipient: str
    users: ApiResponse


async def collect_user(ctx: ProbeContext) -> UserCheck:
    recipient = ctx.target.recipient
    if recipient is None:
        raise NotTested("Essentials users are looked up by recipient: give --recipient")
    users = await ask(API, _client(ctx).users(_org(ctx), ctx.deadline))
    return UserCheck(_org(ctx), recipient, users)


def evaluate_user(check: UserCheck) -> list[Finding]:
    users, _ = payload(API, check.users, parse_users)
    wanted = check.recipient.lower()
    for user in users:
        if wanted in user.addresses:
            how = "primary address" if user.primary_email == wanted else \
                f"alias of {user.primary_email}"
            return [Finding("PPE_RECIPIENT_KNOWN",
                            {"recipient": check.recipient, "org": check.org, "match": how},
                            [check.users.evidence(), user.evidence()])]
    return [Finding("PPE_RECIPIENT_UNKNOWN",
                    {"recipient": check.recipient, "org": check.org, "users": len(users)},
                    [check.users.evidence()])]


USER = Probe(
    id="proofpoint.essentials_user",
    asks="api",
    needs_recipient=True,
    kinds=frozenset({"proofpoint"}),
    tags=frozenset({"PP_API_UNAVAILABLE", "PPE_RECIPIENT_KNOWN", "PPE_RECIPIENT_UNKNOWN"}),
    collect=collect_user,
    evaluate=evaluate_user,
    deadline=12.0,
    summary="the recipient is a user or an alias of the Essentials organisation",
    applies=admin_api("essentials"),
)
