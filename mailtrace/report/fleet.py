"""A fleet's results: one NDJSON line per domain (``mailtrace/fleet-1``), and the summary.

Each domain line holds what every vantage point saw (``vantages``: the vantage's verify
report, compact unless asked for in full), the domain's status — the worst of its
vantages', in verify's own order: differs, propagating, inconclusive, converged — the
records that do not match and why (``failing``: each with a ``cause``), and the records
whose answers differ from one vantage to another (``vantages_differ``: the per-region
view of propagation). A line that could not be read, or a domain that could not be
verified at all, is an ``error`` line naming its line number.

A record's ``cause``, the summary's grouping:

- ``fit``: a finding says it does not fit the topology (``tags``: those findings);
- ``stale-server``: an authoritative server serves something else (a stale secondary);
- ``nxdomain``: the name does not exist;
- ``cached``: propagating, a resolver still holds the previous answer;
- ``no-answer``: inconclusive, a server did not answer;
- ``not-checked``: inconclusive, the probe judging its fit gave no result in time.

The summary (:class:`FleetSummary`) counts domains by status and groups the failing ones
by the finding (or cause) that fails them, with a few domains named per group: its
memory does not grow with the fleet.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mailtrace.core import catalog
from mailtrace.core.findings import Level
from mailtrace.report.json import finding_json
from mailtrace.report.verify import RecordReport, VerifyReport, does_not_fit

SCHEMA = "mailtrace/fleet-1"
#: Worst first, as verify orders a report's records.
ORDER = ("differs", "propagating", "inconclusive", "converged")
EXIT = {"converged": 0, "differs": 1, "propagating": 1, "inconclusive": 3}
#: The vantage of a fleet run that names none.
DEFAULT_VANTAGE = "default"


def worst(statuses: list[str]) -> str:
    return min(statuses, key=ORDER.index) if statuses else "inconclusive"


def cause(record: RecordReport, authoritative: list[str]) -> str | None:
    if record.status == "matches":
        return None
    if record.status == "propagating":
        return "cached"
    if record.status == "inconclusive":
        return "no-answer" if record.disagreeing else "not-checked"
    if any(does_not_fit(f) for f in record.findings):
        return "fit"
    if any(label in authoritative for label in record.disagreeing):
        return "stale-server"
    return "nxdomain"


def vantage_doc(report: VerifyReport, verbose: bool = False) -> dict[str, Any]:
    """One domain as one vantage point saw it: verify's report, in full (``verbose``:
    the ``mailtrace/verify-1`` document) or compact — per record its status, cause,
    current value, every server's answer and the findings that count (with their
    evidence when they make the record not fit)."""
    if verbose:
        doc = report.as_json()
        for rec, out in zip(report.records, doc["records"], strict=True):
            out["cause"] = cause(rec, report.servers)
        return doc
    return {"status": report.status, "checked_at": _iso(report.started),
            "old_answers_expired_everywhere_at": _iso(report.old_expires_at),
            "authoritative": report.servers, "resolvers": report.resolvers,
            "records": [_record(rec, report.servers) for rec in report.records],
            "findings": [_finding(f) for f in report.other_findings
                         if catalog.info(f.tag).level.rank >= Level.WARNING.rank],
            "elapsed_ms": round(report.elapsed_ms)}


def _record(rec: RecordReport, authoritative: list[str]) -> dict[str, Any]:
    ttls = [a.ttl for a in rec.answers if a.server.role == "authoritative" and a.ttl is not None]
    servers = []
    for a in rec.answers:
        server: dict[str, Any] = {"server": a.server.label, "role": a.server.role,
                                  "outcome": a.obs.outcome.value,
                                  "answer": list(a.value) if a.value is not None else None}
        if a.serial is not None:
            server["serial"] = a.serial
        servers.append(server)
    return {"record": rec.record.label, "name": rec.record.name.rstrip("."),
            "type": rec.record.rdtype, "status": rec.status, "cause": cause(rec, authoritative),
            "reason": rec.reason,
            "current": list(rec.current) if rec.current is not None else None,
            "ttl": max(ttls, default=None), "disagreeing": rec.disagreeing,
            "old_expires_at": _iso(rec.old_expires_at), "servers": servers,
            "findings": [_finding(f) for f in rec.findings
                         if does_not_fit(f) or catalog.info(f.tag).level.rank
                         >= Level.WARNING.rank]}


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return dt.datetime.fromtimestamp(round(when), dt.UTC).isoformat().replace("+00:00", "Z")


def _finding(f: Any) -> dict[str, Any]:
    doc = finding_json(f, localized=False)
    doc.pop("remediation", None)
    if not does_not_fit(f):
        doc.pop("evidence", None)
    return doc


def failed_vantage(error: str) -> dict[str, Any]:
    """A vantage that could not verify the domain at all (an internal error)."""
    return {"status": "inconclusive", "error": error, "records": []}


def _failing(vantages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The records that do not match, from any vantage, with the findings that fail
    them (tags) and the vantages that see it."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for name, doc in vantages.items():
        for rec in doc.get("records", []):
            if rec.get("status") == "matches":
                continue
            tags = sorted({f["tag"] for f in rec.get("findings", [])
                           if _fails(f["tag"])}) if rec.get("cause") == "fit" else []
            key = (rec.get("record", "?"), rec.get("status", "?"), rec.get("cause") or "?")
            entry = found.setdefault(key, {"record": key[0], "status": key[1],
                                           "cause": key[2], "tags": tags, "vantages": [],
                                           "reason": rec.get("reason", "")})
            entry["vantages"].append(name)
            entry["tags"] = sorted({*entry["tags"], *tags})
        if doc.get("error"):
            found[("*", "inconclusive", "error")] = {
                "record": "*", "status": "inconclusive", "cause": "error", "tags": [],
                "vantages": [name], "reason": doc["error"]}
    return sorted(found.values(), key=lambda e: (ORDER.index(e["status"])
                                                 if e["status"] in ORDER else 9,
                                                 e["record"]))


def _fails(tag: str) -> bool:
    try:
        info = catalog.info(tag)
    except KeyError:
        return False
    return info.fails or info.contradicts


def _regional(vantages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Records whose status or resolvers' answers differ from one vantage to another."""
    if len(vantages) < 2:
        return []
    seen: dict[str, dict[str, tuple[str, list[Any]]]] = {}
    for name, doc in vantages.items():
        for rec in doc.get("records", []):
            answers = sorted({json.dumps(a.get("answer")) for a in rec.get("servers", [])
                              if a.get("role") == "resolver"})
            seen.setdefault(rec.get("record", "?"), {})[name] = (
                rec.get("status", "?"), [json.loads(a) for a in answers])
    out = []
    for label, by_vantage in seen.items():
        if len({json.dumps(v) for v in by_vantage.values()}) > 1 or len(by_vantage) < len(
                vantages):
            out.append({"record": label,
                        "status": {v: s for v, (s, _) in sorted(by_vantage.items())},
                        "resolvers": {v: a for v, (_, a) in sorted(by_vantage.items())}})
    return out


def domain_doc(line: int, domain: str, topology: str,
               vantages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The NDJSON line of one domain, every vantage's report joined (in the vantages'
    order by name, whichever came back first)."""
    vantages = dict(sorted(vantages.items()))
    return {"schema": SCHEMA, "kind": "domain", "line": line, "domain": domain,
            "topology": topology,
            "status": worst([v.get("status", "inconclusive") for v in vantages.values()]),
            "failing": _failing(vantages), "vantages_differ": _regional(vantages),
            "vantages": vantages}


def error_doc(line: int, error: str, *, text: str | None = None,
              domain: str | None = None) -> dict[str, Any]:
    """A line that could not be read (``text``), or a domain that could not be verified
    at all (``domain``)."""
    doc: dict[str, Any] = {"schema": SCHEMA, "kind": "error", "line": line}
    if domain is not None:
        doc["domain"] = domain
    if text is not None:
        doc["text"] = text
    doc["error"] = error
    return doc


def dumps(doc: dict[str, Any]) -> str:
    """One NDJSON line (no newline in it: json.dumps escapes every control character)."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


# -- the summary ---------------------------------------------------------------------------

@dataclass
class Group:
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str, keep: int) -> None:
        self.count += 1
        if len(self.examples) < keep:
            self.examples.append(example)


@dataclass
class FleetSummary:
    """Counts and groups over every line of a fleet; ``keep`` examples per group."""

    keep: int = 8
    statuses: Counter[str] = field(default_factory=Counter)
    by_vantage: Counter[tuple[str, str]] = field(default_factory=Counter)
    failing: dict[str, Group] = field(default_factory=dict)
    regional: dict[str, Group] = field(default_factory=dict)
    errors: Group = field(default_factory=Group)
    duplicates: Group = field(default_factory=Group)
    resumed: int = 0
    dropped: int = 0  # results for a domain already reported (the exactly-once guard)

    def add(self, doc: dict[str, Any]) -> None:
        """Count one NDJSON line (this run's, or a previous run's when resuming)."""
        if doc.get("kind") == "error":
            where = f"line {doc.get('line')}"
            if doc.get("domain"):
                where += f" ({doc['domain']})"
            self.errors.add(f"{where}: {doc.get('error')}", self.keep)
            return
        domain, status = str(doc.get("domain")), str(doc.get("status"))
        self.statuses[status] += 1
        for name, vantage in (doc.get("vantages") or {}).items():
            self.by_vantage[(name, str(vantage.get("status")))] += 1
        for entry in doc.get("failing", []):
            for key in entry.get("tags") or [f"{entry.get('record')}: {entry.get('cause')}"]:
                self.failing.setdefault(key, Group()).add(domain, self.keep)
        for entry in doc.get("vantages_differ", []):
            self.regional.setdefault(str(entry.get("record")), Group()).add(domain, self.keep)

    def duplicate(self, line: int, first: int, domain: str) -> None:
        self.duplicates.add(f"line {line}: {domain} (first on line {first})", self.keep)

    @property
    def domains(self) -> int:
        return sum(self.statuses.values())

    @property
    def failing_domains(self) -> int:
        return self.statuses["differs"] + self.statuses["propagating"]

    @property
    def exit_code(self) -> int:
        """verify's exit over the whole fleet: 1 when a domain differs or is propagating,
        else 3 when one is inconclusive or could not be verified (a bad line), else 0."""
        if self.failing_domains:
            return 1
        if self.statuses["inconclusive"] or self.errors.count:
            return 3
        return 0

    def text(self, elapsed: float | None = None, vantages: list[str] | None = None) -> str:
        total = self.domains
        head = f"fleet: {total} domain{'s' if total != 1 else ''} verified"
        if elapsed is not None and elapsed > 0:
            head += f" in {elapsed:.1f} s ({total / elapsed:.1f}/s)"
        out = [head]
        out.append("  " + ", ".join(f"{self.statuses[s]} {s}" for s in reversed(ORDER)))
        if vantages and len(vantages) > 1:
            for name in vantages:
                counts = ", ".join(f"{self.by_vantage[(name, s)]} {s}" for s in reversed(ORDER)
                                   if self.by_vantage[(name, s)])
                out.append(f"  from {name}: {counts or 'nothing'}")
        if self.resumed:
            out.append(f"  {self.resumed} done by the previous run (--resume)")
        if self.failing:
            out.append("failing, by the finding that fails them:")
            for key, group in sorted(self.failing.items(), key=lambda kv: (-kv[1].count, kv[0])):
                out.append(f"  {key:<34} {group.count:>6}  {_examples(group)}")
        if self.regional:
            out.append("answers differ between vantages:")
            for key, group in sorted(self.regional.items()):
                out.append(f"  {key:<34} {group.count:>6}  {_examples(group)}")
        if self.errors.count:
            out.append(f"not verified: {self.errors.count}")
            out += [f"  {e}" for e in self.errors.examples]
            if self.errors.count > len(self.errors.examples):
                out.append(f"  ... and {self.errors.count - len(self.errors.examples)} more")
        if self.duplicates.count:
            out.append(f"duplicates (verified once): {self.duplicates.count}")
            out += [f"  {e}" for e in self.duplicates.examples]
            if self.duplicates.count > len(self.duplicates.examples):
                more = self.duplicates.count - len(self.duplicates.examples)
                out.append(f"  ... and {more} more")
        if self.dropped:
            out.append(f"results received twice and reported once: {self.dropped}")
        return "\n".join(out) + "\n"


def _examples(group: Group) -> str:
    shown = ", ".join(group.examples)
    more = group.count - len(group.examples)
    return shown + (f", ... and {more} more" if more > 0 else "")
