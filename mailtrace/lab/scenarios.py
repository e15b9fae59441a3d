"""The named demo scenarios: one healthy lab world, and one precise fault per scenario.

A scenario is data: edits to the lab zones (for every server, or for one name server only,
which is how stale data on a secondary is modelled) and per-server `Fault`s. Each records
the verdict it is built to produce, so the demo and the end-to-end tests check the same
thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone

from mailtrace.lab.dns_server import Fault

#: TTL of an added RRset when the edit does not say and there was none to keep.
DEFAULT_TTL = 300


@dataclass(frozen=True)
class Expectation:
    """The verdict a scenario is built to produce (status, tier id, finding tag)."""

    status: str
    tier: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class ZoneEdit:
    """Replace one RRset of a lab zone, or delete it (`records=None`).

    `name` is relative to the zone (``"@"`` for the apex) or absolute; `records` are rdata in
    master-file syntax. `servers` limits the edit to those name server host names: the other
    servers of the zone keep the original data.
    """

    zone: str
    name: str
    rdtype: str
    records: tuple[str, ...] | None
    ttl: int | None = None
    servers: frozenset[str] | None = None

    @property
    def origin(self) -> dns.name.Name:
        return dns.name.from_text(self.zone)

    def for_server(self, host: str) -> bool:
        return self.servers is None or host.rstrip(".").lower() in self.servers

    def apply(self, zone: dns.zone.Zone) -> None:
        """Edit `zone` in place (a zone loaded with ``relativize=False``)."""
        origin = zone.origin
        assert origin is not None
        owner = dns.name.from_text(self.name, origin=origin)
        rdtype = dns.rdatatype.from_text(self.rdtype)
        if self.records is None:
            zone.delete_rdataset(owner, rdtype)
            return
        old = zone.get_rdataset(owner, rdtype)
        ttl = self.ttl if self.ttl is not None else old.ttl if old is not None else DEFAULT_TTL
        rdataset = dns.rdataset.from_text_list(
            dns.rdataclass.IN, rdtype, ttl, list(self.records), origin=origin, relativize=False
        )
        zone.replace_rdataset(owner, rdataset)


@dataclass(frozen=True)
class Scenario:
    """A lab world plus one injected fault, and the verdict triage should reach."""

    name: str
    description: str
    topology: str
    recipient: str
    expect: Expectation
    zone_edits: tuple[ZoneEdit, ...] = ()
    #: Faults by name server host name ("ns2.contoso.com"), or "resolver".
    faults: Mapping[str, Fault] = field(default_factory=dict)
    #: MTA-STS policy text per domain, replacing the lab's default (None: no policy host).
    mta_sts_policies: Mapping[str, str | None] | None = None


class UnknownScenario(KeyError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown scenario {self.name!r}; known scenarios: {', '.join(self.known)}"


_CONTOSO = "contoso-proofpoint-exo.yaml"
_ALICE = "alice@contoso.com"
_CONTOSO_NS = ("ns1.contoso.com", "ns2.contoso.com")


def _contoso(
    name: str,
    description: str,
    expect: Expectation,
    *edits: ZoneEdit,
    faults: Mapping[str, Fault] | None = None,
) -> Scenario:
    return Scenario(name, description, _CONTOSO, _ALICE, expect, edits, dict(faults or {}))


def _contoso_mx(*records: str, servers: frozenset[str] | None = None) -> ZoneEdit:
    return ZoneEdit("contoso.com", "@", "MX", records or None, servers=servers)


_ALL: tuple[Scenario, ...] = (
    _contoso(
        "healthy",
        "contoso.com: MX to Proofpoint, Proofpoint relays to Exchange Online; all is well.",
        Expectation("healthy"),
    ),
    _contoso(
        "mx-missing",
        "contoso.com publishes no MX record at all.",
        Expectation("fault", "public-dns", "DNS_MX_MISSING"),
        _contoso_mx(),
    ),
    _contoso(
        "mx-bypasses-gateway",
        "contoso.com's MX points straight at Exchange Online, skipping the Proofpoint gateway.",
        Expectation("fault", "public-dns", "DNS_MX_BYPASSES_GATEWAY"),
        _contoso_mx("0 contoso-com.mail.protection.outlook.com."),
    ),
    _contoso(
        "mx-target-unresolvable",
        "contoso.com's MX names Proofpoint hosts that do not exist (no A/AAAA).",
        Expectation("fault", "public-dns", "DNS_MX_TARGET_UNRESOLVABLE"),
        _contoso_mx("10 mx0a-009999.pphosted.com.", "10 mx0b-009999.pphosted.com."),
    ),
    _contoso(
        "stale-ns",
        "ns2.contoso.com serves an old copy of the zone: old serial, MX to the old provider.",
        Expectation("degraded", "public-dns", "DNS_NS_STALE"),
        ZoneEdit(
            "contoso.com",
            "@",
            "SOA",
            ("ns1.contoso.com. hostmaster.contoso.com. 2026110101 7200 3600 1209600 300",),
            servers=frozenset({"ns2.contoso.com"}),
        ),
        _contoso_mx("10 mail.contoso-old.example.", servers=frozenset({"ns2.contoso.com"})),
    ),
    _contoso(
        "all-ns-servfail",
        "Both contoso.com name servers answer SERVFAIL to everything.",
        Expectation("fault", "public-dns", "DNS_ALL_NS_FAILING"),
        faults={ns: Fault("servfail") for ns in _CONTOSO_NS},
    ),
    _contoso(
        "observer-resolver-dead",
        "The resolver mailtrace uses never answers: nothing can be concluded about mail.",
        Expectation("inconclusive", "observer", "OBSERVER_RESOLVER_UNREACHABLE"),
        faults={"resolver": Fault("drop")},
    ),
    Scenario(
        "essentials-healthy",
        "fabrikam.com: MX to Proofpoint Essentials, relaying to Exchange Online; all is well.",
        "fabrikam-essentials-exo.yaml",
        "bob@fabrikam.com",
        Expectation("healthy"),
    ),
    Scenario(
        "direct-healthy",
        "northwind.com: MX straight to Exchange Online, no gateway; all is well.",
        "northwind-exo-direct.yaml",
        "carol@northwind.com",
        Expectation("healthy"),
    ),
)

SCENARIOS: dict[str, Scenario] = {scenario.name: scenario for scenario in _ALL}


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UnknownScenario(name, sorted(SCENARIOS)) from None
