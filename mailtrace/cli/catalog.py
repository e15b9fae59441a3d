"""The commands that read the catalog and the topology without touching the network:
``probes``, ``schema``, ``graph`` and ``permissions``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mailtrace.cli import options as opt
from mailtrace.cli.options import UsageError


def add_parsers(sub: Any) -> dict[str, Any]:
    g = sub.add_parser("graph", help="show the topology's flow")
    opt.add_topology(g)
    g.add_argument("--format", choices=["text", "dot", "svg"], default="text",
                   help="text (default), Graphviz DOT, or an SVG drawing")

    p = sub.add_parser("permissions",
                       help="print the least API permissions the topology's probes need")
    opt.add_topology(p)
    p.add_argument("--probe", action="append", default=[], metavar="ID",
                   help="only these probes (repeatable; default: every probe that applies)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="report format")

    sub.add_parser("probes", help="list the probe catalog: ids, tier kinds, tags, levels")
    sub.add_parser("schema", help="print the JSON Schema of the topology file")
    return {"graph": cmd_graph, "permissions": cmd_permissions, "probes": cmd_probes,
            "schema": cmd_schema}


def cmd_graph(args: argparse.Namespace) -> int:
    from mailtrace.topology import FlowGraph

    flow = FlowGraph(opt.load_topology(args.topology))
    render = {"text": flow.to_text, "dot": flow.to_dot, "svg": flow.to_svg}[args.format]
    opt.write(render().rstrip("\n") + "\n")
    return 0


def cmd_probes(args: argparse.Namespace) -> int:
    from mailtrace.core import catalog
    from mailtrace.probes.registry import ALL

    lines = []
    for probe in ALL:
        lines.append(f"{probe.id}  [{', '.join(sorted(probe.kinds))}]  {probe.summary}")
        for tag in sorted(probe.tags, key=lambda t: (-catalog.info(t).level.rank, t)):
            info = catalog.info(tag)
            scope = f" ({info.scope.value})" if info.scope.value != "tier" else ""
            lines.append(f"    {info.level.value:<8} {tag}{scope}")
    opt.write("\n".join(lines) + "\n")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from mailtrace.topology.loader import topology_json_schema

    opt.write(json.dumps(topology_json_schema(), indent=2) + "\n")
    return 0


def cmd_permissions(args: argparse.Namespace) -> int:
    from mailtrace.report.permissions import render
    from mailtrace.usecases.permissions import needed

    topology = opt.load_topology(args.topology)
    try:
        rows = needed(topology, args.probe)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.format == "json":
        opt.write(json.dumps({"schema": "mailtrace/permissions-1",
                              "topology": topology.topology, "tiers": rows}, indent=2) + "\n")
    else:
        opt.write(render(rows))
    return 0
