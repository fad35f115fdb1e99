"""Graphs for the ``knowledge`` task: sources, family relations, unique shortest paths.

Graphs here use local node ids ``0..n-1``; the task relabels them into its node
vocabulary. A graph is a list of ``(source, relation, target)`` triples.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

import networkx as nx

Source = Literal["random", "tree", "family", "karate_club", "florentine_families", "les_miserables"]
SOURCES: tuple[Source, ...] = (
    "random",
    "tree",
    "family",
    "karate_club",
    "florentine_families",
    "les_miserables",
)
REAL_GRAPHS: dict[str, Callable[[], nx.Graph]] = {
    "karate_club": nx.karate_club_graph,
    "florentine_families": nx.florentine_families_graph,
    "les_miserables": nx.les_miserables_graph,
}
FAMILY_BASE = ("son", "daughter")
"""Listed family relations: ``(p, son, c)`` says c is a son of p."""
FAMILY_DERIVED = ("parent", "child", "sibling", "grandparent", "uncle", "aunt", "cousin")
"""Derived family relations: ``(x, r, y)`` says y is the r of x."""


@dataclass(frozen=True)
class Graph:
    """Triples over nodes ``0..n-1``.

    ``symmetric``: each listed relation also holds from target to source (random,
    tree and real graphs: undirected edges with labels). Family graphs are directed.
    """

    n: int
    triples: tuple[tuple[int, int, int], ...]
    symmetric: bool
    family: bool


@cache
def real_edges(name: str) -> tuple[int, tuple[tuple[int, int], ...]]:
    """Node count and edges of a graph networkx ships, nodes numbered in sorted order."""
    graph = nx.convert_node_labels_to_integers(REAL_GRAPHS[name](), ordering="sorted")
    return graph.number_of_nodes(), tuple(sorted(graph.edges()))


def real_size(name: str) -> int:
    """Number of nodes of a graph networkx ships."""
    return real_edges(name)[0]


def labelled(
    rng: random.Random, n: int, edges: list[tuple[int, int]] | tuple, relations: int
) -> Graph:
    """Undirected ``edges`` with random labels ``0..relations-1``, each listed once in a
    random orientation."""
    triples = []
    for u, v in edges:
        if rng.random() < 0.5:
            u, v = v, u
        triples.append((u, rng.randrange(relations), v))
    return Graph(n, tuple(triples), symmetric=True, family=False)


def make_graph(
    rng: random.Random, source: Source, n: int, edges_per_node: float, relations: int, son: int
) -> Graph:
    """A graph from ``source`` with ``n`` nodes (real graphs: their own size).

    ``son`` is the relation id of ``son``; ``daughter`` is ``son + 1``.
    """
    if source == "random":
        m = min(max(1, round(n * edges_per_node)), n * (n - 1) // 2)
        seed = rng.randrange(2**32)
        return labelled(rng, n, list(nx.gnm_random_graph(n, m, seed=seed).edges()), relations)
    if source == "tree":
        seed = rng.randrange(2**32)
        return labelled(rng, n, list(nx.random_labeled_tree(n, seed=seed).edges()), relations)
    if source == "family":
        triples = []
        for child in range(1, n):  # each person but the root has one recorded parent
            triples.append((rng.randrange(child), son + rng.randrange(2), child))
        return Graph(n, tuple(triples), symmetric=False, family=True)
    size, edges = real_edges(source)
    return labelled(rng, size, edges, relations)


def base_targets(graph: Graph) -> dict[tuple[int, int], set[int]]:
    """``(source, relation) -> targets`` over the listed triples (both ways if symmetric)."""
    out: dict[tuple[int, int], set[int]] = {}
    for s, r, t in graph.triples:
        out.setdefault((s, r), set()).add(t)
        if graph.symmetric:
            out.setdefault((t, r), set()).add(s)
    return out


def family_relations(graph: Graph, son: int) -> dict[str, dict[int, set[int]]]:
    """Every derived relation of a family graph: ``relation -> person -> relatives``."""
    parent: dict[int, int] = {}
    male: dict[int, bool] = {}
    children: dict[int, set[int]] = {x: set() for x in range(graph.n)}
    for p, r, c in graph.triples:
        parent[c] = p
        male[c] = r == son
        children[p].add(c)

    def parents(x: int) -> set[int]:
        return {parent[x]} if x in parent else set()

    def siblings(x: int) -> set[int]:
        return children[parent[x]] - {x} if x in parent else set()

    def parents_siblings(x: int) -> set[int]:
        return set().union(*(siblings(p) for p in parents(x)))

    people = range(graph.n)
    return {
        "parent": {x: parents(x) for x in people},
        "child": {x: set(children[x]) for x in people},
        "sibling": {x: siblings(x) for x in people},
        "grandparent": {x: set().union(*(parents(p) for p in parents(x))) for x in people},
        "uncle": {x: {y for y in parents_siblings(x) if male[y]} for x in people},
        "aunt": {x: {y for y in parents_siblings(x) if not male[y]} for x in people},
        "cousin": {x: set().union(*(children[u] for u in parents_siblings(x))) for x in people},
    }


def unique_shortest_paths(graph: Graph, longest: int) -> dict[int, list[list[int]]]:
    """Paths ``[s, ..., t]`` that are the only shortest path from s to t, by hop count
    (1 to ``longest``), over the undirected structure of the graph."""
    adjacent: dict[int, set[int]] = {x: set() for x in range(graph.n)}
    for s, _, t in graph.triples:
        adjacent[s].add(t)
        adjacent[t].add(s)
    out: dict[int, list[list[int]]] = {}
    for start in range(graph.n):
        distance, count, previous = {start: 0}, {start: 1}, {start: start}
        queue = deque([start])
        while queue:
            u = queue.popleft()
            if distance[u] >= longest:
                continue
            for v in adjacent[u]:
                if v not in distance:
                    distance[v], count[v], previous[v] = distance[u] + 1, count[u], u
                    queue.append(v)
                elif distance[v] == distance[u] + 1:
                    count[v] += count[u]
        for end, hops in distance.items():
            if hops >= 1 and count[end] == 1:
                path = [end]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                out.setdefault(hops, []).append(path[::-1])
    return out
