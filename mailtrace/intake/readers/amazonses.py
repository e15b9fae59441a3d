"""Amazon SES and Amazon WorkMail.

- SES notifications by SNS e-mail: a JSON document (``"notificationType"`` or
  ``"eventType"``: ``Bounce``, ``Delivery``, ``Complaint``; the SES developer guide's
  "Notification contents"), possibly wrapped in an SNS envelope (``"Message"``).
  ``bouncedRecipients`` carry ``status`` and ``diagnosticCode`` as a DSN would; a
  delivery names its ``recipients`` and ``smtpResponse``.
- SES and WorkMail bounces: "An error occurred while trying to deliver the mail to the
  following recipients:" then one address per line (the RFC 3464 fields follow, in the
  text or in a delivery-status part), or the older "The following message to <address>
  was undeliverable. The reason for the problem: 5.1.0 - Unknown address error
  550-'...'", where SES's own code wraps the remote server's reply.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, sender_matches
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.rfc3464 import host_of
from mailtrace.intake.readers.text import ADDR, address_line, blocks, clean, span

_LISTED = re.compile(r"An error occurred while trying to deliver the mail to the following "
                     r"recipients:", re.I)
_OLD = re.compile(rf"The following message to <?({ADDR})>? was undeliverable", re.I)
_REASON = re.compile(r"^[ \t]*The reason for the problem:", re.I)
_END = re.compile(r"^[ \t]*(?:Technical report:|Reporting-MTA:)", re.I)
_MAX_JSON = 200_000


def document(text: str) -> dict[str, Any] | None:
    """The SES notification in a text, unwrapped from its SNS envelope."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start or end - start > _MAX_JSON:
        return None
    raw = text[start:end + 1]
    # SNS e-mail folds long lines, ending each folded piece with "!".
    for candidate in (raw, re.sub(r"!\n ?", "", raw), re.sub(r"\n ?", "", raw)):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("Message"), str):
            try:
                data = json.loads(data["Message"])
            except ValueError:
                return None
        return data if isinstance(data, dict) else None
    return None


def _kind(data: dict[str, Any]) -> str:
    return str(data.get("notificationType") or data.get("eventType") or "")


def _from_json(data: dict[str, Any]) -> Found | None:
    kind = _kind(data)
    if kind == "Bounce":
        bounce = data.get("bounce") or {}
        reporting = host_of(str(bounce.get("reportingMTA") or "")) or None
        delayed = bounce.get("bounceType") == "Transient"
        out = []
        for item in bounce.get("bouncedRecipients") or []:
            if not isinstance(item, dict) or not item.get("emailAddress"):
                continue
            action = str(item.get("action") or ("delayed" if delayed else "failed"))
            out.append(RecipientStatus(
                str(item["emailAddress"]), action.lower(), str(item.get("status") or "") or None,
                clean(re.sub(r"^[ \t]*smtp;\s*", "", str(item.get("diagnosticCode") or ""))),
                reporting, None))
        return Found(out, reporting) if out else None
    if kind == "Delivery":
        delivery = data.get("delivery") or {}
        reporting = host_of(str(delivery.get("reportingMTA") or "")) or None
        response = clean(str(delivery.get("smtpResponse") or ""))
        out = [RecipientStatus(str(a), "delivered", None, response, reporting,
                               str(delivery.get("remoteMtaIp") or "") or None)
               for a in delivery.get("recipients") or [] if isinstance(a, str)]
        return Found(out, reporting) if out else None
    return None


def _read(mail: Mail) -> Found | None:
    if '"notificationType"' in mail.notification or '"eventType"' in mail.notification:
        data = document(mail.notification)
        return _from_json(data) if data is not None else None
    if _LISTED.search(mail.notification):
        found = blocks(span(mail.lines, _LISTED, _END), address_line)
        return Found([RecipientStatus(b.address, "failed", None, "", None, None)
                      for b in found]) if found else None
    if old := _OLD.search(mail.notification):
        reason = clean(" ".join(span(mail.lines, _REASON)))
        return Found([RecipientStatus(old.group(1), "failed", None, reason, None, None)])
    return None


READER = Reader("amazonses", sender_matches(r"amazonses\.com|sns\.amazonaws\.com"), _read)
