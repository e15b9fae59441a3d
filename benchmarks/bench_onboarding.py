"""Benchmark: ``mailtrace init`` against the lab with 50 ms on every DNS answer, and the
HTML report of a failing triage.

The lab's resolver delays its answers too, so a recursive answer costs two DELAYs (the
resolver's and the authoritative server's) and one through a CNAME to another zone three.
init asks everything it can at once (MX, TXT, DMARC, MTA-STS, autodiscover, the classic
Exchange Online inbound host's address and every DKIM selector), then the MTA-STS policy
over HTTPS once its record says there is one (no DNS in the lab: a connection rule). Its
critical path is the DKIM selectors' CNAMEs into onmicrosoft.com or mail.microsoft:
bound = 3 x DELAY. The same drafts with no delay measure the CPU: the client's and the
lab's own (its resolver and name servers answer ~50 questions per draft in this very
process). Target, per lab domain: time to a draft <= bound + 1.3 x that CPU time.

The HTML report: render time and size of the mx-missing triage's page, and how much of
its evidence starts folded (the issue it answers: a 5,000 px page with every passing
transcript expanded).

Run: python3 benchmarks/bench_onboarding.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from mailtrace.lab import scenarios
from mailtrace.lab.lab import Lab
from mailtrace.report import html
from mailtrace.report.draft import check, render
from mailtrace.usecases.demo import demo, lab_options
from mailtrace.usecases.draft import draft_topology

DELAY = 0.050
CHAIN = 3
TARGET_RATIO = 1.3
DOMAINS = ("contoso.com", "fabrikam.com", "northwind.com")


async def time_init(runs: int, delay: float) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {d: [] for d in DOMAINS}
    async with Lab(scenarios.get("healthy"), dns_delay=delay) as lab:
        for _ in range(runs):
            for domain in DOMAINS:
                started = time.perf_counter()
                drafted = await draft_topology(domain, lab_options(lab, 20))
                timings[domain].append(time.perf_counter() - started)
                check(render(drafted))  # a draft that does not load fails the benchmark
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    bound = CHAIN * DELAY
    print(f"init against the lab, {DELAY * 1000:.0f} ms per DNS answer; bound "
          f"{bound * 1000:.0f} ms; target <= bound + {TARGET_RATIO} x the CPU (no delay)")
    ok = True
    cpu = asyncio.run(time_init(args.runs, 0.0))
    for domain, values in asyncio.run(time_init(args.runs, DELAY)).items():
        median, work = statistics.median(values), statistics.median(cpu[domain])
        target = bound + TARGET_RATIO * work
        ok &= median <= target
        print(f"  {domain:<14} median {median * 1000:6.1f} ms  best {min(values) * 1000:6.1f}"
              f" ms  (no delay: {work * 1000:5.1f} ms; target {target * 1000:6.1f} ms)  "
              f"{'ok' if median <= target else 'OVER'}")

    report = asyncio.run(demo(scenarios.get("mx-missing"), 30))
    renders = []
    for _ in range(args.runs):
        started = time.perf_counter()
        page = html.render(report)
        renders.append(time.perf_counter() - started)
    folded, opened = page.count("<details>"), page.count("<details open>")
    print(f"HTML report of mx-missing: {len(page.encode()) / 1024:.1f} KiB, rendered in "
          f"{statistics.median(renders) * 1000:.1f} ms (median); evidence blocks: "
          f"{folded} folded, {opened} open (the localized tier's)")
    print("all within target" if ok else "OVER TARGET")


if __name__ == "__main__":
    main()
