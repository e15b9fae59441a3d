"""``mailtrace verify --domains FILE``: a fleet of domains, its flags and its command.

NDJSON to ``--output FILE`` (or stdout), one line per domain as it finishes; the summary
after it (on stdout, or on stderr when the NDJSON goes to stdout); a progress line on
stderr when both stdout and stderr are terminals. Exit status as ``verify``'s over the
whole fleet (``report.fleet.FleetSummary.exit_code``); interrupted (Ctrl-C, SIGTERM),
what finished is written and the summary printed before exiting 130 or 143. Dask is
imported only with ``--scheduler``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mailtrace.cli import options as opt
from mailtrace.cli.options import UsageError

if TYPE_CHECKING:
    from mailtrace.core.network import Endpoint
    from mailtrace.report.fleet import FleetSummary
    from mailtrace.usecases.fleet.results import Results
    from mailtrace.usecases.fleet.verifying import Vantage

_FLEET_FLAGS = {"vantage": "--vantage", "vantage_resolver": "--vantage-resolver",
                "scheduler": "--scheduler", "resume": "--resume",
                "concurrency": "--concurrency", "max_queries": "--max-queries",
                "max_per_server": "--max-per-server", "max_per_resolver": "--max-per-resolver",
                "shard_size": "--shard-size"}
#: The numbers a fleet runs with when not given.
#: A resolver is built for many clients at once (Unbound's num-queries-per-thread is
#: 1024 by default, BIND's recursive-clients 1000): 128 in flight is a small share of it;
#: an authoritative server gets far fewer (16).
_DEFAULTS = {"concurrency": 64, "max_queries": 256, "max_per_server": 16,
             "max_per_resolver": 128, "shard_size": 100}


def add_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fleets (--domains)")
    g.add_argument("--domains", metavar="FILE",
                   help="verify every domain of FILE (one a line, or CSV domain,topology; "
                   "- for stdin): NDJSON out, one line per domain")
    g.add_argument("--resume", metavar="FILE",
                   help="skip the domains a previous run wrote to FILE (its results count "
                   "in the summary; FILE may be the --output)")
    g.add_argument("--vantage", metavar="NAME[,NAME...]",
                   help="verify every domain from each of these vantage points and show "
                   "where the answers differ (workers with resource vantage-NAME, or "
                   "--vantage-resolver panels)")
    g.add_argument("--vantage-resolver", action="append", default=[],
                   metavar="NAME=IP[:PORT]", help="a resolver of vantage NAME's panel "
                   "(repeatable; default on a cluster: each worker's own resolvers)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on this Dask scheduler (tcp://HOST:8786); needs the fleet "
                   "extra: pip install 'mailtrace-diagnostics[fleet]'")
    g.add_argument("--concurrency", type=int, metavar="N",
                   help="domains verified at once per process (default 64)")
    g.add_argument("--max-queries", type=int, metavar="N",
                   help="DNS queries in flight per process (default 256)")
    g.add_argument("--max-per-server", type=int, metavar="N",
                   help="DNS queries in flight to any one authoritative server, per process "
                   "(default 16)")
    g.add_argument("--max-per-resolver", type=int, metavar="N",
                   help="DNS queries in flight to any one resolver, per process (default 128)")
    g.add_argument("--shard-size", type=int, metavar="N",
                   help="domains per task sent to a Dask worker (default 100)")


def refuse_fleet_flags(args: argparse.Namespace) -> None:
    """A single-domain verify given a fleet's flag: say so rather than ignore it."""
    for dest, flag in _FLEET_FLAGS.items():
        if getattr(args, dest, None):
            raise UsageError(f"{flag} goes with --domains FILE")


def _count(value: int, flag: str, most: int = 100_000) -> int:
    if not 1 <= value <= most:
        raise UsageError(f"{flag} must be between 1 and {most}")
    return value


def _vantage_panels(args: argparse.Namespace) -> dict[str, list[Endpoint]]:
    from mailtrace.core.network import EndpointError, parse_resolver

    panels: dict[str, list[Endpoint]] = {}
    for text in args.vantage_resolver:
        name, sep, resolver = text.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--vantage-resolver {text}: expected NAME=IP[:PORT]")
        try:
            panels.setdefault(name.strip().lower(), []).append(parse_resolver(resolver))
        except EndpointError as exc:
            raise UsageError(str(exc)) from None
    return panels


def vantages(args: argparse.Namespace, network: opt.Network,
             lab_panels: dict[str, list[Endpoint]]) -> tuple[list[Vantage], bool]:
    """The vantage points and whether they were named (``--vantage``): each with its
    panel — ``--vantage-resolver``, the lab file's, ``--resolver``, or (on a cluster)
    none: each worker's own resolvers."""
    import re

    from mailtrace.usecases.fleet.verifying import Vantage

    panels = {**lab_panels, **_vantage_panels(args)}
    explicit = tuple(network.resolvers) if args.resolver or args.lab_file else None
    if not args.vantage:
        if args.vantage_resolver:
            raise UsageError("--vantage-resolver goes with --vantage NAME[,NAME...]")
        if args.scheduler:
            return [Vantage(resolvers=explicit)], False
        return [Vantage(resolvers=tuple(network.resolvers))], False
    names = [n.strip().lower() for n in args.vantage.split(",") if n.strip()]
    if not names or len(set(names)) != len(names):
        raise UsageError("--vantage: expected distinct names, e.g. --vantage eu,us")
    for name in names:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", name):
            raise UsageError(f"--vantage {name}: letters, digits and hyphens (a Dask "
                             "resource vantage-NAME names it)")
    unknown = sorted(set(_vantage_panels(args)) - set(names))
    if unknown:
        raise UsageError(f"--vantage-resolver names {', '.join(unknown)}, not in --vantage")
    out = []
    for name in names:
        panel = panels.get(name)
        if panel is None and not args.scheduler:
            raise UsageError(f"vantage {name} has no resolver panel here: give "
                             f"--vantage-resolver {name}=IP[:PORT], or run on a cluster "
                             "(--scheduler) whose workers offer it")
        out.append(Vantage(name, tuple(panel) if panel else explicit))
    return out, True


class Progress:
    """One line on stderr, redrawn at most five times a second: lines done of the total,
    failing domains, rate, time left."""

    def __init__(self, total: int | None, results: Results) -> None:
        self.total = total
        self.results = results
        self.started = time.monotonic()
        self.drawn = 0.0
        self.shown = False

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.drawn < 0.2:
            return
        self.drawn = now
        done = self.results.lines
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed
        line = f"{done}/{self.total if self.total is not None else '?'} lines"
        line += f", {self.results.summary.failing_domains} failing, {rate:.1f}/s"
        if self.total and rate > 0 and done < self.total:
            line += f", ~{_duration((self.total - done) / rate)} left"
        sys.stderr.write("\r\x1b[K" + line)
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _open_output(args: argparse.Namespace, previous: Any) -> tuple[IO[str], bool]:
    """Where the NDJSON goes, and whether it is this process's stdout. The file the run
    resumes from is appended to, after its last whole line (a line a killed run left
    unfinished is dropped: its domain is verified again); any other is written anew."""
    if not args.output:
        return sys.stdout, True
    path = Path(args.output)
    same = args.resume is not None and path.exists() and Path(args.resume).exists() \
        and path.resolve() == Path(args.resume).resolve()
    try:
        if same and previous is not None and previous.unfinished:
            os.truncate(path, previous.end)
        return path.open("a" if same else "w", encoding="utf-8"), False
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None


def _input(args: argparse.Namespace) -> tuple[Any, Path, int | None]:
    """The list's stream, the folder its topology paths are relative to, and its
    number of lines when it can be counted (a regular file) and a terminal shows it."""
    from mailtrace.usecases.fleet.domains import count_lines

    if args.domains == "-":
        return sys.stdin.buffer, Path.cwd(), None
    path = Path(args.domains)
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise UsageError(f"--domains {args.domains}: {exc.strerror or exc}") from None
    total = None
    if path.is_file() and sys.stderr.isatty():
        total = count_lines(stream)
    return stream, path.resolve().parent, total


def _checks(args: argparse.Namespace) -> None:
    if args.domain:
        raise UsageError("--domain and --domains: give one domain or a list, not both")
    if args.watch:
        raise UsageError("--watch follows one domain; a fleet is verified once "
                         "(run it again with --resume to go on)")
    if args.format is not None:
        raise UsageError("--domains writes NDJSON (one line per domain) and a summary; "
                         "--format is for one domain")
    if args.system_resolver:
        raise UsageError("--system-resolver is for one domain; a fleet's vantages have "
                         "their own panels")
    opt.positive(args.timeout)
    for key, value in _DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    _count(args.concurrency, "--concurrency", 10_000)
    _count(args.max_queries, "--max-queries")
    _count(args.max_per_server, "--max-per-server")
    _count(args.max_per_resolver, "--max-per-resolver")
    _count(args.shard_size, "--shard-size")
    if args.output and args.output == args.domains:
        raise UsageError("--output must not be the --domains file")


def cmd_fleet(args: argparse.Namespace) -> int:
    _checks(args)
    from mailtrace.lab.labfile import LabFileError, read
    from mailtrace.report.fleet import FleetSummary, dumps
    from mailtrace.usecases.fleet.domains import read_lines
    from mailtrace.usecases.fleet.plan import Planner
    from mailtrace.usecases.fleet.results import Results
    from mailtrace.usecases.fleet.resume import ResumeError, read_previous
    from mailtrace.usecases.fleet.verifying import FleetError, FleetSettings

    lab_panels: dict[str, list[Endpoint]] = {}
    if args.lab_file:
        try:
            lab_panels = {k: list(v) for k, v in read(args.lab_file).vantages.items()}
        except LabFileError as exc:
            raise UsageError(str(exc)) from None
    default = Path(args.topology) if args.topology else None
    if default is not None:
        opt.load_topology(args.topology)  # a bad default topology is a usage error, once
    summary = FleetSummary()
    previous = None
    if args.resume:
        try:
            previous = read_previous(Path(args.resume), summary)
        except ResumeError as exc:
            raise UsageError(str(exc)) from None
    stream, base, total = _input(args)
    with opt.network(args) as network:
        points, named = vantages(args, network, lab_panels)
        settings = FleetSettings(timeout=args.timeout, connect_to=tuple(network.connect_to),
                                 ca_file=network.ca_file, max_in_flight=args.max_queries,
                                 per_server=args.max_per_server,
                                 per_resolver=args.max_per_resolver,
                                 concurrency=args.concurrency, verbose=args.verbose)
        planner = Planner(default, base, previous.done if previous else None,
                          previous.bad_lines if previous else None)
        output, to_stdout = _open_output(args, previous)
        progress: Progress | None = None
        results: Results | None = None

        def sink(doc: dict[str, Any]) -> None:
            if progress is not None and to_stdout:
                progress.clear()
            output.write(dumps(doc) + "\n")
            output.flush()
            if progress is not None:
                progress.draw()

        results = Results(sink, planner.topologies, summary)
        if sys.stdout.isatty() and sys.stderr.isatty():
            progress = Progress(total, results)
        started = time.monotonic()
        items = planner.items(read_lines(stream))
        try:
            _run(args, items, planner, settings, points, named, results)
        except FleetError as exc:
            raise UsageError(str(exc)) from None
        finally:
            if progress is not None:
                progress.clear()
            if not to_stdout:
                output.close()
            if stream is not sys.stdin.buffer:
                stream.close()
            _summary(summary, time.monotonic() - started, points, to_stdout)
    return summary.exit_code


def _run(args: argparse.Namespace, items: Any, planner: Any, settings: Any, points: Any,
         named: bool, results: Results) -> None:
    if args.scheduler:
        from mailtrace.usecases.fleet.cluster import run_cluster

        run_cluster(args.scheduler, items, planner.topologies, settings, points, results,
                    named=named, shard_size=args.shard_size)
        return
    import asyncio

    from mailtrace.usecases.fleet.local import Stopped, run_local

    try:
        asyncio.run(run_local(items, planner.topologies, settings, points, results))
    except Stopped:
        # The summary of what finished is written on the way out (cmd_fleet's finally);
        # the status is the one cli.main gives SIGTERM: 128 + 15.
        raise SystemExit(143) from None


def _summary(summary: FleetSummary, elapsed: float, points: list[Vantage],
             to_stdout: bool) -> None:
    text = summary.text(elapsed, [p.name for p in points])
    if to_stdout:
        sys.stderr.write(text)
    else:
        opt.write(text)
