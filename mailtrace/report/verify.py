"""The verify report: per expected record, every server's answer and the status they make
(matches, differs, propagating, inconclusive), with its JSON form and its text."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from mailtrace.clients.dns import DnsObservation, Server
from mailtrace.core import catalog
from mailtrace.core.findings import Finding, Level
from mailtrace.mailauth.lookup import txt_text
from mailtrace.report.json import finding_json

STATUSES = ("matches", "differs", "propagating", "inconclusive")


@dataclass(frozen=True)
class ExpectedRecord:
    label: str  # "MX", "SPF", "DKIM selector1", "DMARC", "MTA-STS", "TLS-RPT"
    name: str  # absolute
    rdtype: str
    prefix: str | None = None  # TXT: only records starting with this (case-insensitive)


@dataclass(frozen=True)
class ServerAnswer:
    server: Server
    obs: DnsObservation
    value: tuple[str, ...] | None
    seen_at: float  # time.time() when the answer came
    serial: int | None = None  # the server's SOA serial (authoritative servers)

    @property
    def ttl(self) -> int | None:
        ttls = [r.ttl for r in self.obs.answer]
        return min(ttls) if ttls else None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"server": self.server.label, "role": self.server.role,
                               "outcome": self.obs.outcome.value,
                               "answer": list(self.value) if self.value is not None else None,
                               "ttl": self.ttl}
        if self.serial is not None:
            out["serial"] = self.serial
        if self.obs.error:
            out["error"] = self.obs.error
        return out


@dataclass
class RecordReport:
    record: ExpectedRecord
    status: str
    current: tuple[str, ...] | None
    answers: list[ServerAnswer]
    disagreeing: list[str] = field(default_factory=list)  # server labels
    old_expires_at: float | None = None  # time.time()
    findings: list[Finding] = field(default_factory=list)
    reason: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "record": self.record.label, "name": self.record.name.rstrip("."),
            "type": self.record.rdtype, "status": self.status, "reason": self.reason,
            "current": list(self.current) if self.current is not None else None,
            # The zone's TTL: a cache outside the panel may keep the previous answer up to
            # this long after the change reached every server.
            "ttl": max((a.ttl for a in self.answers
                        if a.server.role == "authoritative" and a.ttl is not None), default=None),
            "disagreeing": self.disagreeing,
            "old_expires_at": _iso(self.old_expires_at),
            "servers": [a.as_json() for a in self.answers],
            "findings": [finding_json(f) for f in self.findings],
        }


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return dt.datetime.fromtimestamp(round(when), dt.UTC).isoformat().replace("+00:00", "Z")


def show_value(value: tuple[str, ...] | None) -> str:
    if value is None:
        return "no answer"
    return " | ".join(value) if value else "no record"


@dataclass
class VerifyReport:
    topology: str
    domain: str
    records: list[RecordReport]
    servers: list[str]
    resolvers: list[str]
    started: float
    elapsed_ms: float
    other_findings: list[Finding] = field(default_factory=list)
    polls: int = 1

    @property
    def status(self) -> str:
        states = {r.status for r in self.records}
        if "differs" in states:
            return "differs"
        if "propagating" in states:
            return "propagating"
        if "inconclusive" in states:
            return "inconclusive"
        return "converged"

    @property
    def exit_code(self) -> int:
        return {"converged": 0, "differs": 1, "propagating": 1, "inconclusive": 3}[self.status]

    @property
    def old_expires_at(self) -> float | None:
        times = [r.old_expires_at for r in self.records if r.old_expires_at is not None]
        return max(times) if times else None

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": "mailtrace/verify-1", "topology": self.topology, "domain": self.domain,
            "status": self.status, "checked_at": _iso(self.started),
            "old_answers_expired_everywhere_at": _iso(self.old_expires_at),
            "authoritative": self.servers, "resolvers": self.resolvers,
            "records": [r.as_json() for r in self.records],
            "findings": [finding_json(f) for f in self.other_findings],
            "polls": self.polls, "elapsed_ms": round(self.elapsed_ms),
        }


def does_not_fit(finding: Finding) -> bool:
    """The one rule of verify and precheck: a finding makes its record ``differs`` (and a
    change that introduces it unsafe) when it fails on its own, or when it says the record
    contradicts a value the topology declares (``contradicts`` in the catalog), whatever its
    level. Findings about what the topology does not declare stay notes and warnings."""
    info = catalog.info(finding.tag)
    return info.fails or info.contradicts


_MARK = {"matches": "✓", "differs": "✗", "propagating": "…", "inconclusive": "?"}


def line(f: Finding) -> str:
    info = catalog.info(f.tag)
    return f"{info.level.value:<8} {f.tag}: {info.render(f.args)}"


def spf_tree_lines(findings: list[Finding], indent: str) -> list[str]:
    """The SPF lookup tree, with the cost of each include (from SPF_LOOKUPS evidence)."""
    for f in findings:
        if f.tag == "SPF_LOOKUPS":
            for ev in f.evidence:
                if "lines" in ev:
                    return [f"{indent}{line}" for line in ev["lines"]]
    return []


MAX_SHOWN_TXT = 60


def alias_lines(rec: RecordReport) -> list[str]:
    """A record published as an alias (RFC 1034 §3.6.2): the CNAME the zone serves, and
    the record at its target as the resolvers followed it — the usual Microsoft 365 DKIM
    setup (selector1._domainkey → selector1-….onmicrosoft.com). Empty when the record is
    not an alias."""
    targets = [v.removeprefix("CNAME ") for v in rec.current or () if v.startswith("CNAME ")]
    if not targets:
        return []
    lines = [f"    current: CNAME → {', '.join(targets)} (an alias: the zone publishes no "
             f"{rec.record.rdtype} of its own; the record that counts is at the target)"]
    wanted = {t.rstrip(".").lower() for t in targets}
    for a in rec.answers:
        if a.server.role == "authoritative":
            continue
        found = [r for r in a.obs.answer if r.type == rec.record.rdtype
                 and r.name.rstrip(".").lower() in wanted]
        if not found:
            continue
        data = [txt_text(r.data) if r.type == "TXT" else r.data for r in found]
        shown = " | ".join(d if len(d) <= MAX_SHOWN_TXT else d[:MAX_SHOWN_TXT] + "…"
                           for d in data)
        lines.append(f"    {rec.record.rdtype} at the target (followed by {a.server.label}): "
                     f"{shown}")
        break
    else:
        lines.append(f"    {rec.record.rdtype} at the target: not in the resolvers' answers")
    return lines


def verify_text(report: VerifyReport, verbose: bool = False) -> str:
    out = [f"verify {report.domain} (topology {report.topology}): {report.status.upper()}",
           f"  authoritative: {', '.join(report.servers) or '(none found)'}",
           f"  resolvers:     {', '.join(report.resolvers)}"]
    expiry = _iso(report.old_expires_at)
    if expiry:
        out.append(f"  old answers expired everywhere at: {expiry}")
    for rec in report.records:
        alias = alias_lines(rec)
        asked = f"{rec.record.rdtype} asked, answered by a CNAME" if alias else \
            rec.record.rdtype
        out.append(f"{_MARK[rec.status]} {rec.record.label:<16} {rec.status:<12} "
                   f"{rec.record.name.rstrip('.')} {asked}")
        current = " | ".join(rec.current) if rec.current else "(no record)"
        if alias:
            out.extend(alias)
        elif rec.current is not None:
            out.append(f"    current: {current}")
        if rec.reason:
            out.append(f"    {rec.reason}")
        if rec.old_expires_at is not None:
            out.append(f"    old answer held by {', '.join(rec.disagreeing)} until "
                       f"{_iso(rec.old_expires_at)}")
        if rec.record.label == "SPF":
            out.extend(spf_tree_lines(rec.findings, "    | "))
        for f in rec.findings:
            info = catalog.info(f.tag)
            if verbose or info.level.rank >= Level.WARNING.rank:
                out.append(f"    {line(f)}")
        if verbose:
            for a in rec.answers:
                shown = " | ".join(a.value) if a.value else (
                    "(no record)" if a.value == () else a.obs.outcome.value)
                out.append(f"      {a.server.label}: {shown} ttl={a.ttl}")
    for f in report.other_findings:
        if verbose or catalog.info(f.tag).level.rank >= Level.WARNING.rank:
            out.append(f"  {line(f)}")
    out.append(f"({report.polls} poll{'s' if report.polls != 1 else ''}, "
               f"{report.elapsed_ms / 1000:.1f} s)")
    return "\n".join(out) + "\n"



