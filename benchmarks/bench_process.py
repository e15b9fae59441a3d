"""Benchmark: what one mailtrace process costs, measured from outside it.

1. `mailtrace demo healthy` (the lab started in the process, then a whole triage of it):
   wall time, CPU time (user + system), peak resident memory, and how many of
   msgraph-sdk's model modules (``msgraph.generated.models.*``) the process imported.
   Targets: CPU <= 1.0 s, peak RSS <= 80 MB, <= 150 model modules.
2. Start-up of the commands that ask no network, on small inputs: ``--help``, ``probes``,
   ``schema``, ``graph``, ``ndr`` and ``headers`` (with the example topology), ``demo
   --list``. Target: <= 0.3 s each (wall, median). Also shown: whether each imported the
   Graph SDK (msgraph, kiota) or the lab, which none of them should.

Each figure is the median of --runs processes of ``python -m mailtrace``, installed as a
user installs it (``pip install .`` into a virtual environment of the benchmark's own, see
installed.py; ``--here`` times this interpreter's instead). The machine's own start-up
(``python -c pass``) is printed for reference.
Run: python3 benchmarks/bench_process.py [--runs N] [--here]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import installed

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY = ROOT / "topologies" / "contoso-proofpoint-exo.yaml"
EVIDENCE = ROOT / "tests" / "data" / "evidence"
NDR = EVIDENCE / "ndr" / "pod-dbeb-5.4.1.eml"
HEADERS = EVIDENCE / "headers" / "contoso-via-pod.eml"

CPU_TARGET = 1.0
RSS_TARGET_MB = 80
MODELS_TARGET = 150
STARTUP_TARGET = 0.3

COMMANDS: list[tuple[str, list[str]]] = [
    ("--help", ["--help"]),
    ("probes", ["probes"]),
    ("schema", ["schema"]),
    ("graph", ["graph", "--topology", str(TOPOLOGY)]),
    ("ndr", ["ndr", str(NDR), "--topology", str(TOPOLOGY)]),
    ("headers", ["headers", str(HEADERS), "--topology", str(TOPOLOGY)]),
    ("demo --list", ["demo", "--list"]),
]
#: Commands that must not load the Graph SDK or the lab.
NO_SDK = {"probes", "schema", "graph", "ndr", "headers"}

#: Runs the command line in this process, then reports what it imported (on stderr).
MODULES = """
import json, sys
from mailtrace.cli import main
main(sys.argv[1:])
def count(prefix):
    return sum(1 for m in list(sys.modules) if m == prefix or m.startswith(prefix + "."))
print("MODULES " + json.dumps({p: count(p) for p in (
    "msgraph.generated.models", "msgraph", "kiota_abstractions", "mailtrace.lab",
    "networkx", "cryptography", "requests", "dns", "pydantic")}), file=sys.stderr)
"""


def measured(argv: list[str], cwd: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def imported(python: Path, args: list[str]) -> dict[str, int]:
    done = subprocess.run([str(python), "-c", MODULES, *args], cwd=installed.workdir(python),
                          text=True,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False, timeout=120)
    line = next((x for x in done.stderr.splitlines() if x.startswith("MODULES ")), None)
    if line is None:
        raise SystemExit(f"mailtrace {' '.join(args)} failed:\n{done.stderr}")
    counts: dict[str, int] = json.loads(line.removeprefix("MODULES "))
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--here", action="store_true",
                        help="time this interpreter's mailtrace, not a user-like install")
    args = parser.parse_args()
    python = installed.python(args.here)
    cwd = installed.workdir(python)
    ok = True
    alone = statistics.median(measured([str(python), "-c", "pass"], cwd)[0]
                              for _ in range(args.runs))
    print(f"mailtrace of {python}; python start-up alone: {alone * 1000:.0f} ms; "
          f"{args.runs} runs each, medians")

    demo = [measured(installed.command(python, "demo", "healthy"), cwd)
            for _ in range(args.runs)]
    wall, cpu, rss = (statistics.median(x) for x in zip(*demo, strict=True))
    counts = imported(python, ["demo", "healthy"])
    models = counts["msgraph.generated.models"]
    ok &= cpu <= CPU_TARGET and rss <= RSS_TARGET_MB and models <= MODELS_TARGET
    print("mailtrace demo healthy (lab start + triage):")
    print(f"  wall {wall:.2f} s   CPU {cpu:.2f} s (target <= {CPU_TARGET} s)   "
          f"peak RSS {rss:.0f} MB (target <= {RSS_TARGET_MB} MB)")
    print(f"  msgraph.generated.models modules imported: {models} (target <= {MODELS_TARGET});"
          f" all msgraph modules {counts['msgraph']}")

    print(f"start-up, small inputs (target <= {STARTUP_TARGET * 1000:.0f} ms each):")
    for label, argv in COMMANDS:
        times = [measured(installed.command(python, *argv), cwd)[0] for _ in range(args.runs)]
        median = statistics.median(times)
        counts = imported(python, argv)
        loads = [name for name in ("msgraph", "kiota_abstractions", "mailtrace.lab")
                 if counts[name]]
        clean = label not in NO_SDK or not loads
        ok &= median <= STARTUP_TARGET and clean
        heavy = ", ".join(f"{n} {counts[n]}" for n in ("networkx", "pydantic", "dns",
                                                       "requests", "cryptography")
                          if counts[n]) or "none"
        print(f"  {label:<12} median {median * 1000:6.0f} ms (min {min(times) * 1000:.0f})  "
              f"{'OK  ' if median <= STARTUP_TARGET else 'OVER'}  "
              f"SDK/lab: {', '.join(loads) or 'none'}{'' if clean else ' (should be none)'}"
              f"  [modules: {heavy}]")
    print("PASS" if ok else "OVER TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
