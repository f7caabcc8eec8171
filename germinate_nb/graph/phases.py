"""Topological generations ("phases") and cycles, over adjacency mappings or networkx graphs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import networkx as nx

from germinate_nb.errors import DagCycleError

__all__ = [
    "find_cycles",
    "format_cycle",
    "generations",
    "topological_generations",
    "toposort_tasks_phases",
]


def generations(
    order: Sequence[str],
    parents: Mapping[str, Sequence[str]],
    children: Mapping[str, Sequence[str]],
    *,
    state: str | None = None,
) -> list[list[str]]:
    """Topological generations of ``order`` (Kahn's algorithm), names sorted in each generation.

    ``parents`` and ``children`` hold only edges between names of ``order``.

    Raises
    ------
    DagCycleError
        With one cycle as a closed path (``err.cycle``) when the names do not form a DAG.

    Examples
    --------
    >>> parents = {"a": [], "b": [], "c": ["a", "b"]}
    >>> generations(["a", "b", "c"], parents, {"a": ["c"], "b": ["c"], "c": []})
    [['a', 'b'], ['c']]
    >>> generations(["a", "b"], {"a": ["b"], "b": ["a"]}, {"a": ["b"], "b": ["a"]}, state="s")
    Traceback (most recent call last):
    ...
    germinate_nb.errors.DagCycleError: cycle in state 's': a -> b -> a. Remove ...
    """
    indegree = {name: len(parents[name]) for name in order}
    current = [name for name, n in indegree.items() if n == 0]
    result: list[list[str]] = []
    seen = 0
    while current:
        current.sort()
        result.append(current)
        seen += len(current)
        following: list[str] = []
        for name in current:
            for child in children[name]:
                left = indegree[child] - 1
                indegree[child] = left
                if left == 0:
                    following.append(child)
        current = following
    if seen < len(indegree):
        cycle = find_cycles(children)[0]
        raise DagCycleError(format_cycle(cycle, state), cycle=cycle, state=state)
    return result


def topological_generations(g: nx.DiGraph, *, state: str | None = None) -> list[list[str]]:
    """Return the topological generations of a networkx DAG, names sorted in each generation.

    Raises
    ------
    DagCycleError
        With the cycle as a path (``err.cycle``) when the graph is not a DAG; it is also a
        ``TypeError``, the type the seed raised.

    Examples
    --------
    >>> topological_generations(nx.DiGraph([("a", "c"), ("b", "c")]))
    [['a', 'b'], ['c']]
    >>> topological_generations(nx.DiGraph([("a", "b"), ("b", "a")]), state="s")
    Traceback (most recent call last):
    ...
    germinate_nb.errors.DagCycleError: cycle in state 's': a -> b -> a. Remove ...
    """
    try:
        return [sorted(gen) for gen in nx.topological_generations(g)]
    except nx.NetworkXUnfeasible:
        cycle = find_cycles(g)[0]
        raise DagCycleError(format_cycle(cycle, state), cycle=cycle, state=state) from None


class _Task(Protocol):
    @property
    def name(self) -> str: ...  # pragma: no cover

    @property
    def parents(self) -> Iterable[_Task]: ...  # pragma: no cover


def toposort_tasks_phases(tasks: Sequence[_Task]) -> list[list[str]]:
    """Phases of a list of tasks: all tasks of one phase can run in parallel (the seed's API)."""
    from germinate_nb.graph.build import build_tasks_dag

    return topological_generations(build_tasks_dag(tasks))


def find_cycles(graph: nx.DiGraph | Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle per strongly connected component, each a closed path starting at its least name.

    ``graph`` is a networkx graph or a mapping from a name to its successors.

    Examples
    --------
    >>> find_cycles({"b": ["c"], "c": ["a"], "a": ["b"], "x": ["y"], "y": []})
    [['a', 'b', 'c', 'a']]
    """
    g = graph if isinstance(graph, nx.DiGraph) else _digraph(graph)
    cycles = []
    for component in nx.strongly_connected_components(g):
        if len(component) == 1:
            (node,) = component
            if g.has_edge(node, node):
                cycles.append([node, node])
            continue
        start = min(component)
        edges = nx.find_cycle(g.subgraph(component), source=start)
        body: list[Any] = [edges[0][0]] + [v for _, v in edges][:-1]
        i = body.index(min(body))  # rotate so the path starts at the least name of the cycle
        body = body[i:] + body[:i]
        cycles.append([*body, body[0]])
    cycles.sort()
    return cycles


def _digraph(successors: Mapping[str, Iterable[str]]) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(successors)
    g.add_edges_from((a, b) for a, bs in successors.items() for b in bs)
    return g


def format_cycle(cycle: Sequence[str], state: str | None = None) -> str:
    """Message for a cycle: where it is, the path, and an edge to remove."""
    where = f" in state '{state}'" if state else ""
    path = " -> ".join(cycle)
    return f"cycle{where}: {path}. Remove one of these edges, e.g. `{cycle[-2]} >> {cycle[-1]}`."
