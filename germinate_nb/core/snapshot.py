"""DagSnapshot: a frozen view of one version of a state's DAG, read by every layer above core."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from germinate_nb.errors import DagCycleError, UnknownTaskError
from germinate_nb.graph.lineage import lineage, neighbourhood, upstream
from germinate_nb.graph.phases import find_cycles, generations

if TYPE_CHECKING:
    import networkx as nx
    from pydantic import BaseModel

    from germinate_nb.core.executor import TaskExecutor
    from germinate_nb.core.options import TaskOptions
    from germinate_nb.core.registry import TaskRegistry
    from germinate_nb.core.task import TaskDefinition

__all__ = ["DagSnapshot", "ForeignParent", "TaskSpec"]


class ForeignParent(NamedTuple):
    """A parent wired to a task that is not a task of the task's own state."""

    name: str
    state: str | None
    output_schema: type[BaseModel] | None


class TaskSpec(NamedTuple):
    """One task as a run sees it: its executor (resolved) and its edges inside the state.

    ``executor`` is None when the task has none, or names an executor that is not registered
    (``missing`` then says why). ``options`` is how the task runs (retries, timeout, limit);
    None when it declares none. They are not part of the executor's fingerprint.
    """

    name: str
    executor: TaskExecutor | None
    registered_name: str | None
    parents: tuple[str, ...]
    children: tuple[str, ...]
    foreign_parents: tuple[ForeignParent, ...] = ()
    missing: str | None = None
    options: TaskOptions | None = None


class DagSnapshot:
    """The tasks, edges and executors of a state at one version; never changes.

    Made by :meth:`State.snapshot` once per version of the state (and of the registry, which
    resolves executors named by ``executor_name``). Edges hold only tasks of the state, in
    wiring order; ``phases`` and ``cycles`` are computed on first use.

    Examples
    --------
    >>> from germinate_nb import State, TaskExecutor, use_registry
    >>> with use_registry():
    ...     s = State("doc")
    ...     a, b = (s.define_task(n, TaskExecutor(n + "_executor", print)) for n in "ab")
    ...     _ = a >> b
    ...     snap = s.snapshot()
    >>> snap.names, dict(snap.parents), snap.phases
    (('a', 'b'), {'a': (), 'b': ('a',)}, [['a'], ['b']])
    """

    __slots__ = ("_memo", "children", "names", "parents", "state", "tasks", "version")

    def __init__(self, state: str, version: Any, specs: Sequence[TaskSpec]) -> None:
        self.state = state
        self.version = version
        self.names: tuple[str, ...] = tuple(s.name for s in specs)
        self.tasks: Mapping[str, TaskSpec] = MappingProxyType({s.name: s for s in specs})
        self.parents: Mapping[str, tuple[str, ...]] = MappingProxyType(
            {s.name: s.parents for s in specs}
        )
        self.children: Mapping[str, tuple[str, ...]] = MappingProxyType(
            {s.name: s.children for s in specs}
        )
        self._memo: dict[Any, Any] = {}

    @classmethod
    def of(
        cls, state: str, tasks: Iterable[TaskDefinition], registry: TaskRegistry, version: Any
    ) -> DagSnapshot:
        """Snapshot ``tasks`` (the tasks of ``state`` in declaration order)."""
        tasks = list(tasks)
        members = {t.name: t for t in tasks}
        specs = []
        for t in tasks:
            inside: list[str] = []
            foreign: list[ForeignParent] = []
            for p in t._parents:
                if members.get(p.name) is p:
                    inside.append(p.name)
                else:
                    pex = p.executor
                    foreign.append(
                        ForeignParent(
                            p.name,
                            p.state.name if p.state is not None else None,
                            pex.output_schema if pex is not None else None,
                        )
                    )
            children = tuple([c.name for c in t._children if members.get(c.name) is c])
            executor, missing = t.executor, None
            if executor is None and t.executor_name:
                try:
                    executor = registry.get_executor(t.executor_name)
                except UnknownTaskError:
                    missing = f"'{t.executor_name}' is not registered"
            specs.append(
                TaskSpec(
                    t.name,
                    executor,
                    t.registered_name,
                    tuple(inside),
                    children,
                    tuple(foreign),
                    missing,
                    None if t.options.is_default else t.options,
                )
            )
        return cls(state, version, specs)

    # -- reading ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.tasks

    def __getitem__(self, name: str) -> TaskSpec:
        return self.tasks[name]

    def __repr__(self) -> str:
        return f"<DagSnapshot {self.state} v{self.version}: {len(self.names)} tasks>"

    def _cached(self, key: Any, make: Any) -> Any:
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = make()
            return value

    @property
    def phases(self) -> list[list[str]]:
        """Topological generations, names sorted in each (a new list each call).

        Raises
        ------
        DagCycleError
            When the tasks do not form a DAG.
        """
        phases = self._cached("phases", self._phases)
        if isinstance(phases, DagCycleError):
            raise DagCycleError(str(phases), cycle=phases.cycle, state=phases.state)
        return [list(p) for p in phases]

    def _phases(self) -> tuple[tuple[str, ...], ...] | DagCycleError:
        try:
            found = generations(self.names, self.parents, self.children, state=self.state)
        except DagCycleError as err:
            return err
        return tuple(tuple(p) for p in found)

    @property
    def phase_of(self) -> Mapping[str, int]:
        """Task name to its phase index (0-based); empty when there is a cycle."""

        def make() -> Mapping[str, int]:
            phases = self._cached("phases", self._phases)
            if isinstance(phases, DagCycleError):
                return MappingProxyType({})
            return MappingProxyType({n: i for i, p in enumerate(phases) for n in p})

        result: Mapping[str, int] = self._cached("phase_of", make)
        return result

    @property
    def has_cycle(self) -> bool:
        """Do the tasks fail to form a DAG?"""
        return isinstance(self._cached("phases", self._phases), DagCycleError)

    @property
    def cycles(self) -> list[list[str]]:
        """One closed path per cycle (empty for a DAG)."""
        found: list[list[str]] = self._cached(
            "cycles", lambda: find_cycles(self.children) if self.has_cycle else []
        )
        return [list(c) for c in found]

    @property
    def roots(self) -> tuple[str, ...]:
        """Tasks without parents in the state."""
        found: tuple[str, ...] = self._cached(
            "roots", lambda: tuple(n for n in self.names if not self.parents[n])
        )
        return found

    @property
    def sinks(self) -> tuple[str, ...]:
        """Tasks without children in the state."""
        found: tuple[str, ...] = self._cached(
            "sinks", lambda: tuple(n for n in self.names if not self.children[n])
        )
        return found

    def upstream(self, names: Iterable[str]) -> set[str]:
        """``names`` with all their ancestors."""
        return upstream(names, self.parents)

    def lineage(self, name: str, hops: int | None = None) -> set[str]:
        """A task with its ancestors and descendants (or what lies within ``hops`` edges)."""
        if hops is not None:
            return neighbourhood(name, self.parents, self.children, hops)
        return lineage(name, self.parents, self.children)

    def subset(self, names: Iterable[str]) -> DagSnapshot:
        """The snapshot restricted to ``names`` (declaration order kept, outside edges dropped)."""
        keep = set(names)
        specs = []
        for n in self.names:
            if n not in keep:
                continue
            s = self.tasks[n]
            specs.append(
                TaskSpec(
                    s.name,
                    s.executor,
                    s.registered_name,
                    tuple(p for p in s.parents if p in keep),
                    tuple(c for c in s.children if c in keep),
                    s.foreign_parents,
                    s.missing,
                    s.options,
                )
            )
        return DagSnapshot(self.state, (self.version, tuple(sorted(keep))), specs)

    def networkx(self) -> nx.DiGraph:
        """A networkx DiGraph of the tasks (built once per snapshot)."""

        def make() -> nx.DiGraph:
            import networkx as nx

            g = nx.DiGraph()
            g.add_nodes_from(self.names)
            g.add_edges_from((p, n) for n in self.names for p in self.parents[n])
            return g

        g: nx.DiGraph = self._cached("networkx", make)
        return g

    def memo(self, key: Any, make: Any) -> Any:
        """A value derived from this snapshot, computed once (e.g. validation problems)."""
        return self._cached(("user", key), make)
