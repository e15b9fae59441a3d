"""``mailtrace demo`` (a triage against the embedded lab with an injected fault) and
``mailtrace lab`` (keep the lab up for other tools)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailtrace.cli import options as opt
from mailtrace.cli.options import UsageError
from mailtrace.cli.triage import emit


def add_parsers(sub: Any) -> dict[str, Any]:
    d = sub.add_parser("demo", help="run a triage against the embedded lab with an injected fault")
    d.add_argument("scenario", nargs="?", default="mx-missing",
                   help="scenario (default mx-missing)")
    d.add_argument("--list", action="store_true", help="list the scenarios")
    opt.add_output(d, ["text", "json", "html"], strict=True)
    opt.add_run(d)

    lab = sub.add_parser("lab", help="keep the lab up and print how to point tools at it")
    lab.add_argument("scenario", nargs="?", default="healthy")
    lab.add_argument("--for", dest="duration", type=float, metavar="SECONDS",
                     help="stop after SECONDS (default: until interrupted)")
    return {"demo": cmd_demo, "lab": cmd_lab}


def _scenario(name: str) -> Any:
    from mailtrace.lab import scenarios

    try:
        return scenarios.get(name)
    except scenarios.UnknownScenario as exc:
        raise UsageError(str(exc)) from None


def cmd_demo(args: argparse.Namespace) -> int:
    from mailtrace.lab import scenarios

    if args.list:
        width = max(len(n) for n in scenarios.SCENARIOS)
        lines = []
        for name, sc in scenarios.SCENARIOS.items():
            exp = sc.expect
            outcome = exp.status + (f" at {exp.tier} [{exp.tag}]" if exp.tier else "")
            lines.append(f"{name:<{width}}  {sc.description}  → {outcome}\n")
        opt.write("".join(lines))
        return 0
    import asyncio

    from mailtrace.usecases.demo import demo

    scenario = _scenario(args.scenario)
    timeout = opt.positive(args.timeout)
    since = opt.since(args)
    opt.check_output(args)
    return emit(asyncio.run(demo(scenario, timeout, since)), args)


def cmd_lab(args: argparse.Namespace) -> int:
    import asyncio

    from mailtrace.lab.lab import Lab

    scenario = _scenario(args.scenario)
    if args.duration is not None:
        opt.positive(args.duration, "--for")

    async def serve() -> None:
        async with Lab(scenario) as lab:
            lines = [f"lab up, scenario {scenario.name}: {scenario.description}",
                     *lab.describe(),
                     "Ctrl-C to stop." if args.duration is None
                     else f"stopping in {args.duration} s"]
            opt.write("\n".join(lines) + "\n")
            sys.stdout.flush()
            await asyncio.sleep(args.duration if args.duration is not None else 10**9)

    asyncio.run(serve())
    return 0
