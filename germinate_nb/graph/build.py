"""build_tasks_dag and is_dag: a networkx DiGraph whose nodes are task names."""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx

from germinate_nb.core.task import TaskDefinition

__all__ = ["build_tasks_dag", "is_dag"]


def build_tasks_dag(tasks: Sequence[TaskDefinition]) -> nx.DiGraph:
    """Build a networkx directed graph from tasks; each node carries its ``task``.

    Parents outside ``tasks`` still appear as nodes (without ``task``) so validation can
    report them.

    Examples
    --------
    >>> a, b = TaskDefinition("a"), TaskDefinition("b")
    >>> _ = a >> b
    >>> sorted(build_tasks_dag([a, b]).edges)
    [('a', 'b')]
    """
    g = nx.DiGraph()
    g.add_nodes_from((t.name, {"task": t}) for t in tasks)
    g.add_edges_from((p.name, t.name) for t in tasks for p in t._parents)
    return g


def is_dag(g: nx.DiGraph) -> bool:
    """Check that the graph is a DAG.

    Examples
    --------
    >>> is_dag(nx.DiGraph([("a", "b"), ("b", "a")]))
    False
    """
    return bool(nx.is_directed_acyclic_graph(g))
