"""Benchmark: `mailtrace verify` as a whole process beside checkdmarc, 50 ms per DNS answer.

The lab world verify-converged: contoso.com on two authoritative servers, a resolver in
front of them that adds DELAY to every answer it gives (the resolver a user has in the
field is the slow part: the name servers themselves answer mailtrace at once). The lab
runs in this process; each tool runs as a process of its own, timed from start to exit,
against the same resolver:

- ``mailtrace verify`` with the lab's copy of the topology, ``--resolver``, the lab's
  ``--connect-to`` rules and ``--ca-file``: MX, SPF, DKIM, DMARC, MTA-STS and TLS-RPT at
  both name servers and through the resolver, and whether they fit the topology;
- checkdmarc (installed in a virtual environment of its own, see checkdmarc_env.py):
  ``check_domains(["contoso.com"])`` through the same resolver (SOA, NS, MX, SPF, DMARC,
  BIMI, MTA-STS, SMTP TLS reporting, DNSSEC; its STARTTLS test is off by default).

mailtrace runs as a user installs it (see installed.py; ``--here`` runs this
interpreter's). Target: mailtrace at least 5 x faster than checkdmarc, whole process.
Run: python3 benchmarks/bench_verify.py [--runs N] [--here]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any

import checkdmarc_env
import installed

from mailtrace.lab.auth_worlds import VERIFY
from mailtrace.lab.dns_server import Fault
from mailtrace.lab.lab import Lab

ROOT = Path(__file__).resolve().parent.parent
DELAY = 0.050
TARGET = 5.0

CHECKDMARC = """
import json, sys
import dns.nameserver, dns.resolver
import checkdmarc

host, port, domain = sys.argv[1], int(sys.argv[2]), sys.argv[3]
resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port)]
resolver.timeout = resolver.lifetime = 5.0
result = checkdmarc.check_domains([domain], resolver=resolver, timeout=5.0)
spf, dmarc = result["spf"], result["dmarc"]
print(json.dumps({"spf": spf.get("record") or spf.get("error"),
                  "dmarc": dmarc.get("record") or dmarc.get("error"),
                  "mx": [h.get("hostname") for h in result["mx"].get("hosts", [])]}))
"""


class LabThread:
    """A lab on an event loop of its own, in a thread, while this thread runs processes."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def __enter__(self) -> Lab:
        self.thread.start()
        self._run(self.lab.__aenter__())
        return self.lab

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._run(self.lab.__aexit__(kind, exc, tb))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def delayed_lab() -> Lab:
    scenario = VERIFY["verify-converged"].scenario
    faults = {**scenario.faults, "resolver": Fault(delay=DELAY)}
    return Lab(dataclasses.replace(scenario, faults=faults))


def timed(argv: list[str], cwd: Path = ROOT) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)
    return time.perf_counter() - started, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--here", action="store_true",
                        help="run this interpreter's mailtrace, not a user-like install")
    args = parser.parse_args()
    python = installed.python(args.here)
    checkdmarc = checkdmarc_env.python()
    print(f"DNS delay {DELAY * 1000:.0f} ms per resolver answer; {args.runs} runs each, "
          "whole processes")
    with LabThread(delayed_lab()) as lab:
        host, port = lab.resolver
        verify = installed.command(
            python, "verify", "--topology", str(lab.topology_path), "--resolver",
            f"{host}:{port}", "--ca-file", str(lab.ca_file), "--format", "json",
            *(f"--connect-to={rule}" for rule in lab.connect_to))
        ours: list[float] = []
        for _ in range(args.runs):
            elapsed, done = timed(verify, installed.workdir(python))
            if done.returncode != 0:
                print(f"mailtrace verify failed (exit {done.returncode}): {done.stderr[-500:]}")
                return 1
            ours.append(elapsed)
        doc = json.loads(done.stdout)
        records = ", ".join(f"{r['record']} {r['status']}" for r in doc.get("records", []))
        median = statistics.median(ours)
        print(f"mailtrace verify contoso.com    median {median * 1000:7.0f} ms "
              f"(min {min(ours) * 1000:.0f}, max {max(ours) * 1000:.0f})  -> "
              f"{doc.get('status')}: {records}")
        if checkdmarc is None:
            print("checkdmarc: not available; no comparison made")
            return 0
        theirs: list[float] = []
        for _ in range(args.runs):
            elapsed, done = timed([str(checkdmarc), "-c", CHECKDMARC, host, str(port),
                                   "contoso.com"])
            if done.returncode != 0:
                print(f"checkdmarc failed: {done.stderr[-500:]}")
                return 1
            theirs.append(elapsed)
        summary = json.loads(done.stdout)
        their_median = statistics.median(theirs)
        print(f"checkdmarc {checkdmarc_env.version(checkdmarc):<8} contoso.com  median "
              f"{their_median * 1000:7.0f} ms (min {min(theirs) * 1000:.0f}, "
              f"max {max(theirs) * 1000:.0f})  -> SPF {summary['spf']!r}, MX {summary['mx']}")
    ratio = their_median / median
    ok = ratio >= TARGET
    print(f"mailtrace is {ratio:.1f} x faster end to end (target >= {TARGET:g} x)")
    print("PASS" if ok else "UNDER TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
