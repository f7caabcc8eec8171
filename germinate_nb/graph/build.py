"""build_tasks_dag and is_dag: the seed's networkx view of a list of tasks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import networkx as nx

__all__ = ["build_tasks_dag", "is_dag"]


class _Task(Protocol):
    """What the seed's functions read of a task: its name and its parents."""

    @property
    def name(self) -> str: ...  # pragma: no cover

    @property
    def parents(self) -> Iterable[_Task]: ...  # pragma: no cover


def build_tasks_dag(tasks: Sequence[_Task]) -> nx.DiGraph:
    """Build a networkx directed graph from tasks; each node carries its ``task``.

    Parents outside ``tasks`` still appear as nodes (without ``task``), as in the seed.

    Examples
    --------
    >>> from germinate_nb import TaskDefinition
    >>> a, b = TaskDefinition("a"), TaskDefinition("b")
    >>> _ = a >> b
    >>> sorted(build_tasks_dag([a, b]).edges)
    [('a', 'b')]
    """
    g = nx.DiGraph()
    g.add_nodes_from((t.name, {"task": t}) for t in tasks)
    g.add_edges_from((p.name, t.name) for t in tasks for p in t.parents)
    return g


def is_dag(g: nx.DiGraph) -> bool:
    """Check that the graph is a DAG.

    Examples
    --------
    >>> is_dag(nx.DiGraph([("a", "b"), ("b", "a")]))
    False
    """
    return bool(nx.is_directed_acyclic_graph(g))
