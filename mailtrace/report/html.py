"""The HTML report: one self-contained file to attach to a ticket or forward to a
colleague — no script, no style sheet or image fetched (a Content-Security-Policy forbids
every fetch, so a browser proves it), readable when printed.

In reading order: the verdict in its colour with its one-line answer and what else needs
attention; the topology as a drawing (the flow graph's own SVG) with each tier in its
status's colour and the verdict's tier marked; the message's journey when a per-message
source told it; the fix for the localized tier with the values filled in (the one fix
renderer, :mod:`mailtrace.report.remediation`); every tier's findings, their evidence
folded (``<details>``) except the localized tier's; and how the run was made (UTC time,
version, topology file and digest, this machine and its resolvers).
"""

from __future__ import annotations

from html import escape

from mailtrace.core import catalog
from mailtrace.core.findings import Finding, Status, TierResult
from mailtrace.core.journey import STOPS, JourneyStep
from mailtrace.probes.base import OBSERVER_TIER
from mailtrace.report.message import message_followed
from mailtrace.report.model import TriageReport
from mailtrace.report.remediation import MARK, fill, localized, prompt, values

#: Nothing is fetched: styles are inline, the drawing is inline SVG, no script at all.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_STYLE = """
:root{--pass:#1a7f37;--warn:#9a6700;--fail:#cf222e;--muted:#6e7781;--line:#d0d7de}
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;
 max-width:72em;padding:1.5em;color:#1f2328;line-height:1.4}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .5em}
h3{font-size:1em;margin:1.2em 0 .3em}.sub{color:var(--muted);margin:0 0 1em}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
pre{background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:.6em;
 overflow-x:auto;font-size:.85em;margin:.3em 0;white-space:pre-wrap;word-break:break-word}
.verdict{border-radius:8px;padding:.8em 1.1em;border:2px solid;margin:1em 0}
.verdict .status{font-size:1.3em;font-weight:700;letter-spacing:.02em}
.verdict p{margin:.4em 0 0;font-size:1.05em}
.verdict.healthy{background:#dafbe1;border-color:var(--pass)}
.verdict.degraded{background:#fff8c5;border-color:var(--warn)}
.verdict.fault{background:#ffebe9;border-color:var(--fail)}
.verdict.inconclusive{background:#f6f8fa;border-color:var(--muted)}
.attention{margin:.6em 0 0;padding-left:1.2em}.attention li{margin:.15em 0}
.flow svg{max-width:100%;height:auto}
.muted{color:var(--muted)}
.st.pass{color:var(--pass)}.st.warn{color:var(--warn)}.st.fail{color:var(--fail)}
.st.not_tested,.st.skipped{color:var(--muted)}
.badge{font-weight:700;font-size:.8em;padding:.1em .45em;border-radius:1em;border:1px solid;
 vertical-align:.1em}
section.tier{border-top:1px solid var(--line)}
section.tier.fail h3{color:var(--fail)}
ul.findings{list-style:none;padding-left:0;margin:.3em 0}
ul.findings li{margin:.35em 0}.mark{display:inline-block;width:1.2em;font-weight:700}
li.critical .mark,li.error .mark{color:var(--fail)}li.warning .mark{color:var(--warn)}
li.notice .mark,li.info .mark{color:var(--pass)}
details{margin:.2em 0 .2em 1.2em}summary{cursor:pointer;color:var(--muted);font-size:.9em}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border-bottom:1px solid var(--line);padding:.3em .5em;text-align:left;vertical-align:top}
tr.stop td{background:#ffebe9}
.fix{background:#f6f8fa;border-left:4px solid var(--fail);padding:.5em 1em;border-radius:4px;
 margin-top:1.5em}
td.when{white-space:nowrap}
dl.run{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;font-size:.9em}
dl.run dt{color:var(--muted)}dl.run dd{margin:0;word-break:break-all}
"""

_VERDICT_WORD = {"healthy": "HEALTHY", "degraded": "DEGRADED", "fault": "FAULT",
                 "inconclusive": "INCONCLUSIVE"}


def render(report: TriageReport) -> str:
    v = report.verdict
    target = report.target.recipient or report.target.domain
    title = f"mailtrace: {_VERDICT_WORD.get(v.status, v.status)} — {target}"
    parts = [
        "<!doctype html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>mailtrace triage of {escape(target)}</h1>",
        f"<p class='sub'>topology <strong>{escape(report.topology.topology)}</strong>"
        + (f" · {escape(report.run.started_at)}" if report.run.started_at else "")
        + f" · {report.elapsed_ms / 1000:.1f} s</p>",
        _verdict(report),
        _flow(report),
        _journey(report.journey),
        _fix(report),
        "<h2>Tiers, in flow order</h2>",
        *(_tier(i, tier, report) for i, tier in enumerate(report.tiers)),
        _run(report),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _verdict(report: TriageReport) -> str:
    v = report.verdict
    head = f"<span class='status'>{escape(_VERDICT_WORD.get(v.status, v.status))}</span>"
    if v.tier:
        head += f" at <strong>{escape(v.tier)}</strong>"
    if v.tag:
        head += f" <code>{escape(v.tag)}</code>"
    out = [f"<section class='verdict {escape(v.status)}' id='verdict'>", f"<div>{head}</div>"]
    strict = report.strict_line()
    if strict is not None:
        out.append(f"<p class='strict'><strong>{escape(strict)}</strong></p>")
    out.append(f"<p class='answer'>{escape(v.summary)}</p>")
    if v.attention:
        out.append("<p><strong>Also needs attention:</strong></p><ul class='attention'>")
        out += [f"<li><strong>{escape(a.tier)}</strong> <code>{escape(a.tag)}</code> "
                f"{escape(a.summary)}</li>" for a in v.attention]
        out.append("</ul>")
    followed = message_followed(report)
    if followed is not None and not followed.followed:
        out.append(f"<p class='message-not-followed'>{escape(followed.line())}</p>")
    if v.not_tested:
        out.append("<p class='muted'>Not tested: " + "; ".join(
            f"{escape(n['tier'])} ({escape(n['reason'])})" for n in v.not_tested) + "</p>")
    out.append("</section>")
    return "\n".join(out)


def _flow(report: TriageReport) -> str:
    status = {t.id: t.status.value for t in report.tiers if t.id != OBSERVER_TIER}
    marked = report.verdict.tier if report.verdict.tier in status else None
    observer = next((t for t in report.tiers if t.id == OBSERVER_TIER), None)
    note = ""
    if observer is not None:
        state = observer.status.value
        note = (f"<p class='muted'>Observer (this machine: its resolvers, outbound port 25): "
                f"<span class='st {state}'>{escape(state.replace('_', ' ').upper())}</span>"
                + (" — the verdict is about it" if report.verdict.tier == OBSERVER_TIER
                   else "") + "</p>")
    svg = report.flow.to_svg(status, marked)
    return (f"<section class='flow' id='flow'><h2>Mail flow</h2>{note}"
            f"<figure role='img' aria-label='the topology, each tier in its status colour'>"
            f"{svg}</figure></section>")


def _journey(journey: list[JourneyStep]) -> str:
    if not journey:
        return ""
    rows = []
    for step in journey:
        stop = " class='stop'" if step.event in STOPS else ""
        rows.append(
            f"<tr{stop}><td>{escape(step.tier)}</td><td class='when'>{escape(step.at or '')}</td>"
            f"<td><strong>{escape(step.event.value)}</strong></td><td>{escape(step.detail)}"
            + (f"<br><span class='muted'>{escape(step.sender or '')} → "
               f"{escape(step.recipient or '')}"
               + (f" · {escape(step.subject)}" if step.subject else "") + "</span>"
               if step.sender or step.recipient else "")
            + f"</td><td>{escape(step.source)}</td>"
            f"<td><code>{escape(step.message_id or '')}</code></td></tr>")
    return ("<section class='journey' id='journey'><h2>The message's journey</h2><table>"
            "<tr><th>tier</th><th>when (UTC)</th><th>what happened</th><th>detail</th>"
            "<th>source</th><th>message id</th></tr>" + "".join(rows) + "</table></section>")


def _fix(report: TriageReport) -> str:
    v = report.verdict
    if v.tier is None:
        return ""
    seen: set[str] = set()
    blocks = []
    for f in localized(report.tiers, v):
        info = catalog.info(f.tag)
        rem = info.remediation
        if rem is None or f.tag in seen:
            continue
        seen.add(f.tag)
        filled = values(f, report.target.domain, recipient=report.target.recipient)
        commands = "\n".join(f"{prompt(c)} {fill(c, filled)}" for c in rem.commands)
        docs = " · ".join(f"<a href='{escape(d)}'>{escape(d)}</a>" for d in rem.docs)
        blocks.append(
            f"<h3><code>{escape(f.tag)}</code></h3><p>{escape(' '.join(rem.summary.split()))}</p>"
            + (f"<pre>{escape(commands)}</pre>" if commands else "")
            + (f"<p class='muted'>{docs}" + (f" (checked {escape(rem.checked)})"
                                              if rem.checked else "") + "</p>"
               if docs else ""))
    if not blocks:
        return ""
    return (f"<section class='fix' id='fix'><h2>Fix for {escape(v.tier)}</h2>"
            "<p class='muted'>For this tier only: the others are not the cause.</p>"
            + "".join(blocks) + "</section>")


def _tier(index: int, tier: TierResult, report: TriageReport) -> str:
    status = tier.status.value
    label = "this machine" if tier.id == OBSERVER_TIER else tier.kind
    localized_here = tier.id == report.verdict.tier
    out = [f"<section class='tier {escape(status)}' id='tier-{escape(tier.id)}'>",
           f"<h3>[{index}] {escape(tier.id)} <span class='muted'>({escape(label)})</span> "
           f"<span class='st badge {escape(status)}'>"
           f"{escape(status.replace('_', ' ').upper())}</span></h3>"]
    if tier.reason:
        out.append(f"<p class='muted'>{escape(tier.reason)}</p>")
    notes = []
    for probe in tier.probes:
        if probe.status in (Status.NOT_TESTED, Status.SKIPPED) and probe.reason:
            notes.append(f"<li><code>{escape(probe.probe)}</code> {escape(probe.status.value)}"
                         f": {escape(probe.reason)}</li>")
    if notes:
        out.append("<ul class='muted'>" + "".join(notes) + "</ul>")
    items = [_finding(f, probe.reported_by, localized_here)
             for probe in tier.probes for f in probe.findings]
    if items:
        out.append("<ul class='findings'>" + "".join(items) + "</ul>")
    out.append("</section>")
    return "\n".join(out)


def _finding(f: Finding, reported_by: str | None, open_evidence: bool) -> str:
    info = catalog.info(f.tag)
    level = info.level.value
    by = (f" <span class='muted'>(reported by {escape(reported_by)})</span>"
          if reported_by else "")
    item = (f"<li class='finding {escape(level)}'><span class='mark'>{MARK[info.level]}</span>"
            f"<code>{escape(f.tag)}</code> {escape(info.render(f.args))}{by}")
    lines = [line for e in f.evidence for line in e.lines(True)]
    if lines:
        shown = " open" if open_evidence and info.fails else ""
        item += (f"<details{shown}><summary>evidence ({len(f.evidence)})</summary>"
                 f"<pre>{escape(chr(10).join(lines))}</pre></details>")
    return item + "</li>"


def _run(report: TriageReport) -> str:
    run = report.run
    rows = [
        ("run at (UTC)", run.started_at or "unknown"),
        ("mailtrace", run.version or "unknown"),
        ("topology", report.topology.topology),
        ("topology file", run.topology_file or "(not from a file)"),
        ("its SHA-256", run.topology_sha256 or "-"),
        ("this machine", run.host or "unknown"),
        ("resolvers asked", ", ".join(run.resolvers) or "-"),
        ("target", report.target.recipient or report.target.domain),
        ("elapsed", f"{report.elapsed_ms:.0f} ms, {report.queries_sent} DNS queries sent"),
    ]
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    return f"<section class='run' id='run'><h2>How this report was made</h2><dl class='run'>" \
           f"{body}</dl></section>"
