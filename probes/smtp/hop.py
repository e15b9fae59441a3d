"""Observe one SMTP hop: every address of every inbound host of a tier, concurrently.

Each host's addresses (IPv4 and IPv6) are looked up and each gets a full probe dialogue
as soon as its host resolves; hosts are kept in MX preference order (the domain's MX
answer is shared with the DNS probes, so it costs no extra query).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from mailtrace.clients.dns import AddressLookup, DnsObservation, Outcome
from mailtrace.clients.dnssec import ChainObservation, collect_chain
from mailtrace.clients.smtp import Dialogue
from mailtrace.probes.base import NotTested, ProbeContext
from mailtrace.probes.smtp.dane import tlsa_name
from mailtrace.topology.model import ExchangeOnlineTier, ExchangeOnPremTier, ProofpointTier


@dataclass(frozen=True)
class HostProbe:
    host: str
    lookup: AddressLookup
    dialogues: tuple[Dialogue, ...]

    @property
    def unresolvable(self) -> bool:
        """The name has no address, on the DNS's own word (not a lookup that failed)."""
        return not self.lookup.addresses and all(
            o.outcome in (Outcome.NXDOMAIN, Outcome.NODATA) for o in self.lookup.observations
        )


@dataclass(frozen=True)
class HopObservation:
    tier: str
    kind: str
    flavour: str | None  # proofpoint: pod | essentials
    recipient: str
    hosts: tuple[HostProbe, ...]  # MX preference order, then as declared
    restricted_to: str | None = None  # exchange-online: the tier its connector accepts
    #: Each host's TLSA RRset at _25._tcp.<host> and its chain of trust (DANE).
    tlsa: dict[str, ChainObservation] = field(default_factory=dict)
    #: exchange-onprem: the certificate name the hybrid connector expects.
    tls_name: str | None = None


def recipient_of(ctx: ProbeContext) -> str:
    """The recipient to ask about; with only a domain, its postmaster (RFC 5321 §4.5.1)."""
    return ctx.target.recipient or f"postmaster@{ctx.target.domain}"


def _mx_order(mx: DnsObservation, hosts: list[str]) -> list[str]:
    preference = {
        r.data.split()[1].rstrip(".").lower(): int(r.data.split()[0])
        for r in mx.records("MX") if len(r.data.split()) == 2 and r.data.split()[0].isdigit()
    }
    return sorted(hosts, key=lambda h: (preference.get(h, 65536), hosts.index(h)))


async def collect_hop(ctx: ProbeContext) -> HopObservation:
    tier = ctx.topology.tiers[ctx.tier]
    hosts = ctx.topology.inbound_hosts(ctx.tier)
    recipient = recipient_of(ctx)

    async def probe_host(host: str) -> HostProbe:
        lookup = await ctx.dns.addresses(host, ctx.deadline)
        dialogues = await asyncio.gather(*(
            ctx.smtp.dialogue(host, address, recipient, None, ctx.deadline)
            for address in lookup.addresses
        ))
        return HostProbe(host, lookup, tuple(dialogues))

    mx, probed, tlsa = await asyncio.gather(
        ctx.dns.lookup(ctx.target.domain, "MX", ctx.deadline),
        asyncio.gather(*(probe_host(host) for host in hosts)),
        asyncio.gather(*(collect_chain(ctx.dns, tlsa_name(host), "TLSA", ctx.deadline)
                         for host in hosts)),
    )
    by_host = {p.host: p for p in probed}
    ordered = tuple(by_host[h] for h in _mx_order(mx, hosts))
    if not any(p.dialogues or p.unresolvable for p in ordered):
        reasons = "; ".join(f"{p.host}: A {p.lookup.a.outcome.value}, AAAA "
                            f"{p.lookup.aaaa.outcome.value}" for p in ordered)
        raise NotTested(f"no address could be looked up for the hosts ({reasons})")
    return HopObservation(
        tier=ctx.tier,
        kind=tier.kind,
        flavour=tier.flavour if isinstance(tier, ProofpointTier) else None,
        recipient=recipient,
        hosts=ordered,
        restricted_to=tier.accepts_only_from if isinstance(tier, ExchangeOnlineTier) else None,
        tlsa=dict(zip(hosts, tlsa, strict=True)),
        tls_name=tier.tls_certificate_name if isinstance(tier, ExchangeOnPremTier) else None,
    )
