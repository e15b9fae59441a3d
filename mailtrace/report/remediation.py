"""The one remediation renderer: which findings a fix is shown for, and a fix as lines,
with the finding's own values put into the commands — safely — for every report (triage,
ndr, headers, verify, precheck)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from mailtrace.core import catalog
from mailtrace.core.catalog import Remediation
from mailtrace.core.findings import Finding, Level, Scope, TierResult, Verdict
from mailtrace.probes.base import OBSERVER_TIER

#: The mark of a finding by level, in every text report.
MARK = {Level.CRITICAL: "✗", Level.ERROR: "✗", Level.WARNING: "!", Level.NOTICE: "·",
        Level.INFO: "✓"}

# Only plain host names and addresses go into a copy-paste command: a name from DNS or a
# bounce can hold any byte (| & ; `), and a command an admin pastes must not run what a
# zone or a sender chose to publish.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9._:@+-]+")
_SHELL = ("dig", "kdig", "mailtrace", "openssl")


def fill(command: str, values: Mapping[str, Any]) -> str:
    """Put ``<name>`` placeholders' values into a command, plain names only."""
    for key, value in values.items():
        if isinstance(value, str) and _SAFE_VALUE.fullmatch(value):
            command = command.replace(f"<{key}>", value)
    return command


def prompt(command: str) -> str:
    """``$`` for a shell command, ``PS>`` for PowerShell (everything else)."""
    return "$" if command.startswith(_SHELL) else "PS>"


def values(finding: Finding, domain: str | None = None, **more: str | None) -> dict[str, Any]:
    """What a fix may name: the finding's arguments, the domain and what else is known
    (the recipient, say); the finding's own arguments win."""
    known = {k: v for k, v in {"domain": domain, **more}.items() if v is not None}
    return {**known, **finding.args}


def fix_lines(rem: Remediation, filled: Mapping[str, Any], indent: str = "  ",
              paint: Callable[[str, str], str] | None = None) -> list[str]:
    """The fix: its summary, the commands with their prompts and values, the docs, and
    when they were last checked."""
    def shown(p: str) -> str:
        return paint(p, "cyan") if paint is not None and p == "PS>" else p

    lines = [f"{indent}fix: {' '.join(rem.summary.split())}"]
    lines += [f"{indent}  {shown(prompt(c))} {fill(c, filled)}" for c in rem.commands]
    checked = f" (commands and links checked {rem.checked})" if rem.checked else ""
    if rem.docs:
        lines.append(f"{indent}  docs: {' · '.join(rem.docs)}{checked}")
    elif checked:
        lines.append(f"{indent} {checked}")
    return lines


def remediation_json(rem: Remediation, filled: Mapping[str, Any]) -> dict[str, Any]:
    """A fix as JSON: ``commands`` with the finding's values put in, as the text report
    shows them, and ``templates``, the commands as the catalog writes them."""
    return {**rem.as_json(), "commands": [fill(c, filled) for c in rem.commands],
            "templates": list(rem.commands)}


def finding_fix(f: Finding, domain: str | None = None, indent: str = "  ",
                advice: str | None = None, **more: str | None) -> list[str]:
    """The fix of a failing finding, or nothing (warnings and notes get none); with
    ``advice``, the fix of that tag instead (the triage's fix for the same fault)."""
    info = catalog.info(f.tag)
    if info.remediation is None or not info.fails:
        return []
    rem = (catalog.info(advice).remediation if advice else None) or info.remediation
    return fix_lines(rem, values(f, domain, **more), indent)


def localized(tiers: list[TierResult], verdict: Verdict) -> list[Finding]:
    """The findings the fix is shown for: the failing ones of the verdict's tier and the
    one that decided it (a warning, for a degraded flow), or, for the observer, every
    failing observer finding wherever a probe met it."""
    found = []
    for tier in tiers:
        for f in tier.findings:
            info = catalog.info(f.tag)
            if verdict.tier is None:
                continue
            if f.tag == verdict.tag and tier.id == verdict.tier and not info.fails:
                found.append(f)
                continue
            if not info.fails:
                continue
            if verdict.tier == OBSERVER_TIER:
                if info.scope is Scope.OBSERVER:
                    found.append(f)
            elif tier.id == verdict.tier:
                found.append(f)
    return found
