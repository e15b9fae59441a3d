"""``mailtrace demo``: start the lab of a scenario and run a real triage against it; and
verify or precheck against the lab's worlds for them."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from mailtrace.core.network import Endpoint
from mailtrace.engine.settings import Options
from mailtrace.lab.lab import Lab
from mailtrace.lab.scenarios import Scenario
from mailtrace.report.model import TriageReport
from mailtrace.topology import load_topology
from mailtrace.usecases.triage import make_target, run_triage

if TYPE_CHECKING:  # verify and precheck are imported when asked for: a demo triage needs neither
    from mailtrace.lab.auth_worlds import PrecheckScenario, VerifyScenario
    from mailtrace.report.precheck import PrecheckReport
    from mailtrace.report.verify import VerifyReport
    from mailtrace.topology.change import ChangeFile
    from mailtrace.topology.model import Topology


def lab_options(lab: Lab, timeout: float = 30.0) -> Options:
    """Triage options that reach only this lab: its resolver, its connection rules, its
    CA, its root's DNSSEC key and the throwaway credentials of its stand-ins (but those the
    scenario withholds)."""
    environ = {k: v for k, v in lab.environ.items() if k not in lab.scenario.withheld}
    return Options(lab.resolver_endpoints, lab.connect_to, timeout, environ,
                   ca_file=lab.ca_file, trust_anchor=lab.trust_anchor)


async def demo(scenario: Scenario, timeout: float, since: timedelta | None = None, *,
               sender: str | None = None, message_id: str | None = None,
               subject: str | None = None) -> TriageReport:
    """The scenario's triage; it follows the scenario's sender's message unless other
    keys are given."""
    async with Lab(scenario) as lab:
        path = lab.topology_path
        topology = load_topology(path)
        if not (sender or message_id or subject):
            sender = scenario.sender
        target = make_target(topology, lab.recipient, None, since, sender=sender,
                             message_id=message_id, subject=subject)
        return await run_triage(topology, target, lab_options(lab, timeout), source=path)


def world_topology(vs: VerifyScenario, topology: Topology) -> tuple[Topology, str]:
    """The topology as a verify world declares it, and the domain it verifies (a domain
    the topology does not list yet is added: a subdomain sharing the flow)."""
    from mailtrace.probes.auth import checks

    domain = vs.domain or topology.domains[0]
    if domain not in topology.domains:
        topology = topology.model_copy(update={"domains": [*topology.domains, domain]})
    if not vs.expect:
        return topology, domain
    tier_id, expect = checks.dns_expectation(topology)
    for section, values in vs.expect.items():
        declared = getattr(expect, section)
        expect = expect.model_copy(update={section: declared.model_copy(update=dict(values))})
    tier = topology.tiers[tier_id].model_copy(update={"expect": expect})
    return topology.model_copy(update={"tiers": {**topology.tiers, tier_id: tier}}), domain


async def verify_in_lab(vs: VerifyScenario, *, timeout: float = 20.0, watch: bool = False,
                        interval: float = 1.0, dns_delay: float = 0.0) -> VerifyReport:
    """verify against the lab: its resolver, plus the caching one when the scenario has it."""
    from mailtrace.lab.cache import CachingResolver
    from mailtrace.usecases.verify import verify

    async with Lab(vs.scenario, dns_delay=dns_delay) as lab:
        options = lab_options(lab, timeout)
        cache = None
        if vs.cached:
            forwarders = {name.to_text(): endpoints
                          for name, endpoints in lab.dns_resolver.forwarders.items()}
            cache = CachingResolver(forwarders, vs.cached, host=lab.resolver[0])
            await cache.start()
            options = dataclasses.replace(options, resolvers=[
                *options.resolvers, Endpoint(*cache.address)])
        try:
            topology, domain = world_topology(vs, load_topology(lab.topology_path))
            return await verify(topology, domain, options, watch=watch, interval=interval)
        finally:
            if cache is not None:
                await cache.stop()


async def precheck_in_lab(ps: PrecheckScenario, *, timeout: float = 20.0,
                          change: ChangeFile | None = None) -> PrecheckReport:
    from mailtrace.topology.change import parse_change
    from mailtrace.usecases.precheck import precheck

    async with Lab(ps.scenario) as lab:
        topology = load_topology(lab.topology_path)
        change = change or parse_change(ps.change, ps.name)
        started = time.monotonic()
        report = await precheck(topology, change, topology.domains[0],
                                lab_options(lab, timeout))
        report.elapsed_ms = (time.monotonic() - started) * 1000
        return report
