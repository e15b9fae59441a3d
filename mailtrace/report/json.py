"""The triage JSON contract (DESIGN.md, "Triage JSON"): stable, additive only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mailtrace.core import catalog
from mailtrace.core.findings import Finding, TierResult
from mailtrace.probes.base import Target
from mailtrace.report.message import message_followed
from mailtrace.report.model import TriageReport
from mailtrace.report.remediation import localized, remediation_json, values

SCHEMA = "mailtrace/triage-1"


def finding_json(f: Finding, probe: str | None = None, *, localized: bool = True,
                 filled: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A finding as every JSON document shows it; ``probe`` where a probe reported it, the
    remediation only where the report localizes the fault (``localized``), its commands
    filled in with ``filled`` (default: the finding's own values)."""
    info = catalog.info(f.tag)
    out: dict[str, Any] = {"tag": f.tag, "level": info.level.value}
    if probe is not None:
        out["probe"] = probe
    out.update({
        "args": f.args,
        "message": info.render(f.args),
        "evidence": [e.as_json() for e in f.evidence],
        "remediation": remediation_json(info.remediation, values(f) if filled is None
                                        else filled)
        if localized and info.remediation else None,
    })
    return out


def tier_json(tier: TierResult, fixed: set[int], target: Target | None = None
              ) -> dict[str, Any]:
    return {
        "id": tier.id,
        "kind": tier.kind,
        "status": tier.status.value,
        "coverage": tier.coverage,  # full | partial | none: which probes could run
        "reason": tier.reason,
        "probes": [
            {"id": p.probe, "status": p.status.value, "reason": p.reason,
             "elapsed_ms": round(p.elapsed_ms, 1), "reported_by": p.reported_by}
            for p in tier.probes
        ],
        "findings": [
            finding_json(f, p.probe, localized=id(f) in fixed,
                         filled=values(f, target.domain, recipient=target.recipient)
                         if target is not None else None)
            for p in tier.probes for f in p.findings
        ],
    }


def report_json(report: TriageReport) -> dict[str, Any]:
    v = report.verdict
    fixed = {id(f) for f in localized(report.tiers, v)}
    return {
        "schema": SCHEMA,
        "topology": report.topology.topology,
        "target": {"recipient": report.target.recipient, "domain": report.target.domain,
                   "from": report.target.sender, "message_id": report.target.message_id,
                   "subject": report.target.subject},
        "verdict": {"status": v.status, "tier": v.tier, "tag": v.tag, "summary": v.summary,
                    "not_tested": v.not_tested,
                    "attention": [a.as_json() for a in v.attention]},
        "strict": {"exit_code": report.exit_code, "not_tested": report.strict_not_tested}
        if report.strict else None,
        "exit_code": report.exit_code,
        "message": followed.as_json() if (followed := message_followed(report)) else None,
        "journey": [step.as_json() for step in report.journey],
        "journey_summary": [o.as_json() for o in report.journey_summary],
        "tiers": [tier_json(t, fixed, report.target) for t in report.tiers],
        "elapsed_ms": round(report.elapsed_ms, 1),
        "run": report.run.as_json(),
    }


def dumps(data: dict[str, Any]) -> str:
    """Every JSON document mailtrace writes: indented, UTF-8 as is, one final newline."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def render(report: TriageReport) -> str:
    return dumps(report_json(report))
