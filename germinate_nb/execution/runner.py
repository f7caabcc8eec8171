"""run / arun / start_run: dependency-driven scheduling of a state's DAG, with cancellation."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import gc
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from germinate_nb.core.executor import DependencyCache
from germinate_nb.core.state import State
from germinate_nb.core.task import TaskDefinition
from germinate_nb.errors import GerminateError
from germinate_nb.execution import cache as reuse_cache
from germinate_nb.execution.cache import CacheEntry
from germinate_nb.execution.dataflow import build_input, merge_outputs, run_input_dict
from germinate_nb.execution.events import Dispatcher, as_observers
from germinate_nb.execution.local import (
    DEFAULT_MAX_WORKERS,
    LoopThread,
    Outcome,
    call_async,
    call_sync,
    on_done,
    task_error,
)
from germinate_nb.execution.result import RunResult, TaskRun, TaskStatus
from germinate_nb.graph.validate import problems_error, validate

__all__ = ["RunHandle", "arun", "run", "start_run"]

Strategy = Literal["dependencies", "phases"]
WAKE = object()
"""Put on a run's queue to wake its scheduler (after a cancel request)."""


def _now() -> datetime:
    return datetime.now().astimezone()


GC_GEN0_THRESHOLD = 50_000
_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, ...] | None = None


@contextlib.contextmanager
def _gc_relaxed() -> Iterator[None]:
    """Raise the collector's first threshold while runs go on, restore it after the last one.

    A run keeps a TaskRun, an input and an output per task alive; with the default threshold
    (700 allocations) the collector keeps re-walking every task of a big DAG, which took a third
    of a 10,000-task run here. Collection still happens, just less often.
    """
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            if _gc_saved[0] and _gc_saved[0] < GC_GEN0_THRESHOLD:
                gc.set_threshold(GC_GEN0_THRESHOLD, *_gc_saved[1:])
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_saved is not None:
                if gc.get_threshold()[0] == GC_GEN0_THRESHOLD:
                    gc.set_threshold(*_gc_saved)
                _gc_saved = None


Structure = tuple[
    list[TaskDefinition], dict[str, TaskDefinition], dict[str, list[str]], dict[str, list[str]]
]


def _structure(state: State, targets: Sequence[str] | str | None) -> Structure:
    """The tasks to run with their in-run parents and children (cached per state version)."""
    if isinstance(targets, str):
        targets = [targets]
    key = (state.version, tuple(targets) if targets is not None else None)
    cached = state._run_structure
    if cached is not None and cached[0] == key:
        hit: Structure = cached[1]
        return hit
    if targets is None:
        tasks = state.tasks
    else:
        wanted: set[str] = set()
        stack = [state.get(name) for name in targets]
        while stack:
            task = stack.pop()
            if task.name in wanted:
                continue
            wanted.add(task.name)
            stack.extend(p for p in task._parents if p.state is state)
        tasks = [t for t in state.tasks if t.name in wanted]
    members = {t.name: t for t in tasks}
    parents = {t.name: [p.name for p in t._parents if members.get(p.name) is p] for t in tasks}
    children = {t.name: [c.name for c in t._children if members.get(c.name) is c] for t in tasks}
    structure = (tasks, members, parents, children)
    state._run_structure = (key, structure)
    return structure


def _remote_executor(executor: Any) -> Any:
    """None for the local engine, else an object with ``drive(run)`` (e.g. a DaskExecutor)."""
    if executor is None or executor == "local":
        return None
    if executor == "dask":
        from germinate_nb.execution.dask import DaskExecutor

        return DaskExecutor()
    if hasattr(executor, "drive"):
        return executor
    msg = (
        f"executor={executor!r} is not known: use None or 'local' (threads and an event loop "
        "here), 'dask' (the current distributed.Client), or DaskExecutor(client)."
    )
    raise ValueError(msg)


class _Run:
    """One run of a state: owns the statuses, the schedule and the completion queue."""

    def __init__(
        self,
        state: State,
        input: Any = None,
        *,
        reuse: bool = False,
        strategy: Strategy = "dependencies",
        max_workers: int | None = None,
        executor: Any = None,
        observers: Iterable[Any] = (),
        targets: Sequence[str] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
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
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            msg = f"max_workers must be a positive int or None, got {max_workers!r}."
            raise ValueError(msg)
        self.remote = _remote_executor(executor)
        self.state = state
        self.name = state.name
        self.reuse = reuse
        self.strategy = strategy
        self.max_workers = max_workers or DEFAULT_MAX_WORKERS
        self.inline = max_workers == 1
        self.input_data = run_input_dict(input)
        self.tasks, self.by_name, self.parents, self.children = _structure(state, targets)
        self._check()
        self.result = RunResult(state.name, {t.name: TaskRun(t.name) for t in self.tasks})
        self.dispatcher = Dispatcher(
            [*as_observers(observers), *state.registry.run_observers], self.result
        )
        self.waiting = {name: len(ps) for name, ps in self.parents.items()}
        self.dumps: dict[str, dict[str, Any]] = {}
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.ready: deque[str] = deque()
        self.futures: dict[str, concurrent.futures.Future[Any]] = {}
        self.started: dict[str, float] = {}
        self.in_flight = 0
        self.remaining = len(self.tasks)
        self.cancel_requested = False
        self.cancelled = False
        self.deps = DependencyCache()
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._sync_in_flight = 0
        self._loop = loop
        self._loop_thread: LoopThread | None = None
        self._finished = threading.Event()
        self._phase_of: dict[str, int] = {}
        self._phase_left: list[int] = []
        self._held: dict[int, list[str]] = {}
        self._phase = 0
        if strategy == "phases":
            for i, phase in enumerate(state.phases):
                members_in = [n for n in phase if n in self.by_name]
                for n in members_in:
                    self._phase_of[n] = i
                self._phase_left.append(len(members_in))

    # -- set-up -------------------------------------------------------------------------

    def _check(self) -> None:
        problems = validate(self.state, input=self.input_data)
        if len(self.tasks) != len(self.state):
            names = {t.name for t in self.tasks}
            problems = [p for p in problems if p.kind == "cycle" or names & set(p.tasks)]
        if problems:
            lead = f"state '{self.name}' cannot run, it has"
            raise problems_error(lead, problems)

    # -- the schedule -------------------------------------------------------------------

    def execute(self) -> RunResult:
        """Run to the end (or until cancelled) in the calling thread."""
        with _gc_relaxed():
            return self._execute()

    def _execute(self) -> RunResult:
        result = self.result
        result.started_at = _now()
        t0 = time.perf_counter()
        self.dispatcher.emit("on_run_start")
        try:
            if self.remote is not None:
                self.remote.drive(self)
            else:
                for name, n in self.waiting.items():
                    if n == 0:
                        self._make_ready(name)
                self._schedule()
        except BaseException:
            self._cancel_all()
            self._finish(t0)
            raise
        self._finish(t0)
        return result

    def _schedule(self) -> None:
        while True:
            if self.cancel_requested:
                self._cancel_all()
                return
            while self.ready and not self.cancel_requested:
                self._dispatch(self.ready.popleft())
            if self.cancel_requested:
                continue
            if self.in_flight == 0:
                if self.ready:
                    continue
                return
            item = self.queue.get()
            while True:  # take every completion that is already there before dispatching
                if item is not WAKE:
                    name, outcome = item
                    self.in_flight -= 1
                    if self.futures.pop(name, None) is None:
                        self._sync_in_flight -= 1
                    self._complete(name, outcome)
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break

    def _make_ready(self, name: str) -> None:
        if self.result.task_runs[name].status is not TaskStatus.PENDING:
            return
        if self._phase_of and self._phase_of[name] > self._phase:
            self._held.setdefault(self._phase_of[name], []).append(name)
            return
        self.ready.append(name)

    def _dispatch(self, name: str) -> None:
        task = self.by_name[name]
        run = self.result.task_runs[name]
        parents = self.parents[name]
        try:
            if parents:
                data = merge_outputs(name, self.name, [(p, self.dumps[p]) for p in parents])
            else:
                data = self.input_data
            model = build_input(task, self.name, data, parents)
        except GerminateError as err:
            run.status = TaskStatus.RUNNING
            run.start_time = time.time()
            self.dispatcher.emit("on_task_start", run)
            self._complete(name, ("error", task_error(err, with_traceback=False), 0.0))
            return
        run.input = model
        executor = task.executor
        assert executor is not None
        if self.reuse:
            entry = reuse_cache.lookup(self.state.registry, self.name, name)
            if entry is not None and entry.matches(executor.fingerprint, model):
                run.status = TaskStatus.CACHED
                run.output = entry.output
                run.start_time = time.time()
                run.duration = 0.0
                self.dispatcher.emit("on_task_end", run)
                self._released(name, entry.output)
                return
        run.status = TaskStatus.RUNNING
        run.start_time = time.time()
        self.started[name] = time.perf_counter()
        self.dispatcher.emit("on_task_start", run)
        if executor._is_async:
            loop_submit = self._async_submit()
            fut = loop_submit(call_async(task, self.name, model, self.deps))
            self.futures[name] = fut
            fut.add_done_callback(on_done(functools.partial(self._async_done, name)))
        elif self.inline:
            self._complete(name, call_sync(task, self.name, model, self.deps))
            return
        else:
            self._submit_sync(name, task, model)
        self.in_flight += 1

    def _complete(self, name: str, outcome: Outcome) -> None:
        run = self.result.task_runs[name]
        if run.status is not TaskStatus.RUNNING:  # cancelled meanwhile: discard
            return
        kind, value, duration = outcome
        run.duration = duration
        if kind == "ok":
            run.status = TaskStatus.SUCCEEDED
            run.output = value
            executor = self.by_name[name].executor
            assert executor is not None
            entry = CacheEntry(executor.fingerprint, run.input, value)
            reuse_cache.store(self.state.registry, self.name, name, entry)
            self.dispatcher.emit("on_task_end", run)
            self._released(name, value)
        else:
            run.status = TaskStatus.FAILED
            run.error = value
            self.dispatcher.emit("on_task_end", run)
            self._finalised(name)
            self._skip_descendants(name)

    def _released(self, name: str, output: BaseModel) -> None:
        children = self.children[name]
        if children:
            self.dumps[name] = output.model_dump()
        self._finalised(name)
        for child in children:
            left = self.waiting[child] - 1
            self.waiting[child] = left
            if left == 0:
                self._make_ready(child)

    def _skip_descendants(self, failed: str) -> None:
        stack = list(self.children[failed])
        while stack:
            name = stack.pop()
            run = self.result.task_runs[name]
            if run.status is not TaskStatus.PENDING:
                continue
            run.status = TaskStatus.SKIPPED
            run.skipped_because = failed
            self.dispatcher.emit("on_task_end", run)
            self._finalised(name)
            stack.extend(self.children[name])

    def _finalised(self, name: str) -> None:
        self.remaining -= 1
        if not self._phase_of:
            return
        self._phase_left[self._phase_of[name]] -= 1
        while self._phase < len(self._phase_left) and self._phase_left[self._phase] == 0:
            self._phase += 1
            self.ready.extend(self._held.pop(self._phase, []))

    # -- where tasks run ----------------------------------------------------------------

    def _async_done(self, name: str, fut: concurrent.futures.Future[Outcome]) -> None:
        self.queue.put((name, fut.result()))

    def _submit_sync(self, name: str, task: TaskDefinition, model: BaseModel | None) -> None:
        self._sync_in_flight += 1
        if len(self._threads) < self.max_workers and self._sync_in_flight > len(self._threads):
            thread = threading.Thread(
                target=self._worker, name=f"germinate-{self.name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        self._jobs.put((name, task, model))

    def _worker(self) -> None:
        """A pool thread: runs sync tasks until it gets ``None``; late results are ignored."""
        jobs, done, state, deps = self._jobs, self.queue, self.name, self.deps
        while True:
            job = jobs.get()
            if job is None:
                return
            name, task, model = job
            if self.cancel_requested:
                continue
            done.put((name, call_sync(task, state, model, deps)))

    def _async_submit(self) -> Any:
        if self._loop is not None:
            loop = self._loop
            return lambda coro: asyncio.run_coroutine_threadsafe(coro, loop)
        if self._loop_thread is None:
            self._loop_thread = LoopThread()
        return self._loop_thread.submit

    # -- stopping -----------------------------------------------------------------------

    def request_cancel(self) -> None:
        """Ask the schedule to stop (thread-safe): pending and running tasks end ``cancelled``."""
        self.cancel_requested = True
        self.queue.put(WAKE)

    def _cancel_all(self) -> None:
        self.cancelled = True
        now = time.perf_counter()
        for fut in list(self.futures.values()):
            fut.cancel()
        self.futures.clear()
        for name, run in self.result.task_runs.items():
            if run.status.is_final:
                continue
            if run.status is TaskStatus.RUNNING and name in self.started:
                run.duration = now - self.started[name]
            run.status = TaskStatus.CANCELLED
            self.dispatcher.emit("on_task_end", run)
        self.ready.clear()

    def _finish(self, t0: float) -> None:
        result = self.result
        result.duration = time.perf_counter() - t0
        for _ in self._threads:
            self._jobs.put(None)
        if self._loop_thread is not None:
            self._loop_thread.stop()
        statuses = {r.status for r in result.task_runs.values()}
        if self.cancelled:
            result.status = "cancelled"
        elif statuses <= {TaskStatus.SUCCEEDED, TaskStatus.CACHED}:
            result.status = "succeeded"
        else:
            result.status = "failed"
        self.state.registry.last_results[self.name] = result
        try:
            self.dispatcher.emit("on_run_end")
        finally:
            self._finished.set()


class RunHandle:
    """A run going on in a background thread (from :func:`start_run`)."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self.exception: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, name=f"germinate-run-{run.name}", daemon=True
        )
        self._thread.start()

    def _main(self) -> None:
        try:
            self._run.execute()
        except BaseException as err:  # recorded; the result still says cancelled/failed
            self.exception = err

    @property
    def result(self) -> RunResult:
        """The run's result, live while the run goes on."""
        return self._run.result

    @property
    def done(self) -> bool:
        """Has the run ended?"""
        return self._run._finished.is_set()

    def cancel(self) -> None:
        """Stop the run: pending tasks and running async tasks become ``cancelled``."""
        self._run.request_cancel()

    def wait(self, timeout: float | None = None) -> RunResult | None:
        """Block until the run ends; returns the result, or None on timeout."""
        if not self._run._finished.wait(timeout):
            return None
        return self._run.result

    def __repr__(self) -> str:
        return f"<RunHandle {self._run.name}: {'done' if self.done else 'running'}>"


def start_run(state: State, input: Any = None, **options: Any) -> RunHandle:
    """Start a run in a background thread and return at once with a :class:`RunHandle`.

    Takes the same options as :func:`run`. Problems found by validation raise here, before
    anything starts.
    """
    return RunHandle(_Run(state, input, **options))


def run(
    state: State,
    input: Any = None,
    *,
    reuse: bool = False,
    strategy: Strategy = "dependencies",
    max_workers: int | None = None,
    executor: Any = None,
    observers: Iterable[Any] = (),
    targets: Sequence[str] | None = None,
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
        Threads for sync tasks (default 32; 1 runs sync tasks one by one in this thread).
    executor
        ``None`` or ``"local"``.
    observers
        :class:`RunObserver` objects (or callables ``fn(event, result, task_run)``).
    targets
        Run only these tasks and their upstream.

    Raises
    ------
    DagValidationError
        When the DAG cannot run (cycle, schema gap, missing run input field...).
    KeyboardInterrupt
        Re-raised after the run is cancelled and its result recorded in
        ``state.registry.last_results``.

    Works from a notebook cell: the schedule runs in this thread without an event loop, and
    async tasks run on a loop of their own.
    """
    return _Run(
        state,
        input,
        reuse=reuse,
        strategy=strategy,
        max_workers=max_workers,
        executor=executor,
        observers=observers,
        targets=targets,
    ).execute()


async def arun(state: State, input: Any = None, **options: Any) -> RunResult:
    """Async twin of :func:`run`: async tasks run on the caller's event loop.

    Cancelling the awaiting coroutine cancels the run.
    """
    loop = asyncio.get_running_loop()
    the_run = _Run(state, input, loop=loop, **options)
    done: asyncio.Future[RunResult] = loop.create_future()

    def deliver(value: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(value)

    def main() -> None:
        try:
            value = the_run.execute()
        except BaseException as err:
            loop.call_soon_threadsafe(deliver, None, err)
        else:
            loop.call_soon_threadsafe(deliver, value, None)

    threading.Thread(target=main, name=f"germinate-arun-{the_run.name}", daemon=True).start()
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        the_run.request_cancel()
        raise
