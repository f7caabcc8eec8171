"""TaskRegistry: the in-kernel registry of task executors and states, replaceable in tests."""

from __future__ import annotations

import difflib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from germinate_nb.core.executor import TaskExecutor
from germinate_nb.errors import RegistryCollisionError, UnknownExecutorError, UnknownTaskError

if TYPE_CHECKING:
    from germinate_nb.core.state import State
    from germinate_nb.core.task import TaskDefinition

__all__ = ["TaskKey", "TaskRegistry", "use_registry"]

T = TypeVar("T")
HISTORY_LENGTH = 20
"""Runs of each state kept in memory for the explorer's history."""
_log = logging.getLogger("germinate_nb")


@attrs.define(frozen=True, slots=True)
class TaskKey:
    """Key used to find a task in the registry by namespace and task name."""

    namespace: str
    name: str


class _hybridmethod(Generic[T]):
    """A method that, called on the class, acts on the default registry instance."""

    def __init__(self, func: Callable[..., T]) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: Any, cls: Any) -> Callable[..., T]:
        target = obj if obj is not None else cls.default()

        def bound(*args: Any, **kwargs: Any) -> T:
            return self.func(target, *args, **kwargs)

        bound.__doc__ = self.func.__doc__
        bound.__name__ = self.func.__name__
        return bound


ChangeCallback = Callable[[str, "State | None", "TaskDefinition | None"], None]


class TaskRegistry:
    """Registry of task executors (by namespace and name) and of the states that own them.

    The seed's classmethods still work (``TaskRegistry.register(...)``,
    ``TaskRegistry.get_executor("ns.name")``) and act on the default, in-kernel instance;
    tests swap it with :func:`use_registry`.

    Examples
    --------
    >>> reg = TaskRegistry()
    >>> ex = TaskExecutor("hello_executor", lambda: None, namespace="agent")
    >>> reg.register("agent", "hello_executor", ex)
    >>> reg.get_executor("agent.hello_executor") is ex
    True
    """

    _default: TaskRegistry | None = None
    _default_lock = threading.Lock()

    def __init__(self) -> None:
        self._namespaces: set[str] = set()
        self._tasks: dict[TaskKey, TaskExecutor] = {}
        self._owners: dict[TaskKey, str] = {}
        self.states: dict[str, State] = {}
        self._listeners: list[ChangeCallback] = []
        self.cache: dict[tuple[str, str], Any] = {}
        self.last_results: dict[str, Any] = {}
        self.run_history: dict[str, deque[Any]] = {}  # state -> its last HISTORY_LENGTH runs
        self.version = 0
        self.default_state: str | None = None
        self.run_observers: list[Any] = []  # see every run of this registry's states

    @classmethod
    def default(cls) -> TaskRegistry:
        """The in-kernel registry used by ``State`` and the seed's classmethods."""
        with cls._default_lock:
            if TaskRegistry._default is None:
                TaskRegistry._default = TaskRegistry()
            return TaskRegistry._default

    @classmethod
    def set_default(cls, registry: TaskRegistry) -> TaskRegistry:
        """Replace the default registry; returns the previous one."""
        with cls._default_lock:
            previous = TaskRegistry._default or TaskRegistry()
            TaskRegistry._default = registry
            return previous

    @_hybridmethod
    def register(
        self, namespace: str, name: str, executor: TaskExecutor, *, state: str | None = None
    ) -> None:
        """Register a task executor under ``namespace.name``.

        Registering again for the same owner state replaces the executor; another state
        claiming the name raises :class:`RegistryCollisionError`.
        """
        key = TaskKey(namespace=namespace, name=name)
        owner = self._owners.get(key)
        if key in self._tasks and state is not None and owner is not None and owner != state:
            msg = (
                f"registered name '{namespace}.{name}' of a task in state '{state}' is already "
                f"taken by a task in state '{owner}'. Rename the task or give it another "
                f"namespace, e.g. @{state}.task(namespace='{state}')."
            )
            raise RegistryCollisionError(
                msg, registered_name=f"{namespace}.{name}", states=(owner, state)
            )
        self._namespaces.add(namespace)
        self._tasks[key] = executor
        self.version += 1
        if state is not None:
            self._owners[key] = state

    @_hybridmethod
    def unregister(self, namespace: str, name: str) -> None:
        """Forget an executor (no error when it is not registered)."""
        key = TaskKey(namespace=namespace, name=name)
        self._tasks.pop(key, None)
        self._owners.pop(key, None)
        self.version += 1

    @_hybridmethod
    def get_executor(self, executor_name: str) -> TaskExecutor:
        """Get an executor by its registered name, ``"namespace.name"``.

        The name is split on its last dot, so dotted namespaces work:
        ``get_executor("agents.ideate.pm_executor")`` looks up ``pm_executor`` in
        ``agents.ideate``.

        Raises
        ------
        UnknownExecutorError
            When nothing is registered under that name (also a ``KeyError``, as in the seed).
        """
        if "." not in executor_name:
            msg = (
                f"executor name '{executor_name}' has no namespace. "
                "Use 'namespace.name', e.g. 'agent.tokenize_executor'."
            )
            raise UnknownExecutorError(msg, name=executor_name)
        namespace, name = executor_name.rsplit(sep=".", maxsplit=1)
        result: TaskExecutor = self.get(namespace=namespace, name=name)
        return result

    @_hybridmethod
    def get(self, namespace: str, name: str) -> TaskExecutor:
        """Get a registered task executor.

        Raises
        ------
        UnknownExecutorError
            When the namespace or the name is not registered (also a ``KeyError``).
        """
        if namespace not in self._namespaces:
            known = ", ".join(sorted(self._namespaces)) or "none"
            msg = f"no such namespace '{namespace}' (registered namespaces: {known})."
            raise UnknownExecutorError(msg, name=namespace)
        key = TaskKey(namespace=namespace, name=name)
        if key not in self._tasks:
            names = [k.name for k in self._tasks if k.namespace == namespace]
            msg = f"no task executor registered as '{namespace}.{name}'." + did_you_mean(
                name, names
            )
            raise UnknownExecutorError(msg, name=f"{namespace}.{name}")
        return self._tasks[key]

    @_hybridmethod
    def executors(self) -> dict[str, TaskExecutor]:
        """All registered executors by registered name."""
        return {f"{k.namespace}.{k.name}": ex for k, ex in self._tasks.items()}

    # -- states and change notification -------------------------------------------------

    def add_state(self, state: State) -> None:
        """Remember a state under its name (done by ``State()``)."""
        self.states[state.name] = state
        self.notify("state", state, None)

    def get_state(self, name: str) -> State:
        """Return the state called ``name``."""
        try:
            return self.states[name]
        except KeyError:
            msg = f"no state named '{name}'." + did_you_mean(name, list(self.states))
            raise UnknownTaskError(msg, name=name) from None

    def clear(self) -> None:
        """Forget every state, executor and cached result (``%germinate reset``)."""
        self._namespaces.clear()
        self._tasks.clear()
        self._owners.clear()
        self.states.clear()
        self.cache.clear()
        self.last_results.clear()
        self.run_history.clear()
        self.default_state = None
        self.version += 1
        self.notify("reset", None, None)

    def remember_run(self, result: Any) -> None:
        """Keep a finished run in its state's history (the last ``HISTORY_LENGTH``)."""
        runs = self.run_history.get(result.state)
        if runs is None:
            runs = self.run_history[result.state] = deque(maxlen=HISTORY_LENGTH)
        runs.append(result)

    def subscribe(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback(kind, state, task)`` on every change; returns an unsubscribe function."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def notify(self, kind: str, state: State | None, task: TaskDefinition | None) -> None:
        """Tell subscribers that something changed; a failing subscriber is logged and dropped."""
        for callback in list(self._listeners):
            try:
                callback(kind, state, task)
            except Exception:
                self._listeners.remove(callback)
                _log.exception("germinate_nb: change listener %r failed and was removed", callback)


@contextmanager
def use_registry(registry: TaskRegistry | None = None) -> Iterator[TaskRegistry]:
    """Use a fresh (or the given) registry as the default inside a ``with`` block."""
    registry = registry or TaskRegistry()
    previous = TaskRegistry.set_default(registry)
    try:
        yield registry
    finally:
        TaskRegistry.set_default(previous)


def did_you_mean(name: str, candidates: list[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
