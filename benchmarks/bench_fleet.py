"""Benchmark: ``mailtrace verify --domains`` over the lab's fleet (``mailtrace lab fleet``).

The lab runs in a process of its own (in the field the name servers and resolvers spend
their own CPU); each fleet run is a ``mailtrace`` process of its own, timed from start to
exit, its peak RSS read from the kernel (``wait4``). Figures and goals:

1. 1,000 lab domains, 50 ms added to every DNS answer, one process: wall <= 20 s,
   RSS <= 250 MB;
2. the same list on a LocalCluster of two worker processes (``--scheduler``): the same
   results (the NDJSON, sorted, line for line, without the times), wall <= 1.2 x figure 1;
3. a 100,000-line list streamed through the lab (no delay): RSS sampled every second, flat
   and <= 300 MB (``--stream-seconds`` stops it early with SIGINT, as Ctrl-C would: the
   output must still be valid NDJSON); and a 1,000,000-line list (a tenth duplicates) read
   and de-duplicated alone: its peak RSS;
4. a worker killed mid-run: domains lost or reported twice: 0.

Run: python3 benchmarks/bench_fleet.py [--domains 1000] [--stream 100000]
     [--stream-seconds S] [--skip-stream] [--skip-cluster]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VOLATILE = {"checked_at", "elapsed_ms", "old_answers_expired_everywhere_at", "old_expires_at"}


class FleetLab:
    """``mailtrace lab fleet`` in a process of its own."""

    def __init__(self, folder: Path, domains: int, delay: float) -> None:
        self.lab_file, self.domains = folder / "lab.yaml", folder / "domains.txt"
        self.argv = [sys.executable, "-m", "mailtrace", "lab", "fleet", "--domains",
                     str(domains), "--dns-delay", str(delay), "--lab-file", str(self.lab_file),
                     "--domains-file", str(self.domains)]
        self.topology = Path()

    def __enter__(self) -> FleetLab:
        started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "--topology " in line:
                self.topology = Path(line.split("--topology ", 1)[1].split()[0])
            if line.startswith("Ctrl-C"):
                break
        self.started_in = time.monotonic() - started
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)

    def verify(self, *more: str, domains: Path | None = None) -> list[str]:
        return [sys.executable, "-m", "mailtrace", "verify", "--domains",
                str(domains or self.domains), "--topology", str(self.topology), "--lab-file",
                str(self.lab_file), *more]


def timed(argv: list[str], sample: list[int] | None = None,
          stop_after: float | None = None) -> tuple[float, int, int]:
    """Run ``argv``: its wall time, peak RSS (bytes) and exit status; ``sample`` gets its
    RSS every second; ``stop_after`` seconds, it is sent SIGINT."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(1.0):
            if sample is not None:
                sample.append(_rss(proc.pid))
            if stop_after is not None and time.monotonic() - started > stop_after:
                proc.send_signal(signal.SIGINT)
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - started, usage.ru_maxrss * 1024, proc.returncode


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def stable(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: stable(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [stable(v) for v in doc]
    return doc


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def sorted_stable(path: Path) -> list[str]:
    return sorted(json.dumps(stable(d), sort_keys=True) for d in lines(path))


def mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


def cluster(folder: Path, workers: int = 2) -> Any:
    import dask
    from distributed import LocalCluster

    dask.config.set({"temporary-directory": str(folder)})
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, local_directory=str(folder), silence_logs=50)


def bench_fleet(args: argparse.Namespace, folder: Path) -> list[tuple[str, str, bool]]:
    rows: list[tuple[str, str, bool]] = []
    with FleetLab(folder, args.domains, 0.050) as lab:
        print(f"lab of {args.domains} domains, 50 ms per answer, up in {lab.started_in:.1f} s")
        one = folder / "one.ndjson"
        wall, rss, code = timed(lab.verify("--output", str(one)))
        got = lines(one)
        print(f"one process: {wall:.1f} s, peak RSS {mb(rss)}, exit {code}, "
              f"{len(got)} lines")
        rows.append((f"{args.domains} domains, 50 ms, one process",
                     f"{wall:.1f} s wall, RSS {mb(rss)}", wall <= 20 and rss <= 250e6))
        if args.skip_cluster:
            return rows
        local = cluster(folder)
        try:
            from distributed import Client

            with Client(local.scheduler_address) as client:
                client.wait_for_workers(2)
            two = folder / "two.ndjson"
            cwall, _, ccode = timed(lab.verify("--output", str(two), "--scheduler",
                                               local.scheduler_address))
            same = sorted_stable(two) == sorted_stable(one)
            print(f"2-worker LocalCluster: {cwall:.1f} s ({cwall / wall:.2f} x), exit {ccode}, "
                  f"same results: {same}")
            rows.append(("same on a 2-worker LocalCluster",
                         f"{cwall:.1f} s = {cwall / wall:.2f} x; same results: {same}",
                         same and cwall <= 1.2 * wall))
            rows.append(_killed(lab, local, folder, sorted_stable(one)))
        finally:
            local.close()
    return rows


def _killed(lab: FleetLab, local: Any, folder: Path, expected: list[str]
            ) -> tuple[str, str, bool]:
    from distributed import Client

    with Client(local.scheduler_address) as client:
        pids = list(client.run(os.getpid).values())
    out = folder / "killed.ndjson"
    killed: list[int] = []

    def kill_mid_run() -> None:
        while not killed:
            if out.exists() and out.read_text(encoding="utf-8").count("\n") >= 100:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    threading.Thread(target=kill_mid_run, daemon=True).start()
    timed(lab.verify("--output", str(out), "--scheduler", local.scheduler_address,
                     "--shard-size", "50"))
    docs = lines(out)
    seen = [d.get("domain") for d in docs]
    wanted = {json.loads(e)["domain"] for e in expected}
    lost = len(wanted - set(seen))
    twice = len(seen) - len(set(seen))
    same = sorted_stable(out) == expected
    print(f"a worker killed mid-run: {len(docs)} lines, lost {lost}, twice {twice}, "
          f"same results: {same}")
    return ("worker killed mid-run", f"lost {lost}, twice {twice}",
            bool(killed) and lost == 0 and twice == 0 and same)


def bench_stream(args: argparse.Namespace, folder: Path) -> list[tuple[str, str, bool]]:
    rows = []
    with FleetLab(folder, args.stream, 0.0) as lab:
        print(f"lab of {args.stream} domains up in {lab.started_in:.1f} s")
        out = folder / "stream.ndjson"
        samples: list[int] = []
        wall, peak, code = timed(lab.verify("--output", str(out)), samples,
                                 stop_after=args.stream_seconds)
        docs = lines(out)  # valid NDJSON, interrupted or not
        early = max(samples[5:15], default=0)
        print(f"{len(docs)} of {args.stream} lines in {wall:.0f} s (exit {code}); RSS "
              f"at 5-15 s {mb(early)}, at the end {mb(samples[-1] if samples else 0)}, "
              f"peak {mb(peak)}")
        flat = peak <= 300e6 and (not early or peak <= early * 1.25)
        rows.append((f"{args.stream}-line list streamed",
                     f"{len(docs)} lines in {wall:.0f} s; RSS {mb(early)} -> peak {mb(peak)}",
                     flat))
    big = folder / "million.txt"
    with big.open("w", encoding="utf-8") as fh:
        for i in range(1_000_000):
            fh.write(f"client-{i % 900_000:07d}.example\n")
    code = ("import sys\nfrom pathlib import Path\n"
            "from mailtrace.usecases.fleet.domains import read_lines\n"
            "from mailtrace.usecases.fleet.plan import Planner, Duplicate\n"
            "p = Planner(Path(sys.argv[2]), Path('.'))\n"
            "with open(sys.argv[1], 'rb') as fh:\n"
            "    dup = sum(isinstance(i, Duplicate) for i in p.items(read_lines(fh)))\n"
            "print(dup)\n")
    topology = ROOT / "topologies" / "contoso-proofpoint-exo.yaml"
    wall, peak, _ = timed([sys.executable, "-c", code, str(big), str(topology)])
    print(f"1,000,000-line list read and de-duplicated alone: {wall:.1f} s, peak RSS "
          f"{mb(peak)}")
    rows.append(("1,000,000 lines read + de-duplicated", f"{wall:.1f} s, RSS {mb(peak)}",
                 peak <= 300e6))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--stream", type=int, default=100_000)
    parser.add_argument("--stream-seconds", type=float, default=None,
                        help="stop the streamed run after this long (default: run it all)")
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--skip-cluster", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        folder = Path(tmp)
        rows = bench_fleet(args, folder)
        if not args.skip_stream:
            rows += bench_stream(args, folder)
    print("\n| figure | measured | goal met |\n|---|---|---|")
    for name, measured, ok in rows:
        print(f"| {name} | {measured} | {'yes' if ok else 'NO'} |")
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
