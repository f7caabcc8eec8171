"""Phase-layered coordinates: x is the phase, y spreads the tasks of a phase around 0."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx

from germinate_nb.core.snapshot import DagSnapshot
from germinate_nb.core.state import State
from germinate_nb.errors import DagCycleError

__all__ = ["Layout", "focus_tasks", "phase_layout", "snapshot_layout"]


@dataclass
class Layout:
    """Where each task goes, and the layers that placed it."""

    positions: dict[str, tuple[float, float]]
    layers: list[list[str]]
    cyclic: bool = False

    @property
    def width(self) -> int:
        """Number of layers (phases)."""
        return len(self.layers)

    @property
    def height(self) -> int:
        """Most tasks in one layer."""
        return max((len(layer) for layer in self.layers), default=0)


def _layers(snap: DagSnapshot, names: set[str] | None) -> tuple[list[list[str]], bool]:
    try:
        phases = snap.phases
        cyclic = False
    except DagCycleError:
        condensed = nx.condensation(snap.networkx())
        phases = [
            sorted(n for c in gen for n in condensed.nodes[c]["members"])
            for gen in nx.topological_generations(condensed)
        ]
        cyclic = True
    if names is not None:
        phases = [[n for n in p if n in names] for p in phases]
        phases = [p for p in phases if p]
    return phases, cyclic


def phase_layout(state: State, names: Iterable[str] | None = None) -> Layout:
    """Lay the tasks of ``state`` out left to right by phase.

    Inside a phase, tasks are ordered by the mean height of their parents (fewer crossings),
    then by name. A state with a cycle is laid out by its strongly connected components.

    Examples
    --------
    >>> from pydantic import BaseModel
    >>> from germinate_nb import State, TaskExecutor, use_registry
    >>> with use_registry():
    ...     s = State("s")
    ...     a, b, c = (s.define_task(n, TaskExecutor(n + "_executor", print)) for n in "abc")
    ...     _ = a >> [b, c]
    ...     phase_layout(s).positions
    {'a': (0.0, 0.0), 'b': (1.0, 0.5), 'c': (1.0, -0.5)}
    """
    return snapshot_layout(state.snapshot(), names)


def snapshot_layout(snap: DagSnapshot, names: Iterable[str] | None = None) -> Layout:
    """:func:`phase_layout` of a snapshot (computed once per snapshot for the whole DAG)."""
    if names is None:
        layout: Layout = snap.memo("layout", lambda: _layout(snap, None))
        return layout
    return _layout(snap, set(names))


def _layout(snap: DagSnapshot, subset: set[str] | None) -> Layout:
    parents = snap.parents
    layers, cyclic = _layers(snap, subset)
    positions: dict[str, tuple[float, float]] = {}
    ordered: list[list[str]] = []
    for x, layer in enumerate(layers):
        if x > 0:

            def key(name: str) -> tuple[float, str]:
                ys = [positions[p][1] for p in parents[name] if p in positions]
                return (-(sum(ys) / len(ys)) if ys else 0.0, name)

            layer = sorted(layer, key=key)
        n = len(layer)
        for i, name in enumerate(layer):
            positions[name] = (float(x), (n - 1) / 2 - i)
        ordered.append(layer)
    return Layout(positions, ordered, cyclic)


def focus_tasks(state: State, name: str, hops: int | None = None) -> set[str]:
    """The task with its ancestors and descendants, or everything within ``hops`` edges."""
    snap = state.snapshot()
    if name not in snap:
        state.get(name)  # UnknownTaskError with a did-you-mean
    return snap.lineage(name, hops)
