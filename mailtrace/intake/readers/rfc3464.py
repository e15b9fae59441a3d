"""The machine-readable report: RFC 3464 ``message/delivery-status`` (and RFC 6533's
``message/global-delivery-status``), wherever its fields are.

``structured`` reads the delivery-status parts of a ``multipart/report`` (RFC 3462);
``loose`` reads the same fields when a server wrote them into a ``text/plain`` part or the
body itself (Amazon WorkMail, many appliances, a report forwarded as text). Field values
are read as RFC 3464 §2.1.2 types them: ``rfc822; user@example.com``, ``dns; host``,
``smtp; 550 5.1.1 ...``.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import RecipientStatus
from mailtrace.intake.readers.base import Found, Reader, never
from mailtrace.intake.readers.fields import MAX_FIELD, Record, Scan, scan
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import address_in
from mailtrace.intake.tiers import normalize_host

_SPACES = re.compile(r"\s+")


def typed(value: str | None) -> str | None:
    """``rfc822; alice@contoso.com`` → ``alice@contoso.com``; ``dns; host`` → ``host``
    (RFC 3464 §2.1.2: ``type ; value``)."""
    if value is None:
        return None
    head, sep, rest = value.partition(";")
    if sep and re.fullmatch(r"\s*[A-Za-z0-9-]{1,20}\s*", head):
        value = rest
    out = value.strip().strip("<>").strip()
    return out or None


def host_of(value: str | None) -> str | None:
    """A host from an MTA field; ``dns; mx.example.com [192.0.2.1]`` → the name."""
    name = typed(value)
    if name is None:
        return None
    first = name.split()[0] if name.split() else name
    return normalize_host(first.strip("[]()"))


def recipient(record: Record, reporting: str | None) -> RecipientStatus:
    final = typed(record.get("final-recipient"))
    original = typed(record.get("original-recipient"))
    diagnostic = typed(record.get("diagnostic-code")) or ""
    return RecipientStatus(
        address=address_in(final or "") or address_in(original or "") or final or original,
        action=(record.get("action") or "").strip().lower().split(" ")[0] or None,
        status=(record.get("status") or "").strip() or None,
        diagnostic=_SPACES.sub(" ", diagnostic)[:MAX_FIELD],
        reporting_mta=host_of(record.get("reporting-mta")) or reporting,
        remote_mta=host_of(record.get("remote-mta")),
        original_recipient=address_in(original or ""),
        last_attempt=record.get("last-attempt-date"),
    )


def found_in(result: Scan) -> Found | None:
    reporting = host_of(result.message.get("reporting-mta"))
    recipients = [recipient(r, reporting) for r in result.recipients]
    recipients = [r for r in recipients if r.address]
    if not recipients:
        return None
    names = " ".join(result.message.fields)
    generator = ("postfix" if "x-postfix-queue-id" in names
                 else "sendmail" if "received-from-mta" in names else None)
    return Found(recipients, reporting, format=generator)


def structured(mail: Mail) -> Found | None:
    """The recipients of the report's delivery-status parts (RFC 3462 ``multipart/report``)."""
    found: Found | None = None
    for text in mail.dsn_texts:
        part = found_in(scan(text))
        if part is None:
            continue
        if found is None:
            found = part
        else:
            found.recipients += part.recipients
    return found


def loose(mail: Mail) -> Found | None:
    """The same fields written into the notification text, or into a body the MIME parser
    could not split (RFC 3464 fields are plain text; RFC 3464 §2.1)."""
    for text in (mail.notification, mail.raw):
        if "recipient" not in text.lower():
            continue
        found = found_in(scan(text if text is mail.notification else _body(text)))
        if found is not None:
            return found
    return None


def _body(raw: str) -> str:
    """The raw message after its header section, up to a returned message's part."""
    start = raw.find("\n\n")
    body = raw[start + 2:] if start >= 0 else raw
    end = re.search(r"(?im)^content-type:\s*(?:message/rfc822|text/rfc822-headers)", body)
    return body[: end.start()] if end else body


def _read(mail: Mail) -> Found | None:
    return structured(mail) or loose(mail)


READER = Reader("rfc3464", never, _read)
