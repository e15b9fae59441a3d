"""A fleet of generated mail domains for the lab: thousands of client domains behind the
same gateway and tenant, a chosen share of them broken in known ways, and two resolver
panels (two vantage points) that do not see the same thing.

Nothing is stored per domain: domain ``i`` is ``client-<i>.example``, and everything about
it (its hosting provider's name servers, whether and how it is broken, its zone) is a
function of ``i`` and the seed. Its zone is written out when a server is first asked about
it (a few hundred of them are kept), so a lab of 100,000 domains starts as fast as one of
ten. The healthy records are what the topology the fleet is verified against expects (its
MX hosts, SPF terms and ``all``, DKIM selectors leading to its tenant, DMARC policy).

The breakages (``KINDS``), each on an exact share of the domains chosen by a permutation
of their numbers:

- ``mx-missing``: no MX record at all;
- ``spf-include-missing``: the SPF record lacks the gateway's include (its first term);
- ``dkim-selector-missing``: the last declared selector is not published;
- ``dmarc-weaker``: DMARC one step weaker than the topology declares (quarantine -> none);
- ``stale-secondary``: the domain's second name server still serves the previous zone
  (a lower SOA serial, the previous SPF record).

Regional domains (``regional`` share, among the healthy ones) changed their SPF record
lately: the ``us`` vantage's resolver still holds the previous record in its cache, with
an hour to go, while the ``eu`` one has the new record: the same domain is ``converged``
from one vantage and ``propagating`` from the other.

The domains' zones are delegated from the lab's ``example.`` zone, whose server answers
with referrals and glue for each of them; the name servers of the hosting providers
(``ns1/ns2.hosting<p>.example``) answer for the domains they host and refuse the others.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone

from mailtrace.lab.dns_server import (
    AuthoritativeServer,
    ForwardingResolver,
    Resolution,
    ZoneSource,
    normalise_name,
)
from mailtrace.lab.scenarios import Expectation, Scenario, ZoneEdit

if TYPE_CHECKING:
    from mailtrace.topology.model import Topology

KINDS = ("mx-missing", "spf-include-missing", "dkim-selector-missing", "dmarc-weaker",
         "stale-secondary")
#: The two vantage points of the lab: the second one's resolver holds old answers.
VANTAGES = ("eu", "us")
STALE_VANTAGE = "us"
TLD = "example"
TLD_SERVER = f"a.nic.{TLD}"
SERIAL = 2026120701
#: The term the previous SPF record still had (a retired sender's network).
RETIRED_TERM = "ip4:127.0.9.0/24"
#: How long the ``us`` resolver still holds a regional domain's previous SPF record.
CACHED_FOR = 3600
_ADDRESS_BASE = (127, 0, 30)
_WEAKER = {"reject": "quarantine", "quarantine": "none", "none": "none"}
#: Ed25519 keys (RFC 8463) the fleet's DKIM selectors lead to: short, and real keys.
DKIM_KEY = "v=DKIM1; k=ed25519; p=7GxAC0yfoGZz41/T0iKQbglEmtGfM5oiYWu9+udaTzw="


@dataclass(frozen=True)
class FleetRecords:
    """What a healthy domain of the fleet publishes: what the topology expects."""

    mx: tuple[str, ...]
    spf_terms: tuple[str, ...]
    spf_all: str
    selectors: tuple[str, ...]
    #: The Exchange Online tenant (``<name>.onmicrosoft.com``) the selectors lead to, by
    #: CNAME; None: the key is published at the selector itself.
    tenant: str | None
    dmarc: str

    @property
    def dkim_target(self) -> str | None:
        """Where each selector's CNAME leads, ``{selector}`` and ``{dashed}`` (the domain
        with dashes) to fill in: Exchange Online's classic form (mailauth.dkim)."""
        return "{selector}-{dashed}._domainkey." + self.tenant if self.tenant else None

    @classmethod
    def of(cls, topology: Topology) -> FleetRecords:
        from mailtrace.topology.model import DnsTier, ExchangeOnlineTier

        tier = next(t for t in topology.tiers.values() if isinstance(t, DnsTier))
        expect = tier.expect
        hosts = [h for h in expect.mx or [] if "*" not in h]
        if not hosts:
            raise ValueError(f"topology {topology.topology} declares no MX host to publish")
        tenant = next((t.tenant for t in topology.tiers.values()
                       if isinstance(t, ExchangeOnlineTier) and t.tenant), None)
        selectors = tuple(expect.dkim.selectors) if expect.dkim else ()
        if tenant and not tenant.endswith(".onmicrosoft.com"):
            tenant = None
        spf = expect.spf
        return cls(
            mx=tuple(h.lower().rstrip(".") for h in hosts),
            spf_terms=tuple([*(f"include:{i}" for i in spf.include), *spf.mechanisms]
                            if spf else []),
            spf_all=(spf.all if spf and spf.all else "-all"),
            selectors=selectors,
            tenant=tenant,
            dmarc=(expect.dmarc.policy if expect.dmarc and expect.dmarc.policy
                   else "quarantine"),
        )


@dataclass(frozen=True)
class Expected:
    """What verify must say about one domain from one vantage."""

    status: str  # converged | differs | propagating
    #: The records that do not match ("MX", "DKIM selector2"...), the broken one first.
    records: tuple[str, ...] = ()


@dataclass(frozen=True)
class FleetWorld:
    """``count`` generated domains; ``broken`` and ``regional`` are shares of them."""

    count: int
    records: FleetRecords
    broken: float = 0.1
    regional: float = 0.05
    seed: int = 1
    providers: int = 4
    _digits: int = field(init=False, repr=False, default=0)
    _step: int = field(init=False, repr=False, default=1)

    def __post_init__(self) -> None:
        if not 1 <= self.count <= 10_000_000:
            raise ValueError("a fleet has between 1 and 10,000,000 domains")
        if not (0 <= self.broken <= 1 and 0 <= self.regional <= 1
                and self.broken + self.regional <= 1):
            raise ValueError("broken and regional are shares between 0 and 1, "
                             "together at most 1")
        if not 1 <= self.providers <= 50:
            raise ValueError("between 1 and 50 hosting providers")
        object.__setattr__(self, "_digits", max(6, len(str(self.count - 1))))
        # An affine permutation of 0..count-1 (a step near count/golden ratio, coprime
        # with count) spreads each kind over the whole list.
        step = max(1, round(self.count * 0.6180339887)) + self.seed
        while math.gcd(step, self.count) != 1:
            step += 1
        object.__setattr__(self, "_step", step)

    # -- names -----------------------------------------------------------------------------

    def name(self, i: int) -> str:
        return f"client-{i:0{self._digits}d}.{TLD}"

    def domains(self) -> Iterator[str]:
        return (self.name(i) for i in range(self.count))

    def index(self, name: str | dns.name.Name) -> int | None:
        """The fleet domain ``name`` is at or below, by number; None for any other."""
        text = name.to_text() if isinstance(name, dns.name.Name) else name
        labels = text.lower().rstrip(".").split(".")
        if len(labels) < 2 or labels[-1] != TLD:
            return None
        match = _CLIENT.fullmatch(labels[-2])
        if match is None or len(match[1]) != self._digits:
            return None
        i = int(match[1])
        return i if i < self.count else None

    def hosts(self, i: int) -> tuple[str, str]:
        """The name servers of domain ``i``: its hosting provider's pair."""
        p = i % self.providers
        return f"ns1.hosting{p}.{TLD}", f"ns2.hosting{p}.{TLD}"

    def name_servers(self) -> list[str]:
        return [h for p in range(self.providers) for h in self.hosts(p)]

    def address(self, host: str) -> str:
        """A name server's loopback address (as the ``example.`` zone publishes it)."""
        if host == TLD_SERVER:
            return ".".join(map(str, (*_ADDRESS_BASE, 1)))
        number = self.name_servers().index(host)
        return ".".join(map(str, (*_ADDRESS_BASE, 10 + number)))

    # -- what each domain is -----------------------------------------------------------------

    def _rank(self, i: int) -> int:
        digest = hashlib.blake2b(str(self.seed).encode(), digest_size=8).digest()
        return (i * self._step + int.from_bytes(digest, "big")) % self.count

    @property
    def broken_count(self) -> int:
        return round(self.count * self.broken)

    @property
    def regional_count(self) -> int:
        return round(self.count * self.regional)

    def kind(self, i: int) -> str | None:
        """How domain ``i`` is broken (one of ``KINDS``), or None."""
        rank = self._rank(i)
        if rank >= self.broken_count:
            return None
        return KINDS[rank * len(KINDS) // self.broken_count]

    def is_regional(self, i: int) -> bool:
        rank = self._rank(i)
        return self.broken_count <= rank < self.broken_count + self.regional_count

    def expected(self, domain: str, vantage: str | None = None) -> Expected:
        """What verify must say about ``domain`` from ``vantage`` (None: from ``eu``)."""
        i = self.index(domain)
        if i is None:
            raise ValueError(f"{domain} is not a domain of this fleet")
        kind = self.kind(i)
        # Without the gateway's include, the gateway's mail fails SPF and so DMARC too
        # when the policy enforces (DMARC_SENDER_NOT_ALIGNED).
        spf = ("SPF", "DMARC") if self.records.dmarc != "none" else ("SPF",)
        records = {"mx-missing": ("MX",), "spf-include-missing": spf,
                   "stale-secondary": ("SPF",), "dmarc-weaker": ("DMARC",),
                   "dkim-selector-missing": (f"DKIM {self.records.selectors[-1]}",)
                   if self.records.selectors else ()}.get(kind or "", ())
        if records:
            return Expected("differs", records)
        if self.is_regional(i) and vantage == STALE_VANTAGE:
            return Expected("propagating", ("SPF",))
        return Expected("converged")

    # -- zones -------------------------------------------------------------------------------

    def spf(self, i: int, previous: bool = False) -> str:
        terms = list(self.records.spf_terms)
        if self.kind(i) == "spf-include-missing" and terms:
            terms = terms[1:]
        if previous:
            terms.append(RETIRED_TERM)
        return " ".join(["v=spf1", *terms, self.records.spf_all])

    def zone_text(self, i: int, previous: bool = False) -> str:
        """Domain ``i``'s zone as a master file; ``previous``: as it was before its last
        change (a lower serial, the SPF record with the retired sender)."""
        name, kind, rec = self.name(i), self.kind(i), self.records
        ns1, ns2 = self.hosts(i)
        lines = [f"$ORIGIN {name}.", "$TTL 300",
                 f"@ IN SOA {ns1}. hostmaster.{name}. {SERIAL - previous} 7200 3600 1209600 300",
                 f"@ IN NS {ns1}.", f"@ IN NS {ns2}."]
        if kind != "mx-missing":
            lines += [f"@ 3600 IN MX 10 {host}." for host in rec.mx]
        lines.append(f'@ IN TXT "{self.spf(i, previous)}"')
        policy = _WEAKER[rec.dmarc] if kind == "dmarc-weaker" else rec.dmarc
        lines.append(f'_dmarc IN TXT "v=DMARC1; p={policy}; rua=mailto:dmarc@{name}"')
        selectors = list(rec.selectors)
        if kind == "dkim-selector-missing" and selectors:
            selectors.pop()
        dashed = name.replace(".", "-")
        for selector in selectors:
            if rec.dkim_target:
                target = rec.dkim_target.format(selector=selector, dashed=dashed)
                lines.append(f"{selector}._domainkey IN CNAME {target}.")
            else:
                lines.append(f'{selector}._domainkey IN TXT "{DKIM_KEY}"')
        return "\n".join(lines) + "\n"

    def zone(self, i: int, previous: bool = False) -> dns.zone.Zone:
        return _zone(self, i, previous)

    def tld_zone(self, i: int | None = None) -> dns.zone.Zone:
        """The ``example.`` zone: its server and the providers' name servers, and with
        ``i`` the delegation of domain ``i`` (a slice of the zone holding that cut)."""
        return _tld_zone(self, i)

    def _tld_text(self, i: int | None) -> str:
        lines = [f"$ORIGIN {TLD}.", "$TTL 86400",
                 f"@ IN SOA {TLD_SERVER}. hostmaster.nic.{TLD}. {SERIAL} 1800 900 604800 86400",
                 f"@ IN NS {TLD_SERVER}.", f"{TLD_SERVER}. IN A {self.address(TLD_SERVER)}"]
        lines += [f"{host}. IN A {self.address(host)}" for host in self.name_servers()]
        if i is not None:
            lines += [f"{self.name(i)}. 172800 IN NS {host}." for host in self.hosts(i)]
        return "\n".join(lines) + "\n"

    def source(self, host: str) -> ZoneSource:
        """What the server ``host`` serves beyond its static zones: the zones of the
        domains its provider hosts (the previous one, when it is the stale secondary of
        a domain), or for the ``example.`` server the slice delegating a domain."""

        def generated(name: dns.name.Name) -> dns.zone.Zone | None:
            i = self.index(name)
            if host == TLD_SERVER:
                return self.tld_zone(i) if name.is_subdomain(_TLD_NAME) else None
            if i is None or host not in self.hosts(i):
                return None
            stale = self.kind(i) == "stale-secondary" and host == self.hosts(i)[1]
            return self.zone(i, previous=stale)

        return generated

    # -- what a resolver of a vantage still holds ---------------------------------------------

    def cached(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType,
               vantage: str) -> str | None:
        """The previous SPF record of a regional domain, which the stale vantage's
        resolver still holds (None: nothing cached, ask the servers)."""
        if vantage != STALE_VANTAGE or rdtype != dns.rdatatype.TXT:
            return None
        i = self.index(name)
        if i is None or not self.is_regional(i) or normalise_name(name) != _absolute(
                self.name(i)):
            return None
        return self.spf(i, previous=True)

    def write_domains(self, path: Path) -> Path:
        """The domain list, one a line, as ``mailtrace verify --domains`` reads it."""
        with path.open("w", encoding="utf-8") as fh:
            for name in self.domains():
                fh.write(name + "\n")
        return path


_CLIENT = re.compile(r"client-(\d+)")
_TLD_NAME = dns.name.from_text(TLD)


def _absolute(name: str) -> dns.name.Name:
    return dns.name.from_text(name)


@lru_cache(maxsize=512)
def _zone(world: FleetWorld, i: int, previous: bool) -> dns.zone.Zone:
    """Domain ``i``'s zone, the same as :meth:`FleetWorld.zone_text` reads, built from
    record sets the domains share (the MX, the SPF record, the NS pair) and the few
    that name the domain: a tenth of the time of reading its text."""
    text = world.zone_text(i, previous)
    origin = dns.name.from_text(world.name(i))
    zone = dns.zone.Zone(origin, relativize=False)
    ttl = 300
    for line in text.splitlines():
        if line.startswith("$TTL"):
            ttl = int(line.split()[1])
        if line.startswith("$"):
            continue
        owner, rest = line.split(" ", 1)
        fields = rest.split(" ", 3)
        record_ttl = int(fields[0]) if fields[0].isdigit() else ttl
        if fields[0].isdigit():
            fields = rest.split(" ", 4)[1:]
        _, rdtype, data = fields[0], fields[1], " ".join(fields[2:])
        name = origin if owner == "@" else dns.name.from_text(owner, origin)
        node = zone.find_node(name, create=True)
        rdataset = _rdataset(rdtype, record_ttl, data)
        known = node.get_rdataset(dns.rdataclass.IN, rdataset.rdtype)
        if known is not None:
            merged = dns.rdataset.Rdataset(dns.rdataclass.IN, rdataset.rdtype)
            merged.update_ttl(min(known.ttl, rdataset.ttl))
            for rdata in (*known, *rdataset):
                merged.add(rdata)
            rdataset = merged
        node.replace_rdataset(rdataset)
    return zone


@lru_cache(maxsize=4096)
def _rdataset(rdtype: str, ttl: int, data: str) -> dns.rdataset.Rdataset:
    """One record as a set (shared, read only, by every zone that has it)."""
    return dns.rdataset.from_text_list(dns.rdataclass.IN, rdtype, ttl, [data])


@lru_cache(maxsize=512)
def _tld_zone(world: FleetWorld, i: int | None) -> dns.zone.Zone:
    return dns.zone.from_text(world._tld_text(i), relativize=False)


def scenario(world: FleetWorld, topology: str) -> Scenario:
    """The lab world the fleet lives in: the example topology's, with the tenant's DKIM
    keys for every fleet domain (one wildcard record, RFC 4592, in the tenant's zone)."""
    edits: tuple[ZoneEdit, ...] = ()
    tenant = world.records.tenant
    if tenant and world.records.selectors:
        edits = (ZoneEdit("onmicrosoft.com", f"*._domainkey.{tenant}.", "TXT",
                          (f'"{DKIM_KEY}"',)),)
    return Scenario("fleet", f"{world.count} generated client domains behind the same "
                    f"gateway and tenant, {world.broken_count} broken, "
                    f"{world.regional_count} still cached by the {STALE_VANTAGE} resolver",
                    topology, "alice@contoso.com", Expectation("healthy"), edits)


class FleetResolver(ForwardingResolver):
    """A vantage point's resolver: it forwards as the lab's resolver does, takes a fleet
    domain's names to that domain's own name servers (its provider's pair, the first one
    first; in this process, so without the round trip: their delay and faults still
    apply, their CPU is spared), and — for the stale vantage — answers the regional
    domains' SPF from the cache it filled before their change, the TTL counting down
    (RFC 1035 §7.4)."""

    def __init__(self, world: FleetWorld, vantage: str,
                 forwarders: Mapping[str, Sequence[tuple[str, int]]],
                 servers: Mapping[str, AuthoritativeServer], **kwargs: object) -> None:
        super().__init__(forwarders, **kwargs)  # type: ignore[arg-type]
        self.world = world
        self.vantage = vantage
        self.servers = dict(servers)  # name server host -> the server
        self.filled_at = time.monotonic()

    async def _resolve(self, name: dns.name.Name, qtype: dns.rdatatype.RdataType,
                       dnssec: bool = False) -> Resolution:
        held = self.world.cached(name, qtype, self.vantage)
        left = int(self.filled_at + CACHED_FOR - time.monotonic())
        if held is not None and left > 0:
            rrset = dns.rrset.from_text_list(name, left, "IN", qtype, [f'"{held}"'])
            return Resolution(dns.rcode.NOERROR, [rrset])
        return await super()._resolve(name, qtype, dnssec)

    async def _resolve_one(self, name: dns.name.Name, qtype: dns.rdatatype.RdataType,
                           dnssec: bool = False) -> Resolution | None:
        i = self.world.index(name)
        if i is None:
            return await super()._resolve_one(name, qtype, dnssec)
        for host in self.world.hosts(i):
            reply = await self.servers[host].answer_here(name, qtype, dnssec)
            if reply is not None:
                return reply
        return None
