"""The precheck report: the change, the findings it introduces and resolves, and whether
it is safe — as JSON, text and JUnit."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

from mailtrace.core import catalog
from mailtrace.core.findings import Finding
from mailtrace.probes.auth import checks
from mailtrace.report.json import finding_json
from mailtrace.report.remediation import fix_lines, values
from mailtrace.report.verify import does_not_fit, line, spf_tree_lines
from mailtrace.topology.change import ChangeFile, Overlaid

UNSAFE_WARNINGS = frozenset({"PRECHECK_MX_TTL_LONG"})


def _engine(f: Finding) -> bool:
    """A probe that crashed or overran says nothing about the change (it is reported as
    not tested, not as something the change introduces or resolves)."""
    return f.tag.startswith("ENGINE_")


def _key(f: Finding) -> tuple[str, tuple[tuple[str, str], ...]]:
    return f.tag, tuple(sorted((k, str(v)) for k, v in f.args.items()))


@dataclass
class PrecheckReport:
    topology: str
    domain: str
    change: ChangeFile
    overlaid: Overlaid
    before: list[Finding]
    after: list[Finding]
    elapsed_ms: float = 0.0
    #: Why a probe could not judge the changed records (then the change is not "safe").
    not_tested: list[str] = field(default_factory=list)
    new: list[Finding] = field(init=False)
    resolved: list[Finding] = field(init=False)

    def __post_init__(self) -> None:
        before = {_key(f) for f in self.before}
        after = {_key(f) for f in self.after}
        self.new = [f for f in self.after if _key(f) not in before and not _engine(f)]
        self.resolved = [f for f in self.before if _key(f) not in after and not _engine(f)]

    @property
    def unsafe(self) -> list[Finding]:
        """New findings that fail or contradict the topology (verify's rule), and the
        warnings that are unsafe in a change (a long MX TTL at a cutover)."""
        return [f for f in self.new if does_not_fit(f) or f.tag in UNSAFE_WARNINGS]

    @property
    def verdict(self) -> str:
        if self.unsafe:
            return "unsafe"
        if self.not_tested or any(f.tag == checks.NOT_TESTED_TAG for f in self.after):
            return "inconclusive"
        return "safe"

    @property
    def exit_code(self) -> int:
        return {"safe": 0, "unsafe": 1, "inconclusive": 3}[self.verdict]

    def as_json(self) -> dict[str, Any]:
        changes = []
        for (name, rtype), data in self.overlaid.records.items():
            before = self.overlaid.before[(name, rtype)]
            changes.append({"name": name.rstrip("."), "type": rtype,
                            "before": list(before.data), "before_ttl": before.ttl,
                            "after": list(data)})
        return {
            "schema": "mailtrace/precheck-1", "topology": self.topology, "domain": self.domain,
            "change": self.change.change, "verdict": self.verdict,
            "records": changes,
            "unsafe": [finding_json(f) for f in self.unsafe],
            "new": [finding_json(f) for f in self.new],
            "resolved": [finding_json(f) for f in self.resolved],
            "after": [finding_json(f) for f in self.after],
            "not_tested": self.not_tested,
            "elapsed_ms": round(self.elapsed_ms),
        }




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
    fixed: set[str] = set()
    for name, findings in sections:
        if findings:
            out.append(f"{name}:")
            for f in findings:
                out.append(f"  {line(f)}")
                rem = catalog.info(f.tag).remediation
                if name == "unsafe" and rem is not None and f.tag not in fixed:
                    fixed.add(f.tag)  # each fix once, under the first finding it mends
                    out += fix_lines(rem, values(f, report.domain), "    ")
    if verbose:
        out.append("after the change:")
        out.extend(f"  {line(f)}" for f in report.after)
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
            failure.text = json.dumps({"args": f.args,
                                       "evidence": [e.as_json() for e in f.evidence]},
                                      default=str)
        failures += bool(bad)
        untested = [f for f in report.after if f.tag == "AUTH_LOOKUP_FAILED"
                    and family in ("SPF", "DKIM", "DMARC")]
        if untested and not bad and family == "SPF":
            ET.SubElement(case, "skipped", message="; ".join(
                catalog.info(f.tag).render(f.args) for f in untested))
    suite.set("failures", str(failures))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
