"""Evidence: the raw observations a finding rests on, typed.

Each kind knows its JSON form (``as_json``, the shape the triage JSON has always had) and
its text (``lines``, what the text and HTML reports show), so no report has to guess what
an observation is from the keys it happens to have::

    Evidence
    ├── DnsAnswer     one DNS question to one server: server, query, outcome, records, timing
    ├── SmtpDialogue  one SMTP conversation with one address: the timestamped transcript
    ├── ApiCall       one HTTP call to an API (Microsoft Graph, Proofpoint): request, status,
    │                 and the record it returned
    └── Observed      anything else read and kept as found: a parsed record, a header, a
                      log entry (named fields)

Evidence reads like a mapping of its JSON form (``ev["status"]``), so a script or a test
can look a field up the way it appears in the JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class Evidence(Mapping[str, Any]):
    """One raw observation, JSON-serialisable through :meth:`as_json`."""

    def as_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def lines(self, verbose: bool = False) -> list[str]:
        """The observation as text lines (``verbose``: nothing folded)."""
        return field_lines(self.as_json())

    def __getitem__(self, key: str) -> Any:
        return self.as_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_json())

    def __len__(self) -> int:
        return len(self.as_json())


def show(value: Any) -> str:
    """A value as an admin reads it: text as is, anything structured as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))


def field_lines(fields: Mapping[str, Any]) -> list[str]:
    """``key=value`` pairs on one line, long or structured values on lines of their own."""
    inline = [f"{k}={show(v)}" for k, v in fields.items()
              if v is not None and not isinstance(v, (list, dict)) and len(show(v)) <= 80]
    below = [(k, v) for k, v in fields.items()
             if v is not None and (isinstance(v, (list, dict)) or len(show(v)) > 80)]
    lines = ["  ".join(inline)] if inline else []
    for key, value in below:
        if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            lines.append(f"{key}:")
            lines += [f"  {show(x)}" for x in value]
        else:
            lines.append(f"{key}: {show(value)}")
    return lines


@dataclass(frozen=True, eq=False)
class Observed(Evidence):
    """Fields read and kept as found (a parsed record, a header field, a log entry)."""

    fields: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return dict(self.fields)


@dataclass(frozen=True, eq=False)
class DnsAnswer(Evidence):
    server: str  # "ns1.contoso.com 192.0.2.1:53", "resolver 127.0.0.1:53"
    role: str
    query: str  # "contoso.com. MX"
    outcome: str
    rcode: str | None = None
    flags: tuple[str, ...] = ()
    transport: str = "udp"
    answer: tuple[Mapping[str, Any], ...] = ()
    elapsed_ms: float = 0.0
    connected_to: str | None = None  # where a --connect-to rule sent it
    authority: tuple[Mapping[str, Any], ...] = ()
    attempts: tuple[Mapping[str, Any], ...] = ()
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "server": self.server, "role": self.role, "query": self.query,
            "outcome": self.outcome, "rcode": self.rcode, "flags": list(self.flags),
            "transport": self.transport, "answer": [dict(r) for r in self.answer],
            "elapsed_ms": round(self.elapsed_ms, 1),
        }
        if self.connected_to is not None:
            ev["connected_to"] = self.connected_to
        if self.authority:
            ev["authority"] = [dict(r) for r in self.authority]
        if self.attempts:
            ev["attempts"] = [dict(a) for a in self.attempts]
        if self.error:
            ev["error"] = self.error
        return ev

    def lines(self, verbose: bool = False) -> list[str]:
        """dig-like: the question and its outcome on one line, the records below."""
        parts = [self.server]
        if self.connected_to is not None:
            parts.append(f"via {self.connected_to}")
        parts.append(f"{self.transport}  {self.query} → {self.outcome}")
        if self.rcode:
            parts.append(f"rcode {self.rcode}")
        if self.flags:
            parts.append("flags " + " ".join(self.flags))
        parts.append(f"{round(self.elapsed_ms, 1)} ms")
        lines = ["  ".join(parts)]
        records, section = (self.answer, "") if self.answer else (self.authority, "authority: ")
        lines += [f"  {section}{r['name']} {r['ttl']} {r['type']} {r['data']}" for r in records]
        if self.error:
            lines.append(f"  {self.error}")
        return lines


_CONTINUATION = re.compile(r"^\s*[\d.]+ ms S: \d{3}-")


def fold(transcript: list[str]) -> list[str]:
    """Keep the first line of each multi-line reply, note how many were folded."""
    folded: list[str] = []
    hidden = 0
    for i, line in enumerate(transcript):
        continued = _CONTINUATION.match(line) is not None
        first = continued and (i == 0 or not _CONTINUATION.match(transcript[i - 1]))
        if continued and not first:
            hidden += 1
            continue
        if hidden:
            folded.append(f"  … {hidden} more reply lines")
            hidden = 0
        folded.append(line)
    return folded


_EVENT = re.compile(r"^\s*[\d.]+ ms ([-CS]): ?(.*)$")
_GOODBYE = ("RSET", "QUIT")


def essential(transcript: list[str]) -> list[str]:
    """What a reader needs of a dialogue: the TLS and error events, the greeting, and
    the last exchange before the client said goodbye — the command and its reply, where
    the dialogue was decided. The rest is counted (``--verbose`` shows it)."""
    kinds = [(m.group(1), m.group(2)) if (m := _EVENT.match(line)) else ("", line)
             for line in transcript]
    # the connection is in the dialogue's head already ("via ..."); TLS and errors are not
    keep = {i for i, (kind, text) in enumerate(kinds)
            if kind == "" or (kind == "-" and not text.startswith("connected to "))}
    keep |= {next((i for i, (kind, _) in enumerate(kinds) if kind == "S"), 0)}
    commands = [i for i, (kind, text) in enumerate(kinds)
                if kind == "C" and not text.upper().startswith(_GOODBYE)]
    if commands:
        last = commands[-1]
        end = next((i for i in range(last + 1, len(kinds)) if kinds[i][0] == "C"), len(kinds))
        keep |= set(range(last, end))
    else:  # no command was sent: the greeting (or its absence) is the whole story
        keep = set(range(len(transcript)))
    shown = fold([transcript[i] for i in sorted(keep) if i < len(transcript)])
    hidden = len(transcript) - len(keep & set(range(len(transcript))))
    return shown + ([f"  … {hidden} more lines of the dialogue (--verbose)"] if hidden else [])


@dataclass(frozen=True, eq=False)
class SmtpDialogue(Evidence):
    smtp: str  # "host [address]:port"
    connected_to: str
    outcome: str
    phase: str
    transcript: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"smtp": self.smtp, "connected_to": self.connected_to, "outcome": self.outcome,
                "phase": self.phase, "transcript": list(self.transcript)}

    def lines(self, verbose: bool = False) -> list[str]:
        """The transcript line by line; without ``verbose`` only what decided it
        (:func:`essential`), multi-line replies folded."""
        transcript = list(self.transcript) if verbose else essential(list(self.transcript))
        head = f"SMTP {self.smtp}  via {self.connected_to}  → {self.outcome}"
        return [head, *(f"  {line}" for line in transcript)]


@dataclass(frozen=True, eq=False)
class ApiCall(Evidence):
    """One call to an HTTP API, as seen on the wire, and what it returned."""

    request: str  # "GET /v1.0/users?$filter=…" (no host, no credentials)
    status: int | None
    api: str | None = None  # "microsoft-graph"
    call: str | None = None  # what was asked, in words
    elapsed_ms: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)  # request id, attempts, body…
    record: Mapping[str, Any] = field(default_factory=dict)  # what the answer held

    def as_json(self) -> dict[str, Any]:
        ev: dict[str, Any] = {}
        if self.api is not None:
            ev["api"] = self.api
        if self.call is not None:
            ev["call"] = self.call
        ev["request"] = self.request
        ev["status"] = self.status
        ev.update(self.details)
        if self.elapsed_ms is not None:
            ev["elapsed_ms"] = round(self.elapsed_ms, 1)
        ev.update(self.record)
        return ev

    def lines(self, verbose: bool = False) -> list[str]:
        elapsed = f"  ({round(self.elapsed_ms, 1)} ms)" if self.elapsed_ms is not None else ""
        what = f"{self.call}: " if self.call else ""
        head = f"{what}{self.request} → {self.status if self.status is not None else 'no answer'}"
        return [head + elapsed, *(f"  {line}" for line in field_lines(
            {**self.details, **self.record}))]
