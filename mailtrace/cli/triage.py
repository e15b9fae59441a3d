"""``mailtrace triage``: walk the topology hop by hop and name the failing tier."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from mailtrace.cli import options as opt
from mailtrace.cli import signals
from mailtrace.cli.options import UsageError

if TYPE_CHECKING:
    from mailtrace.engine.settings import Options
    from mailtrace.report.model import TriageReport


def add_parsers(sub: Any) -> dict[str, Any]:
    t = sub.add_parser("triage", help="walk the topology hop by hop and name the failing tier")
    opt.add_topology(t)
    who = t.add_mutually_exclusive_group(required=True)
    who.add_argument("--recipient", metavar="ADDR",
                     help="the address that does not receive mail (follows its messages too)")
    who.add_argument("--domain", metavar="DOMAIN",
                     help="a domain of the topology, when no one address is in question")
    opt.add_network(t)
    opt.add_message(t)
    opt.add_output(t, ["text", "json", "html"], strict=True)
    opt.add_run(t)
    return {"triage": cmd_triage}


def cmd_triage(args: argparse.Namespace) -> int:

    from mailtrace.usecases.triage import TargetError, make_target, run_triage

    timeout = opt.positive(args.timeout)
    since = opt.since(args)
    opt.check_output(args)
    topology = opt.load_topology(args.topology)
    try:
        target = make_target(topology, args.recipient, args.domain, since,
                             sender=args.sender, message_id=args.message_id,
                             subject=args.subject)
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    with opt.network(args) as network:
        options = run_options(args, timeout, network)
        report = signals.run(run_triage(topology, target, options, source=args.topology))
    return emit(report, args)


def run_options(args: argparse.Namespace, timeout: float,
                network: opt.Network | None = None) -> Options:
    """The triage's settings from the network and SMTP flags (triage, ndr --triage)."""
    from mailtrace.engine.settings import Options

    smtp = opt.smtp_options(args)
    anchor = opt.trust_anchor(args)
    if not anchor and network is not None and network.trust_anchor is not None:
        anchor = {"trust_anchor": network.trust_anchor}
    if network is None:
        resolvers, connect_to = opt.endpoints(args)
        return Options(resolvers, connect_to, timeout, **smtp, **anchor)
    smtp.setdefault("ca_file", network.ca_file)
    return Options(network.resolvers, network.connect_to, timeout, network.environ, **smtp,
                   **anchor)


def emit(report: TriageReport, args: argparse.Namespace) -> int:
    """Render the triage report as asked and return the exit code (``--strict``: an
    untested tier makes a healthy verdict exit 3, and the report says so)."""
    report.strict = bool(getattr(args, "strict", False))
    if args.format == "json":
        from mailtrace.report import json as json_report

        text = json_report.render(report)
    elif args.format == "html":
        from mailtrace.report import html

        text = html.render(report)
    else:
        from mailtrace.report import text as text_report

        stream = sys.stdout if not args.output else None
        colour = stream is not None and text_report.use_colour(stream)
        text = text_report.render(report, colour=colour, verbose=args.verbose)
    opt.deliver(text, args.output)
    return report.exit_code
