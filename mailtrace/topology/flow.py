"""The declared flow as a directed graph: which tier hands mail to which, in what order.

``FlowGraph`` is also the one place where the flow is checked (chains name declared tiers,
no cycle, one public-DNS tier first, every chain ends at a mailbox). A bad flow raises
:class:`FlowError`, a ``ValueError`` that carries the location in the topology it is
about, so the loader can report it as ``file:line:column``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape as _html_escape
from typing import TYPE_CHECKING

from mailtrace.topology.model import MAILBOX_KINDS, ExchangeOnlineTier, ProofpointTier, Topology

if TYPE_CHECKING:  # networkx loads with the first flow built, not with this module
    import networkx as nx


def escape(text: str) -> str:
    """XML character data: ``&``, ``<`` and ``>`` escaped (what ``xml.sax.saxutils.escape``
    does, without that module's import of ``urllib.request``)."""
    return _html_escape(text, quote=False)


#: A chain is tier ids separated by "->" (or the arrow "→").
ARROW = re.compile(r"->|→")

Loc = tuple[str | int, ...]


class FlowError(ValueError):
    """A flow that cannot be walked.

    ``loc`` is a path into the topology document in pydantic's style (``("flow", 2)``,
    ``("tiers", "proofpoint")``); ``at_key`` asks to point at the mapping key rather than
    its value; ``segment`` is the index of the offending tier in a chain, when known.
    """

    def __init__(
        self, message: str, loc: Loc, *, at_key: bool = False, segment: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.at_key = at_key
        self.segment = segment


def split_chain(entry: str) -> list[str]:
    """``"a -> b → c"`` → ``["a", "b", "c"]`` (segments stripped, empty ones kept)."""
    return [segment.strip() for segment in ARROW.split(entry)]


@dataclass(frozen=True)
class _Edge:
    source: str
    target: str
    entry: int  # index in ``flow`` of the first chain declaring the edge


class FlowGraph:
    """The flow of a topology as a ``networkx.DiGraph``.

    Nodes are tier ids with the attribute ``kind``; edges carry ``entry``, the index of the
    first ``flow`` chain that declares them.
    """

    def __init__(self, topology: Topology) -> None:
        import networkx as nx

        self.topology = topology
        self.graph: nx.DiGraph = nx.DiGraph()
        # Where each tier first appears in `flow`: breaks ties in hop order.
        self._rank: dict[str, int] = {}
        self._entry_of: dict[str, int] = {}  # first flow entry naming the tier
        for tier_id, tier in topology.tiers.items():
            self.graph.add_node(tier_id, kind=tier.kind)
        for index, entry in enumerate(topology.flow):
            chain = self._parse_entry(index, entry)
            for position, tier_id in enumerate(chain):
                if tier_id not in self._rank:
                    self._rank[tier_id] = len(self._rank)
                    self._entry_of[tier_id] = index
                if position and not self.graph.has_edge(chain[position - 1], tier_id):
                    self.graph.add_edge(chain[position - 1], tier_id, entry=index)
        self._check()

    # -- construction and checks -------------------------------------------------------

    def _parse_entry(self, index: int, entry: str) -> list[str]:
        chain = split_chain(entry)
        for position, tier_id in enumerate(chain):
            if not tier_id:
                raise FlowError(
                    f"flow: empty tier id in {entry!r} (expected 'tier -> tier -> ...')",
                    ("flow", index),
                    segment=position,
                )
            if tier_id not in self.topology.tiers:
                declared = ", ".join(self.topology.tiers)
                raise FlowError(
                    f"flow: unknown tier {tier_id!r} (declared tiers: {declared})",
                    ("flow", index),
                    segment=position,
                )
        return chain

    def _edges(self) -> Iterable[_Edge]:
        for source, target, entry in self.graph.edges(data="entry"):
            yield _Edge(source, target, entry)

    def _check(self) -> None:
        import networkx as nx

        graph = self.graph
        for tier_id in self.topology.tiers:
            if tier_id not in self._rank:
                raise FlowError(
                    f"flow: tier {tier_id!r} is declared but not in any flow chain",
                    ("tiers", tier_id),
                    at_key=True,
                )
        dns_tiers = [n for n, kind in graph.nodes(data="kind") if kind == "dns"]
        self._check_acyclic(dns_tiers[0] if len(dns_tiers) == 1 else None)
        if not dns_tiers:
            raise FlowError(
                "tiers: no tier of kind 'dns'; the public DNS lookup must be the first hop",
                ("tiers",),
                at_key=True,
            )
        if len(dns_tiers) > 1:
            raise FlowError(
                f"tiers: more than one tier of kind 'dns' ({', '.join(dns_tiers)}); "
                "exactly one is expected",
                ("tiers", dns_tiers[1]),
                at_key=True,
            )
        dns = dns_tiers[0]
        for edge in self._edges():
            if edge.target == dns:
                raise FlowError(
                    f"flow: {dns} (dns) must come first, but {edge.source} -> {dns}",
                    ("flow", edge.entry),
                )
        reachable = nx.descendants(graph, dns)
        if not any(graph.nodes[n]["kind"] in MAILBOX_KINDS for n in reachable):
            raise FlowError(
                f"flow: no path from {dns} to a mailbox tier (exchange-online, exchange-onprem)",
                ("flow",),
                at_key=True,
            )
        for tier_id in self._in_flow_order(graph.nodes):
            if graph.out_degree(tier_id) == 0 and graph.nodes[tier_id]["kind"] not in MAILBOX_KINDS:
                entry = min(
                    (e.entry for e in self._edges() if e.target == tier_id),
                    default=self._entry_of[tier_id],
                )
                raise FlowError(
                    f"flow: the chain ends at {tier_id!r} ({graph.nodes[tier_id]['kind']}), "
                    "which is not a mailbox tier (exchange-online, exchange-onprem)",
                    ("flow", entry),
                )
            if tier_id != dns and tier_id not in reachable:
                raise FlowError(
                    f"flow: tier {tier_id!r} is not reachable from {dns}",
                    ("flow", self._entry_of[tier_id]),
                )
        for tier_id, tier in self.topology.tiers.items():
            if isinstance(tier, ExchangeOnlineTier) and tier.accepts_only_from is not None:
                self._check_accepts_only_from(tier_id, tier.accepts_only_from)

    def _check_acyclic(self, dns: str | None) -> None:
        import networkx as nx

        try:
            cycle = nx.find_cycle(self.graph, source=dns)
        except nx.NetworkXNoCycle:
            # find_cycle(source=...) only searches from `source`; look everywhere else too.
            if dns is None:
                return
            try:
                cycle = nx.find_cycle(self.graph)
            except nx.NetworkXNoCycle:
                return
        nodes = [source for source, _target in cycle]
        lead_in: list[str] = []
        if dns is not None and nx.has_path(self.graph, dns, nodes[0]):
            lead_in = nx.shortest_path(self.graph, dns, nodes[0])[:-1]
        shown = " -> ".join([*lead_in, *nodes, nodes[0]])
        # The chain that closes the cycle is the last one to contribute one of its edges.
        entry = max(self.graph.edges[s, t]["entry"] for s, t in cycle)
        raise FlowError(f"flow: cycle {shown}", ("flow", entry))

    def _check_accepts_only_from(self, tier_id: str, source: str) -> None:
        loc: Loc = ("tiers", tier_id, "accepts_only_from")
        where = f"tiers.{tier_id}.accepts_only_from"
        if source not in self.topology.tiers:
            declared = ", ".join(self.topology.tiers)
            raise FlowError(f"{where}: unknown tier {source!r} (declared tiers: {declared})", loc)
        if not self.graph.has_edge(source, tier_id):
            feeding = ", ".join(self._in_flow_order(self.graph.predecessors(tier_id)))
            raise FlowError(
                f"{where}: {source!r} does not deliver to {tier_id!r} in the flow "
                f"(tiers with an edge into it: {feeding or 'none'})",
                loc,
            )

    def _in_flow_order(self, tiers: Iterable[str]) -> list[str]:
        return sorted(tiers, key=self._rank.__getitem__)

    # -- queries -----------------------------------------------------------------------

    def hops(self) -> list[str]:
        """Every tier in topological order; ties go to the tier that appears first in flow."""
        import networkx as nx

        return list(nx.lexicographical_topological_sort(self.graph, key=self._rank.__getitem__))

    def dns_tier(self) -> str:
        """The public DNS tier (exactly one exists, and it is the only source)."""
        return next(t for t, tier in self.topology.tiers.items() if tier.kind == "dns")

    def first_hops(self) -> list[str]:
        """The tiers the MX records should point to: the successors of the DNS tier."""
        return self._in_flow_order(self.graph.successors(self.dns_tier()))

    def chains(self) -> list[list[str]]:
        """The flow as declared, chain by chain (linear in the file, unlike ``paths``)."""
        return [split_chain(entry) for entry in self.topology.flow]

    def delivers_without(self, broken: set[str], to: str | None = None) -> bool:
        """Does some mailbox tier (or the mailbox tier ``to``) stay reachable from DNS when
        ``broken`` tiers fail?

        One reachability check: the number of paths can grow exponentially with the
        number of parallel tiers, reachability cannot.
        """
        import networkx as nx

        dns = self.dns_tier()
        if dns in broken:
            return False
        alive = self.graph.subgraph(n for n in self.graph if n not in broken)
        reachable = nx.descendants(alive, dns)
        if to is not None:
            return to in reachable
        return any(
            self.graph.out_degree(t) == 0 and self.graph.nodes[t]["kind"] in MAILBOX_KINDS
            for t in reachable
        )

    def paths(self) -> list[list[str]]:
        """Every simple path from the DNS tier to each mailbox sink, in flow order.

        For small graphs and tests only: dense topologies have exponentially many."""
        import networkx as nx

        dns = self.dns_tier()
        found: list[list[str]] = []
        for sink in self.hops():
            if self.graph.out_degree(sink) == 0 and self.graph.nodes[sink]["kind"] in MAILBOX_KINDS:
                found.extend(nx.all_simple_paths(self.graph, dns, sink))
        return sorted(found, key=lambda path: [self._rank[t] for t in path])

    def upstream_of(self, tier: str) -> set[str]:
        """Tiers that hand mail to ``tier``, directly or not."""
        import networkx as nx

        if tier not in self.graph:
            raise KeyError(f"unknown tier {tier!r}")
        return set(nx.ancestors(self.graph, tier))

    def downstream_of(self, tier: str) -> set[str]:
        """Tiers that receive mail from ``tier``, directly or not."""
        import networkx as nx

        if tier not in self.graph:
            raise KeyError(f"unknown tier {tier!r}")
        return set(nx.descendants(self.graph, tier))

    def next_hops(self, tier: str) -> list[str]:
        """Tiers that receive mail straight from ``tier``, in hop order."""
        if tier not in self.graph:
            raise KeyError(f"unknown tier {tier!r}")
        successors = set(self.graph.successors(tier))
        return [hop for hop in self.hops() if hop in successors]

    def label(self, tier: str) -> str:
        """``proofpoint/pod`` for a Proofpoint tier, the bare kind otherwise."""
        spec = self.topology.tiers[tier]
        if isinstance(spec, ProofpointTier):
            return f"{spec.kind}/{spec.flavour}"
        return spec.kind

    # -- renderings --------------------------------------------------------------------

    def to_text(self) -> str:
        """One line per declared chain: ``public-dns (dns) → proofpoint (proofpoint/pod) → …``."""
        lines = [" → ".join(f"{t} ({self.label(t)})" for t in chain) for chain in self.chains()]
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        """Graphviz DOT, left to right."""

        def quoted(*parts: str) -> str:
            # Each part is escaped; parts are joined by DOT's centred line break "\\n".
            escaped = (
                p.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for p in parts
            )
            return '"' + "\\n".join(escaped) + '"'

        lines = [
            f"digraph {quoted(self.topology.topology)} {{",
            "  rankdir=LR;",
            '  node [shape=box, style=rounded, fontname="Helvetica"];',
        ]
        for tier in self.hops():
            lines.append(f"  {quoted(tier)} [label={quoted(tier, self.label(tier))}];")
        edges = sorted(self._edges(), key=lambda e: (self._rank[e.source], self._rank[e.target]))
        for edge in edges:
            lines.append(f"  {quoted(edge.source)} -> {quoted(edge.target)};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_svg(self, status: Mapping[str, str] | None = None, marked: str | None = None) -> str:
        """A small layered drawing: one column per topological generation, arrows between.

        With ``status`` (tier id -> pass, warn, fail, not_tested...), each tier is drawn
        in its status's colour with the status written under it, and ``marked`` (the tier
        a verdict names) gets a heavier outline: how a report shows where the fault is.
        Each tier is a ``<g class="tier STATUS">`` so a page's style sheet can restyle it.
        """
        import networkx as nx

        layers = [self._in_flow_order(layer) for layer in nx.topological_generations(self.graph)]
        column_of = {tier: i for i, layer in enumerate(layers) for tier in layer}
        char_w, box_h, gap_x, gap_y, margin = 7.2, 44.0, 60.0, 24.0, 20.0
        if status is not None:
            gap_y += 16.0  # room for the status under each box
        longest = max(len(text) for t in self.graph for text in (t, self.label(t)))
        box_w = max(110.0, longest * char_w + 24.0)
        tallest = max(len(layer) for layer in layers)
        top = margin + 30.0  # room above the boxes for arrows that skip a column
        height = top + tallest * box_h + (tallest - 1) * gap_y + margin
        if status is not None:
            height += 16.0
        width = 2 * margin + len(layers) * box_w + (len(layers) - 1) * gap_x

        pos: dict[str, tuple[float, float]] = {}  # top-left corner of each box
        for i, layer in enumerate(layers):
            column_h = len(layer) * box_h + (len(layer) - 1) * gap_y
            y0 = top + (tallest * box_h + (tallest - 1) * gap_y - column_h) / 2
            for j, tier in enumerate(layer):
                pos[tier] = (margin + i * (box_w + gap_x), y0 + j * (box_h + gap_y))

        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
            f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
            'font-family="Helvetica, Arial, sans-serif" font-size="12">',
            f"<title>{escape(self.topology.topology)}: mail flow</title>",
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
            'markerWidth="8" markerHeight="8" orient="auto">'
            '<path d="M 0 0 L 10 5 L 0 10 z" fill="#444"/></marker></defs>',
        ]
        for edge in self._edges():
            (sx, sy), (tx, ty) = pos[edge.source], pos[edge.target]
            x1, y1, x2, y2 = sx + box_w, sy + box_h / 2, tx, ty + box_h / 2
            if column_of[edge.target] - column_of[edge.source] > 1:
                # Skip the columns in between along a lane above all the boxes.
                lane, half = margin + 6, gap_x / 2
                d = (
                    f"M {x1:.1f} {y1:.1f} C {x1 + half:.1f} {y1:.1f} {x1 + half:.1f} {lane:.1f} "
                    f"{x1 + gap_x:.1f} {lane:.1f} L {x2 - gap_x:.1f} {lane:.1f} "
                    f"C {x2 - half:.1f} {lane:.1f} {x2 - half:.1f} {y2:.1f}"
                )
            else:
                mid = (x1 + x2) / 2
                d = f"M {x1:.1f} {y1:.1f} C {mid:.1f} {y1:.1f} {mid:.1f} {y2:.1f}"
            out.append(
                f'<path d="{d} {x2:.1f} {y2:.1f}" fill="none" stroke="#444" '
                'stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
        for tier in self.hops():
            x, y = pos[tier]
            state = (status or {}).get(tier)
            fill, stroke = _STATUS_COLOURS.get(state or "", ("#f4f6fa", "#35507a"))
            width = 3.5 if tier == marked else 1.0
            classes = " ".join(["tier", *([state] if state else []),
                                *(["marked"] if tier == marked else [])])
            title = f"{tier} ({self.label(tier)})" + (f": {state}" if state else "")
            out.append(
                f'<g class="{escape(classes)}"><title>{escape(title)}</title>'
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{box_w:.1f}" height="{box_h:.1f}" '
                f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>'
                f'<text x="{x + box_w / 2:.1f}" y="{y + 18:.1f}" text-anchor="middle" '
                f'font-weight="bold">{escape(tier)}</text>'
                f'<text x="{x + box_w / 2:.1f}" y="{y + 34:.1f}" text-anchor="middle" '
                f'fill="#555">{escape(self.label(tier))}</text>'
            )
            if state:
                shown = state.replace("_", " ").upper() + ("  \u25c0 verdict"
                                                           if tier == marked else "")
                out.append(
                    f'<text class="status" x="{x + box_w / 2:.1f}" y="{y + box_h + 14:.1f}" '
                    f'text-anchor="middle" font-weight="bold" fill="{stroke}">'
                    f"{escape(shown)}</text>"
                )
            out.append("</g>")
        out.append("</svg>")
        return "\n".join(out) + "\n"


#: Tier status -> (fill, outline) in a drawing with statuses.
_STATUS_COLOURS = {
    "pass": ("#dafbe1", "#1a7f37"),
    "warn": ("#fff8c5", "#9a6700"),
    "fail": ("#ffebe9", "#cf222e"),
    "not_tested": ("#f6f8fa", "#6e7781"),
    "skipped": ("#f6f8fa", "#6e7781"),
}

__all__ = ["ARROW", "FlowError", "FlowGraph", "split_chain"]
