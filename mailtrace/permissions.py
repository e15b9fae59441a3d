"""``mailtrace permissions --topology FILE``: the least set of API permissions the probes
planned for a topology need, per tier, and who needs each.

Each probe declares its permissions as data (``Probe.permissions``); this command plans
the probes exactly as a triage would (same tiers, same ``applies``) and prints the union,
so an admin grants what is used and nothing more. This module is imported by the CLI
at start-up: it imports nothing heavy until the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

# What no permission grants but a probe still needs, by probe id.
PREREQUISITES = {
    "exo.trace": "Graph message trace also needs, once per tenant, the service principal of "
                 "Microsoft's app 8bd644d1-64a1-4d4b-ae52-2e0cbf64e373: "
                 "New-MgServicePrincipal -AppId 8bd644d1-64a1-4d4b-ae52-2e0cbf64e373",
}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("permissions",
                       help="print the least API permissions the topology's probes need")
    p.add_argument("--topology", required=True, metavar="FILE")
    p.add_argument("--probe", action="append", default=[], metavar="ID",
                   help="only these probes (repeatable; default: every probe that applies)")
    p.add_argument("--format", choices=["text", "json"], default="text")


def needed(topology: Any, only: list[str]) -> list[dict[str, Any]]:
    """Per tier that needs any: its API, the permissions and the probes needing each."""
    from mailtrace.engine.runner import build_plan
    from mailtrace.topology import FlowGraph
    from mailtrace.topology.model import ExchangeOnlineTier
    from probes import ALL

    unknown = set(only) - {p.id for p in ALL}
    if unknown:
        raise ValueError(f"unknown probe {', '.join(sorted(unknown))}")
    plan = build_plan(topology, FlowGraph(topology), ALL)
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


def render(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No planned probe needs an API permission for this topology.\n"
    lines = []
    for row in rows:
        lines.append(f"{row['tier']}: {row.get('api', 'API')} — {row.get('kind', '')} "
                     "permissions".replace("  ", " "))
        width = max(len(p) for p in row["permissions"])
        for permission, probes in row["permissions"].items():
            lines.append(f"  {permission:<{width}}  {', '.join(probes)}")
        lines.extend(f"  prerequisite: {note}" for note in row["prerequisites"])
    return "\n".join(lines) + "\n"


def cmd_permissions(args: argparse.Namespace) -> int:
    import json

    from mailtrace.cli import UsageError, _load_topology, write

    topology = _load_topology(args.topology)
    try:
        rows = needed(topology, args.probe)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.format == "json":
        write(json.dumps({"schema": "mailtrace/permissions-1", "topology": topology.topology,
                          "tiers": rows}, indent=2) + "\n")
    else:
        write(render(rows))
    return 0
