"""``mailtrace ndr FILE`` and ``mailtrace headers FILE``: the evidence commands.

Exit codes: 0 nothing failed (a success DSN, or headers with no failing finding); 1 a
recipient failed or was delayed, or a header finding fails (gateway bypassed); 2 bad
input (missing file, not an email, too large) or flags; with ``--triage``, the triage's
own code (0 healthy, 1 fault or degraded, 3 inconclusive).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailtrace.evidence.ndr import NdrAnalysis
    from mailtrace.triage import TriageReport


def add_parsers(sub: Any) -> None:
    """Register ``ndr`` and ``headers`` on the top-level subparsers."""
    from mailtrace import cli

    n = sub.add_parser("ndr", help="explain a bounce (NDR/DSN) and name the tier it points at")
    n.add_argument("file", metavar="FILE", help=".eml or text file, or - for stdin")
    n.add_argument("--topology", metavar="FILE", help="map the bounce's servers to its tiers")
    n.add_argument("--triage", action="store_true",
                   help="then run the triage and say whether it agrees (needs --topology)")
    cli.add_endpoints(n, when="with --triage: ")
    # The triage's own SMTP flags, checked by the same code (cli._smtp_options).
    n.add_argument("--ca-file", metavar="FILE",
                   help="with --triage: trust these CA certificates for STARTTLS")
    n.add_argument("--mail-from", metavar="ADDR", help="with --triage: sender of the SMTP probes")
    n.add_argument("--helo", metavar="NAME", help="with --triage: EHLO name of the SMTP probes")
    n.add_argument("--smtp-reference", action="append", default=[], metavar="HOST[:PORT]",
                   help="with --triage: a host known to answer on port 25 (repeatable)")
    n.add_argument("--format", choices=["text", "json"], default="text", help="report format")
    n.add_argument("--output", metavar="FILE", help="write the report to FILE")
    cli._add_run(n)

    h = sub.add_parser("headers", help="a message's hops, delays, verdicts and gateway bypass")
    h.add_argument("file", metavar="FILE", help=".eml or pasted headers, or - for stdin")
    h.add_argument("--topology", metavar="FILE", help="attribute hops and trust to its tiers")
    h.add_argument("--slow-hop", type=float, default=300.0, metavar="SECONDS",
                   help="flag a hop slower than this (default 300)")
    h.add_argument("--format", choices=["text", "json"], default="text", help="report format")
    h.add_argument("--output", metavar="FILE", help="write the report to FILE")


def _source(path: str) -> str:
    return "stdin" if path == "-" else path


def _read(path: str, header_only: bool) -> tuple[str, Any]:
    from mailtrace.cli import UsageError
    from mailtrace.evidence.intake import EvidenceError, parse_message, read_bytes, to_text

    try:
        text = to_text(read_bytes(path, header_only=header_only), _source(path))
        return text, parse_message(text)
    except EvidenceError as exc:
        raise UsageError(str(exc)) from None


def _hosts(args: argparse.Namespace) -> Any:
    from mailtrace.cli import _load_topology
    from mailtrace.evidence.tiers import HostMap

    return HostMap(_load_topology(args.topology) if args.topology else None)


def cmd_ndr(args: argparse.Namespace) -> int:
    from mailtrace.cli import UsageError, _check_output, _positive, deliver
    from mailtrace.evidence import report
    from mailtrace.evidence.dsn import parse_report
    from mailtrace.evidence.intake import EvidenceError
    from mailtrace.evidence.ndr import analyze

    if args.triage and not args.topology:
        raise UsageError("--triage needs --topology FILE")
    network = (args.resolver or args.connect_to or args.smtp_reference
               or any(x is not None for x in (args.ca_file, args.mail_from, args.helo)))
    if network and not args.triage:
        raise UsageError("--resolver, --connect-to and the SMTP flags only apply with --triage")
    timeout = _positive(args.timeout)
    _check_output(args)
    hosts = _hosts(args)
    raw, msg = _read(args.file, header_only=False)
    try:
        analysis = analyze(parse_report(msg, raw), hosts)
    except EvidenceError as exc:
        raise UsageError(f"{_source(args.file)}: {exc}") from None
    triage = _triage(analysis, args, timeout) if args.triage else None
    if args.format == "json":
        text = report.render_json(report.ndr_json(analysis, triage))
    else:
        text = report.ndr_text(analysis, _source(args.file), triage)
    deliver(text, args.output)
    return triage.verdict.exit_code if triage is not None else analysis.exit_code


def _triage(analysis: NdrAnalysis, args: argparse.Namespace, timeout: float) -> TriageReport:
    """The triage of the recipient the bounce is about. Every tier's probes start at once
    and the verdict reads tiers in flow order, so starting with the named tier's probes
    would change nothing observable: the report shows the named tier next to the verdict."""
    from mailtrace.cli import UsageError, _endpoints, _smtp_options
    from mailtrace.triage import Options, make_target, run_triage

    topology = analysis.hosts.topology
    assert topology is not None
    candidates = [o for o in analysis.outcomes if o.recipient.address]
    ordered = sorted(candidates, key=lambda o: (not o.failed, o.tier is None))
    address = next((o.recipient.address for o in ordered
                    if o.recipient.address and o.recipient.address.rpartition("@")[2].lower()
                    in topology.domains), None)
    if address is None:
        raise UsageError(
            f"no recipient of the bounce is in the topology's domains "
            f"({', '.join(topology.domains)}): nothing to triage"
        )
    from mailtrace.cli import _since
    from mailtrace.triage import TargetError

    try:
        target = make_target(topology, address, None, _since(args))
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    smtp = _smtp_options(args)
    resolvers, connect_to = _endpoints(args)
    options = Options(resolvers, connect_to, timeout, **smtp)
    return asyncio.run(run_triage(topology, target, options))


def cmd_headers(args: argparse.Namespace) -> int:
    from mailtrace.cli import UsageError, _check_output, _positive, deliver
    from mailtrace.evidence import report
    from mailtrace.evidence.headers import analyze, check_is_header_set

    slow = _positive(args.slow_hop, "--slow-hop")
    _check_output(args)
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
        text = report.render_json(report.headers_json(analysis, name))
    else:
        text = report.headers_text(analysis, _source(args.file), name)
    deliver(text, args.output)
    return report.exit_code(analysis.findings)
