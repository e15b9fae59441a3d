"""Delivery status notifications: per-recipient outcome from a bounce, whatever its form.

First choice is the machine-readable RFC 3464 report (``multipart/report`` with a
``message/delivery-status`` part, §2; RFC 6533's ``message/global-delivery-status``
too). Bounces without one, or pasted as text, are read from the text forms the common
MTAs write: Exchange Online's "Diagnostic information for administrators" block,
Postfix's "This is the mail system at host ..." report, Sendmail's "----- The
following addresses had permanent fatal errors -----" report. Nothing raises on broken
input: a part that cannot be read is skipped, and a report with no delivery status at
all is an :class:`EvidenceError`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from email.message import Message

from mailtrace.intake.codes import status_in
from mailtrace.intake.message import EvidenceError
from mailtrace.intake.tiers import normalize_host

MAX_RECIPIENTS = 500
MAX_PARTS = 200
MAX_DEPTH = 12
MAX_FIELD = 2000  # characters kept of one field (a diagnostic can be long, not unbounded)

_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")
_ADDRESS = re.compile(r"<?([^\s<>()\"',;:@]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+)>?")


@dataclass
class RecipientStatus:
    address: str | None
    action: str | None
    status: str | None
    diagnostic: str
    reporting_mta: str | None
    remote_mta: str | None
    original_recipient: str | None = None
    last_attempt: str | None = None


@dataclass
class DeliveryReport:
    format: str  # rfc3464 | exchange-online | postfix | sendmail
    reporting_mta: str | None
    recipients: list[RecipientStatus]
    subject: str | None = None
    notes: list[str] = field(default_factory=list)


def _clip(value: str) -> str:
    return value[:MAX_FIELD]


def _unfold(value: str) -> str:
    return _clip(re.sub(r"\s*\r?\n[ \t]+", " ", str(value)).strip())


def _typed(value: str | None) -> str | None:
    """``rfc822; alice@contoso.com`` → ``alice@contoso.com``; ``dns; host`` → ``host``."""
    if value is None:
        return None
    _, sep, rest = value.partition(";")
    out = (rest if sep else value).strip().strip("<>").strip()
    return out or None


def _address(value: str | None) -> str | None:
    found = _ADDRESS.search((value or "")[:MAX_FIELD])
    return found.group(1) if found else None


# --- RFC 3464 ---------------------------------------------------------------------------

def _text_blocks(text: str) -> list[list[tuple[str, str]]]:
    blocks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        if line[:1] in " \t" and current:
            name, value = current[-1]
            current[-1] = (name, _clip(value + " " + line.strip()))
            continue
        found = _FIELD.match(line)
        if found:
            current.append((found.group(1), _clip(found.group(2).strip())))
    if current:
        blocks.append(current)
    return blocks


def _payload_text(part: Message) -> str:
    try:
        raw = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: keep the text as written
        raw = None
    if isinstance(raw, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return raw.decode(charset, errors="replace")
        except LookupError:
            return raw.decode("utf-8", errors="replace")
    payload = part.get_payload()
    return payload if isinstance(payload, str) else ""


def _dsn_blocks(part: Message) -> list[list[tuple[str, str]]]:
    payload = part.get_payload()
    if not isinstance(payload, list):
        return _text_blocks(_payload_text(part))
    blocks: list[list[tuple[str, str]]] = []
    for sub in payload:
        if not isinstance(sub, Message):
            continue
        items = [(str(k), _unfold(v)) for k, v in sub.items()]
        if items:
            blocks.append(items)
        rest = sub.get_payload()
        if isinstance(rest, str) and rest.strip():
            blocks += _text_blocks(rest)
    return blocks


def _walk(msg: Message) -> list[Message]:
    """Every part, depth-first, bounded in depth and count (hostile nesting)."""
    found: list[Message] = []

    def visit(part: Message, depth: int) -> None:
        if len(found) >= MAX_PARTS or depth > MAX_DEPTH:
            return
        found.append(part)
        if part.get_content_type() in _DSN_TYPES:
            return  # its sub-"messages" are field blocks, not parts
        payload = part.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    visit(sub, depth + 1)

    visit(msg, 0)
    return found


def _from_blocks(blocks: list[list[tuple[str, str]]]) -> tuple[str | None, list[RecipientStatus]]:
    reporting: str | None = None
    recipients: list[RecipientStatus] = []
    for block in blocks:
        fields: dict[str, str] = {}
        for name, value in block:
            fields.setdefault(name.lower(), value)
        if "final-recipient" not in fields and "original-recipient" not in fields:
            reporting = reporting or normalize_host(_typed(fields.get("reporting-mta")))
            continue
        if len(recipients) >= MAX_RECIPIENTS:
            break
        recipients.append(RecipientStatus(
            address=_address(_typed(fields.get("final-recipient")))
            or _address(_typed(fields.get("original-recipient"))),
            action=(fields.get("action") or "").strip().lower() or None,
            status=status_in(fields.get("status", "")),
            diagnostic=_typed(fields.get("diagnostic-code")) or "",
            reporting_mta=normalize_host(_typed(fields.get("reporting-mta"))),
            remote_mta=normalize_host(_typed(fields.get("remote-mta"))),
            original_recipient=_address(_typed(fields.get("original-recipient"))),
            last_attempt=fields.get("last-attempt-date"),
        ))
    for r in recipients:
        r.reporting_mta = r.reporting_mta or reporting
    return reporting, recipients


# --- text forms --------------------------------------------------------------------------

def _html_text(markup: str) -> str:
    """Visible text of an HTML part, well enough to find a bounce's lines. Tags are
    matched without crossing another ``<``, so hostile markup stays linear."""
    markup = re.sub(r"(?i)<\s*(br|/p|/div|/tr|/li|/h\d)\b[^<>]*>", "\n", markup[:2_000_000])
    return html.unescape(re.sub(r"<[^<>]*>", "", markup))


_EXO_MARK = re.compile(r"Diagnostic information for administrators", re.I)
_EXO_GENERATING = re.compile(r"^\s*Generating server:\s*(\S+)", re.I)
_EXO_RECEIVING = re.compile(r"^\s*Receiving server:\s*(\S+)", re.I)
_EXO_RETURNED = re.compile(
    r"(?:Remote server|Server at (\S+?)) returned\s+['\"‘’]?(.*?)['\"‘’]?\s*$", re.I
)
_EXO_END = re.compile(r"^\s*Original message headers", re.I)


def _exchange_online(text: str) -> tuple[str | None, list[RecipientStatus]]:
    mark = _EXO_MARK.search(text)
    if not mark:
        return None, []
    generating = receiving = None
    recipients: list[RecipientStatus] = []
    current: str | None = None
    for line in text[mark.end():].splitlines()[:2000]:
        line = line[:MAX_FIELD]
        if _EXO_END.match(line):
            break
        if found := _EXO_GENERATING.match(line):
            generating = normalize_host(found.group(1))
        elif found := _EXO_RECEIVING.match(line):
            receiving = normalize_host(found.group(1))
        elif found := _EXO_RETURNED.search(line):
            diagnostic = _clip(found.group(2).strip())
            if current is None or len(recipients) >= MAX_RECIPIENTS:
                continue
            status = status_in(diagnostic)
            recipients.append(RecipientStatus(
                address=current,
                action="delayed" if status and status.startswith("4.") else "failed",
                status=status, diagnostic=diagnostic, reporting_mta=generating,
                remote_mta=normalize_host(found.group(1)) or receiving,
            ))
        elif (address := _ADDRESS.fullmatch(line.strip())) is not None:
            current = address.group(1)
    for r in recipients:
        r.reporting_mta = r.reporting_mta or generating
    return generating, recipients


_POSTFIX_MARK = re.compile(r"This is the mail system at host (\S+?)\.?\s*$", re.M)
_POSTFIX_SAID = re.compile(r"host (\S+?)\[[^\]]*\] said:\s*(.*?)(?:\s*\(in reply to .*\))?$", re.S)
_POSTFIX_CONNECT = re.compile(r"connect to (\S+?)\[[^\]]*\](?::\d+)?:\s*(.*)$", re.S)


def _postfix(text: str) -> tuple[str | None, list[RecipientStatus]]:
    mark = _POSTFIX_MARK.search(text)
    if not mark:
        return None, []
    reporting = normalize_host(mark.group(1))
    delayed = "THIS IS A WARNING ONLY" in text[:20000]
    recipients: list[RecipientStatus] = []
    for paragraph in re.split(r"\n[ \t]*\n", text[mark.end():][:500_000]):
        lines = paragraph.strip().splitlines()
        if not lines:
            continue
        head = re.match(r"<([^<>\s]+@[^<>\s]+)>(?:\s*\(expanded from <[^<>]*>\))?:\s*(.*)$",
                        lines[0][:MAX_FIELD])
        if not head or len(recipients) >= MAX_RECIPIENTS:
            continue
        body = " ".join([head.group(2), *(line.strip() for line in lines[1:50])])[:MAX_FIELD]
        remote = None
        diagnostic = body
        if found := _POSTFIX_SAID.search(body):
            remote, diagnostic = found.group(1), found.group(2)
        elif found := _POSTFIX_CONNECT.search(body):
            remote = found.group(1)
        recipients.append(RecipientStatus(
            address=head.group(1), action="delayed" if delayed else "failed",
            status=status_in(diagnostic), diagnostic=_clip(diagnostic.strip()),
            reporting_mta=reporting, remote_mta=normalize_host(remote),
        ))
    return reporting, recipients


_SENDMAIL_SECTION = re.compile(
    r"-----\s*The following addresses had (permanent fatal|transient non-fatal) errors\s*-----",
    re.I,
)
_SENDMAIL_TALKING = re.compile(r"while talking to (\S+?)\.?:\s*$", re.M)
_SENDMAIL_REASON = re.compile(r"\(reason:\s*(.*?)\)\s*$", re.S)


def _sendmail(text: str, sender_host: str | None) -> tuple[str | None, list[RecipientStatus]]:
    section = _SENDMAIL_SECTION.search(text)
    if not section:
        return None, []
    action = "failed" if section.group(1).lower().startswith("permanent") else "delayed"
    rest = text[section.end():][:500_000]
    talking = _SENDMAIL_TALKING.search(rest)
    remote = normalize_host(talking.group(1)) if talking else None
    listing = re.split(r"-----\s*Transcript of session follows", rest, maxsplit=1)[0]
    recipients: list[RecipientStatus] = []
    current: RecipientStatus | None = None
    for line in listing.splitlines():
        stripped = line.strip()[:MAX_FIELD]
        if (address := re.fullmatch(r"<?([^<>\s]+@[^<>\s]+?)>?", stripped)) is not None:
            if len(recipients) >= MAX_RECIPIENTS:
                break
            current = RecipientStatus(address.group(1), action, None, "", sender_host, remote)
            recipients.append(current)
        elif current is not None and (reason := _SENDMAIL_REASON.search(stripped)):
            current.diagnostic = _clip(reason.group(1))
            current.status = status_in(current.diagnostic)
    return sender_host, recipients


# --- the report ---------------------------------------------------------------------------

def _texts(msg: Message, raw: str) -> list[str]:
    plain: list[str] = []
    marked: list[str] = []
    for part in _walk(msg):
        ctype = part.get_content_type()
        if part.is_multipart() or ctype in _DSN_TYPES or ctype.startswith("message/"):
            continue
        if ctype == "text/plain":
            plain.append(_payload_text(part))
        elif ctype == "text/html":
            marked.append(_html_text(_payload_text(part)))
    return [*plain, *marked, raw]


def _mailer_daemon_host(msg: Message) -> str | None:
    sender = _address(str(msg.get("From", "")))
    return normalize_host(sender.rpartition("@")[2]) if sender else None


def _generator(reporting: str | None, blocks_text: str) -> str:
    """Which MTA wrote an RFC 3464 report, from its reporting host and its own fields."""
    host = reporting or ""
    if re.search(r"(^|\.)(outlook\.com|mx\.microsoft)$", host):
        return "exchange-online"
    if re.search(r"(^|\.)(pphosted\.com|ppops\.net|ppe-hosted\.com)$", host):
        return "proofpoint"
    if "x-postfix-queue-id" in blocks_text.lower():
        return "postfix"
    if "received-from-mta" in blocks_text.lower():
        return "sendmail"
    return "rfc3464"


def parse_report(msg: Message, raw: str) -> DeliveryReport:
    """The delivery status of every recipient a bounce reports on."""
    subject = _unfold(str(msg.get("Subject", ""))) or None
    for part in _walk(msg):
        if part.get_content_type() not in _DSN_TYPES:
            continue
        blocks = _dsn_blocks(part)
        reporting, recipients = _from_blocks(blocks)
        if recipients:
            text = "\n".join(f"{k}: {v}" for b in blocks for k, v in b)
            report = DeliveryReport(_generator(reporting, text), reporting, recipients,
                                    subject)
            _fill_from_text(report, _texts(msg, raw), _mailer_daemon_host(msg))
            return report
    for text in _texts(msg, raw):
        for name, parser in (("exchange-online", _exchange_online), ("postfix", _postfix)):
            reporting, recipients = parser(text)
            if recipients:
                return DeliveryReport(name, reporting, recipients, subject)
        reporting, recipients = _sendmail(text, _mailer_daemon_host(msg))
        if recipients:
            return DeliveryReport("sendmail", reporting, recipients, subject)
    raise EvidenceError(
        "no delivery status found: this is not a bounce (expected an RFC 3464 report, or "
        "the text of an Exchange Online, Postfix or Sendmail non-delivery report)"
    )


def _fill_from_text(report: DeliveryReport, texts: list[str], daemon: str | None) -> None:
    """A report's own text sometimes names what its machine-readable part leaves out
    (Exchange Online's receiving server, Sendmail's "while talking to")."""
    if all(r.remote_mta and r.diagnostic for r in report.recipients):
        return
    for text in texts:
        for parser in (_exchange_online, _postfix):
            _, found = parser(text)
            _merge(report, found)
        _, found = _sendmail(text, daemon)
        _merge(report, found)


def _merge(report: DeliveryReport, found: list[RecipientStatus]) -> None:
    by_address = {(r.address or "").lower(): r for r in found}
    for r in report.recipients:
        other = by_address.get((r.address or "").lower())
        if other is None:
            continue
        r.remote_mta = r.remote_mta or other.remote_mta
        r.diagnostic = r.diagnostic or other.diagnostic
        r.status = r.status or other.status
