"""The flow's graph walks, checked against brute force on every small graph hypothesis
draws (a transitive closure, all orderings of a few nodes)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from mailtrace.topology.digraph import (
    DiGraph,
    descendants,
    find_cycle,
    generations,
    shortest_path,
    simple_paths,
    topological_order,
)

NODES = [f"t{i}" for i in range(6)]


@st.composite
def graphs(draw: st.DrawFn, acyclic: bool = False) -> DiGraph:
    count = draw(st.integers(1, len(NODES)))
    nodes = NODES[:count]
    pairs = [(a, b) for a, b in itertools.product(nodes, nodes)
             if not acyclic or nodes.index(a) < nodes.index(b)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True) if pairs else st.just([]))
    if acyclic:  # any order of insertion, any naming: not only "lower index first"
        nodes = draw(st.permutations(nodes))
    graph = DiGraph()
    for node in nodes:
        graph.add_node(node, kind="x")
    for index, (a, b) in enumerate(chosen):
        graph.add_edge(a, b, entry=index)
    return graph


def closure(graph: DiGraph) -> dict[str, set[str]]:
    reach = {n: set(graph.successors(n)) for n in graph}
    for k in graph:
        for i in graph:
            if k in reach[i]:
                reach[i] |= reach[k]
    return reach


@given(graphs())
def test_descendants_are_what_the_closure_reaches(graph: DiGraph) -> None:
    reach = closure(graph)
    for node in graph:
        assert descendants(graph, node) == reach[node] - {node}


@given(graphs(), st.sets(st.sampled_from(NODES)))
def test_descendants_avoid_the_blocked_nodes(graph: DiGraph, blocked: set[str]) -> None:
    alive = DiGraph()
    for node in graph:
        if node not in blocked:
            alive.add_node(node)
    for a, b, _ in graph.edges():
        if a not in blocked and b not in blocked:
            alive.add_edge(a, b)
    for node in alive:
        assert descendants(graph, node, without=blocked) == descendants(alive, node)


@given(graphs())
def test_a_cycle_is_found_exactly_when_there_is_one(graph: DiGraph) -> None:
    reach = closure(graph)
    cyclic = any(node in reach[node] for node in graph)
    cycle = find_cycle(graph)
    assert (cycle is not None) == cyclic
    if cycle is not None:
        assert all(graph.has_edge(a, b) for a, b in cycle)
        assert all(cycle[i][1] == cycle[(i + 1) % len(cycle)][0] for i in range(len(cycle)))
        assert len({a for a, _ in cycle}) == len(cycle)  # no node twice
    for node in graph:  # from one node: a cycle it can reach, or none
        found = find_cycle(graph, source=node)
        reachable = reach[node] | {node}
        assert (found is not None) == any(n in reach[n] for n in reachable)


@given(graphs(acyclic=True))
def test_topological_order_keeps_every_edge_and_breaks_ties_by_key(graph: DiGraph) -> None:
    rank = {node: i for i, node in enumerate(sorted(graph, reverse=True))}
    order = topological_order(graph, key=rank.__getitem__)
    assert sorted(order) == sorted(graph)
    position = {node: i for i, node in enumerate(order)}
    assert all(position[a] < position[b] for a, b, _ in graph.edges())
    # the smallest-keyed order among all valid ones (brute force over permutations)
    valid = [p for p in itertools.permutations(graph)
             if all(p.index(a) < p.index(b) for a, b, _ in graph.edges())]
    assert order == list(min(valid, key=lambda p: [rank[n] for n in p]))


@given(graphs(acyclic=True))
def test_generations_put_each_node_after_everything_feeding_it(graph: DiGraph) -> None:
    layers = generations(graph)
    layer_of = {node: i for i, layer in enumerate(layers) for node in layer}
    assert sorted(layer_of) == sorted(graph)
    for node in graph:
        feeding = [layer_of[p] for p in graph.predecessors(node)]
        assert layer_of[node] == (max(feeding) + 1 if feeding else 0)


@given(graphs())
def test_simple_and_shortest_paths(graph: DiGraph) -> None:
    reach = closure(graph)
    for a, b in itertools.permutations(graph, 2):
        paths = list(simple_paths(graph, a, b))
        brute = [[a, *middle, b] for k in range(len(graph) - 1)
                 for middle in itertools.permutations(set(graph) - {a, b}, k)
                 if all(graph.has_edge(x, y) for x, y in itertools.pairwise([a, *middle, b]))]
        assert sorted(paths) == sorted(brute)
        shortest = shortest_path(graph, a, b)
        assert (shortest is not None) == (b in reach[a])
        if shortest is not None:
            assert len(shortest) == min(len(p) for p in brute)
            assert all(graph.has_edge(x, y) for x, y in itertools.pairwise(shortest))
