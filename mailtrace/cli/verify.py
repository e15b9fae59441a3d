"""``mailtrace verify`` and ``mailtrace precheck``: their flags and command functions.

Exit codes as DESIGN: 0 converged/safe, 1 differs, propagating or unsafe, 2 usage,
3 inconclusive.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from mailtrace.cli import fleet, signals
from mailtrace.cli import options as opt
from mailtrace.cli.options import UsageError

if TYPE_CHECKING:
    from mailtrace.engine.settings import Options
    from mailtrace.report.verify import VerifyReport
    from mailtrace.topology.model import Topology

#: A CA bundle for HTTPS checks (the MTA-STS policy host); default: the system's.
CA_FILE_ENV = "MAILTRACE_CA_FILE"


def _common(p: argparse.ArgumentParser, *, topology: bool = True) -> None:
    opt.add_topology(p, required=topology,
                     help="the topology file (YAML)" if topology else "the topology file "
                     "(YAML); with --domains, of every line that names none")
    p.add_argument("--domain", metavar="DOMAIN",
                   help="the domain to check (default: the topology's first)")
    opt.add_endpoints(p, resolver="a resolver of the panel (default: the system's)")
    opt.add_ca_file(p, f"CA bundle for HTTPS checks (default ${CA_FILE_ENV}, else the system's)")
    opt.add_lab_file(p)
    p.add_argument("--output", metavar="FILE", help="write the report to FILE")
    p.add_argument("--verbose", "-v", action="store_true", help="every answer and finding")
    opt.add_run(p, since=False)


def add_parsers(sub: Any) -> dict[str, Any]:
    v = sub.add_parser("verify", help="is a DNS change live on every server and resolver, "
                       "does it fit the topology, when do old answers expire")
    _common(v, topology=False)
    v.add_argument("--format", choices=["text", "json"], help="report format (default text; "
                   "--domains writes NDJSON)")
    v.add_argument("--watch", action="store_true",
                   help="poll until every record matches or --timeout runs out")
    v.add_argument("--interval", type=float, default=5.0, metavar="SECONDS",
                   help="seconds between polls with --watch (default 5)")
    v.add_argument("--system-resolver", action="store_true",
                   help="put the system's resolvers in the panel beside each --resolver")
    fleet.add_flags(v)
    p = sub.add_parser("precheck", help="judge a DNS change (MX, SPF, DKIM, DMARC) "
                       "against the topology before making it")
    _common(p)
    p.add_argument("--change", required=True, metavar="FILE", help="the change file (YAML)")
    p.add_argument("--format", choices=["text", "json", "junit"], default="text",
                   help="report format (junit: one test case per check, for CI)")
    return {"verify": cmd_verify, "precheck": cmd_precheck}


def _setup(args: argparse.Namespace) -> tuple[Topology, str]:
    opt.positive(args.timeout)
    opt.check_output(args)
    topology = opt.load_topology(args.topology)
    domain = (args.domain or topology.domains[0]).lower().rstrip(".")
    if domain not in topology.domains:
        raise UsageError(f"{domain} is not a domain of topology {topology.topology} "
                         f"({', '.join(topology.domains)})")
    if args.ca_file is None and not args.lab_file and os.environ.get(CA_FILE_ENV):
        args.ca_file = os.environ[CA_FILE_ENV]
    return topology, domain


def _options(args: argparse.Namespace, network: opt.Network) -> Options:
    from mailtrace.engine.settings import Options

    resolvers = network.resolvers
    if getattr(args, "system_resolver", False) and args.resolver:
        resolvers = [*opt.system_resolvers(), *resolvers]
    return Options(resolvers, network.connect_to, args.timeout, network.environ,
                   ca_file=network.ca_file)


def cmd_verify(args: argparse.Namespace) -> int:
    if args.domains is not None:
        return fleet.cmd_fleet(args)
    fleet.refuse_fleet_flags(args)
    if args.topology is None:
        raise UsageError("--topology is required (or --domains FILE for a fleet)")
    args.format = args.format or "text"

    from mailtrace.report import verify as render
    from mailtrace.report.json import dumps
    from mailtrace.usecases.verify import verify

    topology, domain = _setup(args)
    if args.watch:
        opt.positive(args.interval, "--interval")

    def progress(rep: VerifyReport, elapsed: float) -> None:
        if not args.watch:
            return
        counts = {s: sum(r.status == s for r in rep.records)
                  for s in ("matches", "propagating", "differs", "inconclusive")}
        waiting = [r.record.label for r in rep.records if r.status != "matches"]
        print(f"[{elapsed:5.1f} s] poll {rep.polls}: {counts['matches']}/{len(rep.records)} "
              f"match, {counts['propagating']} propagating, {counts['differs']} differ"
              + (f"; waiting for {', '.join(waiting)}" if waiting else ""),
              file=sys.stderr, flush=True)

    with opt.network(args) as network:
        result = signals.run(verify(topology, domain, _options(args, network),
                                    watch=args.watch, interval=args.interval,
                                    progress=progress))
    text = (dumps(result.as_json()) if args.format == "json"
            else render.verify_text(result, args.verbose))
    opt.deliver(text, args.output)
    return result.exit_code


def cmd_precheck(args: argparse.Namespace) -> int:

    from mailtrace.report import precheck as render
    from mailtrace.report.json import dumps
    from mailtrace.topology.change import ChangeError, load_change
    from mailtrace.usecases.precheck import precheck

    topology, domain = _setup(args)
    try:
        change = load_change(args.change)
    except ChangeError as exc:
        raise UsageError(str(exc)) from None
    if change.domain is not None and args.domain is None:
        domain = change.domain
        if domain not in topology.domains:
            raise UsageError(f"{args.change}: domain {domain} is not in topology "
                             f"{topology.topology}")
    with opt.network(args) as network:
        result = signals.run(precheck(topology, change, domain, _options(args, network)))
    if args.format == "json":
        text = dumps(result.as_json())
    elif args.format == "junit":
        text = render.precheck_junit(result)
    else:
        text = render.precheck_text(result, args.verbose)
    opt.deliver(text, args.output)
    return result.exit_code
