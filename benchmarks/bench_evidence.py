"""Benchmark: time to read and explain a bounce or a header set (no network).

Measured: every file of the evidence corpus (tests/data/evidence), the real bounces of
tests/data/bounces (each read in-process as ``mailtrace ndr --all`` reads it: median,
95th percentile and slowest), and the worst inputs the caps allow: a header section of
1 MiB (100 Received hops kept, the rest filler fields) and a 10 MiB bounce with 500
recipients. Targets: corpus files < 10 ms each, real bounces <= 20 ms median, worst
cases < 2 s.
Run: python3 benchmarks/bench_evidence.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from mailtrace.intake import headers, ndr, readers
from mailtrace.intake import message as intake
from mailtrace.intake.tiers import HostMap
from mailtrace.topology import load_topology

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "evidence"
BOUNCES = ROOT / "tests" / "data" / "bounces" / "samples"
HOSTS = HostMap(load_topology(ROOT / "topologies" / "contoso-proofpoint-exo.yaml"))


def explain_bounce(data: bytes) -> int:
    text = intake.to_text(data)
    return len(ndr.analyze(readers.parse_report(intake.parse_message(text), text), HOSTS).outcomes)


def explain_every_bounce(data: bytes) -> int:
    """As ``mailtrace ndr --all``: every message of the file; a non-bounce is an answer too."""
    count = 0
    for text in intake.split_mbox(intake.to_text(data)):
        try:
            count += len(ndr.analyze(readers.parse_report(intake.parse_message(text), text),
                                     HOSTS).outcomes)
        except intake.EvidenceError:
            continue
    return count


def real_bounces(runs: int) -> None:
    times = sorted(timed(explain_every_bounce, p.read_bytes(), runs)
                   for p in sorted(BOUNCES.iterdir()))
    p95 = times[min(len(times) - 1, round(len(times) * 0.95))]
    print(f"real bounces ({len(times)} files): median {statistics.median(times):.2f} ms, "
          f"95th percentile {p95:.2f} ms, slowest {times[-1]:.2f} ms")


def explain_headers(data: bytes) -> int:
    msg = intake.parse_message(intake.to_text(data))
    return len(headers.analyze([(str(k), str(v)) for k, v in msg.items()], HOSTS).hops)


def timed(run: Callable[[bytes], int], data: bytes, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run(data)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def worst_headers() -> bytes:
    hop = ("Received: from relay{i}.tailspin.example ([192.0.2.{j}]) by "
           "mx0a-001234.pphosted.com (PPS) with ESMTPS id q{i}; "
           "Sun, 29 Nov 2026 09:{m:02d}:00 +0000\n")
    text = "".join(hop.format(i=i, j=i % 250, m=i % 60) for i in range(100))
    filler = "X-Filler: " + "f" * 70 + "\n"
    text += filler * ((intake.MAX_HEADER_BYTES - len(text)) // len(filler) - 1)
    return (text + "\n").encode()


def worst_bounce() -> bytes:
    head = ("From: MAILER-DAEMON@mx0a-001234.pphosted.com\nMIME-Version: 1.0\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
            "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; "
            "mx0a-001234.pphosted.com\n\n")
    block = ("Final-Recipient: rfc822; user{i}@contoso.com\nAction: failed\nStatus: 5.4.1\n"
             "Remote-MTA: dns; contoso-com.mail.protection.outlook.com\n"
             "Diagnostic-Code: smtp; 550 5.4.1 Recipient address rejected: Access denied. "
             "AS(201806281)\n\n")
    body = head + "".join(block.format(i=i) for i in range(500)) + "--b--\n"
    padding = "x" * 76 + "\n"
    body += padding * ((intake.MAX_MESSAGE_BYTES - len(body)) // len(padding) - 1)
    return body.encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    for folder, run in (("ndr", explain_bounce), ("headers", explain_headers)):
        for path in sorted((CORPUS / folder).iterdir()):
            print(f"{folder}/{path.name:<48} {timed(run, path.read_bytes(), args.runs):7.2f} ms")
    real_bounces(max(1, args.runs // 4))
    big_headers, big_bounce = worst_headers(), worst_bounce()
    runs = max(1, args.runs // 10)
    print(f"header section of {len(big_headers) / 2**20:.1f} MiB, 100 hops "
          f"{timed(explain_headers, big_headers, runs):9.1f} ms")
    print(f"bounce of {len(big_bounce) / 2**20:.1f} MiB, 500 recipients        "
          f"{timed(explain_bounce, big_bounce, runs):9.1f} ms")


if __name__ == "__main__":
    main()
