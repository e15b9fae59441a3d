"""``mailtrace ndr FILE`` and ``mailtrace headers FILE``: start from the evidence an admin
already has.

Exit codes: 0 nothing failed (a success DSN, or headers with no failing finding); 1 a
recipient failed or was delayed, or a header finding fails (gateway bypassed); 2 bad
input (missing file, not an email, too large) or flags; with ``--triage``, the triage's
own code (0 healthy, 1 fault or degraded, 3 inconclusive).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mailtrace.cli import options as opt
from mailtrace.cli.options import UsageError
from mailtrace.cli.triage import run_options

if TYPE_CHECKING:
    from mailtrace.intake.tiers import HostMap


def add_parsers(sub: Any) -> dict[str, Any]:
    n = sub.add_parser("ndr", help="explain a bounce (NDR/DSN) and name the tier it points at")
    n.add_argument("file", metavar="FILE", help=".eml or text file, or - for stdin")
    opt.add_topology(n, required=False, help="map the bounce's servers to its tiers")
    n.add_argument("--triage", action="store_true",
                   help="then run the triage and say whether it agrees (needs --topology)")
    opt.add_endpoints(n, when="with --triage: ")
    opt.add_ca_file(n, "with --triage: trust these CA certificates for STARTTLS")
    opt.add_smtp(n, when="with --triage: ")
    opt.add_output(n, ["text", "json"], verbose="")
    opt.add_run(n)

    h = sub.add_parser("headers", help="a message's hops, delays, verdicts and gateway bypass")
    h.add_argument("file", metavar="FILE", help=".eml or pasted headers, or - for stdin")
    opt.add_topology(h, required=False, help="attribute hops and trust to its tiers")
    h.add_argument("--slow-hop", type=float, default=300.0, metavar="SECONDS",
                   help="flag a hop slower than this (default 300)")
    opt.add_output(h, ["text", "json"], verbose="")
    return {"ndr": cmd_ndr, "headers": cmd_headers}


def _source(path: str) -> str:
    return "stdin" if path == "-" else path


def _read(path: str, header_only: bool) -> tuple[str, Any]:
    from mailtrace.intake.message import EvidenceError, parse_message, read_bytes, to_text

    try:
        text = to_text(read_bytes(path, header_only=header_only), _source(path))
        return text, parse_message(text)
    except EvidenceError as exc:
        raise UsageError(str(exc)) from None


def _hosts(args: argparse.Namespace) -> HostMap:
    from mailtrace.intake.tiers import HostMap

    return HostMap(opt.load_topology(args.topology) if args.topology else None)


def cmd_ndr(args: argparse.Namespace) -> int:
    from mailtrace.intake.dsn import parse_report
    from mailtrace.intake.message import EvidenceError
    from mailtrace.intake.ndr import analyze
    from mailtrace.report import intake as report
    from mailtrace.report.json import dumps

    if args.triage and not args.topology:
        raise UsageError("--triage needs --topology FILE")
    network = (args.resolver or args.connect_to or args.smtp_reference
               or any(x is not None for x in (args.ca_file, args.mail_from, args.helo)))
    if network and not args.triage:
        raise UsageError("--resolver, --connect-to and the SMTP flags only apply with --triage")
    timeout = opt.positive(args.timeout)
    opt.check_output(args)
    hosts = _hosts(args)
    raw, msg = _read(args.file, header_only=False)
    try:
        analysis = analyze(parse_report(msg, raw), hosts)
    except EvidenceError as exc:
        raise UsageError(f"{_source(args.file)}: {exc}") from None
    triage = None
    if args.triage:
        import asyncio

        from mailtrace.usecases.ndr import NothingToTriage, triage_bounce
        from mailtrace.usecases.triage import TargetError

        try:
            triage = asyncio.run(triage_bounce(analysis, opt.since(args),
                                               run_options(args, timeout)))
        except (NothingToTriage, TargetError) as exc:
            raise UsageError(str(exc)) from None
    if args.format == "json":
        text = dumps(report.ndr_json(analysis, triage))
    else:
        text = report.ndr_text(analysis, _source(args.file), triage)
    opt.deliver(text, args.output)
    return triage.verdict.exit_code if triage is not None else analysis.exit_code


def cmd_headers(args: argparse.Namespace) -> int:
    from mailtrace.intake.headers import analyze, check_is_header_set
    from mailtrace.report import intake as report
    from mailtrace.report.json import dumps

    slow = opt.positive(args.slow_hop, "--slow-hop")
    opt.check_output(args)
    hosts = _hosts(args)
    _, msg = _read(args.file, header_only=True)
    fields = [(str(k), str(v)) for k, v in msg.items()]
    if not check_is_header_set(fields):
        raise UsageError(
            f"{_source(args.file)}: no message header fields found (Received, From, "
            "Authentication-Results...): not a message or a header set"
        )
    analysis = analyze(fields, hosts, slow)
    name = hosts.topology.topology if hosts.topology is not None else None
    if args.format == "json":
        text = dumps(report.headers_json(analysis, name))
    else:
        text = report.headers_text(analysis, _source(args.file), name)
    opt.deliver(text, args.output)
    return report.exit_code(analysis.findings)
