"""What the commands share: one definition of each common option, the checks that turn
flags into settings, and writing a report. Nothing heavy is imported at module level, so
``mailtrace --help`` starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailtrace.clients.trust_anchor import TrustAnchor
    from mailtrace.core.network import ConnectTo, Endpoint
    from mailtrace.topology.model import Topology

EXIT_USAGE = 2
EXIT_INTERNAL = 4


class UsageError(Exception):
    """Bad flags or configuration: one readable line, exit 2."""


# --- options ---------------------------------------------------------------------------

def add_topology(p: argparse.ArgumentParser, *, required: bool = True,
                 help: str = "the topology file (YAML)") -> None:
    p.add_argument("--topology", required=required, metavar="FILE", help=help)


def add_output(p: argparse.ArgumentParser, formats: Sequence[str], *,
               strict: bool = False, verbose: str = "all evidence, per-probe timings") -> None:
    p.add_argument("--format", choices=formats, default="text", help="report format")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE")
    if verbose:
        p.add_argument("--verbose", "-v", action="store_true", help=verbose)
    if strict:
        p.add_argument("--strict", action="store_true",
                       help="exit 3 (inconclusive) when a tier could not be tested")


def add_endpoints(p: argparse.ArgumentParser, *, when: str = "",
                  resolver: str = "resolver to use instead of the system's") -> None:
    """--resolver and --connect-to, as every command that asks the network has them."""
    p.add_argument("--resolver", action="append", default=[], metavar="IP[:PORT]",
                   help=f"{when}{resolver} (repeatable)")
    p.add_argument("--connect-to", action="append", default=[], metavar="HOST:PORT:ADDR:PORT",
                   help=f"{when}send connections for HOST:PORT to ADDR:PORT instead (repeatable)")


def add_ca_file(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--ca-file", metavar="FILE", help=help)


def add_lab_file(p: argparse.ArgumentParser, *, when: str = "") -> None:
    """--lab-file: a running ``mailtrace lab``'s resolver, connection rules, CA and
    throwaway credentials, read by :func:`network`."""
    p.add_argument("--lab-file", metavar="FILE",
                   help=f"{when}reach a running `mailtrace lab` with your own topology: the "
                   "file it wrote holds its resolver, connection rules, CA and throwaway "
                   "credentials")


def add_trust_anchor(p: argparse.ArgumentParser, *, when: str = "") -> None:
    p.add_argument("--trust-anchor", metavar="FILE",
                   help=f"{when}DNSSEC trust anchor: DS or DNSKEY records of the root zone "
                   "(default: IANA's root keys)")


def add_network(p: argparse.ArgumentParser, *, when: str = "") -> None:
    """Where a triage's packets go and what it trusts (``triage``, ``ndr --triage``):
    --resolver, --connect-to, --ca-file, --lab-file, the SMTP flags and --trust-anchor,
    read by :func:`network`, :func:`smtp_options` and :func:`trust_anchor`."""
    add_endpoints(p, when=when)
    add_ca_file(p, f"{when}trust these CA certificates for STARTTLS and the HTTPS APIs "
                "instead of the system's")
    add_lab_file(p, when=when)
    add_smtp(p, when=when)
    add_trust_anchor(p, when=when)


#: The destinations of :func:`add_network`'s flags and the value each has when not given.
NETWORK_DEFAULTS: dict[str, Any] = {
    "resolver": [], "connect_to": [], "ca_file": None, "lab_file": None, "mail_from": None,
    "helo": None, "smtp_reference": [], "trust_anchor": None}


def network_flags_given(args: argparse.Namespace) -> list[str]:
    """The :func:`add_network` flags given on the command line, as written."""
    return [f"--{name.replace('_', '-')}" for name, unset in NETWORK_DEFAULTS.items()
            if getattr(args, name, unset) != unset]


def add_smtp(p: argparse.ArgumentParser, *, when: str = "") -> None:
    """The SMTP probes' identity and reference hosts, checked by :func:`smtp_options`."""
    p.add_argument("--mail-from", metavar="ADDR",
                   help=f"{when}sender of the SMTP probes (default: the topology's, else <>)")
    p.add_argument("--helo", metavar="NAME", help=f"{when}EHLO name of the SMTP probes")
    p.add_argument("--smtp-reference", action="append", default=[], metavar="HOST[:PORT]",
                   help=f"{when}a host known to answer on port 25, to prove outbound SMTP "
                   "works from here (repeatable)")


def add_message(p: argparse.ArgumentParser) -> None:
    """The message to follow across the tiers (its journey)."""
    p.add_argument("--from", dest="sender", metavar="ADDR|DOMAIN",
                   help="follow the message(s) from this sender (an address, or a whole "
                   "domain) to the recipient")
    p.add_argument("--message-id", metavar="ID", help="follow the message with this Message-ID")
    p.add_argument("--subject", metavar="TEXT",
                   help="follow the message whose subject contains TEXT")


def add_run(p: argparse.ArgumentParser, *, since: bool = True) -> None:
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="budget for the whole run (default 30)")
    if since:
        p.add_argument("--since", default="24h", metavar="DURATION",
                       help="how far back to search the gateway's logs and message trace, "
                       "e.g. 90m, 24h, 7d (default 24h; Graph message trace looks 10 days "
                       "at most)")


# --- checks ----------------------------------------------------------------------------

def positive(seconds: float, flag: str = "--timeout") -> float:
    if not 0 < seconds < float("inf"):
        raise UsageError(f"{flag} must be a positive number of seconds")
    return seconds


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SINCE = timedelta(days=30)


def parse_since(text: str) -> timedelta:
    """``--since``: a duration with its unit, such as 90m, 24h or 7d (s, m, h, d)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"--since {text!r}: expected a duration such as 90m, 24h or 7d")
    since = timedelta(seconds=float(match[1]) * _UNIT[match[2]])
    if not timedelta(0) < since <= MAX_SINCE:
        raise ValueError(f"--since {text!r}: expected more than 0 and at most 30d")
    return since


def since(args: argparse.Namespace) -> timedelta:
    try:
        return parse_since(args.since)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_output(args: argparse.Namespace) -> None:
    """Refuse an unwritable --output before the run, not after it (the verdict would be
    lost). An existing file is opened for append, so it is not emptied yet; a new one is
    created and removed at once, so an interrupted run leaves no empty file behind."""
    if args.output:
        path = Path(args.output)
        try:
            if path.exists():
                with path.open("a", encoding="utf-8"):
                    pass
            else:
                with path.open("x", encoding="utf-8"):
                    pass
                path.unlink()
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None


def load_topology(path: str) -> Topology:
    from mailtrace.topology import TopologyError
    from mailtrace.topology import load_topology as load

    try:
        return load(path)
    except TopologyError as exc:
        raise UsageError(str(exc)) from None


def endpoints(args: argparse.Namespace) -> tuple[list[Endpoint], list[ConnectTo]]:
    """--resolver (default: the system's resolvers) and --connect-to, parsed."""
    from mailtrace.core.network import EndpointError, parse_connect_to, parse_resolver

    try:
        resolvers = [parse_resolver(r) for r in args.resolver]
        connect_to = [parse_connect_to(c) for c in args.connect_to]
    except EndpointError as exc:
        raise UsageError(str(exc)) from None
    return resolvers or system_resolvers(), connect_to


@dataclass(frozen=True)
class Network:
    """Where a run's packets go and what it trusts: from the flags, or a lab file."""

    resolvers: list[Endpoint]
    connect_to: list[ConnectTo]
    ca_file: Path | None
    environ: Mapping[str, str] = field(repr=False)
    #: The DNSSEC trust anchor a lab file brings (its signed root), if any.
    trust_anchor: TrustAnchor | None = None


@contextlib.contextmanager
def network(args: argparse.Namespace) -> Iterator[Network]:
    """--resolver, --connect-to, --ca-file and the environment; with --lab-file, the lab's
    (its resolver unless --resolver is given, its rules after any --connect-to, its CA
    unless --ca-file is given, its credentials over the environment's). The lab CA is put
    in a temporary file for the run's clients and removed when the command ends."""
    import os

    lab_file = getattr(args, "lab_file", None)
    if not lab_file:
        resolvers, connect_to = endpoints(args)
        yield Network(resolvers, connect_to, ca_file(args), os.environ)
        return
    import tempfile

    from mailtrace.core.network import EndpointError, parse_connect_to, parse_resolver
    from mailtrace.lab.labfile import LabFileError, read

    try:
        access = read(lab_file)
        resolvers = [parse_resolver(r) for r in args.resolver] or [access.resolver]
        connect_to = [*(parse_connect_to(c) for c in args.connect_to), *access.connect_to]
    except (LabFileError, EndpointError) as exc:
        raise UsageError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="mailtrace-lab-ca-") as folder:
        lab_ca = Path(folder) / "lab-ca.pem"
        lab_ca.write_text(access.ca_pem, encoding="ascii")
        from mailtrace.clients.trust_anchor import TrustAnchor

        anchor = TrustAnchor(ds=access.trust_anchor, source=f"the lab's root ({lab_file})") \
            if access.trust_anchor else None
        yield Network(resolvers, connect_to, ca_file(args) or lab_ca,
                      {**os.environ, **access.environ}, anchor)


def system_resolvers() -> list[Endpoint]:
    import dns.resolver

    from mailtrace.core.network import Endpoint

    try:
        nameservers = dns.resolver.Resolver(configure=True).nameservers
    except Exception as exc:
        raise UsageError(f"no system resolver found ({exc}); pass --resolver IP[:PORT]") from None
    if not nameservers:
        raise UsageError("no system resolver found; pass --resolver IP[:PORT]")
    return [Endpoint(str(ns), 53) for ns in nameservers]


def ca_file(args: argparse.Namespace) -> Path | None:
    if args.ca_file is None:
        return None
    path = Path(args.ca_file)
    if not path.is_file():
        raise UsageError(f"--ca-file {args.ca_file}: no such file")
    return path


def trust_anchor(args: argparse.Namespace) -> dict[str, Any]:
    """``--trust-anchor FILE``, read and checked (file:line for a bad record)."""
    path = getattr(args, "trust_anchor", None)
    if path is None:
        return {}
    from mailtrace.clients.trust_anchor import TrustAnchor, TrustAnchorError

    try:
        return {"trust_anchor": TrustAnchor.from_file(Path(path))}
    except TrustAnchorError as exc:
        raise UsageError(f"--trust-anchor {exc}") from None


def smtp_options(args: argparse.Namespace) -> dict[str, Any]:
    """The SMTP probes' settings from the flags, checked: nothing that could inject a
    command reaches the wire."""
    from mailtrace.core.address import check_mailbox
    from mailtrace.core.network import check_host_name, parse_host_port

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
    path = ca_file(args)
    if path is not None:
        options["ca_file"] = path
    return options


# --- output ----------------------------------------------------------------------------

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
    """A report to ``--output FILE``, or to stdout. A regular file is written whole or not
    at all (a temporary file beside it, then renamed over it): an interrupted run never
    leaves an empty or half-written report behind."""
    if not output:
        write(text)
        return
    path = Path(output)
    try:
        if path.exists() and not path.is_file():  # /dev/stdout, a FIFO: write in place
            with path.open("w", encoding="utf-8") as fh:
                fh.write(text)
            return
        write_whole(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None


def write_whole(path: Path, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, renamed
    over it. ``mode`` for a new file (default: as the umask allows); an existing file keeps
    its own."""
    import os
    import tempfile

    if path.exists():
        mode = path.stat().st_mode & 0o777
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or None)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
