"""Benchmark: the Exchange Online tier's Graph calls run concurrently where independent.

Every answer of the lab's Graph stand-in is delayed by DELAY (50 ms), and so is every DNS
answer (each authoritative server waits DELAY; the lab resolver in front of them adds
nothing of its own, so a recursive answer also costs one DELAY). The lab runs in a process
of its own (lab_process.py), as servers do in the field: its answers cost the triage no
CPU. The triage runs the public-DNS and the tenant's (Graph) probes only: the SMTP
hops and the authentication records have benchmarks of their own. It starts every probe
at once: the tenant tier does not wait for public
DNS (its probes depend on no DNS probe), so the two chains run side by side.

The longest chain of dependent Graph calls (healthy contoso tenant):

    list users / groups / contacts by address (at once)  ->  mailboxSettings, inbox rules,
                                                             MailTips (at once)
    list message traces                                  ->  details by recipient (for
                                                             the undelivered ones, at once)
    get domain + serviceConfigurationRecords + DNS MX/TXT (at once)
    list service health issues

so 2 round trips: Graph bound = 2 x DELAY. The DNS chain beside it is 3 round trips
(benchmarks/bench_triage.py), so the bound for the whole triage is
max(3, 2) x DELAY = 150 ms; with DNS answering at once, the bound is the Graph chain,
100 ms. Target: time to verdict <= 1.3 x bound. Also printed: how many Graph calls were
made, and what they would cost one after the other.

msgraph-sdk's request path is loaded before the timed runs (a cold process pays for it
once, in a thread beside the DNS probes: printed separately). The CPU time of each triage
is printed too, and how many of msgraph-sdk's model modules the process has imported: the
answers are read as JSON into the client's own small models, so reading them costs
little CPU and imports none of the SDK's model graph. The last section repeats the
measure at 200 ms per answer, closer to real Graph latencies.
Run: python3 benchmarks/bench_graph.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from lab_process import LabProcess

from mailtrace.clients.msgraph.client import load_sdk
from mailtrace.probes.registry import TRIAGE as ALL
from mailtrace.topology import load_topology
from mailtrace.usecases.triage import make_target, run_triage

#: The probes this benchmark times: public DNS (and the observer's resolver check) and
#: the tenant's Graph probes.
PROBES = tuple(p for p in ALL if p.id.startswith(("dns.", "exo.")))

DELAY = 0.050
GRAPH_CHAIN = 2
DNS_CHAIN = 3
TARGET_RATIO = 1.3
EXO = "exchange-online"


def one_run(name: str, dns_delay: float,
            graph_delay: float) -> tuple[float, float, str, int, float]:
    lab_process = LabProcess(name, ns_delay=dns_delay, graph_delay=graph_delay)
    with lab_process as lab:
        topology = load_topology(lab.topology_path)
        target = make_target(topology, lab.recipient, None)
        cpu = time.process_time()
        report = asyncio.run(run_triage(topology, target, lab.options(30), probes=PROBES))
        cpu = time.process_time() - cpu
    calls = lab_process.graph_requests[EXO]
    tenant_done = max(start + took for tier, _, start, took in report.timings.rows
                      if tier == EXO)
    v = report.verdict
    return (report.elapsed_ms / 1000, tenant_done / 1000, f"{v.status}/{v.tier}/{v.tag}",
            calls, cpu)


def cold_start() -> float:
    started = time.perf_counter()
    load_sdk()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(f"msgraph-sdk request path load (once per process, in a thread): "
          f"{cold_start() * 1000:.0f} ms")
    ok = True
    sections = (
        (DELAY, DELAY, max(DNS_CHAIN, GRAPH_CHAIN), "DNS and Graph 50 ms", True),
        (0.0, DELAY, GRAPH_CHAIN, "Graph 50 ms, DNS at once", True),
        (0.0, 4 * DELAY, GRAPH_CHAIN, "Graph 200 ms, DNS at once (for comparison)", False),
    )
    for dns_delay, graph_delay, chain, label, judged in sections:
        bound = chain * graph_delay if not dns_delay else max(DNS_CHAIN * dns_delay,
                                                               GRAPH_CHAIN * graph_delay)
        print(f"{label}: bound {chain} round trips = {bound * 1000:.0f} ms; "
              f"target <= {TARGET_RATIO} x bound")
        for name in ("healthy", "exo-trace-quarantined", "exo-rule-deletes-all"):
            one_run(name, dns_delay, graph_delay)  # warm this process's caches
            results: list[Any] = [one_run(name, dns_delay, graph_delay)
                                  for _ in range(args.runs)]
            times = [r[0] for r in results]
            median = statistics.median(times)
            tenant = statistics.median(r[1] for r in results)
            cpu = statistics.median(r[4] for r in results)
            ratio = median / bound
            if judged:
                ok &= ratio <= TARGET_RATIO
            calls = results[0][3]
            print(f"  {name:<22} time to verdict median {median * 1000:6.1f} ms "
                  f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}); tenant tier "
                  f"done at {tenant * 1000:.1f} ms; CPU {cpu * 1000:.0f} ms; {calls} Graph "
                  f"calls (one after the other: {calls * graph_delay * 1000:.0f} ms)  "
                  f"ratio {ratio:.2f}  -> {results[0][2]}")
    models = sum(1 for m in sys.modules if m.startswith("msgraph.generated.models."))
    print(f"msgraph.generated.models modules imported by this process: {models}")
    print("PASS" if ok else "OVER TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
