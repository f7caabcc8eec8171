"""Topological generations ("phases"): the tasks that can run side by side, layer by layer."""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx

from germinate_nb.core.task import TaskDefinition
from germinate_nb.errors import DagCycleError
from germinate_nb.graph.build import build_tasks_dag

__all__ = [
    "find_cycles",
    "format_cycle",
    "task_generations",
    "topological_generations",
    "toposort_tasks_phases",
]


def topological_generations(g: nx.DiGraph, *, state: str | None = None) -> list[list[str]]:
    """Return the topological generations of a DAG, names sorted inside each generation.

    Raises
    ------
    DagCycleError
        With the cycle as a path (``err.cycle``) when the graph is not a DAG.

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


def task_generations(
    tasks: Sequence[TaskDefinition], *, state: str | None = None
) -> list[list[str]]:
    """Phases of tasks, straight from their edges (edges to tasks outside ``tasks`` are ignored).

    Same answer as :func:`topological_generations` on ``build_tasks_dag(tasks)`` without
    building the networkx graph: Kahn's algorithm over the tasks' own parent/child links.

    Raises
    ------
    DagCycleError
        With the cycle as a path when the tasks are not a DAG.
    """
    members = {t.name: t for t in tasks}
    indegree: dict[str, int] = {}
    current: list[TaskDefinition] = []
    for t in tasks:
        n = 0
        for p in t._parents:
            if members.get(p.name) is p:
                n += 1
        indegree[t.name] = n
        if n == 0:
            current.append(t)
    generations: list[list[str]] = []
    seen = 0
    while current:
        generations.append(sorted([t.name for t in current]))
        seen += len(current)
        following: list[TaskDefinition] = []
        for t in current:
            for c in t._children:
                name = c.name
                if members.get(name) is c:
                    left = indegree[name] - 1
                    indegree[name] = left
                    if left == 0:
                        following.append(c)
        current = following
    if seen < len(members):
        cycle = find_cycles(build_tasks_dag(tasks))[0]
        raise DagCycleError(format_cycle(cycle, state), cycle=cycle, state=state)
    return generations


def toposort_tasks_phases(tasks: Sequence[TaskDefinition]) -> list[list[str]]:
    """Phases of a list of tasks: all tasks of one phase can run in parallel."""
    return topological_generations(build_tasks_dag(tasks))


def find_cycles(g: nx.DiGraph) -> list[list[str]]:
    """One cycle per strongly connected component, each as a closed path starting at its least name.

    Examples
    --------
    >>> find_cycles(nx.DiGraph([("b", "c"), ("c", "a"), ("a", "b"), ("x", "y")]))
    [['a', 'b', 'c', 'a']]
    """
    cycles = []
    for component in nx.strongly_connected_components(g):
        if len(component) == 1:
            (node,) = component
            if not g.has_edge(node, node):
                continue
            cycles.append([node, node])
            continue
        start = min(component)
        sub = g.subgraph(component)
        edges = nx.find_cycle(sub, source=start)
        path = [edges[0][0]] + [v for _, v in edges]
        # rotate so the path starts at the least name of the cycle
        body = path[:-1]
        i = body.index(min(body))
        body = body[i:] + body[:i]
        cycles.append([*body, body[0]])
    cycles.sort()
    return cycles


def format_cycle(cycle: Sequence[str], state: str | None = None) -> str:
    """Message for a cycle: where it is, the path, and an edge to remove."""
    where = f" in state '{state}'" if state else ""
    path = " -> ".join(cycle)
    return f"cycle{where}: {path}. Remove one of these edges, e.g. `{cycle[-2]} >> {cycle[-1]}`."
