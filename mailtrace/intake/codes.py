"""What a delivery status code means: the rule that explains it and the tier it names.

Rules are tried in order: vendor signatures in the diagnostic text first (a Proofpoint
reputation block is a 5.7.1 like many others), then enhanced status codes (RFC 3463),
exact or in a documented range. Sources: Exchange Online's NDR table (reference
graph-exo.md §7, learn.microsoft.com "Email non-delivery reports and SMTP errors in
Exchange Online") and Proofpoint's rejection texts (proofpoint.md §7).

``blame`` says which server the failure is about: ``replier`` (the server that gave the
reply, or generated the report when no remote server is named), ``next-hop`` (the
server the reporter could not reach: 4.4.7 expired, 4.4.1 no answer), ``mailbox`` (a
full mailbox is the mailbox tier's, whichever server relayed the reply) or ``dns`` (the
name lookup of the recipient's domain failed). ``vendor`` names the tier kind a code is
unmistakably from, for reports that name no host at all (pasted NDR text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class CodeRule:
    tag: str
    codes: frozenset[str] = frozenset()
    span: tuple[str, int, int] | None = None  # ("5.7", 606, 649): 5.7.606 .. 5.7.649
    text: re.Pattern[str] | None = None
    vendor: str | None = None
    blame: str = "replier"

    def matches(self, status: str | None, diagnostic: str) -> bool:
        coded = bool(self.codes) or self.span is not None
        if coded:
            if status is None:
                return False
            in_span = False
            if self.span is not None:
                prefix, low, high = self.span
                head, _, last = status.rpartition(".")
                in_span = head == prefix and last.isdigit() and low <= int(last) <= high
            if status not in self.codes and not in_span:
                return False
        return self.text is None or bool(self.text.search(diagnostic))


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


EXO = "exchange-online"
PROOFPOINT = "proofpoint"

RULES: tuple[CodeRule, ...] = (
    CodeRule("NDR_PROOFPOINT_IPCHECK_BLOCK", text=_re(r"ipcheck\.proofpoint\.com"),
             vendor=PROOFPOINT),
    CodeRule("NDR_PROOFPOINT_DYNAMIC_REPUTATION", text=_re(r"Proofpoint Dynamic Reputation"),
             vendor=PROOFPOINT),
    CodeRule("NDR_EXO_TENANT_ATTRIBUTION", text=_re(r"\bTenantAttribution\b"), vendor=EXO),
    CodeRule("NDR_EXO_TENANT_ATTRIBUTION", codes=frozenset({"5.7.64"}), vendor=EXO),
    CodeRule("NDR_EXO_DIRECT_SEND_REJECTED", codes=frozenset({"5.7.68"}), vendor=EXO),
    CodeRule("NDR_EXO_CONNECTOR_RESTRICTED", text=_re(r"TenantInboundAttribution"), vendor=EXO),
    CodeRule("NDR_EXO_CONNECTOR_RESTRICTED", codes=frozenset({"5.7.51"}), vendor=EXO),
    CodeRule("NDR_EXO_RECIPIENT_NOT_IN_DIRECTORY", codes=frozenset({"5.4.1"}),
             text=_re(r"Recipient address rejected: Access denied|AS\(201806281\)"), vendor=EXO),
    CodeRule("NDR_RELAY_ACCESS_DENIED", codes=frozenset({"5.4.1", "5.7.1"}),
             text=_re(r"Relay access denied")),
    CodeRule("NDR_EXO_BANNED_SENDER_IP", span=("5.7", 606, 649), vendor=EXO),
    CodeRule("NDR_EXO_SENDER_IP_THROTTLED", span=("4.7", 500, 699), vendor=EXO),
    CodeRule("NDR_EXO_SENDER_IP_THROTTLED", span=("4.7", 850, 899), vendor=EXO),
    CodeRule("NDR_MAIL_LOOP", codes=frozenset({"5.4.14"}), vendor=EXO),
    CodeRule("NDR_MAIL_LOOP", codes=frozenset({"5.4.6", "5.4.0"}), text=_re(r"loop|hop count")),
    CodeRule("NDR_MESSAGE_EXPIRED", codes=frozenset({"4.4.7", "5.4.7", "5.4.300"}),
             blame="next-hop"),
    CodeRule("NDR_EXO_RECIPIENT_NOT_FOUND", codes=frozenset({"5.1.10"}), vendor=EXO),
    CodeRule("NDR_RECIPIENT_UNKNOWN", codes=frozenset({"5.1.1"})),
    CodeRule("NDR_MAILBOX_FULL", codes=frozenset({"5.2.2", "4.2.2"}), blame="mailbox"),
    CodeRule("NDR_SENDER_AUTH_REJECTED", codes=frozenset({"5.7.509", "5.7.23", "5.7.26"})),
    CodeRule("NDR_NOT_AUTHORIZED", codes=frozenset({"5.7.1"})),
    CodeRule("NDR_DESTINATION_NOT_RESOLVABLE", codes=frozenset({"5.4.4", "4.4.3", "5.1.2"}),
             blame="dns"),
    CodeRule("NDR_NEXT_HOP_UNREACHABLE",
             codes=frozenset({"4.4.1", "4.4.2", "4.4.316", "5.4.316"}),
             text=_re(r"connect|timed out|refused|no answer|unreachable|lost connection"),
             blame="next-hop"),
    CodeRule("NDR_NEXT_HOP_UNREACHABLE", codes=frozenset({"4.4.1", "4.4.316"}),
             blame="next-hop"),
    # Texts that carry no status code (a pasted Postfix report says only this).
    CodeRule("NDR_DESTINATION_NOT_RESOLVABLE",
             text=_re(r"Host or domain name not found|Name service error"), blame="dns"),
    CodeRule("NDR_NEXT_HOP_UNREACHABLE",
             text=_re(r"connect to \S+: (Connection timed out|Connection refused|No route)"),
             blame="next-hop"),
)

DELIVERED = CodeRule("NDR_DELIVERED")
UNCATALOGUED = CodeRule("NDR_CODE_UNCATALOGUED")

#: Every tag this module can give a recipient (the catalog declares each one).
TAGS: frozenset[str] = frozenset({r.tag for r in RULES} | {DELIVERED.tag, UNCATALOGUED.tag})


def status_in(text: str) -> str | None:
    """The first enhanced status code (RFC 3463 ``class.subject.detail``) in a text."""
    found = _STATUS.search(text)
    return ".".join(found.groups()) if found else None


def explain(action: str | None, status: str | None, diagnostic: str) -> CodeRule:
    """The rule that explains one recipient's outcome."""
    if (action or "").lower() in ("delivered", "relayed", "expanded") or (
        status is not None and status.startswith("2.")
    ):
        return DELIVERED
    for rule in RULES:
        if rule.matches(status, diagnostic):
            return rule
    return UNCATALOGUED
