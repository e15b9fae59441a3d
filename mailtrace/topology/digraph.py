"""A directed graph of a few tiers, and the walks the flow needs over it.

A topology has a handful of tiers and edges; these are the textbook algorithms (breadth-
and depth-first search, Kahn's topological sort) on adjacency dictionaries kept in
insertion order, so every result is deterministic. Importing a general graph library for
them cost more start-up time and memory than the rest of the topology code.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

Edge = tuple[str, str]


class DiGraph:
    """Nodes with attributes (``nodes[n]``), edges with attributes (``edge(u, v)``)."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self._succ: dict[str, dict[str, dict[str, Any]]] = {}
        self._pred: dict[str, dict[str, dict[str, Any]]] = {}

    def add_node(self, node: str, **attrs: Any) -> None:
        self.nodes.setdefault(node, {}).update(attrs)
        self._succ.setdefault(node, {})
        self._pred.setdefault(node, {})

    def add_edge(self, source: str, target: str, **attrs: Any) -> None:
        self.add_node(source)
        self.add_node(target)
        self._succ[source].setdefault(target, {}).update(attrs)
        self._pred[target][source] = self._succ[source][target]

    def has_edge(self, source: str, target: str) -> bool:
        return target in self._succ.get(source, {})

    def edge(self, source: str, target: str) -> dict[str, Any]:
        return self._succ[source][target]

    def edges(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every edge, in the order its source and then the edge were added."""
        for source, targets in self._succ.items():
            for target, attrs in targets.items():
                yield source, target, attrs

    def successors(self, node: str) -> Iterator[str]:
        return iter(self._succ[node])

    def predecessors(self, node: str) -> Iterator[str]:
        return iter(self._pred[node])

    def out_degree(self, node: str) -> int:
        return len(self._succ[node])

    def in_degree(self, node: str) -> int:
        return len(self._pred[node])

    def __contains__(self, node: object) -> bool:
        return node in self.nodes

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)


def descendants(graph: DiGraph, source: str, without: Iterable[str] = ()) -> set[str]:
    """Nodes reachable from ``source`` (itself excluded), not passing through ``without``."""
    blocked = set(without)
    found: set[str] = set()
    queue = deque([source])
    while queue:
        for child in graph.successors(queue.popleft()):
            if child not in found and child not in blocked and child != source:
                found.add(child)
                queue.append(child)
    return found


def shortest_path(graph: DiGraph, source: str, target: str) -> list[str] | None:
    """The fewest-edges path from ``source`` to ``target`` (first found wins a tie)."""
    parent: dict[str, str | None] = {source: None}
    queue = deque([source])
    while queue:
        node = queue.popleft()
        if node == target:
            path = [node]
            while (previous := parent[path[-1]]) is not None:
                path.append(previous)
            return path[::-1]
        for child in graph.successors(node):
            if child not in parent:
                parent[child] = node
                queue.append(child)
    return None


def find_cycle(graph: DiGraph, source: str | None = None) -> list[Edge] | None:
    """The edges of the first cycle a depth-first search meets, from ``source`` (or from
    every node in turn), starting at the node the cycle closes on; None if there is none."""
    finished: set[str] = set()
    for start in [source] if source is not None else list(graph):
        if start in finished:
            continue
        path = [start]
        on_path = {start}
        pending = [iter(graph.successors(start))]
        while pending:
            child = next(pending[-1], None)
            if child is None:
                done = path.pop()
                on_path.discard(done)
                finished.add(done)
                pending.pop()
                continue
            if child in on_path:
                cycle = path[path.index(child):]
                return list(zip(cycle, [*cycle[1:], child], strict=True))
            if child not in finished:
                path.append(child)
                on_path.add(child)
                pending.append(iter(graph.successors(child)))
    return None


def topological_order(graph: DiGraph, key: Callable[[str], Any]) -> list[str]:
    """Kahn's algorithm: of the nodes free to come next, the one with the smallest ``key``
    comes first. The graph must have no cycle."""
    indegree = {node: graph.in_degree(node) for node in graph}
    ready = [(key(node), node) for node, degree in indegree.items() if degree == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for child in graph.successors(node):
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, (key(child), child))
    return order


def generations(graph: DiGraph) -> list[list[str]]:
    """The nodes layer by layer: sources first, then what only they feed, and so on."""
    indegree = {node: graph.in_degree(node) for node in graph}
    layer = [node for node, degree in indegree.items() if degree == 0]
    layers: list[list[str]] = []
    while layer:
        layers.append(layer)
        following: list[str] = []
        for node in layer:
            for child in graph.successors(node):
                indegree[child] -= 1
                if indegree[child] == 0:
                    following.append(child)
        layer = following
    return layers


def simple_paths(graph: DiGraph, source: str, target: str) -> Iterator[list[str]]:
    """Every path from ``source`` to ``target`` that visits no node twice."""
    path = [source]
    pending = [iter(graph.successors(source))]
    while pending:
        child = next(pending[-1], None)
        if child is None:
            pending.pop()
            path.pop()
        elif child == target:
            yield [*path, child]
        elif child not in path:
            path.append(child)
            pending.append(iter(graph.successors(child)))
