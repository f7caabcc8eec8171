"""State: a named DAG of tasks, with ``@state.task`` and ``@state.condition`` decorators."""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, overload

from pydantic import BaseModel

from germinate_nb.core.executor import TaskExecutor, input_parameter
from germinate_nb.core.registry import TaskRegistry, did_you_mean
from germinate_nb.core.schema import get_io_schemas, is_model
from germinate_nb.core.snapshot import DagSnapshot
from germinate_nb.core.task import TaskDefinition
from germinate_nb.errors import DeclarationError, UnknownTaskError

if TYPE_CHECKING:
    import networkx as nx

    from germinate_nb.core.validate import Problem

__all__ = ["Condition", "State", "Transition", "task_decorator_factory"]

TaskFunc = Callable[..., Any]


def executor_name_for(func_name: str) -> str:
    """The seed's executor naming: ``<func>_executor`` unless it already ends in ``executor``."""
    return func_name if func_name.endswith("executor") else f"{func_name}_executor"


def check_identifier(name: str, what: str = "task") -> None:
    """Refuse names that are not Python identifiers (they must work as attributes and in CLI)."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        msg = (
            f"{what} name {name!r} is not a Python identifier. "
            "Use letters, digits and underscores, not starting with a digit."
        )
        raise DeclarationError(msg, task=str(name))


def task_decorator_factory(namespace: str, state: State) -> Callable[[TaskFunc], TaskDefinition]:
    """Create a decorator that turns a function into a task of ``state`` in ``namespace``."""

    def decorate(func: TaskFunc) -> TaskDefinition:
        if not callable(func) or not hasattr(func, "__name__"):
            msg = f"@{state.name}.task() decorates functions, not {type(func).__name__}."
            raise DeclarationError(msg)
        name = func.__name__
        check_identifier(name)
        input_schema, output_schema = get_io_schemas(func, task=name)
        executor = TaskExecutor(
            namespace=namespace,
            name=executor_name_for(name),
            input_schema=input_schema,
            output_schema=output_schema,
            callable=func,
            input_param=input_parameter(func),
        )
        return state.define_task(name, executor)

    return decorate


class Condition:
    """A named predicate over a state's final output, used to pick the next state."""

    def __init__(self, name: str, func: Callable[..., Any], state: State | None = None) -> None:
        self.name = name
        self.func = func
        self.state = state

    def __call__(self, output: Any) -> bool:
        """Evaluate the condition on a state's merged output (validated into its annotation)."""
        param = input_parameter(self.func)
        if param is not None:
            annotation = inspect.signature(self.func).parameters[param].annotation
            if isinstance(annotation, str):
                import typing

                annotation = typing.get_type_hints(self.func).get(param, inspect.Parameter.empty)
            if is_model(annotation):
                data = output.model_dump() if isinstance(output, BaseModel) else output
                output = annotation.model_validate(data)
            return bool(self.func(output))
        return bool(self.func())

    def __repr__(self) -> str:
        state = f"{self.state.name}." if self.state else ""
        return f"<Condition: {state}{self.name}>"


class Transition:
    """An edge of a workflow's state machine: ``(source & condition) >> target``."""

    def __init__(self, source: State, condition: Condition, target: State) -> None:
        self.source = source
        self.condition = condition
        self.target = target

    def __repr__(self) -> str:
        return f"<Transition: {self.source.name} -[{self.condition.name}]-> {self.target.name}>"


class _GuardedState:
    """``state & condition``, waiting for ``>> target``."""

    def __init__(self, state: State, condition: Condition) -> None:
        self.state = state
        self.condition = condition

    def __rshift__(self, target: State) -> State:
        if not isinstance(target, State):
            msg = (
                f"({self.state.name} & {self.condition.name}) >> needs a State on the right, "
                f"got {type(target).__name__}."
            )
            raise DeclarationError(msg)
        self.state.add_transition(Transition(self.state, self.condition, target))
        return target


class State:
    """A named DAG of tasks.

    ``State(name)`` returns the existing state of that name in the registry, so re-running a
    notebook top to bottom redefines tasks in place instead of making twins.

    Examples
    --------
    >>> from pydantic import BaseModel
    >>> from germinate_nb.core.registry import use_registry
    >>> class N(BaseModel):
    ...     n: int
    >>> with use_registry():
    ...     s = State("doc")
    ...     @s.task()
    ...     def one(input: N) -> N:
    ...         return N(n=input.n + 1)
    ...     @s.task()
    ...     def two(input: N) -> N:
    ...         return N(n=input.n * 2)
    ...     _ = one >> two
    ...     s.phases
    [['one'], ['two']]
    """

    def __new__(cls, name: str, *, registry: TaskRegistry | None = None) -> State:
        """Return the registry's state called ``name`` if there is one, else a new state."""
        registry = registry or TaskRegistry.default()
        existing = registry.states.get(name) if isinstance(name, str) else None
        if existing is not None and type(existing) is cls:
            return existing
        return super().__new__(cls)

    def __init__(self, name: str, *, registry: TaskRegistry | None = None) -> None:
        if getattr(self, "_initialised", False):
            return
        check_identifier(name, "state")
        self.name = name
        self.registry = registry or TaskRegistry.default()
        self._tasks: dict[str, TaskDefinition] = {}
        self.conditions: dict[str, Condition] = {}
        self.transitions: list[Transition] = []
        self.version = 0
        self._snapshot: DagSnapshot | None = None
        self._initialised = True
        self.registry.add_state(self)

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.name,), {}

    # -- declaring ---------------------------------------------------------------------

    @overload
    def task(self, func: TaskFunc, *, namespace: str = ...) -> TaskDefinition: ...

    @overload
    def task(
        self, func: None = ..., *, namespace: str = ...
    ) -> Callable[[TaskFunc], TaskDefinition]: ...

    def task(
        self, func: TaskFunc | None = None, *, namespace: str = "agent"
    ) -> TaskDefinition | Callable[[TaskFunc], TaskDefinition]:
        """Decorate a function to declare it as a task of this state (``@state.task()``)."""
        if isinstance(func, str):
            msg = (
                f"@{self.name}.task({func!r}): the namespace is keyword-only. "
                f"Write @{self.name}.task(namespace={func!r})."
            )
            raise DeclarationError(msg)
        check_identifier(namespace, "namespace")
        decorator = task_decorator_factory(namespace, self)
        return decorator(func) if func is not None else decorator

    def condition(self, func: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
        """Decorate a predicate over this state's output (``@state.condition()``)."""

        def decorate(f: Callable[..., Any]) -> Condition:
            cond = Condition(name or f.__name__, f, self)
            self.conditions[cond.name] = cond
            self._touch(None, "condition")
            return cond

        return decorate(func) if func is not None else decorate

    def define_task(
        self,
        name: str,
        executor: TaskExecutor,
        *,
        parents: Sequence[str] | None = None,
    ) -> TaskDefinition:
        """Declare task ``name`` with ``executor``, or redefine it in place keeping its edges.

        With ``parents`` (names of tasks of this state) the task's parents become exactly those.
        """
        check_identifier(name)
        parent_tasks = [self.get(p) for p in parents] if parents is not None else None
        existing = self._tasks.get(name)
        if parent_tasks is not None and existing is not None and existing in parent_tasks:
            msg = f"task '{name}' in state '{self.name}' cannot be its own parent."
            raise DeclarationError(msg, task=name)
        self.registry.register(executor.namespace, executor.name, executor, state=self.name)
        if existing is None:
            task = TaskDefinition(name, executor=executor, state=self)
            self._tasks[name] = task
        else:
            task = existing
            old = task.executor
            task.executor = executor
            task.executor_name = None
            if old is not None and old.registered_name != executor.registered_name:
                self.registry.unregister(old.namespace, old.name)
        if parent_tasks is not None:
            stale = [p for p in task.parents if p not in parent_tasks]
            if stale:
                task.remove_parents(stale)
            if parent_tasks:
                task.add_parents(parent_tasks)
        self._touch(task, "redefined" if existing is not None else "added")
        return task

    def add_task(self, task: TaskDefinition) -> TaskDefinition:
        """Add a task to this state; a task of the same name is replaced in place.

        Returns the task kept in the state (the existing object when it was a redefinition).
        """
        check_identifier(task.name)
        existing = self._tasks.get(task.name)
        if task.executor is not None:
            ex = task.executor
            self.registry.register(ex.namespace, ex.name, ex, state=self.name)
        if existing is None or existing is task:
            task.state = self
            self._tasks[task.name] = task
            self._touch(task, "added")
            return task
        existing.executor = task.executor
        existing.executor_name = task.executor_name
        parents, children = task.parents, task.children
        task.unlink()
        if parents:
            existing.add_parents(parents)
        if children:
            existing.add_children(children)
        self._touch(existing, "redefined")
        return existing

    def remove_task(self, name: str) -> None:
        """Remove task ``name`` and its edges."""
        task = self.get(name)
        task.unlink()
        del self._tasks[name]
        if task.executor is not None:
            self.registry.unregister(task.executor.namespace, task.executor.name)
        self._touch(task, "removed")

    def add_transition(self, transition: Transition) -> None:
        """Add (or replace, by condition name) a transition out of this state."""
        self.transitions = [
            t for t in self.transitions if t.condition.name != transition.condition.name
        ]
        self.transitions.append(transition)
        self._touch(None, "transition")

    def clear(self) -> None:
        """Remove every task, condition and transition of this state."""
        for name in list(self._tasks):
            self.remove_task(name)
        self.conditions.clear()
        self.transitions.clear()
        self._touch(None, "cleared")

    def __and__(self, condition: Condition) -> _GuardedState:
        if not isinstance(condition, Condition):
            msg = (
                f"state '{self.name}' & {type(condition).__name__}: the right side must be a "
                f"condition made with @{self.name}.condition()."
            )
            raise DeclarationError(msg)
        return _GuardedState(self, condition)

    def _touch(self, task: TaskDefinition | None, kind: str) -> None:
        self.version += 1
        self.registry.notify(kind, self, task)

    # -- reading -----------------------------------------------------------------------

    @property
    def tasks(self) -> list[TaskDefinition]:
        """The tasks of this state in declaration order."""
        return list(self._tasks.values())

    def get(self, name: str) -> TaskDefinition:
        """Return the task called ``name``."""
        try:
            return self._tasks[name]
        except KeyError:
            msg = f"no task '{name}' in state '{self.name}'." + did_you_mean(
                name, list(self._tasks)
            )
            raise UnknownTaskError(msg, name=name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    def snapshot(self) -> DagSnapshot:
        """The frozen view of this state's tasks and edges, made once per version.

        Every layer above core reads a snapshot rather than the live tasks, so a run, a
        drawing or a validation sees one consistent version even while cells redefine tasks.
        """
        version = (self.version, self.registry.version)
        snap = self._snapshot
        if snap is None or snap.version != version:
            snap = DagSnapshot.of(self.name, self._tasks.values(), self.registry, version)
            self._snapshot = snap
        return snap

    @property
    def dag(self) -> nx.DiGraph:
        """The seed's networkx graph of this state's tasks (nodes carry their ``task``)."""
        from germinate_nb.graph.build import build_tasks_dag

        tasks = self.tasks
        graph: nx.DiGraph = self.snapshot().memo("dag", lambda: build_tasks_dag(tasks))
        return graph

    @property
    def phases(self) -> list[list[str]]:
        """Topological generations: task names, sorted inside each generation.

        Raises
        ------
        DagCycleError
            When the tasks do not form a DAG (the message shows the cycle as a path).
        """
        return self.snapshot().phases

    def validate(self, input: Any = None, *, raise_on_error: bool = False) -> list[Problem]:
        """Report every problem of this state's DAG at once (see :func:`validate`)."""
        from germinate_nb.core.validate import validate

        return validate(self, input=input, raise_on_error=raise_on_error)

    def __repr__(self) -> str:
        return f"<State: {self.name} ({len(self._tasks)} tasks)>"
