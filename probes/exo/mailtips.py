"""MailTips for the recipient: a full mailbox, restricted delivery, moderation.

Graph ``POST /users/{id}/getMailTips`` (graph-exo reference §2, "getMailTips"), asked in
the recipient's own mailbox context: ``mailboxFull`` means Exchange Online rejects new
mail (a quota), ``deliveryRestricted`` that the mailbox accepts mail only from some
senders, ``isModerated`` that messages wait for a moderator.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailtrace.clients.msgraph.client import GraphNotFound
from mailtrace.clients.msgraph.models import MailTips as MailTipsAnswer
from mailtrace.clients.msgraph.models import Page
from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.probes.base import NotTested, Probe, ProbeContext
from mailtrace.probes.exo.common import GRAPH_FAILURE_TAGS, ask, client, has_graph
from mailtrace.probes.exo.directory import PROBE_ID as DIRECTORY
from mailtrace.probes.exo.directory import mailbox_user
from mailtrace.probes.exo.hybrid import OnPremisesMailbox, on_premises_mailbox

PERMISSION = "Mail.Read"
OPTIONS = "mailboxFullStatus, deliveryRestriction, moderationStatus, maxMessageSize"


@dataclass(frozen=True)
class MailTips:
    address: str
    mailbox_full: bool | None = None
    delivery_restricted: bool | None = None
    moderated: bool | None = None
    max_message_size: int | None = None
    error: str | None = None
    evidence: tuple[Evidence, ...] = ()


async def collect(ctx: ProbeContext) -> MailTips | OnPremisesMailbox:
    await client(ctx)  # first: it loads the SDK without holding the event loop
    from msgraph.generated.users.item.get_mail_tips.get_mail_tips_post_request_body import (
        GetMailTipsPostRequestBody,
    )

    user = mailbox_user(ctx)
    address = ctx.target.recipient or ""
    # MailTipsOptions is a flags value ("a, b"); the generated model writes one enum
    # member only, so the documented string goes in the body's additional data.
    body = GetMailTipsPostRequestBody(email_addresses=[address],
                                      additional_data={"MailTipsOptions": OPTIONS})
    try:
        answer, exchange = await ask(ctx, "get MailTips", PERMISSION,
                                     lambda sdk: sdk.users.by_user_id(user.id).get_mail_tips
                                     .to_post_request_information(body),
                                     Page[MailTipsAnswer])
    except GraphNotFound as exc:
        elsewhere = on_premises_mailbox(ctx, user, exc.code, "get MailTips",
                                        (exc.exchange.evidence(error=str(exc)),))
        if elsewhere is not None:  # hybrid: the mailbox is on Exchange Server
            return elsewhere
        raise NotTested(f"{address} has no mailbox to ask MailTips in ({exc})") from None
    tips = next((t for t in answer.value or ()
                 if t.email_address is not None
                 and (t.email_address.address or "").lower() == address.lower()), None)
    if tips is None:
        raise NotTested(f"Graph returned no MailTips for {address}", [Finding(
            "EXO_GRAPH_BAD_RESPONSE", {"call": "get MailTips", "status": exchange.status,
                                       "error": "no MailTips for the recipient"},
            [exchange.evidence()])])
    error = (f"{tips.error.code}: {tips.error.message}" if tips.error is not None else None)
    record = {"mailboxFull": tips.mailbox_full, "deliveryRestricted": tips.delivery_restricted,
              "isModerated": tips.is_moderated, "maxMessageSize": tips.max_message_size,
              "error": error}
    return MailTips(address, tips.mailbox_full, tips.delivery_restricted, tips.is_moderated,
                    tips.max_message_size, error, (exchange.evidence(mailTips=record),))


def evaluate(tips: MailTips | OnPremisesMailbox) -> list[Finding]:
    if isinstance(tips, OnPremisesMailbox):
        return tips.findings()
    ev = list(tips.evidence)
    address = tips.address
    findings = []
    if tips.mailbox_full:
        findings.append(Finding("EXO_MAILBOX_FULL", {"address": address}, ev))
    if tips.delivery_restricted:
        findings.append(Finding("EXO_DELIVERY_RESTRICTED", {"address": address}, ev))
    if tips.moderated:
        findings.append(Finding("EXO_RECIPIENT_MODERATED", {"address": address}, ev))
    if tips.error:
        findings.append(Finding("EXO_MAILTIPS_ERROR", {"address": address, "error": tips.error},
                                ev))
    if not findings:
        size = tips.max_message_size
        findings.append(Finding("EXO_MAILTIPS_OK", {
            "address": address,
            "max_size": f"{size // 1024} KB" if isinstance(size, int) else "unknown"}, ev))
    return findings


PROBE = Probe(
    id="exo.mailtips",
    asks="api",
    depends=(DIRECTORY,),
    needs_recipient=True,
    kinds=frozenset({"exchange-online"}),
    tags=frozenset({"EXO_MAILBOX_ON_PREMISES", "EXO_MAILBOX_FULL", "EXO_DELIVERY_RESTRICTED",
                    "EXO_RECIPIENT_MODERATED",
                    "EXO_MAILTIPS_ERROR", "EXO_MAILTIPS_OK", *GRAPH_FAILURE_TAGS}),
    collect=collect,
    evaluate=evaluate,
    deadline=10.0,
    summary="MailTips: the recipient's mailbox is not full, delivery not restricted",
    applies=has_graph,
    permissions=(PERMISSION,),
)
