"""Hand-built observations for the pure ``evaluate`` functions: no sockets."""

from __future__ import annotations

from mailtrace.clients.dns import (
    AddressLookup,
    Delegation,
    DnsObservation,
    Outcome,
    Record,
    Server,
)
from mailtrace.clients.endpoints import Endpoint

RESOLVER = Server("resolver", "127.0.0.1", 5353)


def ns(name: str, address: str) -> Server:
    return Server("authoritative", address, 53, name)


def obs(
    server: Server,
    qname: str,
    qtype: str,
    outcome: Outcome = Outcome.ANSWER,
    answer: list[tuple[str, str, int, str]] | None = None,
    authority: list[tuple[str, str, int, str]] | None = None,
    flags: tuple[str, ...] = (),
) -> DnsObservation:
    rcode = {
        Outcome.ANSWER: "NOERROR", Outcome.NODATA: "NOERROR", Outcome.REFERRAL: "NOERROR",
        Outcome.NXDOMAIN: "NXDOMAIN", Outcome.SERVFAIL: "SERVFAIL", Outcome.REFUSED: "REFUSED",
    }.get(outcome)
    return DnsObservation(
        server=server,
        via=Endpoint(server.address, server.port),
        qname=qname,
        qtype=qtype,
        outcome=outcome,
        rcode=rcode,
        flags=flags,
        answer=tuple(Record(*r) for r in answer or []),
        authority=tuple(Record(*r) for r in authority or []),
    )


def addresses(host: str, *ips: str, outcome: Outcome | None = None,
              cname: str | None = None) -> AddressLookup:
    answer = [(host, "A", 300, ip) for ip in ips]
    if cname:
        answer.insert(0, (host, "CNAME", 300, cname))
    a = obs(RESOLVER, host, "A", outcome or (Outcome.ANSWER if ips else Outcome.NXDOMAIN), answer)
    aaaa = obs(RESOLVER, host, "AAAA", outcome or (Outcome.NODATA if ips else Outcome.NXDOMAIN))
    return AddressLookup(host, a, aaaa)


def soa(server: Server, zone: str, serial: int, outcome: Outcome = Outcome.ANSWER,
        aa: bool = True) -> DnsObservation:
    data = f"ns1.{zone} hostmaster.{zone} {serial} 3600 600 86400 300"
    answer = [(zone, "SOA", 300, data)] if outcome is Outcome.ANSWER else []
    return obs(server, zone, "SOA", outcome, answer, flags=("AA",) if aa else ())


def delegation(zone: str, servers: list[Server], parent: DnsObservation | None = None,
               soa_outcome: Outcome = Outcome.ANSWER) -> Delegation:
    names = sorted({s.name or "" for s in servers})
    ns_obs = obs(RESOLVER, zone, "NS", Outcome.ANSWER, [(zone, "NS", 300, n) for n in names])
    lookups = [addresses(n, *[s.address for s in servers if s.name == n]) for n in names]
    return Delegation(zone, soa(RESOLVER, zone, 1, soa_outcome, aa=False), ns_obs, parent,
                      names, [], lookups, servers)
