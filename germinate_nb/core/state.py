"""State: a named DAG of tasks, with ``@state.task`` and ``@state.condition`` decorators."""

from __future__ import annotations

import keyword
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, overload

from germinate_nb.core.conditions import (
    CONDITIONS_NAMESPACE,
    Condition,
    ConditionExecutor,
    ConditionResult,
    Transition,
)
from germinate_nb.core.executor import TaskExecutor, executor_name_for
from germinate_nb.core.options import TaskOptions, task_options
from germinate_nb.core.registry import TaskRegistry, did_you_mean
from germinate_nb.core.schema import get_io_schemas
from germinate_nb.core.snapshot import DagSnapshot
from germinate_nb.core.task import TaskDefinition
from germinate_nb.errors import DeclarationError, RegistryCollisionError, UnknownTaskError

if TYPE_CHECKING:
    import networkx as nx

    from germinate_nb.core.validate import Problem

__all__ = [
    "Condition",
    "ConditionExecutor",
    "ConditionResult",
    "State",
    "Transition",
    "executor_name_for",
    "task_decorator_factory",
]

TaskFunc = Callable[..., Any]
DEFAULT_NAMESPACE = "agent"
"""The seed's namespace of ``@state.task()``."""

# changes to a state's tasks that may change which tasks are its sinks
_STRUCTURE = frozenset(("added", "redefined", "removed", "edges"))


def check_identifier(name: str, what: str = "task") -> None:
    """Refuse names that are not Python identifiers (they must work as attributes and in CLI)."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        msg = (
            f"{what} name {name!r} is not a Python identifier. "
            "Use letters, digits and underscores, not starting with a digit."
        )
        raise DeclarationError(msg, task=str(name))


def check_namespace(namespace: str) -> None:
    """Refuse namespaces that are not identifiers joined by dots (``agents.ideate`` is fine)."""
    parts = namespace.split(".") if isinstance(namespace, str) else [namespace]
    if not all(isinstance(p, str) and p.isidentifier() and not keyword.iskeyword(p) for p in parts):
        msg = (
            f"namespace {namespace!r} is not a dotted Python name. Use identifiers joined by "
            "dots, e.g. 'agent' or 'agents.ideate'."
        )
        raise DeclarationError(msg, task=str(namespace))


def task_decorator_factory(
    namespace: str, state: State, options: dict[str, Any] | None = None
) -> Callable[[TaskFunc], TaskDefinition]:
    """Create a decorator that turns a function into a task of ``state`` in ``namespace``.

    ``options`` are the task's run options (``retries``, ``timeout``, ``limit``...), checked
    once the task's name is known.
    """

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
        )
        opts = task_options(name, state=state.name, **options) if options else None
        return state.define_task(name, executor, options=opts)

    return decorate


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
        self._conditions: list[Condition] = []
        self.version = 0
        self._snapshot: DagSnapshot | None = None
        self._built = False  # condition tasks placed; kept in place on every change after that
        self._placing = False
        self._initialised = True
        self.registry.add_state(self)

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.name,), {}

    # -- declaring tasks -----------------------------------------------------------------

    @overload
    def task(self, func: TaskFunc, *, namespace: str | None = ...) -> TaskDefinition: ...

    @overload
    def task(
        self,
        func: str | None = ...,
        *,
        namespace: str | None = ...,
        retries: int | None = ...,
        retry_delay: float | None = ...,
        backoff: float | None = ...,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] | None = ...,
        timeout: float | None = ...,
        limit: str | None = ...,
    ) -> Callable[[TaskFunc], TaskDefinition]: ...

    def task(
        self,
        func: TaskFunc | str | None = None,
        *,
        namespace: str | None = None,
        retries: int | None = None,
        retry_delay: float | None = None,
        backoff: float | None = None,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] | None = None,
        timeout: float | None = None,
        limit: str | None = None,
    ) -> TaskDefinition | Callable[[TaskFunc], TaskDefinition]:
        """Decorate a function to declare it as a task of this state.

        ``@state.task()`` uses the namespace ``"agent"``; ``@state.task("tools")`` (the seed's
        positional form) or ``@state.task(namespace="agents.ideate")`` another one. Dotted
        namespaces are fine: the registered name is ``"<namespace>.<function>_executor"``.

        How the task runs (None: the run's default, see :func:`~germinate_nb.run`):

        - ``retries``: extra attempts after a failure whose exception is an instance of
          ``retry_on`` (default: any ``Exception``; a task whose input does not validate and a
          cancelled task are never retried), waiting ``retry_delay * backoff**k`` seconds
          (``k`` = 0 for the first retry; defaults 1.0 and 2.0) with a little jitter;
        - ``timeout``: seconds an attempt may take; past it the attempt fails with
          :class:`~germinate_nb.TaskTimeoutError` (an async task is cancelled, a sync task's
          thread is abandoned to finish in the background);
        - ``limit``: the name of a concurrency limit; ``run(..., limits={"llm": 4})`` lets at
          most 4 tasks tagged ``limit="llm"`` run at once (no entry: unlimited).

        Options are not part of the task's fingerprint: changing them keeps reuse.

        Examples
        --------
        >>> from germinate_nb.core.registry import use_registry
        >>> from pydantic import BaseModel
        >>> class Q(BaseModel):
        ...     q: str
        >>> with use_registry():
        ...     s = State("doc")
        ...     @s.task(retries=3, retry_delay=0.5, timeout=30, limit="llm")
        ...     def ask(input: Q) -> Q:
        ...         return input
        >>> ask.options.retries, ask.options.limit
        (3, 'llm')
        """
        if isinstance(func, str):
            if namespace is not None and namespace != func:
                msg = (
                    f"@{self.name}.task({func!r}, namespace={namespace!r}) gives the namespace "
                    "twice. Give it once."
                )
                raise DeclarationError(msg)
            namespace, func = func, None
        namespace = DEFAULT_NAMESPACE if namespace is None else namespace
        check_namespace(namespace)
        given = {
            "retries": retries,
            "retry_delay": retry_delay,
            "backoff": backoff,
            "retry_on": retry_on,
            "timeout": timeout,
            "limit": limit,
        }
        options = {k: v for k, v in given.items() if v is not None}
        decorator = task_decorator_factory(namespace, self, options)
        return decorator(func) if func is not None else decorator

    def define_task(
        self,
        name: str,
        executor: TaskExecutor,
        *,
        parents: Sequence[str] | None = None,
        options: TaskOptions | None = None,
    ) -> TaskDefinition:
        """Declare task ``name`` with ``executor``, or redefine it in place keeping its edges.

        With ``parents`` (names of tasks of this state) the task's parents become exactly those.
        ``options`` say how it runs (see :meth:`task`); a redefinition without them has none.
        """
        check_identifier(name)
        self._refuse_condition_name(name)
        parent_tasks = [self.get(p) for p in parents] if parents is not None else None
        existing = self._tasks.get(name)
        if parent_tasks is not None and existing is not None and existing in parent_tasks:
            msg = f"task '{name}' in state '{self.name}' cannot be its own parent."
            raise DeclarationError(msg, task=name)
        self.registry.register(executor.namespace, executor.name, executor, state=self.name)
        if existing is None:
            task = TaskDefinition(name, executor=executor, state=self, options=options)
            self._tasks[name] = task
        else:
            task = existing
            task.options = options if options is not None else TaskOptions()
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

        The task's executor (``TaskDefinition(name, executor=...)``) is registered; a task
        naming a registered executor (``executor_name="ns.name"``) finds it when it runs.
        Returns the task kept in the state (the existing object when it was a redefinition).
        """
        check_identifier(task.name)
        self._refuse_condition_name(task.name)
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
        existing.options = task.options
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
        """Remove task ``name`` and its edges (a condition's task: the condition itself)."""
        task = self.get(name)
        condition = self._condition_of_task(name)
        if condition is not None:
            self.remove_condition(condition.name)
            return
        task.unlink()
        del self._tasks[name]
        if task.executor is not None:
            self.registry.unregister(task.executor.namespace, task.executor.name)
        self._touch(task, "removed")

    def _refuse_condition_name(self, name: str) -> None:
        condition = self._condition_of_task(name)
        if condition is not None:
            msg = (
                f"task '{name}' in state '{self.name}' has the name of the task of condition "
                f"'{condition.name}', which evaluates the condition after the state's tasks. "
                "Rename the task or the condition."
            )
            raise DeclarationError(msg, task=name)

    # -- declaring conditions and transitions --------------------------------------------

    def condition(
        self,
        func: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        namespace: str = CONDITIONS_NAMESPACE,
    ) -> Any:
        """Decorate a predicate over this state's output (``@state.condition()``).

        The predicate takes the state's output (the merged outputs of its sink tasks, validated
        into its annotated model; without annotation, a model with those fields as attributes)
        and returns a bool. It may be ``async def`` and take ``Depends(...)`` parameters. Its
        executor is registered as ``"transition_conditions.<name>_executor"``, as in the seed;
        ``state.build()`` turns it into a task in the state's last phase. Declaring a condition
        of the same name again replaces it in place (its transition is kept).

        Returns the :class:`Condition`, for ``(state & condition) >> other_state``.
        """

        def decorate(f: Callable[..., Any]) -> Condition:
            cond_name = name or getattr(f, "__name__", None)
            if not isinstance(cond_name, str) or not cond_name:
                msg = (
                    f"@{self.name}.condition() needs a function with a name, got "
                    f"{type(f).__name__}. Pass name='...'."
                )
                raise DeclarationError(msg)
            check_namespace(namespace)
            return self._define_condition(Condition(cond_name, f, self, namespace=namespace))

        return decorate(func) if func is not None else decorate

    def _define_condition(self, new: Condition) -> Condition:
        name, func = new.name, new.func
        task_name = new.task.name
        existing = self._find_condition(name)
        clash = next(
            (c for c in self._conditions if c.task.name == task_name and c is not existing), None
        )
        if clash is not None:
            msg = (
                f"conditions '{clash.name}' and '{name}' of state '{self.name}' would both be "
                f"evaluated by a task called '{task_name}'. Give one of them another name."
            )
            raise DeclarationError(msg, task=task_name)
        if task_name in self._tasks and self._condition_of_task(task_name) is None:
            msg = (
                f"condition '{name}' of state '{self.name}' has the name of task "
                f"'{task_name}' of that state; the condition is evaluated by a task of its own "
                f"name. Name it differently, e.g. @{self.name}.condition(name='{task_name}_holds')."
            )
            raise DeclarationError(msg, task=task_name)
        executor = new.executor
        try:
            self.registry.register(executor.namespace, executor.name, executor, state=self.name)
        except RegistryCollisionError as err:
            owner = err.states[0] if err.states else "?"
            msg = (
                f"condition '{name}' of state '{self.name}': its registered name "
                f"'{executor.registered_name}' is already taken by state '{owner}'. Give it "
                f"another name or namespace, e.g. "
                f"@{self.name}.condition(namespace='{CONDITIONS_NAMESPACE}.{self.name}')."
            )
            raise RegistryCollisionError(
                msg, registered_name=err.registered_name, states=err.states
            ) from None
        if existing is None:
            self._conditions.append(new)
            if self._built:
                self._place_conditions()
            self._touch(None, "condition")
            return new
        # redefinition: the same Condition object (its transition, its place) gets the new code
        old = existing.executor
        if old.registered_name != executor.registered_name:
            self.registry.unregister(old.namespace, old.name)
        existing.func = func
        existing.executor = executor
        existing.task.executor = executor
        if existing.task.name in self._tasks:
            self._touch(existing.task, "redefined")
        else:
            self._touch(None, "condition")
        return existing

    def add_condition(self, condition: Condition) -> Condition:
        """Add a :class:`Condition` made elsewhere (the seed's spelling); returns the one kept."""
        if not isinstance(condition, Condition):
            msg = f"add_condition() takes a Condition, got {type(condition).__name__}."
            raise DeclarationError(msg)
        if condition.state is not None and condition.state is not self:
            msg = (
                f"condition '{condition.name}' belongs to state '{condition.state.name}'; "
                f"declare it with @{self.name}.condition() to add it to '{self.name}'."
            )
            raise DeclarationError(msg)
        condition.state = self
        condition.task.state = self
        kept = self._define_condition(condition)
        if kept is not condition and condition.transition is not None:
            kept.transition = condition.transition
        return kept

    def remove_condition(self, name: str) -> None:
        """Remove condition ``name``, its task and its transition."""
        condition = self.get_condition(name)
        self._conditions.remove(condition)
        task = condition.task
        if self._tasks.get(task.name) is task:
            task.unlink()
            del self._tasks[task.name]
        ex = condition.executor
        self.registry.unregister(ex.namespace, ex.name)
        condition.transition = None
        self._touch(task, "removed")

    def add_transition(self, transition: Transition) -> Transition:
        """Add (or replace: one per condition) a transition out of this state."""
        if not isinstance(transition, Transition) or not transition.is_valid():
            msg = (
                "add_transition() takes a complete Transition (source, condition and target), "
                f"got {transition!r}. Write (state & condition) >> other_state."
            )
            raise DeclarationError(msg)
        if transition.source is not self:
            msg = f"{transition!r} does not leave state '{self.name}'."
            raise DeclarationError(msg)
        transition._link()
        return transition

    def __and__(self, condition: Condition) -> Transition:
        """``state & condition``: a :class:`Transition` waiting for ``>> target``."""
        if not isinstance(condition, Condition):
            msg = (
                f"state '{self.name}' & {type(condition).__name__}: the right side must be a "
                f"condition made with @{self.name}.condition()."
            )
            raise DeclarationError(msg)
        if condition.state is not None and condition.state is not self:
            msg = (
                f"state '{self.name}' & condition '{condition.name}': that condition belongs to "
                f"state '{condition.state.name}', whose output it reads. Declare it with "
                f"@{self.name}.condition() to guard a transition out of '{self.name}'."
            )
            raise DeclarationError(msg)
        return Transition(source=self, condition=condition)

    def clear(self) -> None:
        """Remove every task, condition and transition of this state."""
        for cond in list(self._conditions):
            self.remove_condition(cond.name)
        for name in list(self._tasks):
            self.remove_task(name)
        self._built = False
        self._touch(None, "cleared")

    # -- building ------------------------------------------------------------------------

    def build(self, *, raise_on_error: bool = True) -> list[Problem]:
        """Place a task per condition in the state's last phase, then validate the state.

        Each condition's task (``transition_conditions.<name>_executor``, as in the seed)
        depends on every sink task (the tasks without children), so all conditions are
        evaluated, on the merged output of the sinks, after the state's tasks on each run.
        Idempotent; once built, the condition tasks follow later changes of the tasks.

        Returns
        -------
        list of Problem
            What :meth:`validate` finds (empty when the state can run).

        Raises
        ------
        DagValidationError
            With ``raise_on_error`` (the default) when there are problems.
        """
        self._place_conditions()
        return self.validate(raise_on_error=raise_on_error)

    def _place_conditions(self) -> None:
        """Add the condition tasks that are missing and make their parents the current sinks."""
        if self._placing:
            return
        self._placing = True
        try:
            sinks = self.sink_tasks() if self._conditions else []
            for cond in self._conditions:
                task = cond.task
                if self._tasks.get(task.name) is not task:
                    ex = cond.executor
                    self.registry.register(ex.namespace, ex.name, ex, state=self.name)
                    task.state = self
                    self._tasks[task.name] = task
                    self._touch(task, "added")
                parents = task.parents
                if parents != sinks:
                    stale = [p for p in parents if p not in sinks]
                    if stale:
                        task.remove_parents(stale)
                    missing = [p for p in sinks if p not in parents]
                    if missing:
                        task.add_parents(missing)
            self._built = True
        finally:
            self._placing = False

    def _follow_sink(self, task: TaskDefinition) -> None:
        """After ``task`` changed: make it a parent of the condition tasks iff it is a sink.

        Every edge change touches both its tasks, so following the touched task keeps the
        condition phase last at the cost of one look per condition (not a scan of the state).
        """
        self._placing = True
        try:
            sink = self._tasks.get(task.name) is task and self._is_sink(task)
            for cond in self._conditions:
                ctask = cond.task
                if ctask is task or self._tasks.get(ctask.name) is not ctask:
                    continue
                linked = task in ctask._parents
                if sink and not linked:
                    ctask.add_parents(task)
                elif linked and not sink:
                    ctask.remove_parents(task)
        finally:
            self._placing = False

    def _touch(self, task: TaskDefinition | None, kind: str) -> None:
        self.version += 1
        if self._built and self._conditions and not self._placing and kind in _STRUCTURE:
            # keep the condition phase last
            if task is None:
                self._place_conditions()
            else:
                self._follow_sink(task)
        self.registry.notify(kind, self, task)

    # -- reading -----------------------------------------------------------------------

    @property
    def tasks(self) -> list[TaskDefinition]:
        """The tasks of this state in declaration order (condition tasks once built)."""
        return list(self._tasks.values())

    @property
    def conditions(self) -> list[Condition]:
        """The conditions of this state, in definition order."""
        return list(self._conditions)

    @property
    def transitions(self) -> list[Transition]:
        """The transitions out of this state, in the definition order of their conditions."""
        return [
            c.transition
            for c in self._conditions
            if c.transition is not None and c.transition.is_valid()
        ]

    def sink_tasks(self) -> list[TaskDefinition]:
        """The tasks whose output is the state's output: no children but condition tasks."""
        return [t for t in self._tasks.values() if self._is_sink(t)]

    @staticmethod
    def _is_sink(task: TaskDefinition) -> bool:
        return task.kind != "condition" and all(c.kind == "condition" for c in task._children)

    def get(self, name: str) -> TaskDefinition:
        """Return the task called ``name``."""
        try:
            return self._tasks[name]
        except KeyError:
            msg = f"no task '{name}' in state '{self.name}'." + did_you_mean(
                name, list(self._tasks)
            )
            raise UnknownTaskError(msg, name=name) from None

    def get_condition(self, name: str) -> Condition:
        """Return the condition called ``name``."""
        found = self._find_condition(name)
        if found is None:
            names = [c.name for c in self._conditions]
            msg = f"no condition '{name}' in state '{self.name}'." + did_you_mean(name, names)
            raise UnknownTaskError(msg, name=name)
        return found

    def _find_condition(self, name: str) -> Condition | None:
        return next((c for c in self._conditions if c.name == name), None)

    def _condition_of_task(self, task_name: str) -> Condition | None:
        return next((c for c in self._conditions if c.task.name == task_name), None)

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

    def sorted_tasks_dag(self) -> list[list[str]]:
        """The seed's name of :attr:`phases`: task names of each phase, in order."""
        return self.phases

    def validate(self, input: Any = None, *, raise_on_error: bool = False) -> list[Problem]:
        """Report every problem of this state's DAG at once (see :func:`validate`)."""
        from germinate_nb.core.validate import validate

        return validate(self, input=input, raise_on_error=raise_on_error)

    def __repr__(self) -> str:
        return f"<State: {self.name} ({len(self._tasks)} tasks)>"
