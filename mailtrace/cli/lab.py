"""``mailtrace demo`` (a triage against the embedded lab with an injected fault) and
``mailtrace lab`` (keep the lab up for other tools)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mailtrace.cli import options as opt
from mailtrace.cli import signals
from mailtrace.cli.options import UsageError
from mailtrace.cli.triage import emit


def add_parsers(sub: Any) -> dict[str, Any]:
    d = sub.add_parser("demo", help="run a triage against the embedded lab with an injected fault")
    d.add_argument("scenario", nargs="?", default="mx-missing",
                   help="scenario (default mx-missing)")
    d.add_argument("--list", action="store_true", help="list the scenarios")
    opt.add_message(d)
    opt.add_output(d, ["text", "json", "html"], strict=True)
    opt.add_run(d)

    lab = sub.add_parser("lab", help="keep the lab up and print how to point tools at it")
    lab.add_argument("scenario", nargs="?", default="healthy",
                     help="scenario (default healthy), or fleet: --domains N generated "
                     "client domains for verify --domains")
    lab.add_argument("--list", action="store_true", help="list the scenarios")
    lab.add_argument("--for", dest="duration", type=float, metavar="SECONDS",
                     help="stop after SECONDS (default: until interrupted)")
    lab.add_argument("--lab-file", metavar="FILE",
                     help="write the lab file here (default: in the lab's temporary folder); "
                     "triage, verify, precheck and init read it with --lab-file FILE")
    g = lab.add_argument_group("the fleet scenario")
    g.add_argument("--domains", type=int, metavar="N",
                   help="generated client domains (default 1000)")
    g.add_argument("--broken", type=float, metavar="SHARE",
                   help="share of them broken, evenly in five known ways (default 0.1)")
    g.add_argument("--regional", type=float, metavar="SHARE",
                   help="share whose SPF the us vantage's resolver still caches "
                   "(default 0.05)")
    g.add_argument("--seed", type=int, help="which domains are broken (default 1)")
    g.add_argument("--dns-delay", type=float, metavar="SECONDS",
                   help="added to every DNS answer of the lab (default 0)")
    g.add_argument("--domains-file", metavar="FILE",
                   help="write the domain list here (default: in the lab's temporary folder)")
    return {"demo": cmd_demo, "lab": cmd_lab}


def _scenario(name: str) -> Any:
    from mailtrace.lab import scenarios

    try:
        return scenarios.get(name)
    except scenarios.UnknownScenario as exc:
        raise UsageError(str(exc)) from None


def _list_scenarios() -> int:
    from mailtrace.lab import scenarios

    width = max(len(n) for n in scenarios.SCENARIOS)
    lines = []
    for name, sc in scenarios.SCENARIOS.items():
        exp = sc.expect
        outcome = exp.status + (f" at {exp.tier} [{exp.tag}]" if exp.tier else "")
        lines.append(f"{name:<{width}}  {sc.description}  → {outcome}\n")
    opt.write("".join(lines))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.list:
        return _list_scenarios()

    from mailtrace.usecases.demo import demo
    from mailtrace.usecases.triage import TargetError

    scenario = _scenario(args.scenario)
    timeout = opt.positive(args.timeout)
    since = opt.since(args)
    opt.check_output(args)
    try:
        report = signals.run(demo(scenario, timeout, since, sender=args.sender,
                                  message_id=args.message_id, subject=args.subject))
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    return emit(report, args)


def root_anchor(ds: tuple[str, ...]) -> str:
    """The lab root's DS records in zone-file syntax (RFC 4034 §5.3): what
    ``--trust-anchor`` and Unbound's ``trust-anchor-file`` read."""
    return "; the running lab's root key (valid while it runs)\n" + "".join(
        f". IN DS {record}\n" for record in ds)


def cmd_lab(args: argparse.Namespace) -> int:
    """Keep a lab up until interrupted (Ctrl-C, SIGTERM) or ``--for`` runs out. Whatever
    ends it, the lab's temporary folders go with it: the CA's key, the lab file and its
    throwaway credentials (SIGTERM cancels the lab's task, :func:`signals.run`, so every
    ``async with`` below unwinds)."""
    import asyncio

    from mailtrace.lab import labfile
    from mailtrace.lab.lab import Lab

    if args.list:
        return _list_scenarios()
    fleet = args.scenario == "fleet"
    given = [f"--{k.replace('_', '-')}" for k in _FLEET_DEFAULTS if getattr(args, k) is not None]
    if given and not fleet:
        raise UsageError(f"{', '.join(given)}: for the fleet scenario (mailtrace lab fleet)")
    lab = _fleet_lab(args) if fleet else Lab(_scenario(args.scenario))
    if args.duration is not None:
        opt.positive(args.duration, "--for")
    chosen = Path(args.lab_file) if args.lab_file else None
    if chosen is not None and (chosen.is_dir() or not chosen.parent.is_dir()):
        raise UsageError(f"--lab-file {args.lab_file}: not a file in an existing folder")

    async def serve() -> None:
        async with lab:
            path = chosen or lab.lab_file_path()
            anchor = path.with_name(f"{path.stem}.root.ds")
            try:
                access = lab.access()
                try:
                    labfile.write(access, path)
                    if access.trust_anchor:
                        opt.write_whole(anchor, root_anchor(access.trust_anchor), 0o644)
                    listed = _write_domains(lab, args) if fleet else None
                except OSError as exc:
                    raise UsageError(f"cannot write {exc.filename or path}: "
                                     f"{exc.strerror}") from None
                told = [f"trust anchor: {anchor}",
                        "  the lab root's DS record, for --trust-anchor (the lab file "
                        "carries it too) or Unbound's trust-anchor-file"]
                lines = [*lab.describe(path), *(told if access.trust_anchor else []),
                         *_fleet_lines(lab, path, listed),
                         "Ctrl-C to stop." if args.duration is None
                         else f"stopping in {args.duration} s"]
                opt.write("\n".join(lines) + "\n")
                sys.stdout.flush()
                await asyncio.sleep(args.duration if args.duration is not None else 10**9)
            finally:
                path.unlink(missing_ok=True)
                anchor.unlink(missing_ok=True)

    signals.run(serve())
    return 0


#: The fleet scenario's settings when not given.
_FLEET_DEFAULTS: dict[str, Any] = {"domains": 1000, "broken": 0.1, "regional": 0.05, "seed": 1,
                                   "dns_delay": 0.0, "domains_file": None}


def _fleet_lab(args: argparse.Namespace) -> Any:
    from mailtrace.lab.lab import fleet_lab

    for key, value in _FLEET_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not 1 <= args.domains <= 10_000_000:
        raise UsageError("--domains must be between 1 and 10,000,000")
    if args.dns_delay < 0 or args.dns_delay > 10:
        raise UsageError("--dns-delay must be between 0 and 10 seconds")
    try:
        return fleet_lab(args.domains, broken=args.broken, regional=args.regional,
                         seed=args.seed, dns_delay=args.dns_delay)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _write_domains(lab: Any, args: argparse.Namespace) -> Path:
    path = Path(args.domains_file) if args.domains_file else \
        lab.lab_file_path().with_name("fleet-domains.txt")
    written: Path = lab.fleet.write_domains(path)
    return written


def _fleet_lines(lab: Any, lab_file: Path, listed: Path | None) -> list[str]:
    if listed is None:
        return []
    fleet = lab.fleet
    return [
        f"fleet: {fleet.count} domains in {listed} ({fleet.broken_count} broken: MX missing, "
        "SPF without the gateway's include, a DKIM selector missing, DMARC weaker than "
        f"declared, a stale secondary; {fleet.regional_count} still cached at vantage us)",
        "verify them all, from both vantages:",
        f"  mailtrace verify --domains {listed} --topology {lab.topology_path} "
        f"--lab-file {lab_file} --vantage eu,us --output fleet.ndjson",
    ]
