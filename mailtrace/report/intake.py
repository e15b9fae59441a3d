"""Render ``ndr`` and ``headers`` results: the JSON contracts and the text timeline.

JSON, the minimum (stable, additive only):
``{"schema": "mailtrace/ndr-1", "recipients": [{"address", "action", "status",
"diagnostic", "reporting_mta", "remote_mta", "tier", "tag"}]}`` (since added: per
recipient ``codes`` — every code the bounce gives, with its ``source`` — and
``status_inferred``, ``command``, ``text``, ``advice``; per document ``subject``,
``notes`` and, with ``--all``, ``messages`` and each recipient's ``message``) and
``{"schema": "mailtrace/headers-1", "hops": [{"from", "by", "at", "delay_s", "tier"}],
"bypassed_gateway": bool, "findings": [...]}``; ``tier`` is a tier id of the topology or
null. Findings have the triage report's finding shape.
"""

from __future__ import annotations

from typing import Any

from mailtrace.core import catalog
from mailtrace.core.findings import Finding
from mailtrace.intake.headers import HeaderAnalysis
from mailtrace.intake.ndr import NdrAnalysis, RecipientOutcome
from mailtrace.report.json import finding_json
from mailtrace.report.model import TriageReport
from mailtrace.report.remediation import MARK, finding_fix, remediation_json, values

NDR_SCHEMA = "mailtrace/ndr-1"
HEADERS_SCHEMA = "mailtrace/headers-1"
NDR_SOURCE = "evidence.ndr"
HEADERS_SOURCE = "evidence.headers"

def _finding(f: Finding, source: str, advice: str | None = None,
             filled: dict[str, Any] | None = None) -> dict[str, Any]:
    """A finding as JSON; with ``advice``, the remediation is that triage tag's (the same
    fix the triage gives for the same fault at the same tier), filled in as the text
    report fills it."""
    filled = filled if filled is not None else values(f)
    out = finding_json(f, source, localized=catalog.info(f.tag).fails, filled=filled)
    if advice is not None and out["remediation"] is not None:
        remediation = catalog.info(advice).remediation
        if remediation is not None:
            out["remediation"] = remediation_json(remediation, filled)
            out["advice"] = advice
    return out


def _ndr_known(o: RecipientOutcome) -> tuple[str | None, dict[str, str | None]]:
    """What a bounce's fix may name besides the finding's arguments: the recipient's
    domain, its address and the replying server."""
    domain = (o.recipient.address or "").rpartition("@")[2] or None
    return domain, {"recipient": o.finding.args.get("address"),
                    "host": o.finding.args.get("replier")}


def _ndr_values(o: RecipientOutcome) -> dict[str, Any]:
    domain, more = _ndr_known(o)
    return values(o.finding, domain, **more)


def _recipient_json(o: RecipientOutcome) -> dict[str, Any]:
    r = o.recipient
    return {
        "address": r.address,
        "action": r.action,
        "status": o.status,
        "diagnostic": r.diagnostic or None,
        "reporting_mta": r.reporting_mta,
        "remote_mta": r.remote_mta,
        "tier": o.tier,
        "tag": o.rule.tag,
        "reporting_tier": o.reporting_tier,
        "remote_tier": o.remote_tier,
        "status_inferred": o.inferred,
        "codes": [dict(c.as_json(), chosen=c is o.chosen) for c in o.codes],
        "command": r.command,
        "text": r.text or None,
        "advice": o.advice,
        "finding": _finding(o.finding, NDR_SOURCE, o.advice, _ndr_values(o)),
    }





# --- agreement between the bounce and a triage ------------------------------------------------

def agreement(analysis: NdrAnalysis, report: TriageReport) -> tuple[str, str]:
    """(agrees | upstream | disagrees | no-fault-found | inconclusive, one sentence)."""
    named = analysis.named
    tier = named.tier if named else None
    v = report.verdict
    if v.status == "inconclusive":
        at = f" at {v.tier}" if v.tier else ""
        why = f" [{v.tag}]" if v.tag else ""
        return "inconclusive", f"The triage is inconclusive{at}{why}: it can neither " \
                               f"confirm nor refute the bounce's {tier or 'tier'}."
    if v.status == "healthy":
        return "no-fault-found", (
            f"The triage finds no fault its probes can see; the bounce's cause at "
            f"{tier or 'an unnamed tier'} is outside what they test, or no longer there."
        )
    if v.tier == tier:
        return "agrees", f"The triage agrees: the fault is at {tier} ({v.tag})."
    if tier is not None and v.tier is not None and analysis.hosts.upstream(v.tier, tier):
        return "upstream", (
            f"The triage finds the cause upstream, at {v.tier} ({v.tag}); the bounce shows "
            f"where it surfaced, {tier}."
        )
    return "disagrees", (
        f"The triage localizes the fault at {v.tier} ({v.tag}), not at the bounce's "
        f"{tier or 'tier'}."
    )


# --- ndr --------------------------------------------------------------------------------------

def ndr_json(analysis: NdrAnalysis, triage: TriageReport | None = None) -> dict[str, Any]:
    from mailtrace.report.json import report_json

    topology = analysis.hosts.topology
    named = analysis.named
    data: dict[str, Any] = {
        "schema": NDR_SCHEMA,
        "topology": topology.topology if topology else None,
        "format": analysis.report.format,
        "reporting_mta": analysis.report.reporting_mta,
        "subject": analysis.report.subject,
        "original": (analysis.report.original.as_json()
                     if analysis.report.original is not None else None),
        "notes": analysis.report.notes,
        "recipients": [_recipient_json(o) for o in analysis.outcomes],
        "named": {"tier": named.tier, "tag": named.rule.tag, "address": named.recipient.address}
        if named else None,
    }
    if triage is not None:
        verdict, summary = agreement(analysis, triage)
        data["triage"] = {"agreement": verdict, "summary": summary,
                          "report": report_json(triage)}
    return data


#: One message of an mbox file read with ``--all``: its analysis, or why it has none.
MessageResult = tuple[NdrAnalysis | None, str | None]


def ndr_json_all(results: list[MessageResult], triage: TriageReport | None = None
                 ) -> dict[str, Any]:
    """Every message of an mbox file in one ``mailtrace/ndr-1`` document: the recipients of
    all of them (each with the ``message`` it is from, counted from 1), ``messages`` with
    each one's format and notes, or why it was not read."""
    analyses = [a for a, _ in results if a is not None]
    data = ndr_json(analyses[0], triage)
    data["recipients"] = [
        {**_recipient_json(o), "message": i}
        for i, (a, _) in enumerate(results, 1) if a is not None for o in a.outcomes
    ]
    data["messages"] = [
        {"message": i, "format": a.report.format if a else None,
         "reporting_mta": a.report.reporting_mta if a else None,
         "subject": a.report.subject if a else None,
         "recipients": len(a.outcomes) if a else 0,
         "notes": a.report.notes if a else [], "error": error}
        for i, (a, error) in enumerate(results, 1)
    ]
    named = next((a.named for a in analyses if a.named is not None), None)
    data["named"] = ({"tier": named.tier, "tag": named.rule.tag,
                      "address": named.recipient.address} if named else None)
    return data


def ndr_text_all(results: list[MessageResult], source: str,
                 triage: TriageReport | None = None) -> str:
    """Every message of an mbox file, one after the other."""
    out = []
    first = True
    for i, (a, error) in enumerate(results, 1):
        out.append(f"=== message {i} of {len(results)}")
        if a is None:
            out.append(f"not read: {error}\n")
            continue
        out.append(ndr_text(a, f"{source} #{i}", triage if first else None))
        first = False
    return "\n".join(out).rstrip("\n") + "\n"


def _line(f: Finding) -> str:
    info = catalog.info(f.tag)
    return f"{MARK[info.level]} {f.tag}  {info.render(f.args)}"


def ndr_text(analysis: NdrAnalysis, source: str, triage: TriageReport | None = None) -> str:
    topology = analysis.hosts.topology
    report = analysis.report
    out = [f"mailtrace ndr — {source} — {report.format} report"
           + (f" from {report.reporting_mta}" if report.reporting_mta else "")
           + (f" — topology {topology.topology}" if topology else ""), ""]

    def where(host: str | None, tier: str | None) -> str:
        if host is None:
            return "(not named)"
        if topology is None:
            return host
        return f"{host} ({tier or 'outside the topology'})"

    for o in analysis.outcomes:
        r = o.recipient
        inferred = " (inferred from the text)" if o.inferred else ""
        out.append(f"{r.address or '(no address)'}  {r.action or '?'}  {o.status or '-'}"
                   + inferred)
        if r.diagnostic:
            out.append(f"    diagnostic: {r.diagnostic}")
        if r.text:
            out.append(f"    text: {r.text}")
        if len(o.codes) > 1:
            out.append("    codes: " + "; ".join(
                f"{c.code} ({c.source}{' ' + c.reply if c.reply else ''})"
                + (" <- explains" if c is o.chosen else "") for c in o.codes))
        out.append(f"    reported by {where(r.reporting_mta, o.reporting_tier)}; "
                   f"replying server {where(r.remote_mta, o.remote_tier)}")
        out.append(f"  {_line(o.finding)}")
        if topology is not None:
            out.append(f"    tier: {o.tier or 'none of this topology'}")
        domain, more = _ndr_known(o)
        out += finding_fix(o.finding, domain, indent="    ", advice=o.advice, **more)
        out.append("")
    out += [f"note: {n}" for n in report.notes]
    if report.notes:
        out.append("")
    named = analysis.named
    if named is not None:
        out.append(f"The bounce names {named.tier} [{named.rule.tag}].")
    elif topology is None:
        out.append("Pass --topology FILE to name the tier each failure belongs to.")
    if triage is not None:
        from mailtrace.report import text as text_report

        out += ["", text_report.render(triage).rstrip("\n"), ""]
        verdict, summary = agreement(analysis, triage)
        out.append(f"NDR vs triage: {verdict.upper()} — {summary}")
    return "\n".join(out).rstrip("\n") + "\n"


# --- headers ------------------------------------------------------------------------------------

def _at(analysis: HeaderAnalysis, i: int) -> str | None:
    at = analysis.hops[i].at
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


def headers_json(analysis: HeaderAnalysis, topology_name: str | None) -> dict[str, Any]:
    return {
        "schema": HEADERS_SCHEMA,
        "topology": topology_name,
        "hops": [
            {
                "index": hop.index,
                "from": hop.from_host,
                "from_rdns": hop.from_rdns,
                "from_ip": hop.from_ip,
                "by": hop.by_host,
                "with": hop.protocol,
                "id": hop.queue_id,
                "at": _at(analysis, i),
                "delay_s": analysis.delays[i],
                "tier": analysis.tiers[i],
                "problem": hop.problem,
            }
            for i, hop in enumerate(analysis.hops)
        ],
        "bypassed_gateway": analysis.bypassed_gateway,
        "authentication_results": [
            {"writer": a.writer, "tier": a.tier, "trusted": a.trusted, "why": a.why,
             "results": a.results, "details": a.details}
            for a in analysis.auth
        ],
        "exchange_online": analysis.exchange_online,
        "proofpoint": analysis.proofpoint,
        "findings": [_finding(f, HEADERS_SOURCE) for f in analysis.findings],
    }


def headers_text(analysis: HeaderAnalysis, source: str, topology_name: str | None) -> str:
    out = [f"mailtrace headers — {source}"
           + (f" — topology {topology_name}" if topology_name else ""), ""]
    if analysis.hops:
        out.append(f"{'#':>3}  {'time (UTC)':<20} {'delay':>9}  {'tier':<18} hop")
    for i, hop in enumerate(analysis.hops):
        delay = analysis.delays[i]
        shown = "" if delay is None else f"{delay:+.0f} s"
        client = hop.from_rdns or hop.from_host or "?"
        if hop.from_ip:
            client += f" [{hop.from_ip}]"
        tier = analysis.tiers[i] or ("-" if topology_name else "")
        at = _at(analysis, i) or "(no date)"
        out.append(f"{hop.index:>3}  {at:<20} {shown:>9}  {tier:<18} "
                   f"{client} → {hop.by_host or '?'}" + (f"  id {hop.queue_id}"
                                                          if hop.queue_id else ""))
    if analysis.hops:
        out.append("")
    if topology_name is not None:
        out.append("gateway bypassed: " + ("YES" if analysis.bypassed_gateway else "no"))
    for a in analysis.auth:
        results = " ".join(f"{k}={v}" for k, v in a.results.items()) or "(no results)"
        trust = "trusted" if a.trusted else "IGNORED"
        out.append(f"Authentication-Results by {a.writer or '(no authserv-id)'}: {results}"
                   f"  [{trust}: {a.why}]")
    out.append("")
    for f in analysis.findings:
        out.append(_line(f))
        out += finding_fix(f, indent="    ")
    return "\n".join(out).rstrip("\n") + "\n"


def exit_code(findings: list[Finding]) -> int:
    return 1 if any(catalog.info(f.tag).fails for f in findings) else 0



