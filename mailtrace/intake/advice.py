"""The same advice as the triage gives: which triage tag's remediation fits a bounce's
failure at the tier it names.

A bounce and a triage can find the same fault: a Proofpoint gateway that does not know
the recipient is ``NDR_RECIPIENT_UNKNOWN`` in the bounce and ``PP_RECIPIENT_UNKNOWN`` in
the triage (``probes/catalog/smtp.yaml``). The admin should read one fix for it, the
triage's, which knows the tier: Proofpoint's user list, not ``Get-EXORecipient``. The
table maps (bounce tag, tier kind) to the triage tag whose remediation applies; the
bounce keeps its own remediation where the table has nothing (no topology, a tier kind
the table does not name).
"""

from __future__ import annotations

import re

_ANY_SMTP = ("proofpoint", "smtp-gateway", "exchange-onprem", "exchange-online")

#: bounce tag -> ((tier kinds, triage tag), ...), first match wins.
ADVICE: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    "NDR_RECIPIENT_UNKNOWN": (
        (("proofpoint",), "PP_RECIPIENT_UNKNOWN"),
        (("exchange-online",), "EXO_RECIPIENT_NOT_FOUND"),
        (("smtp-gateway", "exchange-onprem"), "SMTP_RCPT_UNKNOWN"),
    ),
    "NDR_EXO_RECIPIENT_NOT_FOUND": ((("exchange-online",), "EXO_RECIPIENT_NOT_FOUND"),),
    "NDR_EXO_RECIPIENT_NOT_IN_DIRECTORY": (
        (("exchange-online",), "EXO_EDGE_RECIPIENT_UNKNOWN"),),
    "NDR_RELAY_ACCESS_DENIED": (
        (("exchange-online",), "EXO_EDGE_DOMAIN_NOT_ACCEPTED"),
        (("proofpoint", "smtp-gateway", "exchange-onprem"), "SMTP_RCPT_RELAY_DENIED"),
    ),
    "NDR_MAILBOX_FULL": ((("exchange-online",), "EXO_MAILBOX_FULL"),),
    "NDR_NOT_AUTHORIZED": ((("exchange-online",), "EXO_DELIVERY_RESTRICTED"),),
    "NDR_EXO_TENANT_ATTRIBUTION": ((("exchange-online",), "EXO_EDGE_CONNECTOR_REJECTED"),),
    "NDR_EXO_CONNECTOR_RESTRICTED": ((("exchange-online",), "EXO_EDGE_CONNECTOR_REJECTED"),),
    "NDR_DESTINATION_NOT_RESOLVABLE": ((("dns",), "DNS_MX_LOOKUP_FAILED"),),
}
_REFUSED = re.compile(r"connection refused|refused to connect", re.I)


def advice_for(tag: str, kind: str | None, status: str | None, diagnostic: str) -> str | None:
    """The triage tag whose remediation fits this failure at a tier of this kind."""
    if kind is None:
        return None
    if tag == "NDR_NEXT_HOP_UNREACHABLE" and kind in _ANY_SMTP:
        return "SMTP_CONNECT_REFUSED" if _REFUSED.search(diagnostic) else "SMTP_CONNECT_TIMEOUT"
    if tag == "NDR_CODE_UNCATALOGUED" and kind in _ANY_SMTP and status:
        return "SMTP_RCPT_DEFERRED" if status.startswith("4") else "SMTP_RCPT_REJECTED"
    for kinds, triage_tag in ADVICE.get(tag, ()):
        if kind in kinds:
            return triage_tag
    return None


def triage_tags() -> set[str]:
    """Every triage tag the table can name (the catalog must declare each)."""
    tags = {t for rows in ADVICE.values() for _, t in rows}
    return tags | {"SMTP_CONNECT_REFUSED", "SMTP_CONNECT_TIMEOUT", "SMTP_RCPT_DEFERRED",
                   "SMTP_RCPT_REJECTED"}
