"""Benchmark: time to verdict over the SMTP hops with 50 ms on every SMTP reply.

The healthy contoso lab: a two-host Proofpoint gateway and the Exchange Online edge,
every SMTP reply (banner, EHLO, STARTTLS, EHLO, MAIL, RCPT, RSET, QUIT) delayed by DELAY.
Hosts and their addresses are probed concurrently, so the bound is the longest single
SMTP dialogue plus the DNS chain before it (the host's address lookup), both measured
alone in the same lab:

    bound = max over hosts (address lookup + one full dialogue)

Target: time to verdict <= 1.3 x bound. The triage runs the public-DNS and SMTP probes (the
gateway's APIs and the tenant's Graph have their own benchmarks: bench_triage, bench_graph).
Run: python3 benchmarks/bench_smtp.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from mailtrace.clients.dns import DnsClient, Server
from mailtrace.clients.smtp import SmtpClient
from mailtrace.core.network import Redirects
from mailtrace.lab import scenarios
from mailtrace.lab.lab import Lab
from mailtrace.probes.registry import TRIAGE as ALL
from mailtrace.topology import load_topology
from mailtrace.usecases.demo import lab_options
from mailtrace.usecases.triage import make_target, run_triage

DELAY = 0.050
TARGET_RATIO = 1.3
HOSTS = ("mx0a-001234.pphosted.com", "mx0b-001234.pphosted.com",
         "contoso-com.mail.protection.outlook.com")


async def bound(lab: Lab) -> tuple[float, int]:
    """The slowest host's address lookup plus its dialogue, each measured alone."""
    options = lab_options(lab)
    worst, replies = 0.0, 0
    for host in HOSTS:
        dns = DnsClient([Server("resolver", *lab.resolver)], Redirects(tuple(options.connect_to)))
        smtp = SmtpClient(Redirects(tuple(options.connect_to)), ca_file=lab.ca_file)
        started = time.perf_counter()
        lookup = await dns.addresses(host, time.monotonic() + 10)
        d = await smtp.dialogue(host, lookup.addresses[0], lab.recipient, None,
                                time.monotonic() + 10)
        worst = max(worst, time.perf_counter() - started)
        replies = sum(1 for step in d.transcript if step.direction == "S" and step.text[3:4]
                      == " ")
    return worst, replies


async def one_run(lab: Lab) -> tuple[float, str]:
    topology = load_topology(lab.topology_path)
    target = make_target(topology, lab.recipient, None)
    started = time.perf_counter()
    probes = tuple(p for p in ALL if p.id.startswith(("dns.", "smtp.", "observer.")))
    report = await run_triage(topology, target, lab_options(lab, 30), probes)
    v = report.verdict
    return time.perf_counter() - started, f"{v.status}/{v.tier}/{v.tag}"


async def measure(runs: int) -> tuple[float, int, list[float], str]:
    async with Lab(scenarios.get("healthy"), smtp_delay=DELAY) as lab:
        limit, replies = await bound(lab)
        results = [await one_run(lab) for _ in range(runs)]
    return limit, replies, [r[0] for r in results], results[0][1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    limit, replies, times, outcome = asyncio.run(measure(args.runs))
    median = statistics.median(times)
    ratio = median / limit
    print(f"SMTP delay {DELAY * 1000:.0f} ms per reply ({replies} replies in a dialogue); "
          f"bound (slowest host: lookup + dialogue, alone) {limit * 1000:.1f} ms; "
          f"target <= {TARGET_RATIO} x bound")
    print(f"  healthy, 2 gateway hosts + Exchange Online edge: time to verdict median "
          f"{median * 1000:.1f} ms (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})"
          f"  ratio {ratio:.2f}  -> {outcome}")
    ok = ratio <= TARGET_RATIO
    print("PASS" if ok else "OVER TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
