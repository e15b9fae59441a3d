"""The recipient exists in the tenant, once, and has a working Exchange Online mailbox.

Found by any proxy address (user, group, org contact; graph-exo reference §2). For a
user: an Exchange Online mailbox plan assigned and enabled (``EXCHANGE_S_FOUNDATION`` and
the archive add-on give no mailbox), the plan provisioned (``provisioningStatus
Success``), the mailbox type (``mailboxSettings.userPurpose``, §3: unlicensed shared,
room and equipment mailboxes receive mail), and the account enabled. A 404
``MailboxNotEnabledForRESTAPI`` on mailboxSettings means there is no Exchange Online
mailbox (inactive, soft-deleted or on-premises); for a user synchronized from on-premises
in a hybrid topology, the mailbox is on Exchange Server (:mod:`.hybrid`) and judged there.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailtrace.clients.msgraph.client import GraphNotFound
from mailtrace.clients.msgraph.models import MailboxSettings
from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.probes.base import Probe, ProbeContext
from mailtrace.probes.exo.common import GRAPH_FAILURE_TAGS, ask, has_graph, tenant_of
from mailtrace.probes.exo.directory import PROBE_ID as DIRECTORY
from mailtrace.probes.exo.directory import DirectoryObject, Lookup, lookup
from mailtrace.probes.exo.hybrid import OnPremRoute, mailbox_place, onprem_routes

MAILBOX_PERMISSION = "MailboxSettings.Read"

# servicePlanId -> servicePlanName of the Exchange Online plans that give a mailbox (§2).
MAILBOX_PLANS = {
    "9aaf7827-d63c-4b61-89c3-182f06f82e5c": "EXCHANGE_S_STANDARD",
    "efb87545-963c-4e0d-99df-69c6916d9eb0": "EXCHANGE_S_ENTERPRISE",
    "4a82b400-a79f-41a4-b4e2-e94f5787b113": "EXCHANGE_S_DESKLESS",
    "1126bef5-da20-4f07-b45e-ad25d2581aa8": "EXCHANGE_S_ESSENTIALS",
    "fc52cc4b-ed7d-472d-bbe7-b081c23ecc56": "EXCHANGE_S_STANDARD_MIDMARKET",
    "90927877-dcff-4af6-b346-2332c0b15bb7": "EXCHANGE_B_STANDARD",
    "d42bdbd6-c335-4231-ab3d-c8f348d5aff5": "EXCHANGE_L_STANDARD",
}
# Exchange plans that give no primary mailbox.
OTHER_PLANS = {
    "113feb6c-3fe4-4440-bddc-54d774bf0318": "EXCHANGE_S_FOUNDATION",
    "176a09a6-7ec5-4039-ac02-b2791c6ba793": "EXCHANGE_S_ARCHIVE_ADDON",
}
# Mailbox types that receive mail with no licence and a disabled account (§2, §3).
RESOURCE_PURPOSES = {"shared", "room", "equipment"}


@dataclass(frozen=True)
class RecipientCheck:
    lookup: Lookup
    tenant: str | None
    purpose: str | None = None  # mailboxSettings.userPurpose; "unknown" if unreadable
    no_mailbox: str | None = None  # the 404 code when mailboxSettings says there is none
    mailbox_evidence: tuple[Evidence, ...] = ()
    #: Exchange hybrid: the on-premises tiers this tier hands mail to (topology).
    routes: tuple[OnPremRoute, ...] = ()


async def collect(ctx: ProbeContext) -> RecipientCheck:
    found = lookup(ctx)
    tenant = tenant_of(ctx.topology, ctx.tier)
    routes = onprem_routes(ctx.topology, ctx.flow, ctx.tier)
    user = found.user
    if user is None:
        return RecipientCheck(found, tenant, routes=routes)
    try:
        settings, exchange = await ask(
            ctx, "get mailboxSettings", MAILBOX_PERMISSION,
            lambda sdk: sdk.users.by_user_id(user.id).mailbox_settings
            .to_get_request_information(), MailboxSettings)
    except GraphNotFound as exc:
        return RecipientCheck(found, tenant, no_mailbox=exc.code or "NotFound",
                              mailbox_evidence=(exc.exchange.evidence(error=str(exc)),),
                              routes=routes)
    purpose = settings.user_purpose or "unknown"
    return RecipientCheck(found, tenant, purpose,
                          mailbox_evidence=(exchange.evidence(userPurpose=purpose),),
                          routes=routes)


def _plan_names(plans: tuple[str | None, ...]) -> str:
    names = [MAILBOX_PLANS.get(p or "") or OTHER_PLANS.get(p or "") or (p or "?")
             for p in plans]
    return ", ".join(names) or "none"


def _judge_user(check: RecipientCheck, user: DirectoryObject, ev: list[Evidence]) -> list[Finding]:
    address = check.lookup.address
    place = mailbox_place(user, check.no_mailbox, check.routes, address)
    if place.on_premises:
        # Exchange hybrid: the mailbox is on Exchange Server; Exchange Online only routes
        # the mail there, so it is judged at the on-premises tier, not blamed here.
        if place.route is None:
            return [Finding("EXO_RECIPIENT_ON_PREMISES_UNDECLARED", {
                "address": address, "reason": place.reason}, ev)]
        return [Finding("EXO_RECIPIENT_ON_PREMISES", {
            "address": address, "tier": place.route.tier,
            "hosts": ", ".join(place.route.hosts), "reason": place.reason}, ev)]
    resource = check.purpose in RESOURCE_PURPOSES
    findings: list[Finding] = []
    exchange = [p for p in user.assigned_plans if p.service.lower() == "exchange"]
    enabled = [p for p in exchange if p.status.lower() == "enabled"]
    mailbox_plans = [p for p in enabled if (p.plan_id or "").lower() in MAILBOX_PLANS]
    if not mailbox_plans and not resource:
        findings.append(Finding("EXO_NO_MAILBOX_PLAN", {
            "address": address, "user": user.upn or user.id,
            "plans": _plan_names(tuple(p.plan_id for p in enabled))}, ev))
    elif check.no_mailbox is not None:
        findings.append(Finding("EXO_NO_MAILBOX",
                                {"address": address, "code": check.no_mailbox}, ev))
    else:
        pending = [p for p in user.provisioned_plans
                   if p.service.lower() == "exchange" and p.status.lower() != "success"]
        if pending and not resource:
            findings.append(Finding("EXO_MAILBOX_NOT_PROVISIONED", {
                "address": address,
                "status": ", ".join(sorted({p.status or "unknown" for p in pending}))}, ev))
    if user.account_enabled is False and not resource:
        findings.append(Finding("EXO_ACCOUNT_DISABLED",
                                {"address": address, "user": user.upn or user.id}, ev))
    if not findings:
        kind = f"{check.purpose} mailbox" if check.purpose else "mailbox"
        findings.append(Finding("EXO_RECIPIENT_OK", {"address": address, "kind": kind,
                                                     "object": user.upn or user.id}, ev))
    return findings


def evaluate(check: RecipientCheck) -> list[Finding]:
    found = check.lookup
    ev = [*found.evidence, *check.mailbox_evidence]
    address = found.address
    if not found.found:  # exo.directory saw to it that every kind was asked
        return [Finding("EXO_RECIPIENT_NOT_FOUND",
                        {"address": address, "tenant": check.tenant or "the tenant"}, ev)]
    if len(found.found) > 1:
        objects = ", ".join(f"{o.kind} {o.name or o.id}" for o in found.found)
        return [Finding("EXO_RECIPIENT_AMBIGUOUS", {"address": address, "objects": objects}, ev)]
    [obj] = found.found
    if obj.kind == "user":
        return _judge_user(check, obj, ev)
    if obj.kind == "group":
        if obj.mail_enabled is False:
            return [Finding("EXO_GROUP_NOT_MAIL_ENABLED",
                            {"address": address, "group": obj.name or obj.id}, ev)]
        kind = ("Microsoft 365 group" if "unified" in {g.lower() for g in obj.group_types}
                else "mail-enabled security group" if obj.security_enabled
                else "distribution group")
        return [Finding("EXO_RECIPIENT_OK", {"address": address, "kind": kind,
                                             "object": obj.name or obj.id}, ev)]
    return [Finding("EXO_RECIPIENT_IS_CONTACT",
                    {"address": address, "contact": obj.name or obj.id,
                     "external": obj.mail or "unknown"}, ev)]


PROBE = Probe(
    id="exo.recipient",
    asks="api",
    depends=(DIRECTORY,),
    needs_recipient=True,
    kinds=frozenset({"exchange-online"}),
    tags=frozenset({
        "EXO_RECIPIENT_NOT_FOUND", "EXO_RECIPIENT_AMBIGUOUS", "EXO_NO_MAILBOX_PLAN",
        "EXO_NO_MAILBOX", "EXO_MAILBOX_NOT_PROVISIONED", "EXO_ACCOUNT_DISABLED",
        "EXO_GROUP_NOT_MAIL_ENABLED", "EXO_RECIPIENT_IS_CONTACT", "EXO_RECIPIENT_OK",
        "EXO_RECIPIENT_ON_PREMISES", "EXO_RECIPIENT_ON_PREMISES_UNDECLARED",
        *GRAPH_FAILURE_TAGS,
    }),
    collect=collect,
    evaluate=evaluate,
    deadline=10.0,
    summary="the recipient is in the tenant once (user, group or contact), enabled, with an "
            "Exchange Online mailbox plan assigned and provisioned",
    applies=has_graph,
    permissions=(MAILBOX_PERMISSION,),
)
