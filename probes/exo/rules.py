"""Inbox rules that delete, move, forward or redirect the recipient's mail.

Graph ``GET /users/{id}/mailFolders/inbox/messageRules`` (graph-exo reference §3): an
enabled rule whose actions delete (to Deleted Items or permanently), move, forward or
redirect explains mail that "never arrived in the Inbox". Each rule is named with its
conditions; a deleting rule with no condition and no exception takes all mail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailtrace.clients.msgraph.client import GraphNotFound
from mailtrace.clients.msgraph.models import MessageRule, Recipient
from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.probes.base import NotTested, Probe, ProbeContext
from mailtrace.probes.exo.common import GRAPH_FAILURE_TAGS, ask_all, has_graph
from mailtrace.probes.exo.directory import PROBE_ID as DIRECTORY
from mailtrace.probes.exo.directory import mailbox_user
from mailtrace.probes.exo.hybrid import OnPremisesMailbox, on_premises_mailbox

PERMISSION = "MailboxSettings.Read"


@dataclass(frozen=True)
class InboxRule:
    name: str
    sequence: int | None
    enabled: bool
    conditions: tuple[str, ...] = ()
    exceptions: tuple[str, ...] = ()
    delete: bool = False
    permanent_delete: bool = False
    move_to: str | None = None
    forward_to: tuple[str, ...] = ()
    redirect_to: tuple[str, ...] = ()
    stop: bool = False

    def evidence(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items()}


@dataclass(frozen=True)
class RulesCheck:
    address: str
    rules: tuple[InboxRule, ...]
    evidence: tuple[Evidence, ...] = ()


def _text(value: Any) -> str:
    """A predicate's or an action's value as text: recipients by their address."""
    if isinstance(value, Recipient):
        return (value.email_address.address if value.email_address else None) or "?"
    if isinstance(value, Mapping):
        address = value.get("emailAddress")
        if isinstance(address, Mapping) and address.get("address"):
            return str(address["address"])
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items()
                         if not k.startswith("@odata"))
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return str(value)


def predicates(raw: Mapping[str, Any] | None) -> tuple[str, ...]:
    """``messageRulePredicates`` as "name: value" lines, whatever fields are set, in the
    order of their names."""
    if not raw:
        return ()
    return tuple(f"{name}: {_text(value)}" for name, value in sorted(raw.items())
                 if not name.startswith("@odata") and value not in (None, [], "", {}))


def _recipients(items: list[Recipient] | None) -> tuple[str, ...]:
    return tuple(_text(r) for r in items or ())


def _rule(m: MessageRule) -> InboxRule:
    a = m.actions
    return InboxRule(
        name=str(m.display_name or m.id or "(unnamed)"), sequence=m.sequence,
        enabled=m.is_enabled is not False,
        conditions=predicates(m.conditions), exceptions=predicates(m.exceptions),
        delete=bool(a and a.delete), permanent_delete=bool(a and a.permanent_delete),
        move_to=(a.move_to_folder if a else None) or None,
        forward_to=(_recipients(a.forward_to) + _recipients(a.forward_as_attachment_to)
                    if a else ()),
        redirect_to=_recipients(a.redirect_to) if a else (),
        stop=bool(a and a.stop_processing_rules))


async def collect(ctx: ProbeContext) -> RulesCheck | OnPremisesMailbox:
    user = mailbox_user(ctx)
    try:
        listing, exchange = await ask_all(
            ctx, "list inbox rules", PERMISSION,
            lambda sdk: sdk.users.by_user_id(user.id).mail_folders.by_mail_folder_id("inbox")
            .message_rules.to_get_request_information(), MessageRule)
    except GraphNotFound as exc:
        elsewhere = on_premises_mailbox(ctx, user, exc.code, "list inbox rules",
                                        (exc.exchange.evidence(error=str(exc)),))
        if elsewhere is not None:  # hybrid: the rules live with the on-premises mailbox
            return elsewhere
        raise NotTested(f"{ctx.target.recipient} has no Exchange Online mailbox to read rules "
                        f"from ({exc})") from None
    rules = tuple(_rule(m) for m in listing.items)
    return RulesCheck(ctx.target.recipient or "", rules,
                      (exchange.evidence(rules=[r.evidence() for r in rules]),))


def _when(rule: InboxRule) -> str:
    text = "; ".join(rule.conditions) or "all mail"
    if rule.exceptions:
        text += " except " + "; ".join(rule.exceptions)
    return text


def evaluate(check: RulesCheck | OnPremisesMailbox) -> list[Finding]:
    if isinstance(check, OnPremisesMailbox):
        return check.findings()
    ev = list(check.evidence)
    findings: list[Finding] = []
    for rule in sorted((r for r in check.rules if r.enabled),
                       key=lambda r: (r.sequence is None, r.sequence or 0)):
        base = {"address": check.address, "rule": rule.name, "conditions": _when(rule)}
        if rule.delete or rule.permanent_delete:
            action = "permanently deletes" if rule.permanent_delete else "deletes"
            everything = not rule.conditions and not rule.exceptions
            tag = "EXO_RULE_DELETES_ALL" if everything else "EXO_RULE_DELETES"
            findings.append(Finding(tag, {**base, "action": action}, ev))
        elif rule.move_to:
            findings.append(Finding("EXO_RULE_MOVES",
                                    {**base, "folder": folder_label(rule.move_to)}, ev))
        if rule.forward_to or rule.redirect_to:
            action = "redirects" if rule.redirect_to else "forwards"
            to = ", ".join((*rule.redirect_to, *rule.forward_to))
            findings.append(Finding("EXO_RULE_FORWARDS", {**base, "action": action, "to": to},
                                    ev))
    if not findings:
        enabled = sum(1 for r in check.rules if r.enabled)
        findings.append(Finding("EXO_RULES_OK", {"address": check.address, "count": enabled},
                                ev))
    return findings


def folder_label(folder_id: str) -> str:
    """Folder ids are opaque; keep them short in messages."""
    return folder_id if len(folder_id) <= 24 else re.sub(r"^(.{20}).*$", r"\1…", folder_id)


PROBE = Probe(
    id="exo.rules",
    asks="api",
    depends=(DIRECTORY,),
    needs_recipient=True,
    kinds=frozenset({"exchange-online"}),
    tags=frozenset({"EXO_MAILBOX_ON_PREMISES", "EXO_RULE_DELETES_ALL", "EXO_RULE_DELETES",
                    "EXO_RULE_MOVES",
                    "EXO_RULE_FORWARDS", "EXO_RULES_OK", *GRAPH_FAILURE_TAGS}),
    collect=collect,
    evaluate=evaluate,
    deadline=10.0,
    summary="no enabled inbox rule deletes, moves, forwards or redirects the recipient's mail",
    applies=has_graph,
    permissions=(PERMISSION,),
)
