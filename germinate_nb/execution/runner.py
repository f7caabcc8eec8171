"""run / arun / start_run: a Schedule, a Backend, and the RunResult they fill."""

from __future__ import annotations

import asyncio
import functools
import os
import random
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from germinate_nb.core.executor import DependencyCache
from germinate_nb.core.options import TaskOptions, check_run_options
from germinate_nb.core.registry import did_you_mean
from germinate_nb.core.snapshot import DagSnapshot
from germinate_nb.core.state import State
from germinate_nb.core.validate import problems_error, validate
from germinate_nb.errors import NestedRunError, ScheduleError, TaskTimeoutError
from germinate_nb.execution import gc_tuning, logs
from germinate_nb.execution.backend import Backend, Job, Outcome
from germinate_nb.execution.cache import UNHASHABLE, CacheEntry
from germinate_nb.execution.dataflow import run_input_dict
from germinate_nb.execution.events import Dispatcher, as_observers, is_ctrl_c
from germinate_nb.execution.invoke import EPOCH_OFFSET as _EPOCH_OFFSET
from germinate_nb.execution.invoke import describe_error
from germinate_nb.execution.local import LocalBackend
from germinate_nb.execution.result import (
    Attempt,
    RunResult,
    RunStatus,
    TaskError,
    TaskRun,
    TaskStatus,
    pending_task_runs,
)
from germinate_nb.execution.schedule import Schedule, parent_counts
from germinate_nb.execution.store import (
    ReuseLookup,
    RunStore,
    TaskRecord,
    resolve_store,
    run_ended,
    run_origin,
    run_started,
)
from germinate_nb.execution.timers import TIMERS

__all__ = ["Run", "RunHandle", "arun", "make_backend", "run", "start_run"]

Strategy = Literal["dependencies", "phases"]
_RUNNING, _SUCCEEDED, _FAILED = TaskStatus.RUNNING, TaskStatus.SUCCEEDED, TaskStatus.FAILED
_SKIPPED, _CACHED, _CANCELLED = TaskStatus.SKIPPED, TaskStatus.CACHED, TaskStatus.CANCELLED
SETTLE_TIMEOUT = 2.0
"""Seconds a cancel waits for cancelled async tasks to unwind before reporting the run over."""
_new_tuple = tuple.__new__  # TaskRecord(...), CacheEntry(...) without NamedTuple's keywords
JITTER = 0.1
"""A retry waits its delay times 1 to 1 + JITTER (retries of many tasks do not line up)."""
_DEFAULT_OPTIONS = TaskOptions()
_ANY_ERROR: tuple[type[BaseException], ...] = (Exception,)


class _Policy:
    """How the run treats one task's failures and time: attempts, retry_on, delays, timeout."""

    __slots__ = ("attempts", "options", "retry_on", "timeout")

    def __init__(self, attempts: int, options: TaskOptions, timeout: float | None) -> None:
        self.attempts = attempts
        self.options = options
        self.retry_on = options.retry_on or _ANY_ERROR
        self.timeout = timeout


def _now() -> datetime:
    return datetime.now().astimezone()


def make_backend(
    backend: Any,
    *,
    max_workers: int | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    keyword: str = "backend",
) -> Backend:
    """The backend named by ``backend=`` (or the older ``executor=``).

    ``None``/``"local"``: threads and an event loop here; ``"dask"``: the current
    ``distributed.Client``; or any object implementing :class:`Backend` (``DaskBackend(c)``).
    """
    if backend is None or backend == "local":
        return LocalBackend(max_workers, loop=loop)
    if backend == "dask":
        from germinate_nb.execution.dask import DaskBackend

        return DaskBackend()
    if isinstance(backend, Backend):
        return backend
    msg = (
        f"{keyword}={backend!r} is not known: use None or 'local' (threads and an event loop "
        "here), 'dask' (the current distributed.Client), or DaskBackend(client)."
    )
    raise ValueError(msg)


MAX_NESTING = 16
"""Most runs one task may start inside another's task (a state's task running another state)."""


def nesting_of(name: str) -> int:
    """How deep a run of state ``name`` starting here would be nested in other runs' tasks.

    Raises :class:`NestedRunError` for a run that could never end: one started by a task of
    the same state (it would start that task again), or one nested past ``MAX_NESTING`` (states
    whose tasks run each other).
    """
    job = getattr(logs._ROUTE.get(), "job", None)
    if job is None:
        return 0
    if job.state == name:
        msg = (
            f"run() of state '{name}' was called from inside its own task '{job.name}': that "
            f"run would start '{job.name}' again, which would call run() again, without end. "
            "From a task, run another state, or call the code that does the work directly."
        )
        raise NestedRunError(msg)
    nesting: int = job.nesting + 1
    if nesting > MAX_NESTING:
        msg = (
            f"run() of state '{name}' from task '{job.name}' of state '{job.state}' would be "
            f"nested {nesting} runs deep (at most {MAX_NESTING}): states whose tasks run each "
            "other never end. Break the cycle of states that run one another."
        )
        raise NestedRunError(msg)
    return nesting


class Run:
    """One run of a state's DAG.

    The run reads a frozen snapshot of the state, so redefining tasks while it goes on does not
    change it. A :class:`Schedule` says which tasks may start; a backend runs them and delivers
    each :class:`Outcome` from whatever thread it ends on; the run turns outcomes into
    statuses, cache entries and events under one lock, and hands the newly ready tasks back to
    the backend. The thread that calls :meth:`execute` only waits (or runs inline tasks).

    Retries, timeouts and limits are the run's: a failed attempt that may be retried goes
    back to the backend after its delay (a timer, never a sleeping thread; the task stays
    running in the schedule, holding its limit slot); an attempt past its timeout is
    cancelled on the backend and fails with :class:`TaskTimeoutError`, and its late outcome
    is discarded; the :class:`Schedule` holds ready tasks whose limit is full. A run using
    any of them submits tasks as they become ready, even to an eager backend (Dask), so the
    limits hold across the cluster. Unused, they cost nothing.

    With a run store (``store``, resolved once by :func:`resolve_store`) the run and each task
    run are recorded: the scheduler only appends ``(head, outcome)`` to the store's queue (the
    outcome is already made, and never changed after), and the store's thread turns it into a
    row once no run is going on. With ``reuse`` the task's life on
    the worker also looks the store up when the in-memory cache misses.
    """

    def __init__(
        self,
        state: State,
        input: Any = None,
        *,
        reuse: bool = False,
        strategy: Strategy = "dependencies",
        max_workers: int | None = None,
        backend: Any = None,
        executor: Any = None,
        observers: Iterable[Any] = (),
        targets: Sequence[str] | str | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        echo: bool = False,
        store: RunStore | str | os.PathLike[str] | bool | None = None,
        retries: int | None = None,
        timeout: float | None = None,
        limits: dict[str, int] | None = None,
    ) -> None:
        if not isinstance(state, State):
            hint = (
                " Use run_workflow() for a Workflow." if type(state).__name__ == "Workflow" else ""
            )
            msg = f"run() takes a State, got {type(state).__name__}.{hint}"
            raise TypeError(msg)
        if strategy not in ("dependencies", "phases"):
            msg = f"strategy must be 'dependencies' or 'phases', got {strategy!r}."
            raise ValueError(msg)
        if backend is not None and executor is not None:
            msg = "give backend= or executor= (its older name), not both."
            raise ValueError(msg)
        self.nesting = nesting_of(state.name)
        self.state = state
        self.name = state.name
        self.reuse = reuse
        self.echo = echo
        self.input_data = run_input_dict(input)
        self._limits = check_run_options(retries, timeout, limits)
        self._run_retries = retries or 0
        self._run_timeout = timeout
        gc_tuning.relax()  # setting up allocates a TaskRun per task; start() relaxes for the run
        try:
            self._setup(state, strategy, max_workers, backend, executor, observers, targets, loop)
        finally:
            gc_tuning.restore()
        # last, once nothing else can fail: a warning about the store points at run()'s caller
        found = resolve_store(store, stacklevel=4)
        if found is not None and not found.usable:  # a RunStore given that failed since
            found.warn_failure(stacklevel=3)
            found = None
        self.store = found
        self.result.store = found
        self._record = found.record if found is not None else None
        self._sink = found.outcome_sink() if found is not None else None
        self._head = (self.run_id, self.name)  # what the store's rows of this run start with
        self._lookup = (
            ReuseLookup(self.store, self.name)
            if self.store is not None and reuse and not self._eager
            else None
        )

    def _setup(
        self,
        state: State,
        strategy: Strategy,
        max_workers: int | None,
        backend: Any,
        executor: Any,
        observers: Iterable[Any],
        targets: Sequence[str] | str | None,
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        self.snapshot = self._snapshot(state, targets)
        self.backend = make_backend(
            backend if backend is not None else executor,
            max_workers=max_workers,
            loop=loop,
            keyword="executor" if executor is not None else "backend",
        )
        self.run_id = uuid.uuid4().hex[:12]
        snap = self.snapshot
        self.result = RunResult(
            state.name,
            pending_task_runs(snap.names),
            run_id=self.run_id,
            parents=snap.parents,
            targets=self._targets,
        )
        self._runs = self.result.task_runs
        self.dispatcher = Dispatcher(
            [*as_observers(observers), *state.registry.run_observers], self.result
        )
        phases = snap.phases if strategy == "phases" else None
        limit_of = self._policies(snap)
        if self._limits:
            self._check_limit_names(state)
        self.schedule = Schedule(
            snap.names,
            snap.parents,
            snap.children,
            phases=phases,
            limit_of=limit_of,
            capacity=self._limits if limit_of else None,
            counts=snap.memo("parent counts", lambda: parent_counts(snap.names, snap.parents)),
        )
        self._limited = bool(limit_of) and bool(self._limits)
        if self._limited:
            self.result.limits = self.schedule.usage()
            caps = self._limits or {}
            for name, lim in (limit_of or {}).items():
                self.result.task_runs[name].limit_capacity = caps.get(lim)
        self.cancel_event = threading.Event()
        self.deps = DependencyCache()
        self.finished = threading.Event()
        self._lock = threading.RLock()
        self._closed = False
        self._failed = False  # a task failed (or the run itself did): the run did not succeed
        self._pending: deque[Outcome] = deque()  # delivered, not yet applied (see _combine)
        self._dumps: dict[str, dict[str, Any]] = {}
        self._early: dict[str, Outcome] = {}  # eager backends: outcomes ahead of the schedule
        self._cache = state.registry.cache
        # retries, timeouts and limits are decided here: tasks go to the backend when ready
        self._managed = bool(self._policy) or self._limited
        self._eager = self.backend.eager and not self._managed
        self._live_attempt: dict[str, int] = {}  # managed runs: the attempt whose outcome counts
        self._timed_out: set[tuple[str, int]] = set()  # attempts abandoned past their timeout
        self._timers: dict[str, int] = {}  # task -> its retry timer
        self._emit = self.dispatcher.emit if self.dispatcher.active else None
        # per task, what making its job needs (plain dicts: the hot path reads them)
        self._plan: dict[str, tuple[Any, tuple[str, ...]]] = snap.memo(
            "run plan", lambda: {n: (t.executor, t.parents) for n, t in snap.tasks.items()}
        )
        self._keys: dict[str, tuple[str, str]] = snap.memo(  # the reuse cache's keys
            "cache keys", lambda: {n: (snap.state, n) for n in snap.names}
        )
        self._on_finish: list[Callable[[], None]] = []
        self._t0 = 0.0
        self._active = False  # counted in the process's active runs (see store.run_started)

    def _check_limit_names(self, state: State) -> None:
        """A ``limits=`` name no task of the state uses is most likely a typo: say so."""
        used = {
            spec.options.limit
            for spec in state.snapshot().tasks.values()
            if spec.options is not None and spec.options.limit
        }
        for name in self._limits or {}:
            if name not in used:
                hint = did_you_mean(name, sorted(used))
                msg = (
                    f"run(limits=...): no task of state '{state.name}' has limit='{name}', so "
                    f"that limit holds nothing back.{hint}"
                )
                warnings.warn(msg, UserWarning, stacklevel=5)

    def _policies(self, snap: DagSnapshot) -> dict[str, str] | None:
        """Fill ``_policy`` (tasks with retries or a timeout); return the tasks' limits."""
        self._policy: dict[str, _Policy] = {}
        run_retries, run_timeout = self._run_retries, self._run_timeout
        limit_of: dict[str, str] = {}
        runs = self.result.task_runs
        if run_retries or run_timeout is not None:  # every task
            declared: Iterable[tuple[str, TaskOptions | None]] = (
                (name, spec.options) for name, spec in snap.tasks.items()
            )
        else:  # only the tasks that declare options (usually none)
            declared = snap.memo(
                "declared options",
                lambda: tuple(
                    (n, t.options) for n, t in snap.tasks.items() if t.options is not None
                ),
            )
        for name, opts in declared:
            if opts is None:
                opts = _DEFAULT_OPTIONS
            retries = opts.retries if opts.retries is not None else run_retries
            timeout = opts.timeout if opts.timeout is not None else run_timeout
            if retries or timeout is not None:
                self._policy[name] = _Policy(retries + 1, opts, timeout)
                runs[name].max_attempts = retries + 1
            if opts.limit is not None:
                limit_of[name] = opts.limit
                runs[name].limit = opts.limit
        return limit_of or None

    def _snapshot(self, state: State, targets: Sequence[str] | str | None) -> DagSnapshot:
        snap = state.snapshot()
        problems = validate(snap, input=self.input_data)
        self._targets: tuple[str, ...] | None = None
        if targets is not None:
            if isinstance(targets, str):
                targets = [targets]
            self._targets = tuple(targets)
            for name in targets:
                state.get(name)  # UnknownTaskError with a did-you-mean
            snap = snap.subset(snap.upstream(targets))
            wanted = set(snap.names)
            problems = [p for p in problems if p.kind == "cycle" or wanted & set(p.tasks)]
        if problems:
            lead = f"state '{state.name}' cannot run, it has"
            raise problems_error(lead, problems)
        return snap

    # -- driving ------------------------------------------------------------------------------

    def execute(self) -> RunResult:
        """Run to the end (or until cancelled), blocking the calling thread."""
        self.start()
        try:
            self.backend.join(self.finished)
        except KeyboardInterrupt:
            self.cancel()
            raise
        finally:
            self.backend.close()
        return self.result

    def start(self) -> None:
        """Start the run and return (tasks go on in the backend)."""
        logs.install()  # in the calling thread: route what tasks print to their logs
        gc_tuning.relax()
        self._t0 = time.perf_counter()
        self.result.started_at = _now()
        run_started()  # store writers wait until the run ends
        self._active = True
        if self.store is not None:
            self.store.begin_run(
                self.run_id, self.name, self.input_data, time.time(), origin=run_origin()
            )
        try:
            self._start()
        except BaseException:
            self._inactive()
            raise

    def _start(self) -> None:
        self.backend.open(self)
        with self._lock:
            self.dispatcher.emit("on_run_start")
            if self._eager:
                # every task at once, parents first; the backend wires them together
                order = [n for phase in self.snapshot.phases for n in phase]
                self.backend.submit([self._job(n) for n in order])
                self._start_ready()  # no outcome can be here yet: deliver() waits for the lock
                jobs = []
            else:
                jobs = self._start_ready()
            if not self.schedule.is_active():
                self._close()
        if jobs:
            self._submit(jobs)
        self._combine()  # outcomes delivered while the lock was held here

    def _submit(self, jobs: list[Job]) -> None:
        self.backend.submit(jobs)
        if self._policy:
            self._arm_timeouts(jobs)

    def deliver(self, outcome: Outcome) -> None:
        """Apply a task's outcome (any thread); the newly ready tasks go to the backend."""
        self._pending.append(outcome)
        self._combine()

    def hold(self, outcome: Outcome) -> None:
        """Queue a task's outcome to be applied with others at the next :meth:`flush`.

        A backend running many cheap tasks hands their outcomes over together: the run pays its
        bookkeeping once per batch. Any delivery (from any thread) applies held outcomes too.
        """
        self._pending.append(outcome)

    def flush(self) -> None:
        """Apply the outcomes held so far (any thread)."""
        self._combine()

    def _combine(self) -> None:
        """Apply the outcomes delivered so far, unless another thread is applying some.

        A thread that finds the run's lock taken leaves its outcome in ``_pending`` and goes
        back to work: the lock's holder looks at ``_pending`` again once it let go of the lock
        (every holder calls this after its ``with self._lock``), so none is left behind. With
        32 threads ending tiny tasks, they no longer queue for the lock one by one.
        """
        pending = self._pending
        lock = self._lock
        while pending and lock.acquire(blocking=False):
            jobs = error = None
            try:
                batch = []
                try:
                    while True:
                        batch.append(pending.popleft())
                except IndexError:  # all taken (another thread may add more meanwhile)
                    pass
                jobs = self._apply_batch(batch)
            except BaseException as err:  # noqa: BLE001 - a bug here must end the run
                if is_ctrl_c(err):
                    raise  # the caller cancels the run
                error = err
            finally:
                lock.release()
            try:
                if error is not None:
                    self._abort(error)
                elif jobs:
                    self._submit(jobs)
            except BaseException as err:  # noqa: BLE001 - a bug here must end the run
                if is_ctrl_c(err):
                    raise
                self._abort(err)

    def _apply_batch(self, batch: list[Outcome]) -> list[Job] | None:
        """Inside the lock: apply outcomes in order; return the jobs now ready."""
        if self._closed:
            for outcome in batch:
                self._late(outcome)
            return None
        if self._eager:
            batch.reverse()  # _drain takes from the end: the first delivered goes first
            jobs = self._drain(batch)
        else:
            apply = self._apply
            for i, outcome in enumerate(batch):
                if self._closed:  # an observer cancelled the run meanwhile
                    for late in batch[i:]:
                        self._late(late)
                    return None
                apply(outcome)
            jobs = self._start_ready()
        if self._closed:
            return None
        if not self.schedule.is_active():
            self._close()
            return None
        return jobs

    def cancel(self) -> None:
        """Stop the run (thread-safe): pending and running tasks end ``cancelled``.

        Async tasks are cancelled (and have unwound when the run reports finished, unless they
        take over ``SETTLE_TIMEOUT`` seconds); a sync task whose code is running in a thread
        cannot be stopped: it is marked ``background`` and named in ``result.background``.
        """
        with self._lock:
            if self._closed:
                return
            self._cancel_locked()
        self._combine()  # late outcomes delivered meanwhile: discarded
        self.backend.settle(SETTLE_TIMEOUT)
        self._finish()

    def _cancel_locked(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.cancel_event.set()
            self._drop_timers()
            never, running = self.schedule.cancel()
            still = self.backend.cancel(running) if running else set()
            now = time.time()
            runs = self.result.task_runs
            for name in never:
                runs[name].status = _CANCELLED
                self._record_plain(name, "cancelled")
                self.dispatcher.emit("on_task_end", runs[name])
            for name in running:
                tr = runs[name]
                tr.status = _CANCELLED
                if tr.start_time is not None:
                    tr.duration = now - tr.start_time
                if name in still:
                    tr.background = True
                    self.result.background.append(name)
                self._record_plain(name, "cancelled", tr.start_time, tr.duration)
                self.dispatcher.emit("on_task_end", tr)
            self._close(cancelled=True)

    # -- inside the lock ----------------------------------------------------------------------

    def _job(self, name: str, attempt: int = 1) -> Job:
        executor, parents = self._plan[name]
        assert executor is not None  # validated: every task has one
        inputs = None if self._eager else self._dumps
        cached = self._cache.get((self.name, name)) if self.reuse else None
        policy = self._policy.get(name) if self._policy else None
        return Job(
            name,
            self.name,
            executor,
            parents,
            inputs,
            None if parents else self.input_data,
            cached,
            self.run_id,
            self.cancel_event,
            self.deps,
            attempt,
            self.echo,
            self._lookup,
            # the errors that make this attempt retryable: none once it is the last
            policy.retry_on if policy is not None and attempt < policy.attempts else None,
            timeout=policy.timeout if policy is not None else None,
            nesting=self.nesting,
        )

    def _drain(self, queue: list[Outcome]) -> list[Job]:
        """Apply outcomes (and those an eager backend delivered early); return jobs to submit."""
        jobs: list[Job] = []
        while queue and not self._closed:
            self._apply(queue.pop())
            jobs.extend(self._start_ready(queue))
        return jobs

    def _start_ready(self, early: list[Outcome] | None = None) -> list[Job]:
        """Mark the ready tasks running (with their events) and make their jobs.

        With an eager backend the outcome of a task may already be here: it goes to ``early``.
        """
        names = self.schedule.take_ready()
        if self._limited:
            self._note_limits(names)
        if not names:
            return []
        runs = self._runs
        now = time.time()
        eager = self._eager
        jobs = []
        if not self._managed and not eager and not self.reuse:  # the common case, inlined
            plan, state, dumps, run_input = self._plan, self.name, self._dumps, self.input_data
            run_id, cancel, deps, echo = self.run_id, self.cancel_event, self.deps, self.echo
            nesting = self.nesting
            for name in names:
                tr = runs[name]
                tr.status = _RUNNING
                tr.start_time = now
                executor, parents = plan[name]
                tr._live = job = Job(
                    name, state, executor, parents, dumps, None if parents else run_input,
                    None, run_id, cancel, deps, 1, echo,
                )  # fmt: skip
                if nesting:
                    job.nesting = nesting
                jobs.append(job)
        else:
            for name in names:
                tr = runs[name]
                tr.status = _RUNNING
                tr.start_time = now
                if self._managed:
                    self._live_attempt[name] = 1
                    tr.waiting_for_limit = False
                if not eager:
                    tr._live = job = self._job(name)
                    jobs.append(job)
        emit = self._emit
        if emit is not None:
            for name in names:
                emit("on_task_start", runs[name])
        if self._eager and early is not None:
            for name in names:
                found = self._early.pop(name, None)
                if found is not None:
                    early.append(found)
        return jobs

    def _note_limits(self, started: list[str]) -> None:
        """Limits: the tasks now waiting for room, and each limit's use, in the result."""
        runs = self.result.task_runs
        for name in self.schedule.take_blocked():
            runs[name].waiting_for_limit = True
        for name in started:
            runs[name].waiting_for_limit = False
        self.result.limits = self.schedule.usage()

    def _apply(self, outcome: Outcome) -> None:
        """Turn one outcome into its task's status, values, cache entry, row and events."""
        name = outcome.name
        kind = outcome.kind
        if self._managed and self._superseded(outcome):
            return
        schedule = self.schedule
        ok = kind == "ok" or kind == "cached"
        try:
            if ok:
                schedule.succeeded(name)
                skipped: list[str] = []
            else:
                skipped = schedule.failed(name)
        except ScheduleError:  # not running here
            if schedule.status(name) == "pending":  # an eager backend ran it ahead of us
                self._early[name] = outcome
            return  # ended meanwhile (skipped, cancelled): discard
        tr = self._runs[name]
        if tr._attempts:  # retried: the first attempt's start, the whole time, every log
            self._last_attempt(tr, outcome)
        else:
            start = outcome.start
            if start is not None:
                tr.start_time = start
            tr.duration = outcome.duration
            tr.log = outcome.log
        tr.lane = outcome.lane
        tr.fingerprint = outcome.fingerprint
        tr._live = None
        if outcome.input is not None:
            tr.input = outcome.input
        if ok:
            tr.output = outcome.output
            dump = outcome.dump
            if kind == "ok":
                tr.status = _SUCCEEDED
                fresh = True
            else:
                tr.status = _CACHED
                fresh = outcome.from_store
            if dump is not None:
                self._dumps[name] = dump  # what its children merge
                if fresh and outcome.input_dump is not UNHASHABLE:
                    self._cache[self._keys[name]] = _new_tuple(
                        CacheEntry,
                        (outcome.fingerprint, outcome.input_dump, dump, type(outcome.output)),
                    )
        else:
            self._failed_task(tr, outcome, skipped)
        sink = self._sink
        if sink is not None:  # the store's thread makes the row: hash, JSON, text
            sink((self._head, outcome))
            if skipped:
                note = f"skipped: '{name}' failed"
                for child in skipped:
                    self._record_plain(child, "skipped", error=note)
        emit = self._emit
        if emit is not None:
            emit("on_task_end", tr)
            runs = self._runs
            for child in skipped:
                emit("on_task_end", runs[child])

    def _failed_task(self, tr: TaskRun, outcome: Outcome, skipped: list[str]) -> None:
        """A task failed: its error; its descendants (``skipped``) name it."""
        name = tr.name
        if outcome.kind == "skipped":  # an eager backend's view; here the parent is final already
            msg = (
                f"task '{name}' was not run by the backend: its parent "
                f"'{outcome.skipped_because}' did not succeed there"
            )
            outcome.error = TaskError("RuntimeError", msg, "")
        tr.status = _FAILED
        tr.error = outcome.error
        self._failed = True
        runs = self._runs
        for child in skipped:
            runs[child].status = _SKIPPED
            runs[child].skipped_because = name

    def _superseded(self, outcome: Outcome) -> bool:
        """Managed runs: is this outcome not the task's last word (stale, or retried)?"""
        name = outcome.name
        if (name, outcome.attempt) in self._timed_out or (
            self._live_attempt.get(name) != outcome.attempt
        ):
            self._stale(outcome)
            return True
        if outcome.kind == "error" and outcome.retryable and not self.cancel_event.is_set():
            policy = self._policy.get(name)
            if policy is not None and outcome.attempt < policy.attempts:
                self._retry(outcome, policy)
                return True
        return False

    # -- retries and timeouts -----------------------------------------------------------------

    def _retry(self, outcome: Outcome, policy: _Policy) -> None:
        """Record the failed attempt, and send the task again after its delay (a timer)."""
        name = outcome.name
        tr = self.result.task_runs[name]
        k = outcome.attempt
        status = "timed out" if outcome.error and outcome.error.type == "TaskTimeoutError" else ""
        if not tr._attempts:
            tr._attempts = []
        assert isinstance(tr._attempts, list)
        tr._attempts.append(
            Attempt(k, outcome.start, outcome.duration, outcome.error, status or "failed")
        )
        if k == 1 and outcome.start is not None:
            tr.start_time = outcome.start
        tr.log += _attempt_log(k, policy.attempts, outcome)
        tr.attempt = k + 1
        tr._live = None
        self._live_attempt[name] = 0  # between attempts: no outcome counts
        sink = self._sink
        if sink is not None:
            sink((self._head, outcome))  # the failed attempt's row (status failed, attempt k)
        emit = self._emit
        if emit is not None:
            emit("on_task_retry", tr)
        delay = policy.options.delay(k - 1) * (1.0 + JITTER * random.random())
        self._timers[name] = TIMERS.call_later(delay, functools.partial(self._resend, name, k + 1))

    def _resend(self, name: str, attempt: int) -> None:
        """A retry's delay is over (timer thread): the task's next attempt goes to the backend."""
        try:
            with self._lock:
                self._timers.pop(name, None)
                if self._closed or self.schedule.status(name) != "running":
                    return
                self._live_attempt[name] = attempt
                tr = self.result.task_runs[name]
                tr._live = job = self._job(name, attempt)
            self._submit([job])
        except BaseException as err:  # noqa: BLE001 - a bug here must end the run, not hang it
            self._abort(err)
        self._combine()

    def _arm_timeouts(self, jobs: list[Job]) -> None:
        now = time.perf_counter()
        for job in jobs:
            if job.timeout is not None:
                TIMERS.call_later(job.timeout, functools.partial(self._check_timeout, job, now))

    def _check_timeout(self, job: Job, sent: float) -> None:
        """A job's timeout may be due (timer thread): fail the attempt, or look again later."""
        try:
            self._time_out(job, sent)
        except BaseException as err:  # noqa: BLE001 - a bug here must end the run, not hang it
            self._abort(err)
        self._combine()

    def _time_out(self, job: Job, sent: float) -> None:
        name, attempt = job.name, job.attempt
        timeout = job.timeout
        assert timeout is not None
        with self._lock:
            if self._closed or self._live_attempt.get(name) != attempt:
                return  # ended (or another attempt runs)
            try:
                if self.schedule.status(name) != "running":
                    return
            except ScheduleError:
                return
            # a local job times from its start on a worker; a remote one from its sending
            started = job.started or (sent if self.backend.eager else 0.0)
            if started and job.ended and job.ended - started <= timeout:
                return  # it ended in time: its outcome is on its way to the run
            now = time.perf_counter()
            if not started or now - started < timeout:
                wait = timeout if not started else timeout - (now - started)
                TIMERS.call_later(wait, functools.partial(self._check_timeout, job, sent))
                return
            still = self.backend.cancel([name])
            tr = self.result.task_runs[name]
            sync = name in still
            msg = (
                f"task '{name}' in state '{self.name}' timed out: attempt {attempt} ran past "
                f"its timeout of {timeout:g} s"
                + (
                    " (its thread goes on in the background; its result will be discarded)"
                    if sync
                    else " and was cancelled"
                )
                + ". Raise timeout= if the task needs longer."
            )
            err = TaskTimeoutError(msg, task=name, timeout=timeout)
            if sync:
                tr.background = True
                self.result.background.append(name)
            error = describe_error(err, with_traceback=False)
            retry_on = job.retry_on
            outcome = Outcome(
                name,
                "error",
                error=error,
                start=(started + _EPOCH_OFFSET) if started else None,
                duration=now - started if started else timeout,
                lane=job.lane or None,  # the thread it was given up on
                fingerprint=job.executor.fingerprint,
                log=job.log_text,
                attempt=attempt,
                retryable=retry_on is not None and isinstance(err, retry_on),
            )
            # applied here, not left in _pending: the cancelled attempt's own outcome may be
            # waiting there already, and must come after this (stale) once the lock is free
            jobs = self._apply_batch([outcome])
            self._timed_out.add((name, attempt))  # the attempt's own outcome will be stale
        if jobs:
            self._submit(jobs)

    def _stale(self, outcome: Outcome) -> None:
        """An outcome of an attempt that no longer counts (timed out, or the run moved on)."""
        key = (outcome.name, outcome.attempt)
        if key in self._timed_out:
            self._timed_out.discard(key)
            if outcome.name in self.result.background:
                self.result.background.remove(outcome.name)

    def _last_attempt(self, tr: TaskRun, outcome: Outcome) -> None:
        """The final attempt of a retried task: its record, the whole time, every log."""
        k = outcome.attempt
        error = outcome.error
        if outcome.kind in ("ok", "cached"):
            status = "succeeded" if outcome.kind == "ok" else "cached"
        elif error is not None and error.type == "TaskTimeoutError":
            status = "timed out"
        else:
            status = "failed"
        assert isinstance(tr._attempts, list)  # retried: made by _retry
        tr._attempts.append(Attempt(k, outcome.start, outcome.duration, error, status))
        first = tr.start_time
        if first is not None and outcome.start is not None:
            tr.duration = outcome.start + outcome.duration - first
        else:
            tr.duration = outcome.duration
        tr.log += _attempt_marker(k, tr.max_attempts) + outcome.log

    def _drop_timers(self) -> None:
        for handle in self._timers.values():
            TIMERS.cancel(handle)
        self._timers.clear()

    def _record_plain(
        self,
        name: str,
        status: str,
        start: float | None = None,
        duration: float | None = None,
        error: Any = "",
    ) -> None:
        """Record a task run that produced nothing (skipped, cancelled, failed by the run)."""
        record = self._record
        if record is not None:
            values = (self.run_id, self.name, name, "", "", status, None, "", "", error, start,
                      duration, 1)  # fmt: skip
            record(_new_tuple(TaskRecord, values))

    def _late(self, outcome: Outcome) -> None:
        """A result that arrived after the run ended: discarded; a background task is done."""
        if outcome.name in self.result.background:
            self.result.background.remove(outcome.name)

    def _close(self, *, cancelled: bool = False) -> None:
        """Final statuses and ``on_run_end``; a cancelled run finishes after ``settle``."""
        if self._closed:
            return
        self._closed = True
        result = self.result
        result.duration = time.perf_counter() - self._t0
        if cancelled:
            result.status = RunStatus.CANCELLED
        elif self._failed:
            result.status = RunStatus.FAILED
        else:
            result.status = RunStatus.SUCCEEDED
        result._outputs = None  # built once, in declaration order, on first read
        registry = self.state.registry
        registry.last_results[self.name] = result
        registry.remember_run(result)
        self._early.clear()
        if self.store is not None:
            self.store.end_run(self.run_id, time.time(), result.status.value)
        self._inactive()
        try:
            self.dispatcher.emit("on_run_end")
        finally:
            gc_tuning.restore()
            if not cancelled:
                self._finish()

    def _inactive(self) -> None:
        """No longer count this run as active (once): the store writers may write."""
        if self._active:
            self._active = False
            run_ended()

    def _finish(self) -> None:
        if self.finished.is_set():
            return
        self.finished.set()
        self.backend.wake()
        for callback in self._on_finish:
            callback()

    def _abort(self, err: BaseException) -> None:
        """An error inside the run itself: fail what is left and end the run (never hang)."""
        with self._lock:
            if self._closed:
                return
            error = describe_error(err)
            error.message = f"germinate_nb internal error, please report it: {error.message}"
            self._failed = True
            self.cancel_event.set()
            never, running = self.schedule.cancel()
            for name in [*never, *running]:
                tr = self.result.task_runs[name]
                tr.status = _FAILED
                tr.error = error
                self._record_plain(name, "failed", tr.start_time, tr.duration, error)
            self.backend.cancel(running)
            self._close()
        self._combine()  # outcomes delivered meanwhile arrive late: discarded


def _attempt_marker(k: int, n: int) -> str:
    return f"--- attempt {k}/{n} ---\n"


def _attempt_log(k: int, n: int, outcome: Outcome) -> str:
    """A failed attempt's part of the task's log: a marker, what it printed, how it failed."""
    text = outcome.log
    if text and not text.endswith("\n"):
        text += "\n"
    return f"{_attempt_marker(k, n)}{text}--- attempt {k}/{n} failed: {outcome.error} ---\n"


class RunHandle:
    """A run going on in a background thread (from :func:`start_run`)."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self.exception: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, name=f"germinate-run-{run.name}", daemon=True
        )
        self._thread.start()

    def _main(self) -> None:
        try:
            self._run.execute()
        except BaseException as err:  # noqa: BLE001 - recorded; the result says what happened
            self.exception = err

    @property
    def result(self) -> RunResult:
        """The run's result, live while the run goes on."""
        return self._run.result

    @property
    def done(self) -> bool:
        """Has the run ended?"""
        return self._run.finished.is_set()

    def cancel(self) -> None:
        """Stop the run: see :meth:`Run.cancel`."""
        self._run.cancel()

    def wait(self, timeout: float | None = None) -> RunResult | None:
        """Block until the run ends; returns the result, or None on timeout."""
        if not self._run.finished.wait(timeout):
            return None
        return self._run.result

    def __repr__(self) -> str:
        return f"<RunHandle {self._run.name}: {'done' if self.done else 'running'}>"


def start_run(state: State, input: Any = None, **options: Any) -> RunHandle:
    """Start a run in a background thread and return at once with a :class:`RunHandle`.

    Takes the same options as :func:`run` (``store=`` included; ``handle.result.store`` is the
    store used); ``echo`` is False by default (the cell that started the run has usually
    finished: what tasks print is in their ``TaskRun.log``). Problems found by validation
    raise here, before anything starts.
    """
    options.setdefault("echo", False)
    return RunHandle(Run(state, input, **options))


def run(
    state: State,
    input: Any = None,
    *,
    reuse: bool = False,
    strategy: Strategy = "dependencies",
    max_workers: int | None = None,
    backend: Any = None,
    executor: Any = None,
    observers: Iterable[Any] = (),
    targets: Sequence[str] | None = None,
    echo: bool = True,
    store: RunStore | str | os.PathLike[str] | bool | None = None,
    retries: int | None = None,
    timeout: float | None = None,
    limits: dict[str, int] | None = None,
) -> RunResult:
    """Run a state's DAG and return its :class:`RunResult` (task failures do not raise).

    Parameters
    ----------
    state
        The state whose tasks run.
    input
        The run input (dict or model), validated into each root task's input model.
    reuse
        Reuse the last successful output of a task whose code and input are unchanged.
    strategy
        ``"dependencies"`` starts a task as soon as its parents succeeded; ``"phases"`` waits
        for each whole phase (the seed's behaviour).
    max_workers
        Threads for sync tasks (default 32; 1 runs sync tasks one by one in this thread, but
        a task with a timeout on a worker thread while this one waits, so the timeout can
        give up on it).
    backend
        ``None``/``"local"``, ``"dask"``, or a :class:`Backend` such as ``DaskBackend(client)``.
    executor
        The older name of ``backend``.
    observers
        :class:`RunObserver` objects (or callables ``fn(event, result, task_run)``).
    targets
        Run only these tasks and their upstream.
    echo
        Also show what tasks print where the run was started (the notebook cell). Every
        task's output is kept in its ``TaskRun.log`` either way.
    store
        Where the run and its task runs are recorded, and (with ``reuse``) looked up after
        the in-memory cache: None for the process's choice (``%germinate store``), else
        ``$GERMINATE_STORE``, else ``.germinate/runs.sqlite`` in the current folder (a
        kernel's is its notebook's); a path, a :class:`RunStore`, or ``"off"``/False for
        none. A store that cannot be used shows one :class:`StoreWarning` and the run goes
        on in memory. ``result.store`` is the store used.
    retries
        Extra attempts for every failing task that does not say otherwise
        (``@state.task(retries=...)`` wins); default 0.
    timeout
        Seconds each attempt of a task may take, for tasks that do not say otherwise; default
        None (no timeout). Past it an attempt fails with :class:`TaskTimeoutError`.
    limits
        How many tasks of each concurrency limit may run at once: ``{"llm": 4}`` for the tasks
        declared with ``limit="llm"``. A limit not given here is unlimited.

    Raises
    ------
    DagValidationError
        When the DAG cannot run (cycle, schema gap, missing run input field...).
    KeyboardInterrupt
        Re-raised after the run is cancelled and its result recorded in
        ``state.registry.last_results``.

    Works from a notebook cell: the calling thread only waits (or runs sync tasks inline with
    ``max_workers=1``), and async tasks run on a loop of their own.
    """
    the_run = Run(
        state,
        input,
        reuse=reuse,
        strategy=strategy,
        max_workers=max_workers,
        backend=backend,
        executor=executor,
        observers=observers,
        targets=targets,
        echo=echo,
        store=store,
        retries=retries,
        timeout=timeout,
        limits=limits,
    )
    result = the_run.execute()
    if the_run.store is not None:
        the_run.store.warn_failure(stacklevel=2)  # a failure met during the run, once
    return result


async def arun(state: State, input: Any = None, **options: Any) -> RunResult:
    """Async twin of :func:`run`: async tasks run on the caller's event loop.

    Sync tasks run on threads (never on the loop). Cancelling the awaiting coroutine cancels
    the run. ``store=`` as for :func:`run`.
    """
    loop = asyncio.get_running_loop()
    options.setdefault("echo", True)
    the_run = Run(state, input, loop=loop, **options)
    done: asyncio.Future[None] = loop.create_future()

    def settle() -> None:
        if not done.done():
            done.set_result(None)

    def finished() -> None:
        loop.call_soon_threadsafe(settle)

    the_run._on_finish.append(finished)
    try:
        the_run.start()
        await asyncio.shield(done)
    except asyncio.CancelledError:
        the_run.cancel()
        raise
    finally:
        await asyncio.to_thread(the_run.backend.close)
    if the_run.store is not None:
        the_run.store.warn_failure(stacklevel=2)
    return the_run.result
