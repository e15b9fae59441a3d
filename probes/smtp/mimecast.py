"""Mimecast's SMTP replies, read into tags: what its gateway says about a recipient or a
sender, in the families its documentation lists ("Mimecast SMTP Error Codes",
https://mimecastsupport.zendesk.com/hc/en-us/articles/34000709564691).

Mimecast writes the family in the reply text, often followed by a link to that page and
a reference (``550 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550
[xYz.uk123]``), and the code alone rarely tells the families apart: the text decides,
the code only whether it is permanent. Replies that judge the sending address or the
probe's own sender (reputation, blocked senders, SPF/DKIM/DMARC of the probe's MAIL FROM,
anti-spoofing of a sender in the customer's own domain) are not about the recipient.
"""

from __future__ import annotations

import re

from mailtrace.clients.smtp_reply import Reply
from mailtrace.core.findings import Finding

#: (tag, pattern) in the order they are tried: the more specific first.
FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("MC_ACCOUNT_INBOUND_DISABLED", re.compile(r"account inbounds? disabled", re.I)),
    ("MC_SENDER_AUTH_REJECTED",
     re.compile(r"\b(spf|dkim|dmarc) sender invalid", re.I)),
    ("MC_ANTI_SPOOFING_REJECTED", re.compile(r"anti-?spoofing", re.I)),
    ("MC_ENVELOPE_REJECTED",
     re.compile(r"envelope (rejected|blocked)|administrative prohibition|"
                r"blocked senders?|block(ed)? policy", re.I)),
    ("MC_RECIPIENT_INVALID",
     re.compile(r"invalid recipient|invalid address|user unknown|"
                r"recipient address (is )?invalid", re.I)),
    ("MC_RELAY_BLOCKED",
     re.compile(r"open relay not allowed|relaying (is )?(blocked|denied|not allowed)|"
                r"relay (access )?(blocked|denied|not permitted)", re.I)),
    ("MC_TLS_REQUIRED", re.compile(r"route requires (encryption|tls)", re.I)),
    ("MC_POLICY_REJECTED",
     re.compile(r"content examination|host network not allowed|security polic", re.I)),
)
TAGS = frozenset(tag for tag, _ in FAMILIES)

#: Replies that refuse the connecting address itself (observer, not tier).
OBSERVER_BLOCKS = (
    re.compile(r"Local CT IP Reputation", re.I),
    re.compile(r"IP temporarily blacklisted", re.I),
    re.compile(r"\bSender address blocked\b", re.I),
)


def read(reply: Reply, host: str, recipient: str, at_mail: bool) -> Finding | None:
    """The tag of a Mimecast refusal (MAIL FROM or RCPT TO), or None to let the generic
    reading decide (acceptance, greylisting and other temporary answers)."""
    if reply.positive:
        return None
    for tag, pattern in FAMILIES:
        if not pattern.search(reply.text):
            continue
        if tag == "MC_RECIPIENT_INVALID" and (at_mail or not reply.permanent):
            continue
        return Finding(tag, {"host": host, "recipient": recipient, "reply": str(reply)})
    return None
