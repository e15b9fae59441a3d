"""The change file of ``mailtrace precheck``: DNS records to add, replace or remove.

```yaml
change: Move DMARC to reject, rotate DKIM      # optional, shown in reports
domain: contoso.com                            # optional: the topology's first domain
planned: 2026-12-01T18:00:00Z                  # optional: when it will be made (TTL advice)
sign_with: [selector3]                         # optional: DKIM selectors signing will use
records:
  - {action: replace, name: _dmarc, type: TXT, values: ["v=DMARC1; p=reject"]}
  - {action: add, name: selector3._domainkey, type: CNAME, values: [sel3.example.net.]}
  - {action: remove, name: "@", type: MX, values: ["20 old-mx.contoso.com."]}
```

``name`` is relative to the domain (``@`` is the domain itself) or absolute with a final
dot. ``replace`` sets the RRset to ``values``; for TXT it replaces only the records of the
same kind (``v=spf1``, ``v=DMARC1``, ``v=STSv1``, ``v=TLSRPTv1``, ``v=DKIM1``) and keeps
the others (domain verification strings live beside SPF). ``remove`` without values
removes the RRset. Errors point at ``file:line:column`` like the topology loader's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mailtrace.mailauth.lookup import Answer, Lookup, absolute
from mailtrace.topology.loader import Document, TopologyError
from mailtrace.topology.model import DomainName

MAX_BYTES = 256 * 1024
RecordType = Literal["MX", "TXT", "CNAME", "A", "AAAA"]
TXT_KINDS = ("v=spf1", "v=dmarc1", "v=stsv1", "v=tlsrptv1", "v=dkim1")


class ChangeError(TopologyError):
    """A change file that cannot be used (file:line:column and why): exit 2."""


class RecordChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["add", "replace", "remove"]
    name: str = Field(min_length=1, description='"@", a name relative to the domain, or an '
                      "absolute name ending in a dot")
    type: RecordType
    ttl: int | None = Field(default=None, ge=0, le=2147483647)
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit(self) -> RecordChange:
        if self.action in ("add", "replace") and not self.values:
            raise ValueError(f"{self.action} needs values")
        for value in self.values:
            if self.type == "TXT":
                if len(value.encode("utf-8")) > 4000:
                    raise ValueError("a TXT value longer than 4000 bytes is refused")
                continue
            import dns.exception  # dnspython: for a change file only
            import dns.name
            import dns.rdata

            try:
                dns.rdata.from_text("IN", self.type, value, origin=dns.name.root)
            except (dns.exception.DNSException, ValueError) as exc:
                raise ValueError(f"{value!r} is not a valid {self.type} value ({exc})") from None
        return self


class ChangeFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    change: str | None = None
    domain: DomainName | None = None
    planned: dt.datetime | None = None
    sign_with: list[str] = Field(default_factory=list)
    records: list[RecordChange] = Field(min_length=1)


def load_change(path: str | Path) -> ChangeFile:
    source = str(path)
    try:
        raw = Path(path).read_bytes()[: MAX_BYTES + 1]
    except OSError as exc:
        raise ChangeError(source, None, None, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise ChangeError(source, None, None, f"larger than {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ChangeError(source, None, None,
                          f"not UTF-8 text (byte at offset {exc.start})") from None
    return parse_change(text, source)


def parse_change(text: str, source: str = "<change>") -> ChangeFile:
    if not text.strip() or all(line.lstrip().startswith("#") or not line.strip()
                               for line in text.splitlines()):
        raise ChangeError(source, None, None, "empty file; expected a mapping with 'records'")
    try:
        document = Document.compose(text, source)
    except TopologyError as exc:
        message = exc.message.replace("keys topology, description, domains, flow, tiers",
                                      "keys " + ", ".join(ChangeFile.model_fields))
        raise ChangeError(exc.source, exc.line, exc.column, message) from None
    document.model = ChangeFile
    try:
        return ChangeFile.model_validate(document.data)
    except ValidationError as exc:
        err = document.validation_error(exc.errors())
        raise ChangeError(err.source, err.line, err.column, err.message,
                          err.problems[1:]) from None


# -- laying the change over live DNS --------------------------------------------------------


def owner(name: str, domain: str) -> str:
    if name == "@":
        return absolute(domain)
    if name.endswith("."):
        return absolute(name)
    return absolute(f"{name}.{domain}")


def _kind(text: str) -> str | None:
    low = text.strip().lower()
    return next((k for k in TXT_KINDS if low.startswith(k)), None)


def _data(rtype: str, value: str) -> str:
    """Values as the Lookup layer presents them (TXT: the text; others: rdata text)."""
    if rtype == "TXT":
        return value
    import dns.name
    import dns.rdata

    return dns.rdata.from_text("IN", rtype, value, origin=dns.name.root,
                               relativize=False).to_text()


@dataclass(frozen=True)
class Overlaid:
    """The changed RRsets: (name, type) -> the data after the change (() = removed)."""

    records: dict[tuple[str, str], tuple[str, ...]]
    before: dict[tuple[str, str], Answer]


async def overlay_records(change: ChangeFile, domain: str, live: Lookup) -> Overlaid:
    records: dict[tuple[str, str], tuple[str, ...]] = {}
    before: dict[tuple[str, str], Answer] = {}
    for item in change.records:
        key = (owner(item.name, domain), item.type)
        if key not in before:
            before[key] = await live(*key)
        current = list(records.get(key, before[key].data if before[key].status == "answer"
                                   else ()))
        values = [_data(item.type, v) for v in item.values]
        if item.action == "add":
            current += [v for v in values if v not in current]
        elif item.action == "replace":
            if item.type == "TXT":
                kinds = {_kind(v) for v in values}
                current = [t for t in current if _kind(t) not in kinds]
                current += values
            else:
                current = values
        elif values:
            current = [v for v in current if v not in values]
        else:
            current = []
        records[key] = tuple(current)
    return Overlaid(records, before)
