"""The text report: the answer first (verdict, the message's journey, what needs
attention), then the hops in flow order — the checks that passed by tag on one line, one
line for every other finding, evidence only under failing findings and those that need
attention (one line per finding and all of the evidence with --verbose, each piece once)
— and the fix for the localized tier only. Colour only on a terminal, never with
NO_COLOR."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from mailtrace.core import catalog
from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding, Level, Status, TierResult
from mailtrace.probes.base import OBSERVER_TIER
from mailtrace.report.message import message_followed
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


class _Shown:
    """Evidence already printed: each transcript or answer once, however many findings
    rest on it."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def lines(self, evidence: Sequence[Evidence], verbose: bool, indent: str) -> list[str]:
        out: list[str] = []
        repeated = 0
        shown = list(evidence) if verbose else list(evidence)[:EVIDENCE_LINES]
        for ev in shown:
            key = json.dumps(ev.as_json(), sort_keys=True, default=str)
            if key in self.keys:
                repeated += 1
                continue
            self.keys.add(key)
            out += [f"{indent}{line}" for line in ev.lines(verbose)]
        if repeated:
            out.append(f"{indent}(and {repeated} shown above)")
        if len(evidence) > len(shown):
            out.append(f"{indent}… {len(evidence) - len(shown)} more (--verbose)")
        return out


def _tier_label(tier: TierResult, paint: _Painter) -> str:
    status = paint(tier.status.value.upper().replace("_", " "), _STATUS_COLOUR[tier.status])
    if tier.coverage == "partial":
        status += paint(", partly tested", "dim")
    return status


def _tier_lines(index: int, tier: TierResult, attention: set[tuple[str, str]],
                paint: _Painter, verbose: bool, shown: _Shown) -> list[str]:
    """The tier's head, the checks that passed on one line (by tag), one line for every
    other finding, and evidence under failing findings and those that need attention
    only; with ``verbose``, one line per finding and all of the evidence."""
    label = "this machine" if tier.id == OBSERVER_TIER else tier.kind
    head = f"[{index}] {tier.id} ({label})"
    lines = [f"{paint(f'{head:<40}', 'bold')} {_tier_label(tier, paint)}"]
    if tier.reason:
        lines.append(f"    {paint(tier.reason, 'dim')}")
    passed: list[str] = []
    if not verbose:
        lines += _untested_lines(tier, paint)
    for probe in tier.probes:
        if not probe.ran and not verbose:
            continue  # said once per reason above
        if not probe.ran and probe.reason:
            lines.append("    " + paint(f"· {probe.probe} not tested: {probe.reason}", "dim"))
        told = [f for f in probe.findings if verbose or not _passed(f)]
        passed += [f.tag for f in probe.findings if f not in told]
        if probe.reported_by and told:
            note = f"reported by {probe.reported_by}'s probe {probe.probe}:"
            lines.append(f"    {paint(note, 'dim')}")
        for f in told:
            info = catalog.info(f.tag)
            mark = MARK[info.level]
            colour = {"✗": "red", "!": "yellow"}.get(mark, "green")
            lines.append(f"    {paint(mark, colour)} {f.tag}  {info.render(f.args)}")
            if verbose or info.fails or (tier.id, f.tag) in attention:
                lines += shown.lines(f.evidence, verbose, "        ")
    if passed:
        rows = _rows(list(dict.fromkeys(passed)), 100)
        lines[1:1] = [f"    {paint('✓', 'green')} {rows[0]}", *(f"      {r}" for r in rows[1:])]
    return lines


def _untested_lines(tier: TierResult, paint: _Painter) -> list[str]:
    """The probes of a tier that could not run, each reason once: a finding that says why
    (the same finding of several probes once, with the probes it stands for), else the
    reason with the probes it kept from running."""
    said: dict[tuple[str, str], list[str]] = {}
    shown: dict[tuple[str, str], Finding] = {}
    reasons: dict[str, list[str]] = {}
    for probe in tier.probes:
        if probe.ran:
            continue
        if probe.findings:
            for f in probe.findings:
                key = (f.tag, catalog.info(f.tag).render(f.args))
                shown.setdefault(key, f)
                said.setdefault(key, []).append(probe.probe)
        elif probe.reason:
            reasons.setdefault(probe.reason, []).append(probe.probe)
    lines = []
    for key, f in shown.items():
        info = catalog.info(f.tag)
        mark = MARK[info.level]
        colour = {"✗": "red", "!": "yellow"}.get(mark, "dim")
        lines.append(f"    {paint(mark, colour)} {f.tag}  {key[1]}  "
                     + paint(f"(not tested: {', '.join(said[key])})", "dim"))
    for reason, probes in reasons.items():
        lines.append("    " + paint(f"· not tested: {', '.join(probes)} — {reason}", "dim"))
    return lines


def _rows(tags: list[str], width: int) -> list[str]:
    """Tags joined by " · ", as many to a row as fit in ``width``."""
    rows = [tags[0]]
    for tag in tags[1:]:
        if len(rows[-1]) + 3 + len(tag) <= width:
            rows[-1] += f" · {tag}"
        else:
            rows.append(tag)
    return rows


def _passed(f: Finding) -> bool:
    """A check that passed: said by its tag alone in the short report."""
    return catalog.info(f.tag).level is Level.INFO


def _journey_lines(report: TriageReport) -> list[str]:
    """The message asked about (or the latest one) tier by tier; without a message asked
    about, the recent messages per tier by outcome."""
    lines: list[str] = []
    if report.journey:
        target = report.target
        first = next((s for s in report.journey if s.message_id), report.journey[0])
        about = target.message if target.asks_message else "the latest message"
        ident = f" {first.message_id}" if first.message_id and not target.message_id else ""
        lines += ["", f"Journey of {about}{ident}:"]
        width = max(len(s.tier) for s in report.journey)
        for step in report.journey:
            at = step.at or ""
            lines.append(f"  {step.tier:<{width}}  {at:<20}  {step.event.value:<11} "
                         f"{step.detail}")
    if report.journey_summary and not report.target.asks_message:
        lines.append("Recent messages: " + "; ".join(o.text() for o in report.journey_summary))
    return lines


def render(report: TriageReport, *, colour: bool = False, verbose: bool = False) -> str:
    """The answer first: the verdict, the message's journey, what needs attention; then
    the tiers, one line per finding; then the fix for the localized tier only."""
    paint = _Painter(colour)
    target = report.target.recipient or report.target.domain
    v = report.verdict
    out = [
        f"mailtrace triage — topology {report.topology.topology} — {target} — "
        f"{report.elapsed_ms / 1000:.1f} s",
        "flow: " + " | ".join(" → ".join(chain) for chain in report.flow.chains()),
        "",
    ]
    where = f" at {v.tier}" if v.tier else ""
    tag = f"  [{v.tag}]" if v.tag else ""
    need = len(v.attention)
    note = f" — {need} thing{'s' if need != 1 else ''} need{'' if need != 1 else 's'} " \
        "attention" if need else ""
    out.append(paint(f"VERDICT: {v.status.upper()}{where}{tag}{note}",
                     _VERDICT_COLOUR[v.status]))
    strict = report.strict_line()
    if strict is not None:
        out.append(paint(strict, "yellow"))
    out.append(f"  {v.summary}")
    for a in v.attention:
        out.append(f"  {paint('!', 'yellow')} {a.tier}: {a.tag}  {a.summary}")
    followed = message_followed(report)
    if followed is not None and not followed.followed:
        out.append(f"  {paint('!', 'yellow')} {followed.line()}")
    out += _journey_lines(report)
    out.append("")
    attention = {(a.tier, a.tag) for a in v.attention}
    shown = _Shown()
    for i, tier in enumerate(report.tiers):
        out += _tier_lines(i, tier, attention, paint, verbose, shown)
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
        out.append("Not tested: " + ", ".join(
            n["tier"] + (" (in part)" if n["status"] == "partly_tested" else "")
            for n in v.not_tested) + " (why: under each tier above)")
    if verbose:
        out.append("")
        out.append(f"Timings (ms from start; {report.queries_sent} DNS queries sent):")
        for tier_id, probe, start, elapsed in sorted(report.timings.rows, key=lambda r: r[2]):
            out.append(f"  {start:8.1f} +{elapsed:8.1f}  {tier_id}/{probe}")
    return "\n".join(out) + "\n"


def write(report: TriageReport, stream: TextIO = sys.stdout, *, verbose: bool = False) -> None:
    stream.write(render(report, colour=use_colour(stream), verbose=verbose))
