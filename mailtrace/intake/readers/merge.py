"""One report from a bounce's two halves: the machine-readable fields and the text.

RFC 3464 §2 keeps the two apart; servers fill them unevenly (a terse ``Diagnostic-Code``
beside a text quoting the whole remote reply, a text naming the remote host the fields
leave out). Recipients are matched by address (final or original), or by position when
both halves list the same number and no address matches. Nothing is dropped silently: a
recipient reported twice is merged into one record, and a difference in the count of
recipients between the halves, or with the ``X-Failed-Recipients`` field (Exim), is
stated in the report's notes.
"""

from __future__ import annotations

import re

from mailtrace.intake.dsn import MAX_RECIPIENTS, DeliveryReport, RecipientStatus
from mailtrace.intake.readers.base import Found
from mailtrace.intake.readers.mail import Mail
from mailtrace.intake.readers.text import addresses_in, returned_message
from mailtrace.intake.received import parse_received
from mailtrace.intake.tiers import normalize_host

_VENDOR = (
    (re.compile(r"(^|\.)(outlook\.com|mx\.microsoft)$"), "exchange-online"),
    (re.compile(r"(^|\.)(pphosted\.com|ppops\.net|ppe-hosted\.com)$"), "proofpoint"),
)


def _key(address: str | None) -> str:
    return (address or "").strip().lower()


def _squeezed(text: str) -> str:
    return re.sub(r"[\s'\"]+", " ", text).strip().lower()


def _fill(r: RecipientStatus, t: RecipientStatus) -> None:
    r.remote_mta = r.remote_mta or t.remote_mta
    r.reporting_mta = r.reporting_mta or t.reporting_mta
    r.status = r.status or t.status
    r.action = r.action or t.action
    r.command = r.command or t.command
    for words in (t.diagnostic, t.text):
        if not words:
            continue
        if not r.diagnostic:
            r.diagnostic = words
        elif _squeezed(words) not in _squeezed(r.diagnostic) and (
                not r.text or _squeezed(words) not in _squeezed(r.text)):
            r.text = f"{r.text} {words}".strip() if r.text else words


def _merge_text(report: list[RecipientStatus], text: list[RecipientStatus]
                ) -> list[RecipientStatus]:
    """Fill the report's records from the text's; returns the text records left over."""
    left = list(text)
    for r in report:
        match = next((t for t in left if _key(t.address) in (
            _key(r.address), _key(r.original_recipient))), None)
        if match is not None:
            left.remove(match)
            _fill(r, match)
    if left and len(text) == len(report) and len(left) == len(text):
        for r, t in zip(report, text, strict=True):
            _fill(r, t)
        return []
    return left


def _unique(recipients: list[RecipientStatus], notes: list[str]) -> list[RecipientStatus]:
    out: dict[str, RecipientStatus] = {}
    for r in recipients:
        key = _key(r.address)
        if key in out and key:
            _fill(out[key], r)
            notes.append(f"{r.address} is reported more than once; the records are merged")
        else:
            out[key or f"#{len(out)}"] = r
    return list(out.values())


def _bounce_origin(mail: Mail) -> str | None:
    """The server that wrote a report naming none: the receiver of the bounce's oldest
    Received field (RFC 5321 §4.4: each hop prepends one, so the last is where the
    bounce was made)."""
    received = mail.msg.get_all("Received", [])
    if not received:
        return None
    hop = parse_received(str(received[-1]), 1, len(received) - 1)
    host = normalize_host(hop.by_host)
    return host if host and "." in host else None


def _format(name: str | None, report: Found | None) -> str:
    host = report.reporting_mta if report else None
    for pattern, vendor in _VENDOR:
        if host and pattern.search(host):
            return vendor
    if name:
        return name
    return (report.format if report else None) or "rfc3464"


def combine(mail: Mail, report: Found | None, text: tuple[str, Found] | None
            ) -> DeliveryReport:
    notes: list[str] = []
    name, words = text if text is not None else (None, None)
    if report is not None:
        recipients = list(report.recipients)
        if words is not None:
            left = _merge_text(recipients, words.recipients)
            if left:
                notes.append(
                    f"the text names {len(words.recipients)} recipient(s), the delivery-status "
                    f"part {len(report.recipients)}: "
                    + ", ".join(r.address or "?" for r in left) + " only in the text")
        notes += report.notes
    else:
        assert words is not None
        recipients = list(words.recipients)
    if words is not None:
        notes += words.notes
        name = words.format or name
    recipients = _unique(recipients, notes)
    if len(recipients) >= MAX_RECIPIENTS:
        notes.append(f"only the first {MAX_RECIPIENTS} recipients are read")
    reporting = (report.reporting_mta if report else None) or (
        words.reporting_mta if words else None) or _bounce_origin(mail)
    for r in recipients:
        r.reporting_mta = r.reporting_mta or reporting
    failed = {a.lower() for a in addresses_in(mail.header("x-failed-recipients"))}
    missing = sorted(failed - {_key(r.address) for r in recipients}
                     - {_key(r.original_recipient) for r in recipients})
    if failed and missing:
        notes.append(f"X-Failed-Recipients names {len(failed)} address(es), the report "
                     f"{len(recipients)}: " + ", ".join(missing) + " not in the report")
    return DeliveryReport(_format(name, report), normalize_host(reporting) or reporting,
                          recipients, mail.subject or None, list(dict.fromkeys(notes)),
                          returned_message(mail))
