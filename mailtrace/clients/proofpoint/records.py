"""Pure parsers for the Proofpoint APIs' JSON: Smart Search, quarantine, Essentials, TAP SIEM.

Tolerant by design, because real records and the documentation disagree
(``GUID``/``guid``, ``cluster``/``clusterId``, ``threatID``/``threatId``, ``fromAddress``
as a string or a list): a missing field is ``None``, an empty string means "not set"
(Smart Search sends ``""`` for every unset field), an unknown value is kept as it is, an
item that is not an object is skipped and counted. Only a body whose top level is not the
documented shape raises :class:`PayloadError` — the probe then reports *not tested*, with
the body as evidence.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mailtrace.core.evidence import Observed


class PayloadError(ValueError):
    """The body is not the documented shape (a string, a number, an unknown object)."""


# --- field helpers --------------------------------------------------------------------

def text(raw: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` that holds a value, as stripped text; ``""`` means unset."""
    for key in keys:
        value = raw.get(key)
        if value is None or isinstance(value, (dict, list)):
            continue
        value = str(value).strip()
        if value:
            return value
    return None


def flag(raw: Mapping[str, Any], *keys: str) -> bool | None:
    """A boolean however it is sent (true, 1, "1", "t", "true", "yes"); None if unset."""
    for key in keys:
        value = raw.get(key)
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return bool(value)
        if isinstance(value, str) and value.strip():
            return value.strip().lower() in ("1", "t", "true", "yes", "y", "on")
    return None


_ADDRESS_SPLIT = re.compile(r"[,;\s]+")


def addresses(value: Any) -> tuple[str, ...]:
    """Mail addresses from a list or a comma/space separated string, ``<>`` stripped,
    lowercased."""
    items: list[Any] = value if isinstance(value, list) else [value]
    found: list[str] = []
    for item in items:
        if not isinstance(item, str):
            continue
        for part in _ADDRESS_SPLIT.split(item):
            part = part.strip().strip("<>").strip().lower()
            if part:
                found.append(part)
    return tuple(dict.fromkeys(found))


def hosts(value: Any) -> tuple[str, ...]:
    """Host names from a string or a list (Essentials ``failovers``)."""
    items: list[Any] = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, dict):
            item = text(item, "host", "destination", "name", "address")
        if isinstance(item, str):
            out += [h for h in _ADDRESS_SPLIT.split(item.strip()) if h]
    return tuple(out)


_PPS_DATE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.\d+)?\s*\[UTC([+-])(\d{2}):?(\d{2})\]$")


def shown_time(when: dt.datetime | None, raw: str | None) -> str | None:
    """A timestamp as every report shows it: UTC, ISO 8601 to the second
    (``2026-12-07T02:48:30Z``), whatever zone the API wrote it in; as written when it
    cannot be read (the raw value stays in the evidence either way)."""
    if when is None:
        return raw
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> dt.datetime | None:
    """A timestamp in any of the APIs' forms, as an aware UTC datetime (None if not one).

    Smart Search: ``2020-05-20 14:13:02 [UTC-0600]``; quarantine: ``2020-01-15 20:00:00``
    (UTC); TAP: ``2022-01-01T00:45:55.050Z``; PoD logs: ``...-0800`` offsets.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    match = _PPS_DATE.fullmatch(value)
    if match:
        date, clock, sign, hh, mm = match.groups()
        offset = dt.timedelta(hours=int(hh), minutes=int(mm)) * (1 if sign == "+" else -1)
        naive = dt.datetime.fromisoformat(f"{date}T{clock}")
        return naive.replace(tzinfo=dt.timezone(offset)).astimezone(dt.UTC)
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


def _items(data: Any, key: str, what: str) -> tuple[list[dict[str, Any]], int]:
    """The objects listed under ``key`` (or a bare list), and how many items were not
    objects. ``None`` (204 No Content, an empty body) is an empty list."""
    if data is None:
        return [], 0
    if isinstance(data, dict):
        if key not in data:
            if not data:
                return [], 0
            raise PayloadError(f"{what}: expected an object with {key!r}, got keys "
                               f"{sorted(map(str, data))[:8]}")
        data = data[key]
        if data is None:
            return [], 0
    if not isinstance(data, list):
        raise PayloadError(f"{what}: expected a list, got {type(data).__name__}")
    objects = [item for item in data if isinstance(item, dict)]
    return objects, len(data) - len(objects)


def _compact(values: Mapping[str, Any]) -> Observed:
    """A record as evidence: its fields as the API names them, empty ones left out."""
    return Observed({k: v for k, v in values.items() if v not in (None, "", (), [])})


# --- PPS / PoD Smart Search -----------------------------------------------------------

_CODE = re.compile(r"\b([245])\d\d\b|\b([245])\.\d{1,3}\.\d{1,3}\b")
_RELAY = re.compile(r"\brelay=([^\s,]+)")
_DSN = re.compile(r"\bdsn=([245])\.\d{1,3}\.\d{1,3}\b")
_REPLY = re.compile(r"\b[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}\b[^;\n]*")


@dataclass(frozen=True)
class SearchRecord:
    """One message in Smart Search (``/rest/v1/pss/filter``)."""

    guid: str | None
    qid: str | None
    date: str | None
    when: dt.datetime | None
    sender: str | None
    recipients: tuple[str, ...]
    subject: str | None
    final_action: str | None  # accept, continue, discard, redirect, reject, retry, ...
    final_rule: str | None
    quarantine_folder: str | None
    quarantine_rule: str | None
    sendmail_action: str | None
    sendmail_to: str | None
    sendmail_stat: str | None
    sendmail_errorcode: str | None
    sendmail_raw: str | None
    message_id: str | None = None  # the Message-ID header, the join key across tiers
    raw_date: str | None = None  # ``Date`` as the API wrote it (``date`` is shown in UTC)

    @property
    def action(self) -> str:
        return (self.final_action or "").lower()

    @property
    def relay(self) -> str | None:
        """The next hop sendmail delivered (or tried to deliver) to, when it was logged."""
        match = _RELAY.search(self.sendmail_raw or "")
        return match[1].strip("[]").rstrip(".").lower() if match else None

    @property
    def reply(self) -> str:
        """The next hop's own reply when the raw log carries it, else the code and the
        status sendmail logged."""
        found = _REPLY.findall(self.sendmail_raw or "")
        if found:
            return str(found[-1]).strip()
        return " ".join(p for p in (self.sendmail_errorcode, self.sendmail_stat) if p)

    @property
    def onward(self) -> str:
        """The onward delivery result: sent, deferred, bounced, or unknown (not logged,
        or a value this parser does not know)."""
        stat = (self.sendmail_stat or "").lower()
        code = _CODE.search(self.sendmail_errorcode or "") or _CODE.search(stat)
        digit = (code[1] or code[2]) if code else None
        dsn = _DSN.search(self.sendmail_raw or "")
        digit = digit or (dsn[1] if dsn else None)
        if digit == "5":
            return "bounced"
        if digit == "4" or stat.startswith("deferred"):
            return "deferred"
        if stat.startswith("sent") or digit == "2":
            return "sent"
        return "unknown"

    def evidence(self) -> Observed:
        return _compact({
            "GUID": self.guid, "QID": self.qid, "Date": self.raw_date or self.date,
            "Sender": self.sender,
            "Recipients": ", ".join(self.recipients), "Subject": self.subject,
            "Final_Action": self.final_action, "Final_Rule": self.final_rule,
            "Quarantine_Folder": self.quarantine_folder,
            "Quarantine_Rule": self.quarantine_rule,
            "Sendmail_Action": self.sendmail_action, "Sendmail_To": self.sendmail_to,
            "Sendmail_Stat": self.sendmail_stat, "Sendmail_Errorcode": self.sendmail_errorcode,
            "SendmailRaw_Log": self.sendmail_raw, "Message_ID": self.message_id,
        })


def search_record(raw: Mapping[str, Any]) -> SearchRecord:
    date = text(raw, "Date", "date")
    when = parse_time(date)
    return SearchRecord(
        guid=text(raw, "GUID", "guid"),
        qid=text(raw, "QID", "qid"),
        date=shown_time(when, date),
        raw_date=date,
        when=when,
        sender=text(raw, "Sender", "sender"),
        recipients=addresses(raw.get("Recipients", raw.get("recipients"))),
        subject=text(raw, "Subject", "subject"),
        final_action=text(raw, "Final_Action", "final_action"),
        final_rule=text(raw, "Final_Rule", "final_rule"),
        quarantine_folder=text(raw, "Quarantine_Folder", "current_folder"),
        quarantine_rule=text(raw, "Quarantine_Rule"),
        sendmail_action=text(raw, "Sendmail_Action"),
        sendmail_to=text(raw, "Sendmail_To"),
        sendmail_stat=text(raw, "Sendmail_Stat", "Sendmail_To_Stat"),
        sendmail_errorcode=text(raw, "Sendmail_Errorcode"),
        sendmail_raw=text(raw, "SendmailRaw_Log"),
        message_id=text(raw, "Message_ID", "message_id", "messageid"),
    )


def parse_smart_search(data: Any) -> tuple[list[SearchRecord], int]:
    """Smart Search's ``{"result": [...]}``: the records, and how many items were skipped."""
    items, skipped = _items(data, "result", "Smart Search")
    return [search_record(raw) for raw in items], skipped


# --- PPS / PoD quarantine -------------------------------------------------------------

@dataclass(frozen=True)
class QuarantineRecord:
    """One message held in a quarantine folder (``/rest/v1/quarantine``)."""

    guid: str | None
    folder: str | None
    rule: str | None
    date: str | None
    when: dt.datetime | None
    sender: str | None
    recipients: tuple[str, ...]
    subject: str | None
    spamscore: str | None
    message_id: str | None = None  # the Message-ID header, the join key across tiers
    raw_date: str | None = None  # ``date`` as the API wrote it (``date`` is shown in UTC)

    def evidence(self) -> Observed:
        return _compact({
            "guid": self.guid, "folder": self.folder, "rule": self.rule,
            "date": self.raw_date or self.date,
            "from": self.sender, "rcpts": ", ".join(self.recipients), "subject": self.subject,
            "spamscore": self.spamscore, "messageid": self.message_id,
        })


def parse_quarantine(data: Any) -> tuple[list[QuarantineRecord], int]:
    """The quarantine list's ``{"count": n, "records": [...]}``."""
    items, skipped = _items(data, "records", "quarantine list")
    records = []
    for raw in items:
        date = text(raw, "date", "Date")
        when = parse_time(date)
        records.append(QuarantineRecord(
            guid=text(raw, "guid", "GUID", "localguid"),
            folder=text(raw, "folder", "Folder", "current_folder"),
            rule=text(raw, "rule", "quarantine_rule", "quarantineRule", "Quarantine_Rule"),
            date=shown_time(when, date),
            raw_date=date,
            when=when,
            sender=text(raw, "from", "sender", "Sender"),
            recipients=addresses(raw.get("rcpts", raw.get("rcpt", raw.get("recipients")))),
            subject=text(raw, "subject", "Subject"),
            spamscore=text(raw, "spamscore", "spamScore"),
            message_id=text(raw, "messageid", "messageId", "Message_ID"),
        ))
    return records, skipped


# --- Proofpoint Essentials v1 ---------------------------------------------------------

@dataclass(frozen=True)
class EssentialsDomain:
    """One domain of an Essentials organisation: where Essentials delivers its mail."""

    name: str
    active: bool | None
    relay: bool | None
    destination: str | None
    failovers: tuple[str, ...]

    def evidence(self) -> Observed:
        return _compact({"name": self.name, "is_active": self.active, "is_relay": self.relay,
                         "destination": self.destination, "failovers": list(self.failovers)})


def parse_domains(data: Any) -> tuple[list[EssentialsDomain], int]:
    """``GET /orgs/{org}/domains``: ``{"domains": [{name, is_active, is_relay,
    destination, failovers}]}``."""
    items, skipped = _items(data, "domains", "Essentials domains")
    found = []
    for raw in items:
        name = text(raw, "name", "domain")
        if name is None:
            skipped += 1
            continue
        found.append(EssentialsDomain(
            name=name.lower().rstrip("."),
            active=flag(raw, "is_active", "active"),
            relay=flag(raw, "is_relay", "relay"),
            destination=text(raw, "destination"),
            failovers=hosts(raw.get("failovers")),
        ))
    return found, skipped


@dataclass(frozen=True)
class EssentialsUser:
    primary_email: str
    aliases: tuple[str, ...]
    active: bool | None
    type: str | None

    @property
    def addresses(self) -> tuple[str, ...]:
        return (self.primary_email, *self.aliases)

    def evidence(self) -> Observed:
        return _compact({"primary_email": self.primary_email,
                         "alias_emails": list(self.aliases), "is_active": self.active,
                         "type": self.type})


def parse_users(data: Any) -> tuple[list[EssentialsUser], int]:
    """``GET /orgs/{org}/users``: ``{"users": [{primary_email, alias_emails, ...}]}``."""
    items, skipped = _items(data, "users", "Essentials users")
    users = []
    for raw in items:
        primary = addresses(raw.get("primary_email", raw.get("email")))
        if not primary:
            skipped += 1
            continue
        users.append(EssentialsUser(primary[0], addresses(raw.get("alias_emails")),
                                    flag(raw, "is_active"), text(raw, "type")))
    return users, skipped


def parse_endpoints(data: Any) -> list[str]:
    """``GET /endpoints/{domain}``: the API hosts that serve the organisation. Seen as
    ``{"endpoints": [...]}`` (strings or objects) and as one object with ``base_url``."""
    if data is None:
        return []
    if isinstance(data, dict) and "endpoints" not in data:
        data = {"endpoints": [data]}
    items = data.get("endpoints") if isinstance(data, dict) else data
    if items is None:
        return []
    if not isinstance(items, list):
        items = [items]
    found = []
    for item in items:
        if isinstance(item, dict):
            item = text(item, "base_url", "url", "endpoint", "host", "hostname", "region")
        if isinstance(item, str) and item.strip():
            found.append(item.strip())
    return found


# --- TAP SIEM v2 (and the Essentials Threat API) --------------------------------------

@dataclass(frozen=True)
class Threat:
    id: str | None
    classification: str | None
    type: str | None
    status: str | None

    def evidence(self) -> Observed:
        return _compact({"threatID": self.id, "classification": self.classification,
                         "threatType": self.type, "threatStatus": self.status})


@dataclass(frozen=True)
class ThreatMessage:
    """A message TAP tied to a known threat (blocked or delivered). Never a clean one."""

    disposition: str  # blocked | delivered
    guid: str | None
    time: str | None
    when: dt.datetime | None
    sender: str | None  # the envelope sender: user part hashed by TAP
    from_address: tuple[str, ...]
    recipients: tuple[str, ...]
    subject: str | None
    cluster: str | None
    quarantine_folder: str | None
    quarantine_rule: str | None
    threats: tuple[Threat, ...]
    raw_time: str | None = None  # ``messageTime`` as TAP wrote it (``time`` is in UTC)

    @property
    def classifications(self) -> str:
        return ", ".join(dict.fromkeys(
            (t.classification or "unknown").lower() for t in self.threats)) or "unknown"

    def evidence(self) -> Observed:
        return _compact({
            "disposition": self.disposition, "GUID": self.guid,
            "messageTime": self.raw_time or self.time,
            "sender": self.sender, "fromAddress": ", ".join(self.from_address),
            "recipient": ", ".join(self.recipients), "subject": self.subject,
            "cluster": self.cluster, "quarantineFolder": self.quarantine_folder,
            "quarantineRule": self.quarantine_rule,
            "threats": [t.evidence() for t in self.threats],
        })


def _threat_message(raw: Mapping[str, Any], disposition: str) -> ThreatMessage:
    threats = tuple(
        Threat(text(t, "threatID", "threatId"), text(t, "classification"),
               text(t, "threatType"), text(t, "threatStatus"))
        for t in raw.get("threatsInfoMap") or () if isinstance(t, dict)
    )
    stamp = text(raw, "messageTime")
    recipients = addresses(raw.get("recipient")) or addresses(raw.get("toAddresses"))
    return ThreatMessage(
        disposition=disposition,
        guid=text(raw, "GUID", "guid"),
        time=shown_time(parse_time(stamp), stamp),
        raw_time=stamp,
        when=parse_time(stamp),
        sender=text(raw, "sender"),
        from_address=addresses(raw.get("fromAddress")),
        recipients=recipients,
        subject=text(raw, "subject"),
        cluster=text(raw, "cluster", "clusterId"),
        quarantine_folder=text(raw, "quarantineFolder"),
        quarantine_rule=text(raw, "quarantineRule"),
        threats=threats,
    )


@dataclass(frozen=True)
class SiemWindow:
    """One SIEM answer (at most one hour): the threat messages blocked and delivered."""

    query_end: str | None
    blocked: list[ThreatMessage] = field(default_factory=list)
    delivered: list[ThreatMessage] = field(default_factory=list)
    skipped: int = 0


def parse_siem(data: Any) -> SiemWindow:
    """``/v2/siem/all``: ``queryEndTime``, ``messagesBlocked``, ``messagesDelivered``
    (clicks are not mail flow and are ignored). ``None`` (HTTP 204) is an empty window."""
    if data is None:
        return SiemWindow(None)
    if not isinstance(data, dict):
        raise PayloadError(f"TAP SIEM: expected an object, got {type(data).__name__}")
    known = {"queryEndTime", "messagesBlocked", "messagesDelivered", "clicksBlocked",
             "clicksPermitted"}
    if data and not known & set(data):
        raise PayloadError(f"TAP SIEM: none of {sorted(known)} in the answer")
    lists: dict[str, list[ThreatMessage]] = {"blocked": [], "delivered": []}
    skipped = 0
    for key, disposition in (("messagesBlocked", "blocked"), ("messagesDelivered", "delivered")):
        items, bad = _items({key: data.get(key)}, key, "TAP SIEM")
        skipped += bad
        lists[disposition] = [_threat_message(raw, disposition) for raw in items]
    return SiemWindow(text(data, "queryEndTime"), lists["blocked"], lists["delivered"], skipped)
