"""The declared sending paths of a domain, read from the topology.

A sending path is a term of the SPF expectation (``include:`` or ``mechanisms``): each
names a service that sends as the domain. It is tied to the tier whose vendor it belongs
to (Exchange Online for ``spf.protection.outlook.com``, the Proofpoint tier for
``*.pphosted.com`` / ``*.ppe-hosted.com``, the Mimecast tier for its regional
``<region>._netblocks.mimecast.com``), and the DKIM selectors that sender signs
with: Exchange Online's ``selector1``/``selector2``, the others to the gateway.

To evaluate a path, an address the service really sends from is taken from the
service's own published SPF (the first ``ip4``/``ip6``/``a`` it names): check_host() is
then run for that address against the domain, as a receiver would.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailtrace.mailauth.lookup import Lookup
from mailtrace.mailauth.spf_record import SpfSyntaxError, has_macros, parse_record, parse_term
from mailtrace.mailauth.spf_tree import select_record
from mailtrace.topology.model import MIMECAST_DOMAINS, DnsExpectation, Topology

EXO_SUFFIXES = ("protection.outlook.com",)
PROOFPOINT_SUFFIXES = ("pphosted.com", "ppe-hosted.com")
# Mimecast's outbound netblocks: <region>._netblocks.<its domain> (topology.model).
MIMECAST_SUFFIXES = MIMECAST_DOMAINS
EXO_SELECTORS = ("selector1", "selector2")
_MAX_DEPTH = 4


@dataclass(frozen=True)
class Sender:
    term: str  # the SPF term that authorizes it
    tier: str | None  # the topology tier that sends, when it can be told
    selectors: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.tier} ({self.term})" if self.tier else self.term


def _target(term: str) -> str:
    return term.split(":", 1)[1].split("/", 1)[0].lower() if ":" in term else ""


def _tier_for(term: str, topology: Topology) -> str | None:
    target = _target(term)
    for tier_id, tier in topology.tiers.items():
        if tier.kind == "exchange-online" and target.endswith(EXO_SUFFIXES):
            return tier_id
        if tier.kind == "proofpoint" and target.endswith(PROOFPOINT_SUFFIXES):
            return tier_id
        if tier.kind == "mimecast" and target.endswith(MIMECAST_SUFFIXES):
            return tier_id
    return None


def declared_senders(topology: Topology, expect: DnsExpectation) -> list[Sender]:
    spf = expect.spf
    if spf is None:
        return []
    selectors = list(expect.dkim.selectors) if expect.dkim else []
    terms = [f"include:{host}" for host in spf.include] + list(spf.mechanisms)
    senders = []
    tiers = [_tier_for(t, topology) for t in terms]
    for term, tier in zip(terms, tiers, strict=True):
        kind = topology.tiers[tier].kind if tier else None
        if kind == "exchange-online":
            mine = tuple(s for s in selectors if s in EXO_SELECTORS)
        elif kind is not None:
            mine = tuple(s for s in selectors if s not in EXO_SELECTORS)
        else:
            mine = ()
        senders.append(Sender(term, tier, mine))
    return senders


async def sample_address(lookup: Lookup, term: str, depth: int = 0) -> str | None:
    """An address the service behind ``term`` sends from, per its own published data;
    None when it cannot be told (macros, exists:, nothing published)."""
    try:
        mech = parse_term(term)
    except SpfSyntaxError:
        return None
    if mech.network is not None:
        return str(mech.network.network_address)
    spec = mech.domain_spec
    if spec is None or has_macros(spec) or depth > _MAX_DEPTH:
        return None
    if mech.name == "a":
        for rdtype in ("A", "AAAA"):
            answer = await lookup(spec, rdtype)
            if answer.data:
                return answer.data[0]
        return None
    if mech.name == "mx":
        answer = await lookup(spec, "MX")
        for data in sorted(answer.data, key=lambda d: int(d.split()[0])):
            found = await sample_address(lookup, f"a:{data.split()[1].rstrip('.')}", depth + 1)
            if found:
                return found
        return None
    if mech.name == "include":
        answer = await lookup(spec, "TXT")
        text, several = select_record(answer)
        if text is None or several:
            return None
        try:
            record = parse_record(text)
        except SpfSyntaxError:
            return None
        for inner in record.mechanisms:
            if inner.qualifier != "+" or inner.name in ("all", "ptr", "exists"):
                continue
            found = await sample_address(lookup, inner.text.lstrip("+"), depth + 1)
            if found:
                return found
    return None
