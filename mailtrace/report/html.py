"""A self-contained HTML report (no scripts, no external assets): the text report's
structure, for attaching to a ticket."""

from __future__ import annotations

from html import escape

from mailtrace.core import catalog
from mailtrace.report.model import TriageReport
from mailtrace.report.remediation import localized

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}
.pass{color:#1a7f37}.warn{color:#9a6700}.fail{color:#cf222e}.not_tested,.skipped{color:#6e7781}
pre{background:#f6f8fa;padding:.5em;overflow-x:auto}h2{margin-bottom:.2em}
.verdict{border:2px solid #444;padding:.5em 1em}"""


def render(report: TriageReport) -> str:
    v = report.verdict
    target = escape(report.target.recipient or report.target.domain)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>mailtrace — {target}</title><style>{_STYLE}</style></head><body>",
        f"<h1>mailtrace triage — {escape(report.topology.topology)} — {target}</h1>",
        f"<div class='verdict'><strong>{escape(v.status.upper())}</strong>"
        + (f" at <strong>{escape(v.tier)}</strong>" if v.tier else "")
        + (f" <code>{escape(v.tag)}</code>" if v.tag else "")
        + f"<p>{escape(v.summary)}</p></div>",
    ]
    fixed = {id(f) for f in localized(report.tiers, v)}
    for i, tier in enumerate(report.tiers):
        status = tier.status.value
        parts.append(f"<h2>{i}. {escape(tier.id)} <small>({escape(tier.kind)})</small> "
                     f"<span class='{status}'>{escape(status)}</span></h2>")
        if tier.reason:
            parts.append(f"<p class='not_tested'>{escape(tier.reason)}</p>")
        parts.append("<ul>")
        for probe in tier.probes:
            for f in probe.findings:
                info = catalog.info(f.tag)
                evidence = "\n".join(line for e in f.evidence for line in e.lines(True))
                parts.append(f"<li><code>{escape(f.tag)}</code> ({escape(info.level.value)}) "
                             f"{escape(info.render(f.args))}"
                             + (f"<pre>{escape(evidence)}</pre>" if evidence else "")
                             + "</li>")
                rem = info.remediation
                if id(f) in fixed and rem is not None:
                    cmds = "\n".join(rem.commands)
                    docs = " ".join(f"<a href='{escape(d)}'>{escape(d)}</a>" for d in rem.docs)
                    parts.append(f"<p><strong>Fix:</strong> {escape(rem.summary)}</p>"
                                 f"<pre>{escape(cmds)}</pre><p>{docs} "
                                 f"(checked {escape(rem.checked or '?')})</p>")
        parts.append("</ul>")
    parts.append(f"<p>elapsed {report.elapsed_ms:.0f} ms</p></body></html>")
    return "\n".join(parts) + "\n"
