"""The GerminateError hierarchy: every error the library raises on purpose."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from germinate_nb.core.validate import Problem


class GerminateError(Exception):
    """Base class of every error raised on purpose by germinate_nb."""


class DeclarationError(GerminateError, TypeError):
    """A task, condition or cell body cannot be declared as written."""

    def __init__(self, msg: str, *, task: str | None = None) -> None:
        super().__init__(msg)
        self.task = task


class RegistryCollisionError(GerminateError, ValueError):
    """Two states claim the same registered executor name."""

    def __init__(self, msg: str, *, registered_name: str = "", states: Sequence[str] = ()) -> None:
        super().__init__(msg)
        self.registered_name = registered_name
        self.states = tuple(states)


class UnknownTaskError(GerminateError, LookupError):
    """A task, state, namespace or executor name is not known."""

    def __init__(self, msg: str, *, name: str = "") -> None:
        super().__init__(msg)
        self.name = name


class UnknownExecutorError(UnknownTaskError, KeyError):
    """No executor is registered under a name (also a ``KeyError``, as the seed raised).

    ``str()`` is the plain message: ``KeyError`` would quote it.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DagCycleError(GerminateError, ValueError, TypeError):
    """The tasks of a state do not form a DAG (also a ``TypeError``, as the seed raised)."""

    def __init__(self, msg: str, *, cycle: Sequence[str] = (), state: str | None = None) -> None:
        super().__init__(msg)
        self.cycle = tuple(cycle)
        self.state = state


class SchemaMismatchError(GerminateError, TypeError):
    """A parent's output does not fit a child's input model."""

    def __init__(self, msg: str, *, task: str = "", field: str = "") -> None:
        super().__init__(msg)
        self.task = task
        self.field = field


class DagValidationError(GerminateError, ValueError):
    """``validate(raise_on_error=True)`` found problems; all of them are in ``problems``."""

    def __init__(self, msg: str, *, problems: Sequence[Problem] = ()) -> None:
        super().__init__(msg)
        self.problems = tuple(problems)


class TaskInputError(GerminateError, ValueError):
    """The data a task receives does not validate into its input model."""

    def __init__(self, msg: str, *, task: str = "", errors: Any = None) -> None:
        super().__init__(msg)
        self.task = task
        self.errors = errors


class TaskOutputError(GerminateError, ValueError):
    """The value a task returns does not validate into its output model."""

    def __init__(self, msg: str, *, task: str = "", errors: Any = None) -> None:
        super().__init__(msg)
        self.task = task
        self.errors = errors


class MergeConflictError(GerminateError, ValueError):
    """Two parents of a task provide the same key with different values."""

    def __init__(
        self, msg: str, *, task: str = "", key: str = "", parents: Sequence[str] = ()
    ) -> None:
        super().__init__(msg)
        self.task = task
        self.key = key
        self.parents = tuple(parents)


class RunFailedError(GerminateError, RuntimeError):
    """``RunResult.raise_for_status()`` on a run that did not succeed."""


class WorkflowLimitError(GerminateError, RuntimeError):
    """A workflow hit ``max_transitions`` without reaching a final state."""

    def __init__(self, msg: str, *, states: Sequence[str] = (), result: Any = None) -> None:
        super().__init__(msg)
        self.states = tuple(states)
        self.result = result


class TaskCancelledError(GerminateError, RuntimeError):
    """Raised inside a task by ``current_task().raise_if_cancelled()`` after a cancel."""

    def __init__(self, msg: str, *, task: str = "") -> None:
        super().__init__(msg)
        self.task = task


class NestedRunError(GerminateError, RuntimeError):
    """A task started a run that would never end: of its own state, or nested too deep."""


class ScheduleError(GerminateError, RuntimeError):
    """A :class:`Schedule` was told something impossible (a bug in its caller)."""


class OutputPathError(GerminateError, ValueError):
    """A file cannot be written where the user asked (missing folder, not a folder, read-only)."""

    def __init__(self, msg: str, *, path: str = "") -> None:
        super().__init__(msg)
        self.path = path


class TaskTimeoutError(GerminateError, TimeoutError):
    """A task's attempt ran past its ``timeout``: it was cancelled (async) or abandoned (sync).

    A ``TimeoutError`` too, so ``retry_on=(TimeoutError,)`` retries it. ``task`` and
    ``timeout`` (seconds) say which task and which limit.
    """

    def __init__(self, msg: str, *, task: str = "", timeout: float = 0.0) -> None:
        super().__init__(msg)
        self.task = task
        self.timeout = timeout
