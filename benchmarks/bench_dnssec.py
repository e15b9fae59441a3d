"""Benchmark: DNSSEC validation of a full chain on the lab, and what a hostile key set costs.

The healthy contoso lab, its zones signed for the run (ECDSA P-256), DELAY before every
DNS answer (each lab resolver lookup is two answers deep: the resolver's and the
authoritative server's). Measured:

- fetch: :func:`collect_chain` for contoso.com MX — the RRset and the DNSKEY and DS of
  every name above it, asked at once with DO and CD — on a fresh client (no shared
  answers). Its bound is one lookup of the MX alone through the same resolver: the chain
  is one round trip deep whatever the name's depth. Target: fetch <= 1.5 x bound.
- validate: the pure walk root -> com -> contoso.com (six signature verifications).
- KeyTrap: the same chain with contoso.com's DNSKEY set replaced by 300 keys sharing the
  key tag of the MX signature, none of them its signer, validly signed by the zone's KSK
  (cf. CVE-2023-50387): validation stops at its bound and says bogus. Target: under 50 ms.

Run: python3 benchmarks/bench_dnssec.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataset
from cryptography.hazmat.primitives.asymmetric import ec

from mailtrace.clients.dns import DnsClient, Record, Server
from mailtrace.clients.dnssec import ChainObservation, collect_chain
from mailtrace.clients.dnssec_validate import Security, clear_cache, validate
from mailtrace.core.network import Redirects
from mailtrace.lab import scenarios
from mailtrace.lab.lab import Lab
from mailtrace.usecases.demo import lab_options

DELAY = 0.020
FETCH_RATIO = 1.5
KEYTRAP_TARGET_S = 0.050
HOSTILE_KEYS = 300


def client(lab: Lab) -> DnsClient:
    options = lab_options(lab)
    return DnsClient([Server("resolver", *lab.resolver)], Redirects(tuple(options.connect_to)),
                     trust_anchor=lab.trust_anchor)


async def fetch(lab: Lab, runs: int) -> tuple[list[float], list[float], ChainObservation]:
    bounds, fetches = [], []
    chain: ChainObservation | None = None
    for _ in range(runs):
        started = time.perf_counter()
        await client(lab).lookup("contoso.com", "MX", time.monotonic() + 10, dnssec=True,
                                 cd=True)
        bounds.append(time.perf_counter() - started)
        started = time.perf_counter()
        chain = await collect_chain(client(lab), "contoso.com", "MX", time.monotonic() + 10)
        fetches.append(time.perf_counter() - started)
    assert chain is not None
    return bounds, fetches, chain


def colliding_keys(tag: int, count: int) -> list[dns.rdata.Rdata]:
    """``count`` zone keys whose key tag is ``tag`` (the last 16-bit word adjusted)."""
    base = ec.generate_private_key(ec.SECP256R1()).public_key()
    proto = dns.dnssec.make_dnskey(base, dns.dnssec.Algorithm.ECDSAP256SHA256, flags=256)
    found = []
    for n in range(count * 2):
        key = bytearray(proto.key)
        key[0:2] = n.to_bytes(2, "big")
        first = type(proto)(proto.rdclass, proto.rdtype, 256, 3, 13, bytes(key))
        diff = (tag - dns.dnssec.key_id(first)) & 0xFFFF
        tail = int.from_bytes(key[-2:], "big")
        for carry in (0, -1, 1):
            key[-2:] = ((tail + diff + carry) & 0xFFFF).to_bytes(2, "big")
            candidate = type(proto)(proto.rdclass, proto.rdtype, 256, 3, 13, bytes(key))
            if dns.dnssec.key_id(candidate) == tag:
                found.append(candidate)
                break
        if len(found) == count:
            break
    return found


def hostile(chain: ChainObservation, lab: Lab) -> ChainObservation:
    """contoso.com's DNSKEY set: its KSK and HOSTILE_KEYS keys with the MX signature's key
    tag, signed by the KSK — what a zone built for KeyTrap serves."""
    tag = next(int(r.data.split()[6]) for r in chain.answer.answer if r.type == "RRSIG")
    keys = lab.signer.keys["contoso.com."]
    owner = dns.name.from_text("contoso.com.")
    rdatas = [keys.ksk[1], *colliding_keys(tag, HOSTILE_KEYS)]
    rdataset = dns.rdataset.from_rdata_list(300, rdatas)
    sig = dns.dnssec.sign((owner, rdataset), keys.ksk[0], owner, keys.ksk[1], lifetime=3600)
    records = (*(Record("contoso.com.", "DNSKEY", 300, r.to_text()) for r in rdatas),
               Record("contoso.com.", "RRSIG", 300, sig.to_text()))
    served = dataclasses.replace(chain.dnskey["contoso.com."], answer=records)
    return dataclasses.replace(chain, dnskey={**chain.dnskey, "contoso.com.": served})


def timed(chain: ChainObservation, runs: int) -> tuple[list[float], Security, int]:
    """Each run from a cold start: verified signatures are kept for the process (shared
    links are verified once per run), which would time a lookup, not the cryptography."""
    times = []
    verdict = validate(chain)
    for _ in range(runs):
        clear_cache()
        started = time.perf_counter()
        verdict = validate(chain)
        times.append(time.perf_counter() - started)
    return times, verdict.security, verdict.validations


async def measure(runs: int) -> dict[str, object]:
    async with Lab(scenarios.get("healthy"), dns_delay=DELAY) as lab:
        bounds, fetches, chain = await fetch(lab, runs)
        attack = hostile(chain, lab)
    return {"bounds": bounds, "fetches": fetches, "validate": timed(chain, runs * 10),
            "keytrap": timed(attack, runs)}


def ms(values: list[float]) -> str:
    return (f"median {statistics.median(values) * 1000:.2f} ms "
            f"(min {min(values) * 1000:.2f}, max {max(values) * 1000:.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    got = asyncio.run(measure(args.runs))
    bounds, fetches = got["bounds"], got["fetches"]
    assert isinstance(bounds, list) and isinstance(fetches, list)
    validate_times, security, checks = got["validate"]  # type: ignore[misc]
    trap_times, trap_security, trap_checks = got["keytrap"]  # type: ignore[misc]
    ratio = statistics.median(fetches) / statistics.median(bounds)
    print(f"lab DNS delay {DELAY * 1000:.0f} ms per answer; chain . -> com. -> contoso.com. "
          "(ECDSA P-256)")
    print(f"  bound (one MX lookup alone):       {ms(bounds)}")
    print(f"  fetch the chain (RRset + DNSKEY/DS at every level, at once): {ms(fetches)}"
          f"  ratio {ratio:.2f} (target <= {FETCH_RATIO})")
    print(f"  validate it ({checks} signature checks): {ms(validate_times)} -> {security}")
    print(f"  KeyTrap: {HOSTILE_KEYS} keys sharing the signature's key tag: {ms(trap_times)} "
          f"-> {trap_security} after {trap_checks} checks (target < "
          f"{KEYTRAP_TARGET_S * 1000:.0f} ms)")
    ok = (ratio <= FETCH_RATIO and security is Security.SECURE
          and trap_security is Security.BOGUS
          and statistics.median(trap_times) < KEYTRAP_TARGET_S)
    print("PASS" if ok else "OVER TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
