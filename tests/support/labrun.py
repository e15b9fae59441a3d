"""Run a real triage against the embedded lab (shared by the end-to-end tests)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from mailtrace.clients.smtp import SmtpTimeouts
from mailtrace.lab import scenarios
from mailtrace.lab.lab import Lab
from mailtrace.lab.scenarios import Scenario
from mailtrace.topology import load_topology
from mailtrace.usecases.demo import lab_options
from mailtrace.usecases.triage import TriageReport, make_target, run_triage

#: Short SMTP deadlines: a tarpit costs the test seconds, not the real default's ten.
SMTP_TIMEOUTS = SmtpTimeouts(connect=2.0, banner=2.0, command=2.0, tls=2.0)


async def triage_in_lab(scenario: Scenario, *, timeout: float = 20.0,
                        dns_delay: float = 0.0, **options: Any) -> TriageReport:
    async with Lab(scenario, dns_delay=dns_delay) as lab:
        topology = load_topology(lab.topology_path)
        target = make_target(topology, lab.recipient, None, sender=scenario.sender)
        run = dataclasses.replace(lab_options(lab, timeout), **{"smtp_timeouts": SMTP_TIMEOUTS,
                                                           **options})
        return await run_triage(topology, target, run)


def triage(name_or_scenario: str | Scenario, **kwargs: Any) -> TriageReport:
    scenario = (scenarios.get(name_or_scenario) if isinstance(name_or_scenario, str)
                else name_or_scenario)
    return asyncio.run(triage_in_lab(scenario, **kwargs))


def variant(base: str, **changes: Any) -> Scenario:
    """A scenario built from a named one (extra faults or zone edits for one test)."""
    return dataclasses.replace(scenarios.get(base), name=f"{base}-variant", **changes)


def verdict(report: TriageReport) -> tuple[str, str | None, str | None]:
    v = report.verdict
    return (v.status, v.tier, v.tag)


def tags(report: TriageReport, tier: str) -> list[str]:
    return [f.tag for t in report.tiers if t.id == tier for f in t.findings]


def finding(report: TriageReport, tag: str) -> Any:
    return next(f for t in report.tiers for f in t.findings if f.tag == tag)
