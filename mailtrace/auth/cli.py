"""``mailtrace verify`` and ``mailtrace precheck``: their flags and command functions.

``mailtrace.cli`` registers them (one line each); the heavy modules are imported inside
the commands so ``mailtrace --help`` stays fast. Exit codes as DESIGN: 0 converged/safe,
1 differs, propagating or unsafe, 2 usage, 3 inconclusive.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailtrace.clients.dns import DnsClient

#: A CA bundle for HTTPS checks (the MTA-STS policy host); default: the system's.
CA_FILE_ENV = "MAILTRACE_CA_FILE"


def _common(p: argparse.ArgumentParser) -> None:
    from mailtrace.cli import add_endpoints

    p.add_argument("--topology", required=True, metavar="FILE")
    p.add_argument("--domain", metavar="DOMAIN",
                   help="the domain to check (default: the topology's first)")
    add_endpoints(p, resolver="a resolver of the panel (default: the system's)")
    p.add_argument("--ca-file", metavar="FILE",
                   help=f"CA bundle for HTTPS checks (default ${CA_FILE_ENV}, else the system's)")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE")
    p.add_argument("--verbose", "-v", action="store_true", help="every answer and finding")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="budget for the whole run (default 30)")


def add_parsers(sub: Any) -> None:
    v = sub.add_parser("verify", help="is a DNS change live on every server and resolver, "
                       "does it fit the topology, when do old answers expire")
    _common(v)
    v.add_argument("--format", choices=["text", "json"], default="text")
    v.add_argument("--watch", action="store_true",
                   help="poll until every record matches or --timeout runs out")
    v.add_argument("--interval", type=float, default=5.0, metavar="SECONDS",
                   help="seconds between polls with --watch (default 5)")
    v.add_argument("--system-resolver", action="store_true",
                   help="put the system's resolvers in the panel beside each --resolver")
    p = sub.add_parser("precheck", help="judge a DNS change (MX, SPF, DKIM, DMARC) "
                       "against the topology before making it")
    _common(p)
    p.add_argument("--change", required=True, metavar="FILE", help="the change file (YAML)")
    p.add_argument("--format", choices=["text", "json", "junit"], default="text")


def _setup(args: argparse.Namespace) -> tuple[Any, str, Callable[[], DnsClient], str | None]:
    from mailtrace.cli import UsageError, _check_output, _endpoints, _load_topology, _positive
    from mailtrace.clients.dns import DnsClient, Server
    from mailtrace.clients.endpoints import Redirects

    _positive(args.timeout)
    _check_output(args)
    topology = _load_topology(args.topology)
    domain = (args.domain or topology.domains[0]).lower().rstrip(".")
    if domain not in topology.domains:
        raise UsageError(f"{domain} is not a domain of topology {topology.topology} "
                         f"({', '.join(topology.domains)})")
    resolvers, connect_to = _endpoints(args)
    if getattr(args, "system_resolver", False) and args.resolver:
        from mailtrace import cli

        resolvers = [*cli._system_resolvers(), *resolvers]
    ca_file = args.ca_file or os.environ.get(CA_FILE_ENV)
    if ca_file and not os.path.isfile(ca_file):
        raise UsageError(f"--ca-file {ca_file}: no such file")

    def client() -> DnsClient:
        return DnsClient([Server("resolver", e.address, e.port) for e in resolvers],
                         Redirects(tuple(connect_to)))

    return topology, domain, client, ca_file


def cmd_verify(args: argparse.Namespace) -> int:
    from mailtrace.auth import report as render
    from mailtrace.auth.verify import VerifyReport, verify
    from mailtrace.cli import _positive, deliver

    topology, domain, client, ca_file = _setup(args)
    if args.watch:
        _positive(args.interval, "--interval")

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

    result = asyncio.run(verify(topology, domain, client, timeout=args.timeout,
                                watch=args.watch, interval=args.interval, ca_file=ca_file,
                                progress=progress))
    text = (render.to_json(result.as_json()) if args.format == "json"
            else render.verify_text(result, args.verbose))
    deliver(text, args.output)
    return result.exit_code


def cmd_precheck(args: argparse.Namespace) -> int:
    from mailtrace.auth import report as render
    from mailtrace.auth.change import ChangeError, load_change
    from mailtrace.auth.precheck import precheck
    from mailtrace.cli import UsageError, deliver

    topology, domain, client, ca_file = _setup(args)
    try:
        change = load_change(args.change)
    except ChangeError as exc:
        raise UsageError(str(exc)) from None
    if change.domain is not None and args.domain is None:
        domain = change.domain
        if domain not in topology.domains:
            raise UsageError(f"{args.change}: domain {domain} is not in topology "
                             f"{topology.topology}")
    result = asyncio.run(precheck(topology, change, domain, client, timeout=args.timeout,
                                  ca_file=ca_file))
    if args.format == "json":
        text = render.to_json(result.as_json())
    elif args.format == "junit":
        text = render.precheck_junit(result)
    else:
        text = render.precheck_text(result, args.verbose)
    deliver(text, args.output)
    return result.exit_code
