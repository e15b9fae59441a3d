"""Text and JUnit renderings of the verify and precheck reports (JSON: ``as_json()``)."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

from mailtrace import catalog
from mailtrace.auth.precheck import PrecheckReport
from mailtrace.auth.verify import VerifyReport, _iso
from mailtrace.findings import Finding, Level

_MARK = {"matches": "✓", "differs": "✗", "propagating": "…", "inconclusive": "?"}


def _line(f: Finding) -> str:
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


def verify_text(report: VerifyReport, verbose: bool = False) -> str:
    out = [f"verify {report.domain} (topology {report.topology}): {report.status.upper()}",
           f"  authoritative: {', '.join(report.servers) or '(none found)'}",
           f"  resolvers:     {', '.join(report.resolvers)}"]
    expiry = _iso(report.old_expires_at)
    if expiry:
        out.append(f"  old answers expired everywhere at: {expiry}")
    for rec in report.records:
        out.append(f"{_MARK[rec.status]} {rec.record.label:<16} {rec.status:<12} "
                   f"{rec.record.name.rstrip('.')} {rec.record.rdtype}")
        current = " | ".join(rec.current) if rec.current else "(no record)"
        if rec.current is not None:
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
                out.append(f"    {_line(f)}")
        if verbose:
            for a in rec.answers:
                shown = " | ".join(a.value) if a.value else (
                    "(no record)" if a.value == () else a.obs.outcome.value)
                out.append(f"      {a.server.label}: {shown} ttl={a.ttl}")
    for f in report.other_findings:
        if verbose or catalog.info(f.tag).level.rank >= Level.WARNING.rank:
            out.append(f"  {_line(f)}")
    out.append(f"({report.polls} poll{'s' if report.polls != 1 else ''}, "
               f"{report.elapsed_ms / 1000:.1f} s)")
    return "\n".join(out) + "\n"


def precheck_text(report: PrecheckReport, verbose: bool = False) -> str:
    title = f"{report.change.change}: " if report.change.change else ""
    out = [f"precheck {report.domain} (topology {report.topology}): {title}"
           f"{report.verdict.upper()}"]
    for (name, rtype), data in report.overlaid.records.items():
        before = report.overlaid.before[(name, rtype)]
        out.append(f"  {name.rstrip('.')} {rtype}")
        out.append(f"    before: {' | '.join(before.data) or '(none)'}"
                   + (f"  (TTL {before.ttl})" if before.ttl is not None else ""))
        out.append(f"    after:  {' | '.join(data) or '(none)'}")
    if any(rtype == "TXT" and name == report.domain.rstrip(".") + "."
           for name, rtype in report.overlaid.records):
        out.append("  SPF lookups after the change:")
        out.extend(spf_tree_lines(report.after, "    | "))
    sections = [("unsafe", report.unsafe), ("new", [f for f in report.new
                                                     if f not in report.unsafe]),
                ("resolved", report.resolved)]
    for name, findings in sections:
        if findings:
            out.append(f"{name}:")
            out.extend(f"  {_line(f)}" for f in findings)
            if name == "unsafe":
                for f in findings:
                    rem = catalog.info(f.tag).remediation
                    if rem is not None:
                        out.append(f"    fix: {rem.summary.strip()}")
    if verbose:
        out.append("after the change:")
        out.extend(f"  {_line(f)}" for f in report.after)
    return "\n".join(out) + "\n"


def precheck_junit(report: PrecheckReport) -> str:
    """One test case per check family; a new failing finding is a <failure>."""
    families = ["SPF", "DKIM", "DMARC", "DNS_MX", "MTASTS", "TLSRPT", "PRECHECK"]
    suite = ET.Element("testsuite", name=f"mailtrace precheck {report.domain}",
                       tests=str(len(families)), time=f"{report.elapsed_ms / 1000:.3f}")
    failures = 0
    for family in families:
        case = ET.SubElement(suite, "testcase", classname=f"precheck.{report.domain}",
                             name=family)
        bad = [f for f in report.unsafe if f.tag.startswith(family)]
        for f in bad:
            failure = ET.SubElement(case, "failure", type=f.tag,
                                    message=catalog.info(f.tag).render(f.args))
            failure.text = json.dumps({"args": f.args, "evidence": f.evidence}, default=str)
        failures += bool(bad)
        untested = [f for f in report.after if f.tag == "AUTH_LOOKUP_FAILED"
                    and family in ("SPF", "DKIM", "DMARC")]
        if untested and not bad and family == "SPF":
            ET.SubElement(case, "skipped", message="; ".join(
                catalog.info(f.tag).render(f.args) for f in untested))
    suite.set("failures", str(failures))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, default=str) + "\n"
