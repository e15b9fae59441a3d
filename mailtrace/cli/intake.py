"""``mailtrace ndr FILE`` and ``mailtrace headers FILE``: start from the evidence an admin
already has.

Exit codes: 0 nothing failed (a success DSN, or headers with no failing finding); 1 a
recipient failed or was delayed, or a header finding fails (gateway bypassed); 2 bad
input (missing file, not an email, too large, not a bounce — a spam complaint or an
out-of-office reply is named as such) or flags; with ``--triage``, the triage's own code
(0 healthy, 1 fault or degraded, 3 inconclusive). An mbox file is read message by
message with ``--all``; otherwise its first message is read and the rest counted.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mailtrace.cli import options as opt
from mailtrace.cli import signals
from mailtrace.cli.options import UsageError
from mailtrace.cli.triage import run_options

if TYPE_CHECKING:
    from mailtrace.intake.ndr import NdrAnalysis
    from mailtrace.intake.tiers import HostMap


def add_parsers(sub: Any) -> dict[str, Any]:
    n = sub.add_parser("ndr", help="explain a bounce (NDR/DSN) and name the tier it points at")
    n.add_argument("file", metavar="FILE", help=".eml or text file, or - for stdin")
    opt.add_topology(n, required=False, help="map the bounce's servers to its tiers")
    n.add_argument("--triage", action="store_true",
                   help="then run the triage and say whether it agrees (needs --topology)")
    n.add_argument("--all", action="store_true", dest="all_messages",
                   help="read every message of an mbox file (default: the first)")
    opt.add_network(n, when="with --triage: ")
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


def _text(path: str) -> str:
    from mailtrace.intake.message import EvidenceError, read_bytes, to_text

    try:
        return to_text(read_bytes(path), _source(path))
    except EvidenceError as exc:
        raise UsageError(str(exc)) from None


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


def _bounces(raw: str, hosts: HostMap, every: bool, source: str
             ) -> list[tuple[NdrAnalysis | None, str | None]]:
    """The analysis of each message (the first only, unless ``every``), or why a message
    has none. Raises a usage error when no message is a bounce."""
    from mailtrace.intake.message import EvidenceError, parse_message, split_mbox
    from mailtrace.intake.ndr import analyze
    from mailtrace.intake.readers import parse_report

    texts = split_mbox(raw)
    results: list[tuple[NdrAnalysis | None, str | None]] = []
    for text in texts if every else texts[:1]:
        try:
            results.append((analyze(parse_report(parse_message(text), text), hosts), None))
        except EvidenceError as exc:
            results.append((None, str(exc)))
    if all(a is None for a, _ in results):
        raise UsageError(f"{source}: {results[0][1]}")
    first = results[0][0]
    if len(texts) > 1 and not every and first is not None:
        first.report.notes.append(
            f"the file holds {len(texts)} messages; this reads the first (--all reads each)")
    return results


def cmd_ndr(args: argparse.Namespace) -> int:
    from mailtrace.report import intake as report
    from mailtrace.report.json import dumps

    if args.triage and not args.topology:
        raise UsageError("--triage needs --topology FILE")
    given = opt.network_flags_given(args)
    if given and not args.triage:
        raise UsageError(f"{', '.join(given)}: only apply with --triage")
    timeout = opt.positive(args.timeout)
    opt.check_output(args)
    hosts = _hosts(args)
    raw = _text(args.file)
    results = _bounces(raw, hosts, args.all_messages, _source(args.file))
    analysis = next(a for a, _ in results if a is not None)
    triage = None
    if args.triage:

        from mailtrace.usecases.ndr import NothingToTriage, triage_bounce
        from mailtrace.usecases.triage import TargetError

        since = opt.since(args)
        with opt.network(args) as network:
            try:
                triage = signals.run(triage_bounce(analysis, since,
                                                   run_options(args, timeout, network)))
            except (NothingToTriage, TargetError) as exc:
                raise UsageError(str(exc)) from None
    if args.all_messages:
        text = (dumps(report.ndr_json_all(results, triage)) if args.format == "json"
                else report.ndr_text_all(results, _source(args.file), triage))
    elif args.format == "json":
        text = dumps(report.ndr_json(analysis, triage))
    else:
        text = report.ndr_text(analysis, _source(args.file), triage)
    opt.deliver(text, args.output)
    if triage is not None:
        return triage.verdict.exit_code
    return max(a.exit_code for a, _ in results if a is not None)


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
