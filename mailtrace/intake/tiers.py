"""Which tier of the declared topology a host name belongs to.

A host belongs to a tier when the topology declares it (a gateway's ``hosts``, Exchange
Online's ``inbound_host``) or when it matches the vendor's host names for the tier's kind:
Proofpoint on Demand ``*.pphosted.com`` (and its internal ``*.ppops.net``), Proofpoint
Essentials ``*.ppe-hosted.com``, Exchange Online ``*.outlook.com`` (``*.protection`` and
``*.prod.outlook.com``) and ``*.mx.microsoft`` (reference: proofpoint.md §7,
graph-exo.md §1 "MX host patterns"). A declared host wins over a vendor pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailtrace.topology.flow import FlowGraph
from mailtrace.topology.model import ExchangeOnlineTier, ProofpointTier, Topology

#: Vendor host suffixes by tier label (kind, or kind/flavour for Proofpoint).
VENDOR_SUFFIXES: dict[str, tuple[str, ...]] = {
    "proofpoint/pod": ("pphosted.com", "ppops.net"),
    "proofpoint/essentials": ("ppe-hosted.com",),
    "exchange-online": ("outlook.com", "mx.microsoft", "outlook.office365.com"),
}
#: authserv-ids (RFC 8601 §2.5) a vendor writes that are not one of its host names.
VENDOR_AUTHSERV_IDS: dict[str, tuple[str, ...]] = {
    "exchange-online": ("mx.microsoft.com",),
}
#: Exchange Online's outbound edge: a hop from here is another tenant handing mail over.
EXO_OUTBOUND = re.compile(r"(^|\.)outbound\.protection\.outlook\.com$")

_HOST = re.compile(r"^[a-z0-9_*]([a-z0-9_.-]*[a-z0-9_])?$")


def normalize_host(raw: str | None) -> str | None:
    """A host name as written in a header or a DSN field: lowercased, no trailing dot,
    brackets and ``dns;`` prefixes removed. ``None`` if it is not a plausible name."""
    if not raw:
        return None
    host = raw.strip().strip("<>[]()'\"").lower()
    if host.startswith("dns;"):
        host = host[4:].strip()
    host = host.removesuffix(".")
    return host if 0 < len(host) <= 253 and _HOST.fullmatch(host) else None


def _suffix_match(host: str, suffix: str) -> bool:
    return host == suffix or host.endswith("." + suffix)


@dataclass(frozen=True)
class Match:
    tier: str
    how: str  # "declared" | "vendor pattern *.suffix"


class HostMap:
    """Host → tier for one topology (or for none: everything maps to ``None``)."""

    def __init__(self, topology: Topology | None) -> None:
        self.topology = topology
        self.flow = FlowGraph(topology) if topology is not None else None
        self._declared: dict[str, str] = {}
        self._labels: dict[str, str] = {}
        if topology is None or self.flow is None:
            return
        for tier_id in self.flow.hops():
            for host in topology.inbound_hosts(tier_id):
                self._declared.setdefault(host, tier_id)
            self._labels[tier_id] = self.flow.label(tier_id)

    def match(self, raw: str | None) -> Match | None:
        host = normalize_host(raw)
        if host is None or self.flow is None:
            return None
        if host in self._declared:
            return Match(self._declared[host], "declared")
        for tier_id, label in self._labels.items():
            for suffix in VENDOR_SUFFIXES.get(label, ()):
                if _suffix_match(host, suffix):
                    return Match(tier_id, f"vendor pattern *.{suffix}")
        return None

    def tier_of(self, raw: str | None) -> str | None:
        found = self.match(raw)
        return found.tier if found else None

    def authserv_tier(self, authserv_id: str | None) -> str | None:
        """The tier an Authentication-Results writer belongs to (by its authserv-id)."""
        host = normalize_host(authserv_id)
        if host is None:
            return None
        for tier_id, label in self._labels.items():
            if host in VENDOR_AUTHSERV_IDS.get(label, ()):
                return tier_id
        return self.tier_of(host)

    def of_kind(self, kind: str) -> str | None:
        """The one tier of a kind (``None`` when there is none, or several)."""
        if self.topology is None:
            return None
        found = [t for t, spec in self.topology.tiers.items() if spec.kind == kind]
        return found[0] if len(found) == 1 else None

    def upstream(self, a: str, b: str) -> bool:
        """Does mail reach tier ``b`` after tier ``a`` (``a`` strictly upstream of ``b``)?"""
        return self.flow is not None and b in self.flow.downstream_of(a)

    def gateways_before(self, tier: str) -> list[str]:
        """The gateway tiers mail must cross to reach ``tier``: its ``accepts_only_from``
        or else its direct predecessors of a gateway kind."""
        if self.topology is None or self.flow is None:
            return []
        spec = self.topology.tiers[tier]
        if isinstance(spec, ExchangeOnlineTier) and spec.accepts_only_from:
            return [spec.accepts_only_from]
        preds = set(self.flow.graph.predecessors(tier))
        return [t for t in self.flow.hops()
                if t in preds and self.topology.tiers[t].kind in ("proofpoint", "smtp-gateway")]

    def proofpoint(self, tier: str) -> ProofpointTier | None:
        spec = self.topology.tiers.get(tier) if self.topology is not None else None
        return spec if isinstance(spec, ProofpointTier) else None
