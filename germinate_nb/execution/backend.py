"""The Backend protocol: where task code runs; Job in, Outcome out."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

from germinate_nb.execution.logs import TaskLog

if TYPE_CHECKING:
    from germinate_nb.core.executor import DependencyCache, TaskExecutor
    from germinate_nb.execution.cache import CacheEntry
    from germinate_nb.execution.result import TaskError
    from germinate_nb.execution.store import ReuseLookup

__all__ = ["Backend", "Job", "Outcome", "RunControl"]


@dataclass(slots=True)
class Job:
    """One task of one run, as handed to a backend.

    ``inputs`` maps (at least) each parent to its dumped output; it is None for a backend that
    wires the parents' results itself (an eager backend such as Dask). ``run_input`` feeds a
    root task.
    ``cached`` is the reusable result to check the input against (``reuse=True``); ``store``
    the run store's lookups to try when it does not match (a
    :class:`~germinate_nb.execution.store.ReuseLookup`, or None).
    ``cancel`` is the run's cancel signal (what :func:`current_task` exposes to the task).
    ``attempt`` counts from 1 (a retry is a new job); ``retry_on`` is None when the task has
    no retry left, else the exception classes that make a failed attempt ``retryable``.
    ``started`` is set (``time.perf_counter()``) when the task's life begins on a worker of
    this process (a timeout counts from there); ``timeout`` is the attempt's timeout in
    seconds (the run enforces it; a backend may run the task where it can be given up on).

    While the task runs, the job is also its log route (see :mod:`germinate_nb.execution.logs`):
    what the task prints or logs goes to :attr:`log`, made on the first write (a task that
    prints nothing costs nothing), and also to the original stream when ``echo`` is set.
    """

    name: str
    state: str
    executor: TaskExecutor
    parents: tuple[str, ...]
    inputs: Mapping[str, Mapping[str, Any]] | None
    run_input: Mapping[str, Any] | None
    cached: CacheEntry | None
    run_id: str
    cancel: threading.Event
    deps: DependencyCache
    attempt: int = 1
    echo: bool = False
    store: ReuseLookup | None = None
    retry_on: tuple[type[BaseException], ...] | None = None
    started: float = 0.0
    lane: str = ""  # the thread (or loop) its code runs on, once started
    timeout: float | None = None  # the attempt's timeout (the run enforces it)
    ended: float = 0.0  # with a timeout: when its life ended here; its outcome is on its way
    abandoned: bool = False  # its thread was given up on (timeout, cancel): it holds no slot
    records: Any = None  # the logging records already in the log (managed by logs.py)
    echo_tails: Any = None  # echoed text waiting for its newline (managed by logs.py)
    nesting: int = 0  # how many runs enclose its run (a run a task starts is one deeper)
    _log: TaskLog | None = None

    @property
    def cancelled(self) -> bool:
        """Has the run been cancelled?"""
        return self.cancel.is_set()

    @property
    def log(self) -> TaskLog:
        """The task's log, made on first use."""
        log = self._log
        if log is None:
            log = self._log = TaskLog()
        return log

    @property
    def log_text(self) -> str:
        """What the task printed and logged so far (empty when nothing)."""
        log = self._log
        return log.text if log is not None else ""

    @property
    def echo_label(self) -> str:
        """What starts each line of the task's text echoed to the cell."""
        return f"[{self.name}] "

    @property
    def job(self) -> Job:
        """The job itself (a log route names the job it belongs to)."""
        return self


@dataclass(slots=True)
class Outcome:
    """How one task ended on a backend.

    ``kind`` is ``ok`` (``output`` and its ``dump``), ``cached`` (reused: ``output``/``dump``
    rebuilt from the cache, or from the run store when ``from_store``), ``error`` (``error``)
    or ``skipped`` (an eager backend did not run the task because ``skipped_because`` did not
    succeed). ``fingerprint`` is the code that ran, ``start`` the wall-clock start
    (``time.time()``), ``lane`` the thread or loop it ran on, ``log`` what the task printed
    and logged. ``attempt`` is the job's attempt; ``retryable`` says the error may be retried
    (it matched the job's ``retry_on``; never an input validation error or a cancel).
    """

    name: str
    kind: str
    output: BaseModel | None = None
    dump: dict[str, Any] | None = None
    input: BaseModel | None = None
    input_dump: Any = None
    error: TaskError | None = None
    start: float | None = None
    duration: float = 0.0
    lane: str | None = None
    fingerprint: str = ""
    skipped_because: str | None = None
    log: str = ""
    from_store: bool = False
    attempt: int = 1
    retryable: bool = False


class RunControl(Protocol):
    """What a backend may use of the run it serves."""

    name: str
    run_id: str
    cancel_event: threading.Event

    def deliver(self, outcome: Outcome) -> None:
        """Hand over a task's outcome (from any thread; never raises)."""

    def hold(self, outcome: Outcome) -> None:
        """Hand over an outcome to be applied at the next ``flush`` (or any delivery)."""

    def flush(self) -> None:
        """Apply the outcomes held so far."""


@runtime_checkable
class Backend(Protocol):
    """Runs tasks for a run; the local threads-and-loop backend and Dask implement it.

    The run calls ``open`` once, then ``submit`` with jobs as tasks become ready (all of them
    at once, parents first, when ``eager`` is True: the backend then wires each task to its
    parents' results itself and reports a task whose parent did not succeed as ``skipped``).
    The backend calls ``run.deliver(outcome)`` for each job (or ``run.hold(outcome)`` for
    several that end close together, then ``run.flush()``: cheaper), from any thread, never
    from inside ``submit``.
    ``cancel`` stops running tasks where it can and returns the names it could not stop (a
    sync task's thread runs on, and no longer counts against the backend's workers);
    ``settle`` then waits, briefly, for the stopped ones to unwind. A run also cancels a single
    task past its timeout this way, and then ignores that attempt's outcome.
    A run that manages retries, timeouts or limits itself submits jobs as they become ready
    even to an eager backend: the backend wires them to the parents it already ran.
    ``join`` blocks the run's calling thread until ``finished`` is set
    (doing inline work meanwhile); ``wake`` is called once the run has finished, ``close``
    last, from the calling thread.
    """

    eager: bool

    def open(self, run: RunControl) -> None:
        """Prepare for a run (threads and loops start lazily)."""

    def submit(self, jobs: Sequence[Job]) -> None:
        """Start these jobs (never blocks on their work)."""

    def cancel(self, names: Collection[str]) -> set[str]:
        """Stop these running tasks; returns those still running in the background."""

    def settle(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the tasks just cancelled to stop."""

    def join(self, finished: threading.Event) -> None:
        """Block until ``finished`` is set."""

    def wake(self) -> None:
        """The run has finished: let ``join`` return."""

    def close(self) -> None:
        """Release threads, loops and remote resources."""
