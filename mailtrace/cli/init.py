"""``mailtrace init --domain D``: draft a topology from what DNS already shows.

Exit codes: 0 drafted; 2 usage error (a file already there, a domain that does not
exist); 3 nothing sound can be drafted (no answer, no MX, no mailbox service in sight).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mailtrace.cli import options as opt
from mailtrace.cli import signals
from mailtrace.cli.options import UsageError


def add_parsers(sub: Any) -> dict[str, Any]:
    p = sub.add_parser("init", help="draft a topology from the domain's DNS (MX, SPF, DKIM, "
                       "DMARC, MTA-STS), each guess commented with its record")
    p.add_argument("--domain", required=True, metavar="DOMAIN",
                   help="the mail domain to draft a topology for")
    p.add_argument("--output", metavar="FILE",
                   help="write the topology to FILE (default: print it)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    opt.add_endpoints(p)
    opt.add_ca_file(p, "trust these CA certificates for the MTA-STS policy host (HTTPS)")
    opt.add_lab_file(p)
    p.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS",
                   help="budget for every lookup (default 20)")
    return {"init": cmd_init}


def cmd_init(args: argparse.Namespace) -> int:
    from mailtrace.core.address import check_domain
    from mailtrace.engine.settings import Options
    from mailtrace.report import draft as render
    from mailtrace.usecases.draft import DraftError, draft_topology

    timeout = opt.positive(args.timeout)
    try:
        domain = check_domain(args.domain)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.output and Path(args.output).exists() and not args.force:
        raise UsageError(f"{args.output} exists; pass --force to replace it")
    opt.check_output(args)
    with opt.network(args) as network:
        options = Options(network.resolvers, network.connect_to, timeout, network.environ,
                          ca_file=network.ca_file)
        try:
            drafted = signals.run(draft_topology(domain, options))
        except DraftError as exc:
            print(f"mailtrace: {exc}", file=sys.stderr)
            return exc.exit_code
    text = render.render(drafted)
    render.check(text, args.output or "<draft>")
    opt.deliver(text, args.output)
    if args.output:
        print(f"mailtrace: wrote {args.output} ({' -> '.join(t.id for t in drafted.tiers)}); "
              f"check it with: mailtrace graph --topology {args.output}", file=sys.stderr)
    return 0
