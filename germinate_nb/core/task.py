"""TaskDefinition: a named task in a state, and the ``>>`` / ``<<`` wiring between tasks."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Union

from pydantic import BaseModel

from germinate_nb.core.executor import TaskExecutor
from germinate_nb.core.options import NO_OPTIONS, TaskOptions
from germinate_nb.errors import DeclarationError

if TYPE_CHECKING:
    from germinate_nb.core.state import State

__all__ = ["CycleWarning", "TaskDefinition"]

Tasks = Union["TaskDefinition", Sequence["TaskDefinition"]]


class TaskDefinition:
    """A user's definition of a task: a name in a state, its executor and its edges.

    Usually made by ``@state.task`` or ``%%germinate_task`` rather than directly.
    ``options`` (:class:`~germinate_nb.core.options.TaskOptions`) say how it runs: retries,
    timeout, concurrency limit.

    Examples
    --------
    >>> a, b, c = TaskDefinition("a"), TaskDefinition("b"), TaskDefinition("c")
    >>> a >> b >> c
    <Task: c (parents: [b], children: [])>
    >>> sorted(t.name for t in b.parents)
    ['a']
    """

    def __init__(
        self,
        name: str,
        *,
        executor: TaskExecutor | None = None,
        executor_name: str | None = None,
        state: State | None = None,
        options: TaskOptions | None = None,
    ) -> None:
        self.name = name
        self.options = options if options is not None else NO_OPTIONS
        self.state = state
        self.executor = executor
        self.executor_name = executor_name
        self._parents: dict[TaskDefinition, None] = {}
        self._children: dict[TaskDefinition, None] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> BaseModel:
        """Call the task's function directly (no validation, no registry)."""
        if self.executor is None:
            msg = f"task '{self.name}' has no executor to call."
            raise DeclarationError(msg, task=self.name)
        result: BaseModel = self.executor(*args, **kwargs)
        return result

    # Identity: a task is equal only to itself, so its hash is its identity too. (The seed
    # hashed "state.name", which failed for a task without a state and breaks while pickle
    # rebuilds the parent/child dicts of a task graph.)
    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other

    @property
    def parents(self) -> list[TaskDefinition]:
        """Tasks this task depends on, in the order they were wired."""
        return list(self._parents)

    @property
    def children(self) -> list[TaskDefinition]:
        """Tasks that depend on this task, in the order they were wired."""
        return list(self._children)

    @property
    def kind(self) -> str:
        """``"task"``, or ``"condition"`` for the task that evaluates a state's condition."""
        kind: str = getattr(self.executor, "kind", "task")
        return kind

    @property
    def registered_name(self) -> str | None:
        """``"<namespace>.<executor name>"`` of this task's executor."""
        if self.executor is not None:
            return self.executor.registered_name
        return self.executor_name

    def add_parents(self, others: Tasks) -> None:
        """Make this task depend on other tasks (a wiring that closes a cycle is warned of)."""
        for other in _as_tasks(others, self, "<<"):
            self._parents[other] = None
            other._children[self] = None
            other._changed()
            _warn_if_cycle(other, self)
        self._changed()

    def add_children(self, others: Tasks) -> None:
        """Other tasks depend on this task (a wiring that closes a cycle is warned of)."""
        for other in _as_tasks(others, self, ">>"):
            self._children[other] = None
            other._parents[self] = None
            other._changed()
            _warn_if_cycle(self, other)
        self._changed()

    def remove_parents(self, others: Tasks) -> None:
        """Remove edges from ``others`` to this task (missing edges are ignored)."""
        for other in _as_tasks(others, self, "remove_parents"):
            self._parents.pop(other, None)
            other._children.pop(self, None)
            other._changed()
        self._changed()

    def unlink(self) -> None:
        """Remove every edge of this task."""
        for parent in self.parents:
            parent._children.pop(self, None)
            parent._changed()
        for child in self.children:
            child._parents.pop(self, None)
            child._changed()
        self._parents.clear()
        self._children.clear()
        self._changed()

    def _changed(self) -> None:
        if self.state is not None:
            self.state._touch(self, "edges")

    def __lshift__(self, others: Tasks) -> Tasks:
        """Task << Task | [Task]: this task depends on other task(s); returns the right side."""
        self.add_parents(others)
        return others

    def __rshift__(self, others: Tasks) -> Tasks:
        """Task >> Task | [Task]: other task(s) depend on this task; returns the right side."""
        self.add_children(others)
        return others

    def __rlshift__(self, others: Tasks) -> TaskDefinition:
        """[Task] << (this) Task: the tasks on the left depend on this task."""
        self.add_children(others)
        return self

    def __rrshift__(self, others: Tasks) -> TaskDefinition:
        """[Task] >> (this) Task: this task depends on the tasks on the left."""
        self.add_parents(others)
        return self

    def __repr__(self) -> str:
        state_name = f"{self.state.name}." if self.state is not None else ""
        parents = ", ".join(t.name for t in self.parents)
        children = ", ".join(t.name for t in self.children)
        return f"<Task: {state_name}{self.name} (parents: [{parents}], children: [{children}])>"


class CycleWarning(UserWarning):
    """Wiring two tasks closed a cycle: the state cannot run until an edge is removed."""


def _warn_if_cycle(parent: TaskDefinition, child: TaskDefinition) -> None:
    """Warn, with the path, when the new edge ``parent >> child`` closes a cycle.

    The seed allows the call, so it is not refused; the state's validation reports the cycle
    too. Only the new edge's downstream is searched, so wiring a new task costs nothing.
    """
    stack = [(child, [child.name])]
    seen = {id(child)}
    while stack:
        task, path = stack.pop()
        for nxt in task._children:
            if nxt is parent:
                cycle = " -> ".join([parent.name, *path, parent.name])
                where = f" in state '{parent.state.name}'" if parent.state is not None else ""
                msg = (
                    f"{parent.name} >> {child.name} closes a cycle{where}: {cycle}. The state "
                    f"cannot run until one edge goes, e.g. "
                    f"`{child.name}.remove_parents({parent.name})`."
                )
                warnings.warn(msg, CycleWarning, stacklevel=_user_stacklevel())
                return
            if id(nxt) not in seen:
                seen.add(id(nxt))
                stack.append((nxt, [*path, nxt.name]))


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside germinate_nb."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("germinate_nb"):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _as_tasks(others: Any, this: TaskDefinition, op: str) -> list[TaskDefinition]:
    items: Iterable[Any]
    if isinstance(others, TaskDefinition):
        items = [others]
    elif isinstance(others, (list, tuple, set, frozenset)):
        items = others
    else:
        msg = (
            f"cannot wire task '{this.name}' {op} {type(others).__name__} {others!r}: "
            "only tasks or lists of tasks can be wired. Use the object returned by @state.task."
        )
        raise DeclarationError(msg, task=this.name)
    result = []
    for item in items:
        if not isinstance(item, TaskDefinition):
            msg = (
                f"cannot wire task '{this.name}' {op} {type(item).__name__} {item!r}: "
                "every item must be a task. Use the object returned by @state.task."
            )
            raise DeclarationError(msg, task=this.name)
        if item is this:
            msg = f"task '{this.name}' cannot depend on itself ({this.name} {op} {this.name})."
            raise DeclarationError(msg, task=this.name)
        result.append(item)
    return result
