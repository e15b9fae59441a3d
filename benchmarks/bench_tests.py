"""Benchmark: the whole test suite, as README runs it (``python -m pytest -q``, in
parallel as pyproject's addopts say), timed from start to exit. Target: <= 4 min on a
two-core machine. The machine's core count and load are printed beside the figure: other
work on the same cores slows every test that waits on a deadline.
Run: python3 benchmarks/bench_tests.py   (this checkout's environment, with '.[test]')
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 240.0


def main() -> int:
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    summary = next((line for line in reversed(done.stdout.splitlines()) if line.strip()), "")
    print(f"{cores} cores, load {load:.1f} at start; test suite wall {wall:.0f} s "
          f"({wall / 60:.1f} min; target <= {TARGET / 60:.0f} min): {summary}")
    ok = done.returncode == 0 and wall <= TARGET
    print("PASS" if ok else "OVER TARGET" if done.returncode == 0 else "TESTS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
