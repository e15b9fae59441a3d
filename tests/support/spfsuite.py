"""The RFC 7208 conformance suite served by the lab's DNS servers (shared by the test and
the benchmark).

Each scenario's ``zonedata`` becomes one root zone on an :class:`AuthoritativeServer`,
behind the lab's :class:`ForwardingResolver`; the evaluator asks through
:class:`DnsClient`, over real DNS on loopback. The suite's conventions (data/README.md):
records given as ``SPF`` are also served as TXT unless the name has TXT records of its
own (as the suite's reference driver does); ``TIMEOUT`` makes every question about that
name that has no record time out (a drop fault for those questions).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone
import yaml

from mailtrace.clients.dns import DnsClient, Server
from mailtrace.clients.dns_lookup import DnsLookup
from mailtrace.lab.dns_server import AuthoritativeServer, Fault, ForwardingResolver
from mailtrace.mailauth.spf import SpfResult, check_host
from tests.support.paths import ROOT as _ROOT

#: The repository's copy (a clean clone has only this one) ...
COPY = _ROOT / "tests" / "data" / "rfc7208" / "rfc7208-tests.yml"
#: ... and the shared data folder beside the project (data/README.md: ../shared/data/),
#: also found from a worktree one level further down.
SHARED = next((p / "shared" / "data" / "rfc7208" for p in (_ROOT.parent, _ROOT.parent.parent)
               if (p / "shared" / "data" / "rfc7208").is_dir()), None)
SUITE = SHARED / "rfc7208-tests.yml" if SHARED is not None else COPY
#: Types check_host() may ask for; a TIMEOUT name drops those it has no record of.
ASKED = ("TXT", "SPF", "A", "AAAA", "MX", "PTR", "CNAME")


@dataclass(frozen=True)
class Case:
    scenario: str
    name: str
    host: str
    mailfrom: str
    helo: str
    results: tuple[str, ...]
    explanation: str | None
    zonedata: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.scenario}/{self.name}"


def cases() -> Iterator[Case]:
    with SUITE.open(encoding="utf-8") as fh:
        documents = list(yaml.safe_load_all(fh))
    for doc in documents:
        zonedata = doc.get("zonedata") or {}
        for name, test in doc["tests"].items():
            result = test["result"]
            results = tuple(result) if isinstance(result, list) else (result,)
            yield Case(doc["description"], name, str(test["host"]), str(test["mailfrom"]),
                       str(test["helo"]), results, test.get("explanation"), zonedata)


def _strings(value: Any) -> list[bytes]:
    texts = value if isinstance(value, list) else [value]
    out: list[bytes] = []
    for text in texts:
        try:
            raw = str(text).encode("latin-1")
        except UnicodeEncodeError:
            raw = str(text).encode("utf-8")
        out.extend(raw[i:i + 255] for i in range(0, len(raw), 255)) if raw else out.append(b"")
    return out


def _txt(value: Any) -> dns.rdata.Rdata | None:
    strings = _strings(value)
    if not strings:
        return None  # a TXT record with no string cannot be put on the wire
    quoted = " ".join('"' + "".join(f"\\{b:03d}" for b in s) + '"' for s in strings)
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, quoted)


def build_zone(zonedata: dict[str, Any]) -> tuple[dns.zone.Zone, set[tuple[str, str]]]:
    """The scenario's records as one root zone, and the questions that must time out."""
    zone = dns.zone.Zone(dns.name.root, relativize=False)
    soa = dns.rdata.from_text("IN", "SOA", "ns.lab. hostmaster.lab. 1 3600 600 86400 300")
    zone.find_rdataset(dns.name.root, "SOA", create=True).add(soa, 300)
    ns = dns.rdata.from_text("IN", "NS", "ns.lab.")
    zone.find_rdataset(dns.name.root, "NS", create=True).add(ns, 300)
    timeouts: set[tuple[str, str]] = set()
    for owner_text, entries in zonedata.items():
        try:
            owner = dns.name.from_text(str(owner_text))
        except Exception:
            continue  # not a name DNS can carry (a 64-octet label): nothing to serve
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        present: set[str] = set()
        timeout = False
        for entry in entries:
            if entry == "TIMEOUT":
                timeout = True
                continue
            ((rtype, value),) = entry.items()
            if value == "NONE":
                continue  # no record, but no TXT copy of the SPF ones either
            rdatas: list[tuple[str, dns.rdata.Rdata | None]] = []
            if rtype in ("TXT", "SPF"):
                txt = _txt(value)
                rdatas.append((rtype, None if txt is None else dns.rdata.from_wire(
                    "IN", rtype, txt.to_digestable(), 0, len(txt.to_digestable()))))
                if rtype == "SPF" and not has_txt:
                    rdatas.append(("TXT", txt))
            elif rtype == "MX":
                pref, host = value
                rdatas.append(("MX", dns.rdata.from_text("IN", "MX", f"{pref} {host}.")))
            elif rtype in ("PTR", "CNAME"):
                rdatas.append((rtype, dns.rdata.from_text("IN", rtype,
                                                          str(value).rstrip(".") + ".")))
            else:
                rdatas.append((rtype, dns.rdata.from_text("IN", rtype, str(value))))
            for kind, rdata in rdatas:
                present.add(kind)
                if rdata is not None:
                    zone.find_rdataset(owner, kind, create=True).add(rdata, 300)
        present.discard("NONE")
        if timeout:
            timeouts |= {(owner.to_text(), t) for t in ASKED if t not in present}
    return zone, timeouts


async def run_case(case: Case, *, delay: float = 0.0) -> SpfResult:
    zone, timeouts = build_zone(case.zonedata)
    fault = Fault("drop", delay=delay, questions=frozenset(timeouts)) if timeouts \
        else Fault(delay=delay)
    async with AuthoritativeServer([zone], fault=fault) as server:
        resolver = ForwardingResolver({".": [server.address]}, timeout=0.5)
        async with resolver:
            client = DnsClient([Server("resolver", *resolver.address)], attempt_timeout=0.5)
            lookup = DnsLookup(client, time.monotonic() + 10)
            domain = case.mailfrom.rpartition("@")[2] if case.mailfrom else case.helo
            sender = case.mailfrom or f"postmaster@{case.helo}"
            return await check_host(lookup, case.host, domain, sender, case.helo)
