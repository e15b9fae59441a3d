"""Benchmark: SPF evaluation and `verify` against the lab with 50 ms on every DNS answer,
and checkdmarc beside mailtrace on the same lab domain.

Every answer costs DELAY: the authoritative servers wait DELAY before answering; the lab
resolvers in front of them add nothing of their own, so a recursive answer costs one
DELAY per zone it has to ask.

1. SPF check_host() of bench.example, whose SPF is a three-level include tree with eight
   includes (3 at level 1, 3 at level 2, 2 at level 3), for an address matched only by
   the last include (so every record is evaluated: 8 lookups). Critical path: the record
   of each level depends on the one above: 4 TXT answers, bound = 4 x DELAY. A
   sequential evaluator without prefetching waits 9 x DELAY.
2. `verify` of contoso.com (topology contoso-proofpoint-exo) across its two authoritative
   servers and a panel of three resolvers. Critical path: SOA/NS of the zone -> addresses
   of the name servers -> every record at every server (and, beside it, the resolvers'
   answers and the fit checks: a DKIM CNAME crosses two zones, two answers deep), so
   3 x DELAY.
3. checkdmarc (installed in a virtual environment of its own, see checkdmarc_env.py) and
   mailtrace on bench.example through the same lab resolver: checkdmarc's check_spf +
   check_dmarc, timed inside its own process, against mailtrace's lookup tree (the same
   static lookup count) + DMARC. Printed as a ratio. (The whole-process comparison of
   `verify` is bench_verify.py.)

Nothing leaves the machine: the process refuses any socket to a non-loopback address.
Run: python3 benchmarks/bench_auth.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import json
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import checkdmarc_env
import dns.name
import dns.rdata
import dns.zone

from mailtrace.clients.dns import DnsClient, Server
from mailtrace.clients.dns_lookup import DnsLookup
from mailtrace.core.network import Endpoint
from mailtrace.lab.auth_worlds import VERIFY
from mailtrace.lab.dns_server import AuthoritativeServer, Fault, ForwardingResolver
from mailtrace.lab.lab import Lab
from mailtrace.mailauth.spf import check_host
from mailtrace.mailauth.spf_tree import lookup_tree
from mailtrace.probes.auth import checks
from mailtrace.topology import load_topology
from mailtrace.usecases.demo import lab_options
from mailtrace.usecases.verify import verify

DELAY = 0.050
TARGET_RATIO = 1.3
SPF_CHAIN = 4
VERIFY_CHAIN = 3

# level 1: l1a l1b l1c; level 2: l2a l2b (under l1a), l2c (under l1b); level 3: l3a (under
# l2a), l3b (under l2c). Each leaf authorizes its own /24; the address used is in l1c's,
# the last include evaluated, so all eight are.
TREE = {
    "bench.example": "include:l1a.bench.example include:l1b.bench.example "
                     "include:l1c.bench.example -all",
    "l1a.bench.example": "include:l2a.bench.example include:l2b.bench.example -all",
    "l1b.bench.example": "include:l2c.bench.example -all",
    "l1c.bench.example": "ip4:192.0.2.0/24 -all",
    "l2a.bench.example": "include:l3a.bench.example -all",
    "l2b.bench.example": "ip4:198.51.100.0/24 -all",
    "l2c.bench.example": "include:l3b.bench.example -all",
    "l3a.bench.example": "ip4:203.0.113.0/24 -all",
    "l3b.bench.example": "ip4:233.252.0.0/24 -all",
}
MATCHED_LAST = "192.0.2.9"


def refuse_leaving_the_machine() -> None:
    """Any socket to a non-loopback address fails: the lab is the only network."""
    original_connect = socket.socket.connect
    original_sendto = socket.socket.sendto

    def check(address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None:
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                raise OSError(f"benchmark: refusing to connect to {host!r}") from None
            if not ip.is_loopback:
                raise OSError(f"benchmark: refusing to leave the machine ({host})")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        return original_connect(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        check(args[-1])
        return original_sendto(self, data, *args)  # type: ignore[call-overload, no-any-return]

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[assignment]


def bench_zone() -> dns.zone.Zone:
    zone = dns.zone.Zone(dns.name.root, relativize=False)

    def add(name: str, rdtype: str, text: str) -> None:
        rdata = dns.rdata.from_text("IN", rdtype, text)
        zone.find_rdataset(dns.name.from_text(name), rdtype, create=True).add(rdata, 300)

    add(".", "SOA", "ns.lab. hostmaster.lab. 1 3600 600 86400 300")
    add(".", "NS", "ns.lab.")
    for name, spf in TREE.items():
        add(name, "TXT", f'"v=spf1 {spf}"')
    add("_dmarc.bench.example", "TXT", '"v=DMARC1; p=reject; rua=mailto:d@bench.example"')
    add("bench.example", "MX", "10 mx.bench.example.")
    add("mx.bench.example", "A", "127.0.0.9")
    return zone


class BenchDns:
    """bench.example on an authoritative server (DELAY per answer) behind a resolver."""

    async def __aenter__(self) -> BenchDns:
        self.server = AuthoritativeServer([bench_zone()], fault=Fault(delay=DELAY))
        await self.server.start()
        self.resolver = ForwardingResolver({".": [self.server.address]})
        await self.resolver.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.resolver.stop()
        await self.server.stop()

    def client(self) -> DnsClient:
        return DnsClient([Server("resolver", *self.resolver.address)])


def report(title: str, times: list[float], bound: float | None, extra: str = "") -> bool:
    median = statistics.median(times)
    line = f"{title:<44} median {median * 1000:7.1f} ms  (min {min(times) * 1000:.1f}, " \
           f"max {max(times) * 1000:.1f})"
    ok = True
    if bound is not None:
        ratio = median / bound
        ok = ratio <= TARGET_RATIO
        line += f"  bound {bound * 1000:.0f} ms  ratio {ratio:.2f} {'OK' if ok else 'OVER'}"
    print(line + (f"  {extra}" if extra else ""))
    return ok


async def spf_runs(runs: int) -> tuple[list[float], list[float], str]:
    spf_times, tree_times = [], []
    outcome = ""
    async with BenchDns() as lab:
        for _ in range(runs):
            lookup = DnsLookup(lab.client(), time.monotonic() + 10)
            started = time.perf_counter()
            result = await check_host(lookup, MATCHED_LAST, "bench.example", "a@bench.example")
            spf_times.append(time.perf_counter() - started)
            outcome = f"{result.result} via {result.matched}, {result.lookups} lookups"
            lookup = DnsLookup(lab.client(), time.monotonic() + 10)
            started = time.perf_counter()
            tree = await lookup_tree(lookup, "bench.example")
            tree_times.append(time.perf_counter() - started)
            assert tree.lookups == 8, tree.lookups
    return spf_times, tree_times, outcome


async def verify_runs(runs: int, delay: float = DELAY) -> tuple[list[float], str]:
    base = VERIFY["verify-converged"]
    probe_lab = Lab(base.scenario)
    delayed = {host: Fault(delay=delay) for host in probe_lab.servers}
    scenario = dataclasses.replace(base.scenario, faults=delayed)
    times: list[float] = []
    status = ""
    async with Lab(scenario) as lab:
        forwarders = {n.to_text(): e for n, e in lab.dns_resolver.forwarders.items()}
        extra = [ForwardingResolver(forwarders, host="127.0.0.1") for _ in range(2)]
        for resolver in extra:
            await resolver.start()
        try:
            options = dataclasses.replace(lab_options(lab, 20), resolvers=[
                lab.resolver_endpoint, *(Endpoint(*r.address) for r in extra)])
            topology = load_topology(lab.topology_path)
            for _ in range(runs):
                started = time.perf_counter()
                result = await verify(topology, "contoso.com", options)
                times.append(time.perf_counter() - started)
                status = f"{result.status}, {len(result.servers)} NS x " \
                         f"{len(result.resolvers)} resolvers x {len(result.records)} records"
        finally:
            for resolver in extra:
                await resolver.stop()
    return times, status


async def mailtrace_static(client_factory: Callable[[], DnsClient]) -> tuple[int, str]:
    lookup = DnsLookup(client_factory(), time.monotonic() + 10)
    tree, dmarc = await asyncio.gather(lookup_tree(lookup, "bench.example"),
                                       checks._dmarc(lookup, "bench.example"))
    record, _, _ = checks.dmarc_record(dmarc)
    return tree.lookups, record.policy if record else "none"


#: Run in checkdmarc's own environment: check_spf + check_dmarc through the resolver given,
#: each run timed in that process (JSON on stdout).
CHECKDMARC = """
import json, sys, time
import checkdmarc.dmarc, checkdmarc.spf, checkdmarc.utils
import dns.nameserver, dns.resolver

host, port, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def resolver():
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [dns.nameserver.Do53Nameserver(host, port)]
    r.timeout = r.lifetime = 5.0
    return r

times = []
for _ in range(runs):
    checkdmarc.utils.DNS_CACHE.clear()
    started = time.perf_counter()
    spf = checkdmarc.spf.check_spf("bench.example", resolver=resolver(), timeout=5.0)
    dmarc = checkdmarc.dmarc.check_dmarc("bench.example", resolver=resolver(), timeout=5.0)
    times.append(time.perf_counter() - started)
print(json.dumps({"times": times, "version": checkdmarc.__version__,
                  "lookups": spf.get("dns_lookups"), "error": spf.get("error"),
                  "p": dmarc.get("tags", {}).get("p", {}).get("value")}))
"""


def checkdmarc_side_by_side(runs: int) -> None:
    python = checkdmarc_env.python()
    if python is None:
        print("checkdmarc: not available; no comparison made")
        return

    async def run() -> None:
        async with BenchDns() as lab:
            host, port = lab.resolver.address
            ours = []
            lookups, policy = 0, ""
            for _ in range(runs):
                started = time.perf_counter()
                lookups, policy = await mailtrace_static(lab.client)
                ours.append(time.perf_counter() - started)
            done = await asyncio.to_thread(
                subprocess.run, [str(python), "-c", CHECKDMARC, host, str(port), str(runs)],
                capture_output=True, text=True, timeout=300, check=False)
            if done.returncode != 0:
                print(f"checkdmarc could not run: {done.stderr.strip()[-300:]}")
                return
            theirs = json.loads(done.stdout)
            if theirs["error"]:
                print(f"checkdmarc could not evaluate the lab domain: {theirs['error']}")
                return
            report("mailtrace SPF tree + DMARC (bench.example)", ours, None)
            report(f"checkdmarc {theirs['version']} check_spf + check_dmarc", theirs["times"],
                   None)
            print(f"  mailtrace: {lookups} lookups, p={policy}; checkdmarc: "
                  f"{theirs['lookups']} lookups, p={theirs['p']}")
            print(f"  ratio checkdmarc / mailtrace: "
                  f"{statistics.median(theirs['times']) / statistics.median(ours):.1f}x")

    asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    refuse_leaving_the_machine()
    print(f"DNS delay {DELAY * 1000:.0f} ms per answer; target <= {TARGET_RATIO} x bound; "
          f"{args.runs} runs each")
    spf_times, tree_times, outcome = asyncio.run(spf_runs(args.runs))
    ok = report("SPF check_host, 3 levels, 8 includes", spf_times, SPF_CHAIN * DELAY,
                f"[{outcome}; sequential would be {9 * DELAY * 1000:.0f} ms]")
    ok &= report("SPF lookup tree, 3 levels, 8 includes", tree_times, SPF_CHAIN * DELAY)
    verify_times, status = asyncio.run(verify_runs(args.runs))
    ok &= report("verify contoso.com, 2 NS x 3 resolvers", verify_times,
                 VERIFY_CHAIN * DELAY, f"[{status}]")
    # The lab runs in this process: every DNS exchange also costs the simulated servers'
    # CPU. The same run with no delay shows that cost; what the delay adds on top of it is
    # the time spent waiting on answers, to compare with the critical path.
    idle_times, _ = asyncio.run(verify_runs(args.runs, delay=0.0))
    waited = statistics.median(verify_times) - statistics.median(idle_times)
    report("verify, same run with 0 ms delay", idle_times, None,
           "[in-process lab and client CPU]")
    print(f"{'  of which waiting on DNS answers':<44} {waited * 1000:7.1f} ms  bound "
          f"{VERIFY_CHAIN * DELAY * 1000:.0f} ms  ratio {waited / (VERIFY_CHAIN * DELAY):.2f}")
    checkdmarc_side_by_side(args.runs)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
