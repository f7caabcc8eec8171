"""current_task(): what a running task can ask about its run, including the cancel signal."""

from __future__ import annotations

import threading

from germinate_nb.errors import GerminateError, TaskCancelledError
from germinate_nb.execution.logs import _ROUTE

__all__ = ["TaskContext", "current_task"]


class TaskContext:
    """The running task's view of its run (from :func:`current_task`).

    Python cannot stop a thread, so a sync task that may run long should poll the run's
    cancel signal: ``ctx.cancelled``, ``ctx.raise_if_cancelled()``, or ``ctx.wait(seconds)``
    in place of ``time.sleep``. A task that stops this way ends ``cancelled`` and is not
    reported as still running in the background.

    Examples
    --------
    >>> ctx = TaskContext("crawl", "web", "r1", threading.Event())
    >>> ctx.cancelled, ctx.wait(0.01)
    (False, False)
    """

    __slots__ = ("_cancel", "attempt", "name", "run_id", "state")

    def __init__(
        self, name: str, state: str, run_id: str, cancel: threading.Event, attempt: int = 1
    ) -> None:
        self.name = name
        self.state = state
        self.run_id = run_id
        self.attempt = attempt
        self._cancel = cancel

    @property
    def cancelled(self) -> bool:
        """Has the run been cancelled (Stop, ``handle.cancel()``, Ctrl-C)?"""
        return self._cancel.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`TaskCancelledError` when the run has been cancelled."""
        if self._cancel.is_set():
            msg = f"task '{self.name}' in state '{self.state}' stopped: the run was cancelled."
            raise TaskCancelledError(msg, task=self.name)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early on cancel; returns True when cancelled."""
        return self._cancel.wait(seconds)

    def __repr__(self) -> str:
        flag = ", cancelled" if self.cancelled else ""
        return f"<TaskContext {self.state}.{self.name} run {self.run_id}{flag}>"


def current_task() -> TaskContext:
    """The context of the task running in this thread or asyncio task.

    Raises
    ------
    GerminateError
        When called outside a running task.
    """
    route = _ROUTE.get()  # the running job routes its output: it is the current task
    job = getattr(route, "job", None)
    if job is None:
        msg = (
            "current_task() is only available while a task runs (inside its function or "
            "%%germinate_task body, or one of its Depends factories)."
        )
        raise GerminateError(msg)
    return TaskContext(job.name, job.state, job.run_id, job.cancel, job.attempt)
