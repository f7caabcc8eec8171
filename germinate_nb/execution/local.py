"""LocalBackend: sync tasks on a thread pool (or inline), async tasks on one event loop."""

from __future__ import annotations

import asyncio
import queue
import selectors
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from typing import Any

from germinate_nb.execution.backend import Job, Outcome, RunControl
from germinate_nb.execution.events import on_main_thread
from germinate_nb.execution.invoke import aexecute, execute
from germinate_nb.execution.logs import flush_echo
from germinate_nb.execution.timers import TIMERS

__all__ = [
    "BATCH_SECONDS",
    "DEFAULT_MAX_WORKERS",
    "POOL",
    "LocalBackend",
    "LoopThread",
    "WorkerPool",
]

DEFAULT_MAX_WORKERS = 32
"""Thread pool size when ``max_workers`` is not given: tasks are usually IO-bound."""
BATCH_SECONDS = 0.002
"""Inline (``max_workers=1``), the longest an outcome waits to go to the run with others."""


if hasattr(selectors, "EpollSelector"):  # Linux

    class _PreciseEpollSelector(selectors.EpollSelector):
        """epoll whose waits for a timer end at the timer, not at the next whole millisecond.

        ``epoll_wait`` counts in milliseconds and Python rounds a wait up, so every
        ``asyncio.sleep`` ran up to 1 ms long (0.8 ms on average here): a chain of ten 20 ms IO
        steps took 4 % more than its sum. Here a wait is rounded down to whole milliseconds, and
        the rest (under 1 ms) is slept precisely after checking for IO; IO that arrives in that
        last part waits for it (under 1 ms, as timers used to).
        """

        def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            if timeout is None or timeout <= 0:
                return super().select(timeout)
            ms = int(timeout * 1000)
            if ms:
                return super().select((ms - 0.5) / 1000)  # rounded up by epoll: exactly ms
            ready = super().select(0)
            if ready:
                return ready
            time.sleep(timeout)
            return super().select(0)


def _new_loop() -> asyncio.AbstractEventLoop:
    """A run's own event loop: the policy's, with microsecond timers on Linux's default one."""
    default = type(asyncio.get_event_loop_policy()) is asyncio.DefaultEventLoopPolicy
    if default and hasattr(selectors, "EpollSelector"):  # not uvloop or another chosen loop
        return asyncio.SelectorEventLoop(_PreciseEpollSelector())
    return asyncio.new_event_loop()


class LoopThread:
    """An event loop running in its own daemon thread, for one run's async tasks."""

    def __init__(self) -> None:
        self.loop = _new_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name="germinate-async", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def stop(self, timeout: float = 2.0) -> None:
        """Cancel what is left on the loop, then stop it (from another thread)."""

        async def _cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:
                t.cancel()
            await asyncio.wait(rest, timeout=timeout) if rest else None

        if self.loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(_cancel_rest(), self.loop).result(timeout + 0.5)
        except BaseException:  # noqa: BLE001 - a task refusing to die: stop the loop anyway
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)


class WorkerPool:
    """Worker threads shared by every run of the process, started on demand and kept.

    A run pays for starting a thread once per process, not once per run: the 20 tasks of a
    first layer start together instead of one thread start apart. A thread that stays idle
    for ``IDLE_SECONDS`` ends. A thread stuck in a task (cancelled, still running) is simply
    busy: new work gets a new thread.
    """

    IDLE_SECONDS = 300.0

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[str], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._busy = 0  # work submitted and not yet done
        self._count = 0

    def submit(self, work: Callable[[str], None]) -> None:
        """Run ``work(thread_name)`` on a worker thread."""
        self.submit_many((work,))

    def submit_many(self, works: Sequence[Callable[[str], None]]) -> None:
        """Run each of ``works`` on a worker thread of its own (one lock for them all)."""
        with self._lock:
            self._busy += len(works)
            spawn = self._busy - self._threads
            names = []
            for _ in range(spawn):
                self._threads += 1
                self._count += 1
                names.append(f"germinate-worker-{self._count}")
        for name in names:
            threading.Thread(target=self._main, args=(name,), name=name, daemon=True).start()
        put = self._jobs.put
        for work in works:
            put(work)

    def _main(self, name: str) -> None:
        jobs = self._jobs
        while True:
            try:
                work = jobs.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._busy < self._threads:  # not needed: end this thread
                        self._threads -= 1
                        return
                continue
            try:
                work(name)
            except BaseException:  # noqa: BLE001 - a bug in the work: say so, keep the thread
                threading.excepthook(
                    threading.ExceptHookArgs((*sys.exc_info(), threading.current_thread()))
                )
            finally:
                with self._lock:
                    self._busy -= 1

    @property
    def threads(self) -> int:
        """Worker threads alive."""
        return self._threads


POOL = WorkerPool()


class LocalBackend:
    """Runs a run's tasks in this process.

    Sync tasks run on up to ``max_workers`` threads of the process's :class:`WorkerPool` at
    once, or one by one in the run's calling thread when ``max_workers=1`` (no thread
    hand-off: the fastest for cheap tasks; a task with a timeout runs on a pool thread while
    the calling thread waits, so the timeout can give up on it). Async tasks run concurrently
    on the caller's event loop (``arun``) or on a loop thread of the run's own. Cancelling
    stops async tasks and tasks not yet started; a sync task whose code is running cannot be
    stopped and is reported still running.
    """

    eager = False

    def __init__(
        self, max_workers: int | None = None, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            msg = f"max_workers must be a positive int or None, got {max_workers!r}."
            raise ValueError(msg)
        self.max_workers = max_workers or DEFAULT_MAX_WORKERS
        self.inline = max_workers == 1 and loop is None
        self._loop = loop
        self._loop_ident: int | None = None
        self._loop_thread: LoopThread | None = None
        self._run: RunControl | None = None
        self._inline_jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        # Sync jobs wait in ``_waiting`` for one of ``max_workers`` slots. A slot is a token in
        # ``_slots``: a thread takes one (``pop``), runs waiting jobs while there are any, and
        # puts it back. ``_holds`` maps id(job) to the slot its thread holds; whichever of the
        # thread and a give-up (:meth:`_abandon`) pops it first hands the slot on. Each step
        # is one atomic deque/list/dict operation, so no thread ever waits for a lock here:
        # with 32 threads ending tiny tasks, a lock (and the GIL hand-over each wait costs)
        # made a 10,000-task run twice as slow per task as a 1,000-task one.
        self._waiting: deque[Job] = deque()
        self._slots: list[bool] = [True] * self.max_workers
        self._holds: dict[int, bool] = {}
        self._lock = threading.Lock()  # guards the loop's start
        # id(job) -> a sync job whose code is running (by job, not by task: an attempt given
        # up on may still run beside the next attempt of its task)
        self._running: dict[int, Job] = {}
        self._tasks: dict[tuple[str, int], Any] = {}  # (async task, attempt) -> asyncio.Task
        self._cancelled: list[Any] = []  # asyncio tasks cancelled, not yet waited for
        self._flush_armed = False  # a timer or loop turn will apply the held outcomes
        self._passthrough: tuple[type[BaseException], ...] = ()
        # inline: id(job) -> what the calling thread waits on while a pool thread runs the job
        self._guarded: dict[int, threading.Event] = {}

    def __repr__(self) -> str:
        mode = "inline" if self.inline else f"{self.max_workers} threads"
        return f"<LocalBackend {mode}>"

    # -- the protocol -------------------------------------------------------------------------

    def open(self, run: RunControl) -> None:
        """Serve ``run``; called from the run's calling thread."""
        self._run = run
        if self._loop is not None:
            self._loop_ident = threading.get_ident()  # arun opens the run on its loop
        self._passthrough = (KeyboardInterrupt,) if self.inline and on_main_thread() else ()

    def submit(self, jobs: Sequence[Job]) -> None:
        """Queue sync jobs for the threads (or the inline loop); start async jobs on the loop."""
        async_jobs = []
        sync_jobs = []
        for job in jobs:
            if job.executor._is_async:
                async_jobs.append(job)
            elif self.inline:
                self._inline_jobs.put(job)
            else:
                sync_jobs.append(job)
        if sync_jobs:
            self._submit_sync(sync_jobs)
        if async_jobs:
            self._submit_async(async_jobs)

    def cancel(self, names: Collection[str]) -> set[str]:
        """Cancel async tasks; returns the sync tasks whose code is still running.

        Such a thread is abandoned: its worker slot goes to the next sync job at once (the
        pool starts another thread), so stuck tasks never starve the run.
        """
        background = set()
        wanted = set(names)
        for job in list(self._running.values()):  # list(): one atomic step
            if job.name in wanted and not job.abandoned:
                background.add(job.name)
                self._abandon(job)
        tasks = self._tasks
        for key in [k for k in list(tasks) if k[0] in wanted]:  # list(): one step, vs the loop
            task = tasks.pop(key, None)
            if task is None:  # it ended meanwhile (the loop thread removes ended tasks)
                continue
            self._cancelled.append(task)
            self._loop_of().call_soon_threadsafe(task.cancel)
        return background

    def _abandon(self, job: Job) -> None:
        if job.echo_tails:  # what it printed last shows now, not whenever its thread returns
            flush_echo(job, end=True)
        job.abandoned = True
        if self.inline:
            waiting = self._guarded.pop(id(job), None)
            if waiting is not None:
                waiting.set()  # the calling thread stops waiting for it and goes on
            return
        if self._holds.pop(id(job), None) is not None:  # else its thread has moved on already
            self._slots.append(True)  # the slot passes to the next job
            self._start_runners(1)

    def settle(self, timeout: float) -> None:
        """Wait (up to ``timeout``) until the cancelled async tasks have unwound."""
        tasks, self._cancelled = self._cancelled, []
        loop = self._loop
        if not tasks or loop is None or threading.get_ident() == self._loop_ident:
            return  # on the loop itself, waiting would block what it waits for

        async def unwound() -> None:
            await asyncio.wait(tasks, timeout=timeout)

        try:
            asyncio.run_coroutine_threadsafe(unwound(), loop).result(timeout + 0.5)
        except BaseException:  # noqa: BLE001 - a task that will not stop: stop waiting for it
            pass

    def join(self, finished: threading.Event) -> None:
        """Wait for the run's end, running inline jobs meanwhile (Ctrl-C interrupts).

        Inline, the outcomes of tasks that end close together are applied together (see
        :meth:`Run.hold`): when no job is left to run, else within ``BATCH_SECONDS`` (a timer
        flushes them while a longer task runs), so a status is that late at most.
        """
        if not self.inline:
            finished.wait()
            return
        run = self._run
        assert run is not None
        jobs = self._inline_jobs
        lane = threading.current_thread().name
        passthrough = self._passthrough
        try:
            while not finished.is_set():
                job = jobs.get()
                while job is not None:  # wake() puts None once the run has finished
                    if job.timeout is None:
                        outcome = self._execute(job, lane, passthrough)
                    else:
                        self._run_guarded(job)  # delivers its own outcome
                        outcome = None
                    if outcome is not None:
                        run.hold(outcome)
                        if jobs.empty():
                            run.flush()
                        elif not self._flush_armed:
                            self._flush_armed = True
                            TIMERS.call_later(BATCH_SECONDS, self._flush_later)
                    job = jobs.get()
        finally:
            run.flush()  # Ctrl-C in a task: what ended before it is not lost

    def _run_guarded(self, job: Job) -> None:
        """Inline, run a task that has a timeout on a pool thread while this thread waits.

        Tasks still run one at a time, but the run's timeout (or a cancel) can give up on this
        one: :meth:`_abandon` ends the wait and the run goes on in the calling thread, while
        the task's thread goes on in the background. The pool thread delivers the outcome
        itself (at once, not after a hand-over to this thread); one that comes after the run
        gave up on the task is discarded as stale.
        """
        done = threading.Event()
        key = id(job)
        self._guarded[key] = done

        def work(lane: str) -> None:
            try:
                self._run_sync(job, lane, ())
            finally:
                waiting = self._guarded.pop(key, None)
                if waiting is not None:
                    waiting.set()

        POOL.submit(work)
        done.wait()

    def _flush_later(self) -> None:
        """The timer (inline) or the next loop turn (async): apply the outcomes held so far."""
        self._flush_armed = False
        assert self._run is not None
        self._run.flush()

    def wake(self) -> None:
        """Let ``join`` return."""
        self._inline_jobs.put(None)

    def close(self) -> None:
        """Stop the run's own loop (never blocks on a stuck task); pool threads stay."""
        self._waiting.clear()
        if self._loop_thread is not None:
            self._loop_thread.stop()

    # -- sync tasks ---------------------------------------------------------------------------

    def _submit_sync(self, jobs: list[Job]) -> None:
        """Queue sync jobs; start a thread for each free slot (up to one per job)."""
        self._waiting.extend(jobs)
        self._start_runners(len(jobs))

    def _start_runners(self, most: int) -> None:
        """Start up to ``most`` threads running waiting jobs, one per free slot."""
        slots = self._slots
        taken = 0
        while taken < most and self._waiting:
            try:
                slots.pop()
            except IndexError:  # every slot is held: its thread takes the jobs
                break
            taken += 1
        if taken:
            POOL.submit_many([self._runner] * taken)

    def _runner(self, lane: str) -> None:
        """Holding a slot: run waiting jobs until none is left, then put the slot back."""
        waiting, slots, holds = self._waiting, self._slots, self._holds
        while True:
            try:
                job = waiting.popleft()
            except IndexError:
                slots.append(True)
                # a job queued while every slot was held is taken by a holder, which looks
                # again here after letting its slot go
                if not waiting:
                    return
                try:
                    slots.pop()
                except IndexError:  # another thread took the slot, and with it the job
                    return
                continue
            key = id(job)
            holds[key] = True
            self._run_sync(job, lane, ())
            if holds.pop(key, None) is None:
                return  # given up on meanwhile: its slot went to the next job then

    def _run_sync(self, job: Job, lane: str, passthrough: tuple[type[BaseException], ...]) -> None:
        outcome = self._execute(job, lane, passthrough)
        if outcome is not None:
            assert self._run is not None
            self._run.deliver(outcome)

    def _execute(
        self, job: Job, lane: str, passthrough: tuple[type[BaseException], ...]
    ) -> Outcome | None:
        """Run a sync job here; None when the run was cancelled before it started."""
        # Mark first, check the cancel signal second: a cancel either sees the task running
        # (and reports it in the background) or the task sees the cancel and never starts.
        key = id(job)
        running = self._running
        running[key] = job
        if job.cancel.is_set():
            del running[key]
            return None
        try:
            return execute(job, lane, passthrough)
        finally:
            del running[key]  # one atomic step (a later attempt has an entry of its own)

    # -- async tasks --------------------------------------------------------------------------

    def _loop_of(self) -> asyncio.AbstractEventLoop:
        """The run's loop, started on first use (threads delivering at once start one only)."""
        loop = self._loop
        if loop is None:
            with self._lock:
                if self._loop is None:
                    self._loop_thread = LoopThread()
                    self._loop_ident = self._loop_thread.thread.ident
                    self._loop = self._loop_thread.loop
                loop = self._loop
        return loop

    def _submit_async(self, jobs: list[Job]) -> None:
        loop = self._loop_of()
        if threading.get_ident() == self._loop_ident:
            self._start_async(loop, jobs)
        else:
            loop.call_soon_threadsafe(self._start_async, loop, jobs)

    def _start_async(self, loop: asyncio.AbstractEventLoop, jobs: list[Job]) -> None:
        tasks = self._tasks
        done = self._async_done
        for job in jobs:
            if not job.cancel.is_set():
                tasks[job.name, job.attempt] = loop.create_task(aexecute(job, "event loop", done))

    def _async_done(self, outcome: Outcome) -> None:
        """An async task ended (on the loop): one loop turn's outcomes are applied together."""
        self._tasks.pop((outcome.name, outcome.attempt), None)
        assert self._run is not None
        self._run.hold(outcome)
        if not self._flush_armed:
            self._flush_armed = True
            loop = self._loop
            assert loop is not None
            loop.call_soon(self._flush_later)
