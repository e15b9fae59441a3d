"""The mail-authentication checks' lookups (:data:`mailtrace.mailauth.lookup.Lookup`)
through the project's DNS client: the lab, ``--resolver`` and ``--connect-to`` all apply,
and a timeout or SERVFAIL stays an error, never "no record"."""

from __future__ import annotations

import time
from dataclasses import dataclass

from mailtrace.clients.dns import DnsClient, DnsObservation, Outcome
from mailtrace.mailauth.lookup import Answer, absolute, txt_text, valid_name


def cname_chain(obs: DnsObservation) -> tuple[str, ...]:
    chain: list[str] = []
    current = obs.qname
    for _ in range(16):
        alias = next((r for r in obs.answer if r.type == "CNAME" and r.name == current), None)
        if alias is None or absolute(alias.data) in chain:
            break
        current = absolute(alias.data)
        chain.append(current)
    return tuple(chain)


def from_observation(obs: DnsObservation, rdtype: str) -> Answer:
    name = absolute(obs.qname)
    source = obs.server.label
    chain = cname_chain(obs) if rdtype != "CNAME" else ()
    if obs.outcome is Outcome.NXDOMAIN:
        return Answer(name, rdtype, "nxdomain", source=source, ttl=_negative_ttl(obs),
                      chain=chain)
    if obs.outcome is Outcome.NODATA:
        return Answer(name, rdtype, "nodata", source=source, ttl=_negative_ttl(obs),
                      chain=chain)
    if obs.outcome is not Outcome.ANSWER:
        return Answer(name, rdtype, "error", error=obs.error or obs.outcome.value, source=source)
    records = obs.records(rdtype)
    if not records:
        return Answer(name, rdtype, "nodata", source=source, chain=chain)
    try:
        data = tuple(txt_text(r.data) if rdtype == "TXT" else r.data for r in records)
    except Exception as exc:  # a TXT the server sent that does not parse back
        return Answer(name, rdtype, "error", error=f"unreadable answer: {exc}", source=source)
    return Answer(name, rdtype, "answer", data, min(r.ttl for r in records), source=source,
                  chain=chain)


def _negative_ttl(obs: DnsObservation) -> int | None:
    soa = obs.authority_records("SOA")
    return soa[0].ttl if soa else None


@dataclass
class DnsLookup:
    """Recursive lookups through the client's resolvers, within one deadline."""

    client: DnsClient
    deadline: float

    async def __call__(self, name: str, rdtype: str) -> Answer:
        if not valid_name(name):
            return Answer(name.lower(), rdtype, "error", error="not a valid domain name")
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return Answer(absolute(name), rdtype, "error", error="out of time")
        obs = await self.client.lookup(absolute(name), rdtype, self.deadline)
        return from_observation(obs, rdtype)
