"""The text report: hops in flow order, findings with their evidence, the verdict, and the
fix for the localized tier only. Colour only on a terminal and never with NO_COLOR."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from mailtrace.core import catalog
from mailtrace.core.findings import Status, TierResult
from mailtrace.probes.base import OBSERVER_TIER
from mailtrace.report.model import TriageReport
from mailtrace.report.remediation import MARK, fix_lines, localized, values

_COLOURS = {"red": "31", "green": "32", "yellow": "33", "dim": "2", "bold": "1", "cyan": "36"}
_STATUS_COLOUR = {
    Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "red",
    Status.NOT_TESTED: "dim", Status.SKIPPED: "dim",
}
_VERDICT_COLOUR = {
    "healthy": "green", "degraded": "yellow", "fault": "red", "inconclusive": "yellow",
}
EVIDENCE_LINES = 4


def use_colour(stream: TextIO) -> bool:
    # no-color.org: NO_COLOR set to a non-empty value turns colour off
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


class _Painter:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, text: str, colour: str) -> str:
        return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m" if self.colour else text


def _tier_lines(index: int, tier: TierResult, report: TriageReport, paint: _Painter,
                verbose: bool) -> list[str]:
    label = "this machine" if tier.id == OBSERVER_TIER else tier.kind
    status = paint(tier.status.value.upper().replace("_", " "), _STATUS_COLOUR[tier.status])
    head = f"[{index}] {tier.id} ({label})"
    lines = [f"{paint(f'{head:<40}', 'bold')} {status}"]
    if tier.reason:
        lines.append(f"    {paint(tier.reason, 'dim')}")
    for probe in tier.probes:
        if probe.status in (Status.NOT_TESTED, Status.SKIPPED) and probe.reason:
            note = f"{probe.probe}: {probe.status.value} — {probe.reason}"
            lines.append(f"    {paint(note, 'dim')}")
        if probe.reported_by and probe.findings:
            note = f"reported by {probe.reported_by}'s probe {probe.probe}:"
            lines.append(f"    {paint(note, 'dim')}")
        for f in probe.findings:
            info = catalog.info(f.tag)
            mark = MARK[info.level]
            colour = {"✗": "red", "!": "yellow"}.get(mark, "green")
            lines.append(f"    {paint(mark, colour)} {f.tag}  {info.render(f.args)}")
            shown = f.evidence if verbose else f.evidence[:EVIDENCE_LINES]
            lines += [f"        {line}" for ev in shown for line in ev.lines(verbose)]
            if len(f.evidence) > len(shown):
                lines.append(f"        … {len(f.evidence) - len(shown)} more (--verbose)")
    return lines


def render(report: TriageReport, *, colour: bool = False, verbose: bool = False) -> str:
    paint = _Painter(colour)
    target = report.target.recipient or report.target.domain
    out = [
        f"mailtrace triage — topology {report.topology.topology} — {target}",
        "flow: " + " | ".join(" → ".join(chain) for chain in report.flow.chains()),
        "",
    ]
    for i, tier in enumerate(report.tiers):
        out += _tier_lines(i, tier, report, paint, verbose)
    v = report.verdict
    out.append("")
    where = f" at {v.tier}" if v.tier else ""
    tag = f"  [{v.tag}]" if v.tag else ""
    out.append(paint(f"VERDICT: {v.status.upper()}{where}{tag}", _VERDICT_COLOUR[v.status]))
    out.append(f"  {v.summary}")
    if v.tier is not None:
        fixes = [(f, catalog.info(f.tag)) for f in localized(report.tiers, v)]
        fixes = [(f, i) for f, i in fixes if i.remediation]
        if fixes:
            out.append("")
            out.append(paint(f"Fix for {v.tier} (this tier only; the others are not the cause):",
                             "bold"))
            seen: set[str] = set()
            for f, info in fixes:
                if f.tag in seen or info.remediation is None:
                    continue
                seen.add(f.tag)
                out.append(f"  {f.tag}:")
                filled = values(f, report.target.domain, recipient=report.target.recipient)
                out += fix_lines(info.remediation, filled, "    ", paint)
    if v.not_tested:
        out.append("")
        out.append("Not tested: " + "; ".join(f"{n['tier']} ({n['reason']})" for n in v.not_tested))
    if verbose:
        out.append("")
        out.append(f"Timings (ms from start; {report.queries_sent} DNS queries sent):")
        for tier_id, probe, start, elapsed in sorted(report.timings.rows, key=lambda r: r[2]):
            out.append(f"  {start:8.1f} +{elapsed:8.1f}  {tier_id}/{probe}")
    out.append(f"\nelapsed {report.elapsed_ms:.0f} ms")
    return "\n".join(out) + "\n"


def write(report: TriageReport, stream: TextIO = sys.stdout, *, verbose: bool = False) -> None:
    stream.write(render(report, colour=use_colour(stream), verbose=verbose))
