"""Command line: ``mailtrace triage|verify|precheck|ndr|headers|demo|lab|init|login|logout|
schema|permissions``.

Exit codes (DESIGN): 0 healthy, 1 fault or degraded, 2 usage or configuration error,
3 inconclusive, 4 internal error; and as a shell reports a process ended by a signal
(128 + its number): 130 interrupted (Ctrl-C, SIGINT), 143 terminated (SIGTERM), 141 when
the reader of the output went away (SIGPIPE: ``mailtrace probes | head -1``). Each
command's module registers its flags and imports what it runs only when it runs, so that
``mailtrace --help`` starts fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from mailtrace.cli import catalog, init, intake, lab, signin, triage, verify
from mailtrace.cli.options import EXIT_INTERNAL, EXIT_USAGE, UsageError
from mailtrace.cli.signals import Terminated, terminate

#: 128 + the signal's number, as a shell reports a process the signal ended (written out:
#: Windows has no SIGPIPE, and its PowerShell users read the same codes).
EXIT_INTERRUPTED = 130  # SIGINT (2)
EXIT_TERMINATED = 143  # SIGTERM (15)
EXIT_BROKEN_PIPE = 141  # SIGPIPE (13)


def _quiet_stdout() -> None:
    """The reader went away: send what is still buffered nowhere, so that the interpreter's
    last flush does not complain on stderr (Python's documented idiom for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a descriptor (a test's capture)
        pass
    finally:
        os.close(devnull)

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
    for module in (triage, lab, catalog, verify, intake, init, signin):
        commands.update(module.add_parsers(sub))
    return parser, commands


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    # A library's warnings (azure-identity logs a failed sign-in) are reported by the
    # command that met them, in one line; they never reach stderr on their own.
    logging.getLogger("azure").addHandler(logging.NullHandler())
    parser, commands = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a flag argparse refused (exit 2)
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    previous = _on_sigterm(terminate)
    try:
        code = int(commands[args.command](args))
        sys.stdout.flush()  # a closed pipe is met here, not in the interpreter's exit
        return code
    except UsageError as exc:
        print(f"mailtrace: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Terminated:
        return EXIT_TERMINATED
    except Exception as exc:  # never a traceback for the user; one for a developer
        if os.environ.get("MAILTRACE_DEBUG"):
            raise
        print(f"mailtrace: internal error: {type(exc).__name__}: {exc} "
              "(set MAILTRACE_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        _on_sigterm(previous)


def _on_sigterm(handler: Any) -> Any:
    """Install a SIGTERM handler and return the previous one (only the main thread may:
    elsewhere, as under a test runner's thread, the default stays)."""
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return handler
