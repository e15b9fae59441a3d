"""Find the recipient in the tenant's directory by any of its addresses.

Users, groups and org contacts are asked at the same time, each by proxy address, primary
mail address or (users) user principal name (graph-exo reference §2). The lookup is an
advanced query (``ConsistencyLevel: eventual`` with ``$count``), the one place mailtrace
sends that header. It is its own probe, ``exo.directory``, asked first; the recipient,
inbox-rule and MailTips probes declare it as a dependency and read its answer, so the
calls that need the user's id are one round trip behind it, and a lookup Graph refuses is
reported once, here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from mailtrace.clients.msgraph.client import Exchange, GraphError, Request, headers
from mailtrace.clients.msgraph.models import DirectoryEntry
from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.probes.base import NotTested, Probe, ProbeContext
from mailtrace.probes.exo.common import GRAPH_FAILURE_TAGS, client, has_graph, not_tested

PROBE_ID = "exo.directory"
USER_PERMISSION = "User.Read.All"
GROUP_PERMISSION = "GroupMember.Read.All"
CONTACT_PERMISSION = "OrgContact.Read.All"

USER_FIELDS = ["id", "displayName", "userPrincipalName", "mail", "accountEnabled",
               "proxyAddresses", "assignedPlans", "provisionedPlans", "userType",
               "onPremisesSyncEnabled"]
GROUP_FIELDS = ["id", "displayName", "mail", "mailEnabled", "securityEnabled", "groupTypes",
                "proxyAddresses"]
CONTACT_FIELDS = ["id", "displayName", "mail", "proxyAddresses"]


@dataclass(frozen=True)
class Plan:
    service: str
    status: str  # capabilityStatus (assigned) or provisioningStatus (provisioned)
    plan_id: str | None = None


@dataclass(frozen=True)
class DirectoryObject:
    kind: str  # user | group | contact
    id: str
    name: str
    mail: str | None = None
    proxy_addresses: tuple[str, ...] = ()
    upn: str | None = None
    account_enabled: bool | None = None
    user_type: str | None = None
    assigned_plans: tuple[Plan, ...] = ()
    provisioned_plans: tuple[Plan, ...] = ()
    mail_enabled: bool | None = None
    security_enabled: bool | None = None
    group_types: tuple[str, ...] = ()
    #: users: synchronized from the on-premises directory (Exchange hybrid, §2)
    on_premises_sync: bool | None = None

    def addresses(self) -> set[str]:
        found = {p.partition(":")[2].lower() for p in self.proxy_addresses
                 if p.lower().startswith("smtp:")}
        return found | {a.lower() for a in (self.mail, self.upn) if a}

    def evidence(self) -> dict[str, Any]:
        ev: dict[str, Any] = {"kind": self.kind, "id": self.id, "displayName": self.name,
                        "mail": self.mail, "proxyAddresses": list(self.proxy_addresses)}
        if self.kind == "user":
            ev |= {"userPrincipalName": self.upn, "accountEnabled": self.account_enabled,
                   "assignedPlans": [vars(p) for p in self.assigned_plans],
                   "provisionedPlans": [vars(p) for p in self.provisioned_plans],
                   "onPremisesSyncEnabled": self.on_premises_sync}
        if self.kind == "group":
            ev |= {"mailEnabled": self.mail_enabled, "securityEnabled": self.security_enabled,
                   "groupTypes": list(self.group_types)}
        return ev


@dataclass(frozen=True)
class Lookup:
    address: str
    found: tuple[DirectoryObject, ...]
    evidence: tuple[Evidence, ...] = ()
    #: Lookups that could not run (a missing permission, say): "not found" is then unsure.
    unanswered: tuple[NotTested, ...] = field(default=())

    @property
    def user(self) -> DirectoryObject | None:
        users = [o for o in self.found if o.kind == "user"]
        return users[0] if len(self.found) == 1 and users else None


def quoted(value: str) -> str:
    """An OData string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def address_filter(address: str, *, upn: bool) -> str:
    a = quoted(f"smtp:{address}")
    parts = [f"proxyAddresses/any(x:x eq {a})", f"mail eq {quoted(address)}"]
    if upn:
        parts.append(f"userPrincipalName eq {quoted(address)}")
    return " or ".join(parts)


def _plans(items: Any, status_field: str) -> tuple[Plan, ...]:
    plans = []
    for p in items or ():
        plan_id = getattr(p, "service_plan_id", None)
        plans.append(Plan(str(getattr(p, "service", "") or ""),
                          str(getattr(p, status_field, "") or ""),
                          str(plan_id) if plan_id is not None else None))
    return tuple(plans)


def _object(kind: str, m: DirectoryEntry) -> DirectoryObject:
    common: dict[str, Any] = {
        "kind": kind, "id": str(m.id or ""), "name": str(m.display_name or ""),
        "mail": m.mail, "proxy_addresses": tuple(m.proxy_addresses or ())}
    if kind == "user":
        return DirectoryObject(
            **common, upn=m.user_principal_name, account_enabled=m.account_enabled,
            user_type=m.user_type,
            assigned_plans=_plans(m.assigned_plans, "capability_status"),
            provisioned_plans=_plans(m.provisioned_plans, "provisioning_status"),
            on_premises_sync=m.on_premises_sync_enabled)
    if kind == "group":
        return DirectoryObject(**common, mail_enabled=m.mail_enabled,
                               security_enabled=m.security_enabled,
                               group_types=tuple(m.group_types or ()))
    return DirectoryObject(**common)


async def _search(ctx: ProbeContext, address: str) -> Lookup:
    graph = await client(ctx)  # first: it loads the SDK without holding the event loop
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.contacts.contacts_request_builder import ContactsRequestBuilder
    from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    def config(params: Any) -> RequestConfiguration[Any]:
        return RequestConfiguration(query_parameters=params,
                                    headers=headers(ConsistencyLevel="eventual"))

    users = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        filter=address_filter(address, upn=True), select=USER_FIELDS, count=True)
    groups = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
        filter=address_filter(address, upn=False), select=GROUP_FIELDS, count=True)
    contacts = ContactsRequestBuilder.ContactsRequestBuilderGetQueryParameters(
        filter=address_filter(address, upn=False), select=CONTACT_FIELDS, count=True)
    asks: list[tuple[str, str, str, Request]] = [
        ("user", "list users by address", USER_PERMISSION,
         lambda sdk: sdk.users.to_get_request_information(config(users))),
        ("group", "list groups by address", GROUP_PERMISSION,
         lambda sdk: sdk.groups.to_get_request_information(config(groups))),
        ("contact", "list org contacts by address", CONTACT_PERMISSION,
         lambda sdk: sdk.contacts.to_get_request_information(config(contacts)))]
    results: list[Any] = await asyncio.gather(
        *(graph.ask_all(call, request, DirectoryEntry, ctx.deadline)
          for _, call, _, request in asks),
        return_exceptions=True)
    found: list[DirectoryObject] = []
    evidence: list[Evidence] = []
    unanswered: list[NotTested] = []
    for (kind, call, permission, _), result in zip(asks, results, strict=True):
        if isinstance(result, GraphError):
            unanswered.append(not_tested(ctx, result, call, permission))
            continue
        if isinstance(result, BaseException):
            raise result
        listing, exchange = result
        assert isinstance(exchange, Exchange)
        objects = [_object(kind, m) for m in listing.items]
        matching = [o for o in objects if address.lower() in o.addresses()]
        found += matching
        evidence.append(exchange.evidence(found=[o.evidence() for o in matching]))
    return Lookup(address, tuple(found), tuple(evidence), tuple(unanswered))


async def collect(ctx: ProbeContext) -> Lookup:
    address = ctx.target.recipient
    if address is None:
        raise NotTested("triage by domain: no recipient to look up (give --recipient)")
    return await _search(ctx, address)


def evaluate(found: Lookup) -> list[Finding]:
    """Nothing to judge here (``exo.recipient`` does); but when the recipient was not
    found while some kinds of object could not be asked, "not found" would be a guess."""
    if not found.found and found.unanswered:
        raise found.unanswered[0]
    return []


def lookup(ctx: ProbeContext) -> Lookup:
    """The answer of the ``exo.directory`` probe this probe depends on."""
    found = ctx.observation(PROBE_ID)
    assert isinstance(found, Lookup)  # the engine runs a dependent only after it
    return found


def mailbox_user(ctx: ProbeContext) -> DirectoryObject:
    """The recipient as a user (for the calls on a mailbox), or *not tested* saying why."""
    found = lookup(ctx)
    if found.user is not None:
        return found.user
    if not found.found:
        if found.unanswered:  # the recipient probe shows the evidence; no copy here
            raise NotTested(f"the recipient lookup could not run: {found.unanswered[0].reason}")
        raise NotTested(f"{found.address} is not in the tenant's directory")
    kinds = ", ".join(sorted({o.kind for o in found.found}))
    raise NotTested(f"{found.address} is not one mailbox user (found: {kinds})")


PROBE = Probe(
    id=PROBE_ID,
    asks="api",
    needs_recipient=True,
    kinds=frozenset({"exchange-online"}),
    tags=GRAPH_FAILURE_TAGS,
    collect=collect,
    evaluate=evaluate,
    deadline=10.0,
    summary="find the recipient in the tenant's directory by any of its addresses (users, "
            "groups and org contacts at once); the other recipient probes read its answer",
    applies=has_graph,
    permissions=(USER_PERMISSION, GROUP_PERMISSION, CONTACT_PERMISSION),
)
