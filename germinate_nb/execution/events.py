"""Progress events: the RunObserver protocol and a dispatcher that contains observer errors."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from germinate_nb.execution.result import RunResult, TaskRun
from germinate_nb.execution.tracebacks import safe_str

__all__ = ["FunctionObserver", "RunObserver"]

_log = logging.getLogger("germinate_nb")

EVENTS = ("on_run_start", "on_task_start", "on_task_retry", "on_task_end", "on_run_end")


@runtime_checkable
class RunObserver(Protocol):
    """Receives a run's progress; every method is optional.

    Methods are called in run order, one at a time, from the thread where the run learns of
    the event (a worker thread, the event loop, or the calling thread): keep them quick (the
    explorer only records and draws later, from a thread of its own). An observer that raises
    is reported in ``RunResult.observer_errors`` and the log, and the run goes on.
    """

    def on_run_start(self, result: RunResult) -> None:
        """The run is about to start; every task is ``pending``."""

    def on_task_start(self, result: RunResult, task_run: TaskRun) -> None:
        """A task started (``running``)."""

    def on_task_retry(self, result: RunResult, task_run: TaskRun) -> None:
        """An attempt failed and the task will be retried after its delay.

        ``task_run.attempts[-1]`` is the failed attempt (its error and status: ``failed`` or
        ``timed out``); ``task_run.attempt`` the attempt to come, of ``max_attempts``.
        """

    def on_task_end(self, result: RunResult, task_run: TaskRun) -> None:
        """A task reached a final status (succeeded, failed, skipped, cached, cancelled)."""

    def on_run_end(self, result: RunResult) -> None:
        """The run is over; ``result.status`` is final."""


class FunctionObserver:
    """Adapts a plain callable ``fn(event, result, task_run_or_None)`` to the protocol."""

    def __init__(self, fn: Callable[[str, RunResult, TaskRun | None], Any]) -> None:
        self.fn = fn

    def on_run_start(self, result: RunResult) -> None:
        """Forward the event to the function."""
        self.fn("run_start", result, None)

    def on_task_start(self, result: RunResult, task_run: TaskRun) -> None:
        """Forward the event to the function."""
        self.fn("task_start", result, task_run)

    def on_task_retry(self, result: RunResult, task_run: TaskRun) -> None:
        """Forward the event to the function."""
        self.fn("task_retry", result, task_run)

    def on_task_end(self, result: RunResult, task_run: TaskRun) -> None:
        """Forward the event to the function."""
        self.fn("task_end", result, task_run)

    def on_run_end(self, result: RunResult) -> None:
        """Forward the event to the function."""
        self.fn("run_end", result, None)


def as_observers(observers: Iterable[Any] | Any) -> list[Any]:
    """A list of observers, also from one observer (or function) passed without a list."""
    if callable(observers) or any(hasattr(observers, name) for name in EVENTS):
        return [observers]
    return list(observers)


class Dispatcher:
    """Calls observers in order, one event at a time, containing their exceptions."""

    def __init__(self, observers: Iterable[Any], result: RunResult) -> None:
        self.result = result
        self._lock = threading.Lock()
        self._handlers: dict[str, list[Callable[..., Any]]] = {name: [] for name in EVENTS}
        for obs in observers:
            if callable(obs) and not any(hasattr(obs, name) for name in EVENTS):
                obs = FunctionObserver(obs)
            for name in EVENTS:
                handler = getattr(obs, name, None)
                if handler is not None:
                    self._handlers[name].append(handler)
        self.active = any(self._handlers.values())

    def emit(self, event: str, *args: Any) -> None:
        """Call every handler of ``event`` with ``(result, *args)``."""
        handlers = self._handlers[event]
        if not handlers:
            return
        with self._lock:
            for handler in handlers:
                try:
                    handler(self.result, *args)
                except BaseException as err:  # noqa: BLE001 - an observer never stops a run
                    if is_ctrl_c(err):
                        raise  # the run is cancelled (elsewhere it is an error like any)
                    owner = getattr(handler, "__self__", handler)
                    who = f"{type(owner).__name__}.{event}"
                    said = safe_str(err)
                    text = f"observer {who} raised {type(err).__name__}" + (
                        f": {said}" if said else ""
                    )
                    self.result.observer_errors.append(text)
                    _log.warning("germinate_nb: %s", text, exc_info=True)


def on_main_thread() -> bool:
    """Is this the main thread, the only one a Ctrl-C (``KeyboardInterrupt``) can come to?"""
    return threading.current_thread() is threading.main_thread()


def is_ctrl_c(err: BaseException) -> bool:
    """Is ``err`` a Ctrl-C (a ``KeyboardInterrupt`` on the main thread)?

    Anywhere else it was raised by code (an observer, a task), not by the user: an error like
    any other.
    """
    return isinstance(err, KeyboardInterrupt) and on_main_thread()
