"""Run a real triage against the embedded lab (shared by the end-to-end tests).

A named scenario run with the defaults is run once per test process and shared
(:func:`scenario_run`): its verdict, its evidence and what the stand-ins were asked are
each checked by a different test. Tests only read what it returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import pytest

from mailtrace.clients.smtp import SmtpTimeouts
from mailtrace.lab import scenarios
from mailtrace.lab.http_server import Request
from mailtrace.lab.lab import Lab
from mailtrace.lab.proofpoint_api import ProofpointStandIn
from mailtrace.lab.scenarios import Scenario
from mailtrace.topology import load_topology
from mailtrace.usecases.demo import lab_options
from mailtrace.usecases.triage import TriageReport, make_target, run_triage

#: Short SMTP deadlines: a tarpit costs the test seconds, not the real default's ten.
SMTP_TIMEOUTS = SmtpTimeouts(connect=2.0, banner=2.0, command=2.0, tls=2.0)


@dataclass(frozen=True)
class LabRun:
    report: TriageReport
    #: What each API stand-in was asked: "pps", "essentials", "tap", and "graph:<tier>".
    requests: dict[str, list[Request]]
    environ: dict[str, str]  # the lab's throwaway credentials


async def run_in_lab(scenario: Scenario, *, timeout: float = 20.0, dns_delay: float = 0.0,
                     **options: Any) -> LabRun:
    async with Lab(scenario, dns_delay=dns_delay) as lab:
        topology = load_topology(lab.topology_path)
        target = make_target(topology, lab.recipient, None, sender=scenario.sender)
        run = dataclasses.replace(lab_options(lab, timeout), **{"smtp_timeouts": SMTP_TIMEOUTS,
                                                           **options})
        report = await run_triage(topology, target, run)
        requests = {s.api: list(s.server.requests) for s in lab.startables
                    if isinstance(s, ProofpointStandIn)}
        requests |= {f"graph:{tier}": list(g.requests) for tier, g in lab.graph.items()}
        return LabRun(report, requests, dict(lab.environ))


async def triage_in_lab(scenario: Scenario, **kwargs: Any) -> TriageReport:
    return (await run_in_lab(scenario, **kwargs)).report


@functools.cache
def scenario_run(name: str) -> LabRun:
    """The triage of a named scenario with the defaults, run once per test process."""
    return asyncio.run(run_in_lab(scenarios.get(name)))


def triage(name_or_scenario: str | Scenario, **kwargs: Any) -> TriageReport:
    if isinstance(name_or_scenario, str) and not kwargs:
        return scenario_run(name_or_scenario).report
    scenario = (scenarios.get(name_or_scenario) if isinstance(name_or_scenario, str)
                else name_or_scenario)
    return asyncio.run(triage_in_lab(scenario, **kwargs))


def scenario_param(name: str, *values: Any) -> Any:
    """A test parameter for scenario ``name``: the tests that read the same scenario's run
    go to the same test process (pytest-xdist's ``loadgroup``), so it is run once."""
    return pytest.param(name, *values, id=name,
                        marks=pytest.mark.xdist_group(f"scenario-{name}"))


def each_scenario() -> list[Any]:
    return [scenario_param(name) for name in scenarios.SCENARIOS]


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
