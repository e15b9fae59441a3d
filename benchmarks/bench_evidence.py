"""Benchmark: time to read and explain a bounce or a header set (no network).

Measured: every file of the evidence corpus (tests/data/evidence), and the worst inputs
the caps allow: a header section of 1 MiB (100 Received hops kept, the rest filler
fields) and a 10 MiB bounce with 500 recipients. Target: corpus files < 10 ms each,
worst cases < 2 s.
Run: python3 benchmarks/bench_evidence.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from mailtrace.intake import dsn, headers, ndr
from mailtrace.intake import message as intake
from mailtrace.intake.tiers import HostMap
from mailtrace.topology import load_topology

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "evidence"
HOSTS = HostMap(load_topology(ROOT / "topologies" / "contoso-proofpoint-exo.yaml"))


def explain_bounce(data: bytes) -> int:
    text = intake.to_text(data)
    return len(ndr.analyze(dsn.parse_report(intake.parse_message(text), text), HOSTS).outcomes)


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
    big_headers, big_bounce = worst_headers(), worst_bounce()
    runs = max(1, args.runs // 10)
    print(f"header section of {len(big_headers) / 2**20:.1f} MiB, 100 hops "
          f"{timed(explain_headers, big_headers, runs):9.1f} ms")
    print(f"bounce of {len(big_bounce) / 2**20:.1f} MiB, 500 recipients        "
          f"{timed(explain_bounce, big_bounce, runs):9.1f} ms")


if __name__ == "__main__":
    main()
