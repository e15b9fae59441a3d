"""The lab's mail log: the messages a scenario's world has seen, and what every tier did
with each — so the gateway's Smart Search and quarantine and the tenant's message trace
tell one consistent story, joined by Message-ID as in a real deployment.

A scenario that sets ``messages`` gets its API stand-ins' per-message answers from here;
the records keep the documented shapes (reference/proofpoint.md §3, graph-exo.md §5).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: What the gateway did: relayed it (the next hop accepted), rejected or quarantined it,
#: or passed it on and the next hop answered 4xx (deferred) or 5xx (bounced).
GatewayFate = Literal["relayed", "rejected", "quarantined", "deferred", "bounced"]
#: Exchange Online's message trace status (exchangeMessageTraceStatus), or None: the
#: message never reached the tenant.
TenantFate = Literal["delivered", "filteredAsSpam", "quarantined", "failed", "pending"]


@dataclass(frozen=True)
class LabMessage:
    sender: str
    subject: str
    minutes_ago: float
    gateway: GatewayFate = "relayed"
    rule: str = "system"  # the gateway's final rule
    folder: str = "Quarantine"  # the gateway's quarantine folder, when quarantined
    reply: str = ""  # the next hop's reply, when deferred or bounced
    tenant: TenantFate | None = "delivered"
    junk: bool = False  # the tenant moved it to Junk Email (MoveToJmf)
    scl: int | None = None  # the tenant's spam confidence level
    sfv: str | None = None  # the tenant's spam filter verdict (SPM, NSPM...)

    def message_id(self) -> str:
        digest = hashlib.sha256(f"{self.sender}|{self.subject}|{self.minutes_ago}".encode())
        return f"<lab.{digest.hexdigest()[:12]}@{self.sender.rpartition('@')[2]}>"

    def when(self, now: dt.datetime) -> dt.datetime:
        return now - dt.timedelta(minutes=self.minutes_ago)

    @property
    def reaches_tenant(self) -> bool:
        return self.gateway == "relayed" and self.tenant is not None


#: The world of a scenario that sets no mail log: the recipient's two recent messages,
#: relayed by the gateway and delivered by the tenant.
DEFAULT_MESSAGES = (LabMessage("newsletter@contoso-partner.example", "Monthly news", 300),
                    LabMessage("orders@fabrikam-supplier.example", "Purchase order", 20))


def _bare(message_id: str) -> str:
    return message_id.strip().strip("<>").lower()


def matches(m: LabMessage, *, sender: str | None = None, message_id: str | None = None,
            subject: str | None = None) -> bool:
    """The search keys as the APIs apply them: an address, or a domain (``*@domain``, or
    ``@domain``); the Message-ID exactly (angle brackets aside); a subject part."""
    if sender:
        wanted = sender.lower().lstrip("*")
        if wanted.startswith("@") and not m.sender.lower().endswith(wanted):
            return False
        if not wanted.startswith("@") and m.sender.lower() != wanted:
            return False
    if message_id and _bare(message_id) != _bare(m.message_id()):
        return False
    return not subject or subject.lower() in m.subject.lower()


def in_window(messages: Iterable[LabMessage], now: dt.datetime, start: dt.datetime,
              end: dt.datetime) -> list[LabMessage]:
    return [m for m in messages if start <= m.when(now) <= end]


# --- Proofpoint Smart Search and quarantine ---------------------------------------------

def search_fields(m: LabMessage, recipient: str, next_host: str) -> dict[str, Any]:
    """What Smart Search's record says of the message beyond the common fields."""
    relay = f"relay={next_host}. [192.0.2.25]"
    fields: dict[str, Any] = {
        "Sender": m.sender, "Message_ID": m.message_id(), "Subject": m.subject,
        "Final_Action": "accept", "Final_Rule": m.rule, "Quarantine_Folder": "",
        "Quarantine_Rule": "", "Sendmail_To": recipient, "Sendmail_Errorcode": "",
        "Sendmail_Stat": "Sent (Ok: queued as 4ZlabQ2x1z)",
        "SendmailRaw_Log": f"to=<{recipient}>, delay=00:00:01, mailer=esmtp, {relay}, "
                           "dsn=2.0.0, stat=Sent (Ok: queued as 4ZlabQ2x1z)",
    }
    if m.gateway == "rejected":
        fields.update({"Final_Action": "reject", "Sendmail_To": "", "Sendmail_Stat": "",
                       "SendmailRaw_Log": ""})
    elif m.gateway == "quarantined":
        fields.update({"Final_Action": "discard", "Quarantine_Folder": m.folder,
                       "Quarantine_Rule": m.rule, "Sendmail_To": "", "Sendmail_Stat": "",
                       "SendmailRaw_Log": ""})
    elif m.gateway in ("deferred", "bounced"):
        code = m.reply.split(" ", 2)[:2] if m.reply else ["451", "4.7.500"]
        stat = "Deferred" if m.gateway == "deferred" else "Service unavailable"
        dsn = code[1] if len(code) > 1 else "4.0.0"
        fields.update({"Sendmail_Stat": stat, "Sendmail_Errorcode": " ".join(code),
                       "SendmailRaw_Log": f"to=<{recipient}>, delay=00:05:00, mailer=esmtp, "
                                          f"{relay}, dsn={dsn}, stat={stat}: {m.reply}"})
    return fields


def quarantine_fields(m: LabMessage) -> dict[str, Any]:
    return {"folder": m.folder, "rule": m.rule, "from": m.sender, "subject": m.subject,
            "messageid": m.message_id()}


# --- Exchange Online message trace ------------------------------------------------------

def _time(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def trace_id(m: LabMessage) -> str:
    digest = hashlib.sha256(m.message_id().encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def trace(m: LabMessage, recipient: str, now: dt.datetime) -> dict[str, Any]:
    """An exchangeMessageTrace (graph-exo.md §5), received a minute after the gateway."""
    return {"id": trace_id(m), "senderAddress": m.sender, "recipientAddress": recipient,
            "messageId": m.message_id(),
            "receivedDateTime": _time(m.when(now) + dt.timedelta(minutes=1)),
            "subject": m.subject, "size": 45678, "fromIP": "192.0.2.25", "toIP": "",
            "status": m.tenant}


def details(m: LabMessage, now: dt.datetime) -> list[dict[str, Any]]:
    """exchangeMessageTraceDetail events (graph-exo.md §5): Receive, the spam verdict
    with its SCL and SFV in the event data, MoveToJmf, and the final event."""
    at = m.when(now) + dt.timedelta(minutes=1)
    events: list[tuple[str, str, str]] = [
        ("Receive", "Message received by: MN2PR00MB0670.namprd00.prod.outlook.com", "")]
    if m.scl is not None:
        data = (f'<root><MEP Name="SCL" Integer="{m.scl}" />'
                f'<MEP Name="SFV" String="{m.sfv or "SPM"}" /></root>')
        events.append(("Spam", "The message was marked as spam.", data))
    if m.junk:
        events.append(("MoveToJmf", "The message was moved to the Junk Email folder.", ""))
    final = {"delivered": ("Deliver", "The message was successfully delivered."),
             "filteredAsSpam": ("Deliver", "The message was delivered to the Junk Email "
                                "folder.") if m.junk else
             ("Quarantine", "The message was quarantined as spam."),
             "quarantined": ("Quarantine", "The message was quarantined: High confidence "
                             "phish."),
             "failed": ("Fail", "Reason: [{LED=550 5.2.2 mailbox full}]"),
             "pending": ("Defer", "Delivery was deferred.")}
    events.append((*final[m.tenant or "pending"], ""))
    return [{"id": f"{trace_id(m)}-{i}", "messageId": m.message_id(),
             "dateTime": _time(at + dt.timedelta(seconds=i)), "event": event, "action": "",
             "description": description, "data": data or "<root></root>"}
            for i, (event, description, data) in enumerate(events)]


def trace_filter(text: str) -> Mapping[str, str | None]:
    """The keys of a message trace ``$filter`` the lab honours: sender, Message-ID, a
    subject part (the recipient and the time window are checked by the caller)."""
    import re

    def value(pattern: str) -> str | None:
        found = re.search(pattern, text)
        return found.group(1).replace("''", "'") if found else None

    return {"sender": value(r"senderAddress eq '((?:[^']|'')+)'"),
            "message_id": value(r"messageId eq '((?:[^']|'')+)'"),
            "subject": value(r"contains\(subject,\s*'((?:[^']|'')+)'\)")}
