"""Command line: ``mailtrace triage|verify|precheck|ndr|headers|demo|lab|graph|probes|schema``.

Exit codes (DESIGN): 0 healthy, 1 fault or degraded, 2 usage or configuration error,
3 inconclusive, 4 internal error. Heavy modules are imported inside the commands so
that ``mailtrace --help`` starts fast.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mailtrace import permissions
from mailtrace.auth import cli as auth_cli

if TYPE_CHECKING:
    from mailtrace.clients.endpoints import ConnectTo, Endpoint
    from mailtrace.triage import TriageReport

EXIT_USAGE = 2
EXIT_INTERNAL = 4


class UsageError(Exception):
    """Bad flags or configuration: one readable line, exit 2."""


def _add_output(p: argparse.ArgumentParser, formats: Sequence[str]) -> None:
    p.add_argument("--format", choices=formats, default="text", help="report format")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE")
    p.add_argument("--verbose", "-v", action="store_true", help="all evidence, per-probe timings")
    p.add_argument("--strict", action="store_true",
                   help="exit 3 (inconclusive) when a tier could not be tested")


def add_endpoints(p: argparse.ArgumentParser, *, when: str = "",
                  resolver: str = "resolver to use instead of the system's") -> None:
    """--resolver and --connect-to, as every command that asks the network has them."""
    p.add_argument("--resolver", action="append", default=[], metavar="IP[:PORT]",
                   help=f"{when}{resolver} (repeatable)")
    p.add_argument("--connect-to", action="append", default=[], metavar="HOST:PORT:ADDR:PORT",
                   help=f"{when}send connections for HOST:PORT to ADDR:PORT instead (repeatable)")


def _add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="budget for the whole run (default 30)")
    p.add_argument("--since", default="24h", metavar="DURATION",
                   help="how far back to search the gateway's logs and message trace, e.g. "
                   "90m, 24h, 7d (default 24h; Graph message trace looks 10 days at most)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailtrace",
        description="Localize a mail-flow fault to one tier of your declared topology, "
        "with the raw evidence, before suggesting any fix.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("triage", help="walk the topology hop by hop and name the failing tier")
    t.add_argument("--topology", required=True, metavar="FILE")
    who = t.add_mutually_exclusive_group(required=True)
    who.add_argument("--recipient", metavar="ADDR")
    who.add_argument("--domain", metavar="DOMAIN")
    add_endpoints(t)
    t.add_argument("--ca-file", metavar="FILE",
                   help="trust these CA certificates for STARTTLS and the HTTPS APIs "
                   "instead of the system's")
    t.add_argument("--mail-from", metavar="ADDR",
                   help="sender of the SMTP probes (default: the topology's, else <>)")
    t.add_argument("--helo", metavar="NAME", help="EHLO name of the SMTP probes")
    t.add_argument("--smtp-reference", action="append", default=[], metavar="HOST[:PORT]",
                   help="a host known to answer on port 25, to prove outbound SMTP works "
                   "from here (repeatable)")
    _add_output(t, ["text", "json", "html"])
    _add_run(t)

    d = sub.add_parser("demo", help="run a triage against the embedded lab with an injected fault")
    d.add_argument("scenario", nargs="?", default="mx-missing",
                   help="scenario (default mx-missing)")
    d.add_argument("--list", action="store_true", help="list the scenarios")
    _add_output(d, ["text", "json", "html"])
    _add_run(d)

    lab = sub.add_parser("lab", help="keep the lab up and print how to point tools at it")
    lab.add_argument("scenario", nargs="?", default="healthy")
    lab.add_argument("--for", dest="duration", type=float, metavar="SECONDS",
                     help="stop after SECONDS (default: until interrupted)")

    g = sub.add_parser("graph", help="show the topology's flow")
    g.add_argument("--topology", required=True, metavar="FILE")
    g.add_argument("--format", choices=["text", "dot", "svg"], default="text")

    auth_cli.add_parsers(sub)  # verify, precheck
    from mailtrace.evidence.cli import add_parsers as add_evidence_parsers

    add_evidence_parsers(sub)
    permissions.add_parser(sub)

    sub.add_parser("probes", help="list the probe catalog: ids, tier kinds, tags, levels")
    sub.add_parser("schema", help="print the JSON Schema of the topology file")
    return parser


# For consoles that cannot show them (a PowerShell redirect writes cp1252, say).
ASCII_FALLBACK = str.maketrans({"→": "->", "—": "-", "✓": "+", "✗": "x", "…": "...", "·": "."})


def write(text: str) -> None:
    """Write to stdout whatever its encoding: symbols fall back to ASCII, and anything
    else that cannot be encoded is replaced rather than raising mid-report."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        text = text.translate(ASCII_FALLBACK)
    sys.stdout.write(text)


def deliver(text: str, output: str | None) -> None:
    """A report to ``--output FILE``, or to stdout."""
    if output:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    else:
        write(text)


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(COMMANDS[args.command](args))
    except UsageError as exc:
        print(f"mailtrace: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback for the user; one for a developer
        if os.environ.get("MAILTRACE_DEBUG"):
            raise
        print(f"mailtrace: internal error: {type(exc).__name__}: {exc} "
              "(set MAILTRACE_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


# --- helpers -------------------------------------------------------------------------

def _load_topology(path: str) -> Any:
    from mailtrace.topology import TopologyError, load_topology

    try:
        return load_topology(path)
    except TopologyError as exc:
        raise UsageError(str(exc)) from None


def _endpoints(args: argparse.Namespace) -> tuple[list[Endpoint], list[ConnectTo]]:
    from mailtrace.clients.endpoints import EndpointError, parse_connect_to, parse_resolver

    try:
        resolvers = [parse_resolver(r) for r in args.resolver]
        connect_to = [parse_connect_to(c) for c in args.connect_to]
    except EndpointError as exc:
        raise UsageError(str(exc)) from None
    return resolvers or _system_resolvers(), connect_to


def _system_resolvers() -> list[Endpoint]:
    import dns.resolver

    from mailtrace.clients.endpoints import Endpoint

    try:
        nameservers = dns.resolver.Resolver(configure=True).nameservers
    except Exception as exc:
        raise UsageError(f"no system resolver found ({exc}); pass --resolver IP[:PORT]") from None
    if not nameservers:
        raise UsageError("no system resolver found; pass --resolver IP[:PORT]")
    return [Endpoint(str(ns), 53) for ns in nameservers]


def _emit(report: TriageReport, args: argparse.Namespace) -> int:
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
    deliver(text, args.output)
    code = report.verdict.exit_code
    if code == 0 and args.strict and report.verdict.not_tested:
        return 3
    return code


def _positive(seconds: float, flag: str = "--timeout") -> float:
    if not 0 < seconds < float("inf"):
        raise UsageError(f"{flag} must be a positive number of seconds")
    return seconds


def _since(args: argparse.Namespace) -> Any:
    from mailtrace.triage import parse_since

    try:
        return parse_since(args.since)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _check_output(args: argparse.Namespace) -> None:
    """Refuse an unwritable --output before the run, not after it (the verdict would be
    lost). Opened for append so an existing file is not emptied yet."""
    if args.output:
        try:
            with open(args.output, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None


# --- commands ------------------------------------------------------------------------

def cmd_triage(args: argparse.Namespace) -> int:
    from mailtrace.triage import Options, TargetError, make_target, run_triage

    timeout = _positive(args.timeout)
    since = _since(args)
    _check_output(args)
    topology = _load_topology(args.topology)
    try:
        target = make_target(topology, args.recipient, args.domain, since)
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    resolvers, connect_to = _endpoints(args)
    options = Options(resolvers, connect_to, timeout, **_smtp_options(args))
    report = asyncio.run(run_triage(topology, target, options))
    return _emit(report, args)


def _smtp_options(args: argparse.Namespace) -> dict[str, Any]:
    """The SMTP probes' settings from the flags, checked: nothing that could inject a
    command reaches the wire."""
    from pathlib import Path

    from mailtrace.address import check_mailbox
    from mailtrace.clients.endpoints import check_host_name, parse_host_port

    options: dict[str, Any] = {"smtp_references": tuple(args.smtp_reference)}
    try:
        if args.mail_from is not None:
            options["mail_from"] = "" if args.mail_from in ("", "<>") else check_mailbox(
                args.mail_from)
        if args.helo is not None:
            options["helo"] = check_host_name(args.helo)
        for reference in args.smtp_reference:
            parse_host_port(reference, 25)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.ca_file is not None:
        path = Path(args.ca_file)
        if not path.is_file():
            raise UsageError(f"--ca-file {args.ca_file}: no such file")
        options["ca_file"] = path
    return options


def cmd_demo(args: argparse.Namespace) -> int:
    from mailtrace.lab import scenarios

    if args.list:
        width = max(len(n) for n in scenarios.SCENARIOS)
        lines = []
        for name, sc in scenarios.SCENARIOS.items():
            exp = sc.expect
            outcome = exp.status + (f" at {exp.tier} [{exp.tag}]" if exp.tier else "")
            lines.append(f"{name:<{width}}  {sc.description}  → {outcome}\n")
        write("".join(lines))
        return 0
    try:
        scenario = scenarios.get(args.scenario)
    except scenarios.UnknownScenario as exc:
        raise UsageError(str(exc)) from None
    timeout = _positive(args.timeout)
    since = _since(args)
    _check_output(args)
    return _emit(asyncio.run(_demo(scenario, timeout, since)), args)


async def _demo(scenario: Any, timeout: float, since: Any = None) -> TriageReport:
    from mailtrace.lab.lab import Lab
    from mailtrace.topology import load_topology
    from mailtrace.triage import make_target, run_triage

    async with Lab(scenario) as lab:
        topology = load_topology(lab.topology_path)
        target = make_target(topology, lab.recipient, None, since)
        return await run_triage(topology, target, lab.options(timeout))


def cmd_lab(args: argparse.Namespace) -> int:
    from mailtrace.lab import scenarios
    from mailtrace.lab.lab import Lab

    try:
        scenario = scenarios.get(args.scenario)
    except scenarios.UnknownScenario as exc:
        raise UsageError(str(exc)) from None
    if args.duration is not None:
        _positive(args.duration, "--for")

    async def serve() -> None:
        async with Lab(scenario) as lab:
            lines = [f"lab up, scenario {scenario.name}: {scenario.description}",
                     *lab.describe(),
                     "Ctrl-C to stop." if args.duration is None
                     else f"stopping in {args.duration} s"]
            write("\n".join(lines) + "\n")
            sys.stdout.flush()
            await asyncio.sleep(args.duration if args.duration is not None else 10**9)

    asyncio.run(serve())
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from mailtrace.topology import FlowGraph

    flow = FlowGraph(_load_topology(args.topology))
    render = {"text": flow.to_text, "dot": flow.to_dot, "svg": flow.to_svg}[args.format]
    write(render().rstrip("\n") + "\n")
    return 0


def cmd_probes(args: argparse.Namespace) -> int:
    from mailtrace import catalog
    from probes import ALL

    for probe in ALL:
        print(f"{probe.id}  [{', '.join(sorted(probe.kinds))}]  {probe.summary}")
        for tag in sorted(probe.tags, key=lambda t: (-catalog.info(t).level.rank, t)):
            info = catalog.info(tag)
            scope = f" ({info.scope.value})" if info.scope.value != "tier" else ""
            print(f"    {info.level.value:<8} {tag}{scope}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from mailtrace.topology.loader import topology_json_schema

    print(json.dumps(topology_json_schema(), indent=2))
    return 0


def cmd_ndr(args: argparse.Namespace) -> int:
    from mailtrace.evidence.cli import cmd_ndr as run

    return run(args)


def cmd_headers(args: argparse.Namespace) -> int:
    from mailtrace.evidence.cli import cmd_headers as run

    return run(args)


COMMANDS = {
    "triage": cmd_triage,
    "ndr": cmd_ndr,
    "headers": cmd_headers,
    "demo": cmd_demo,
    "lab": cmd_lab,
    "graph": cmd_graph,
    "permissions": permissions.cmd_permissions,
    "probes": cmd_probes,
    "schema": cmd_schema,
    "verify": auth_cli.cmd_verify,
    "precheck": auth_cli.cmd_precheck,
}
