"""Command line: ``mailtrace triage|verify|precheck|ndr|headers|demo|lab|graph|probes|
schema|permissions``.

Exit codes (DESIGN): 0 healthy, 1 fault or degraded, 2 usage or configuration error,
3 inconclusive, 4 internal error. Each command's module registers its flags and imports
what it runs only when it runs, so that ``mailtrace --help`` starts fast.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from mailtrace.cli import catalog, intake, lab, triage, verify
from mailtrace.cli.options import EXIT_INTERNAL, EXIT_USAGE, UsageError

Command = Callable[[argparse.Namespace], int]


class _Version(argparse.Action):
    """``--version``: the distribution's name and version, looked up only when asked (an
    unrelated project holds the name ``mailtrace`` on the package index)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from mailtrace import DISTRIBUTION, version

        print(f"{DISTRIBUTION} {version()} (the mailtrace command)")
        parser.exit()


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    parser = argparse.ArgumentParser(
        prog="mailtrace",
        description="Localize a mail-flow fault to one tier of your declared topology, "
        "with the raw evidence, before suggesting any fix.",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands: dict[str, Command] = {}
    for module in (triage, lab, catalog, verify, intake):
        commands.update(module.add_parsers(sub))
    return parser, commands


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service manager, ``kill``, a test's ``terminate()``): stopped as Ctrl-C
    stops a command, so the lab's temporary files (its CA's private keys, the stand-ins'
    credentials) are removed on the way out, not left behind."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    parser, commands = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a flag argparse refused (exit 2)
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        with _stop_on_sigterm():
            return int(commands[args.command](args))
    except UsageError as exc:
        print(f"mailtrace: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Terminated:
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback for the user; one for a developer
        if os.environ.get("MAILTRACE_DEBUG"):
            raise
        print(f"mailtrace: internal error: {type(exc).__name__}: {exc} "
              "(set MAILTRACE_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
