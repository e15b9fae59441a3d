"""``mailtrace permissions --topology FILE``: the least set of API permissions the probes
planned for a topology need, per tier, and who needs each.

Each probe declares its permissions as data (``Probe.permissions``); this command plans
the probes exactly as a triage would (same tiers, same ``applies``) and prints the union,
so an admin grants what is used and nothing more.
"""

from __future__ import annotations

from typing import Any

from mailtrace.engine.runner import build_plan
from mailtrace.probes.registry import TRIAGE
from mailtrace.topology.flow import FlowGraph
from mailtrace.topology.model import ExchangeOnlineTier, Topology

# What no permission grants but a probe still needs, by probe id.
PREREQUISITES = {
    "exo.trace": "Graph message trace also needs, once per tenant, the service principal of "
                 "Microsoft's app 8bd644d1-64a1-4d4b-ae52-2e0cbf64e373: "
                 "New-MgServicePrincipal -AppId 8bd644d1-64a1-4d4b-ae52-2e0cbf64e373",
}


def needed(topology: Topology, only: list[str]) -> list[dict[str, Any]]:
    """Per tier that needs any: its API, the permissions and the probes needing each."""
    unknown = set(only) - {p.id for p in TRIAGE}
    if unknown:
        raise ValueError(f"unknown probe {', '.join(sorted(unknown))}")
    plan = build_plan(topology, FlowGraph(topology), TRIAGE)
    tiers: dict[str, dict[str, Any]] = {}
    for pp in plan.probes:
        if not pp.probe.permissions or (only and pp.probe.id not in only):
            continue
        tier = topology.tiers[pp.tier]
        entry = tiers.setdefault(pp.tier, {"tier": pp.tier, "permissions": {},
                                           "prerequisites": []})
        if isinstance(tier, ExchangeOnlineTier) and tier.graph is not None:
            entry["api"] = f"Microsoft Graph {tier.graph.url}"
            entry["kind"] = "delegated" if tier.graph.auth == "device-code" else "application"
        for permission in pp.probe.permissions:
            entry["permissions"].setdefault(permission, []).append(pp.probe.id)
        note = PREREQUISITES.get(pp.probe.id)
        if note and note not in entry["prerequisites"]:
            entry["prerequisites"].append(note)
    return [{**e, "permissions": dict(sorted(e["permissions"].items()))}
            for e in tiers.values()]
