"""The run store's writer: one daemon thread writing queued rows to SQLite in batches.

``StoreWriter`` is the writing half of :class:`~germinate_nb.execution.store.RunStore`: the
queue that ``record()`` appends to, the thread that drains it, and the failure that turns the
store off with one warning.

The writer never competes with a run: while any run of the process is going on (see
:func:`run_started`), it only gathers rows, and writes them once no run is active, or when
``BACKLOG`` rows are waiting, or when the oldest has waited ``MAX_DELAY`` seconds (so a kernel
that dies in the middle of a long run keeps what finished more than a few seconds before).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import warnings
from collections import deque
from pathlib import Path
from typing import Any, Final, NamedTuple

from germinate_nb.execution import store_rows as rows
from germinate_nb.execution import store_schema
from germinate_nb.execution.store_rows import TaskRecord, one_line

__all__ = [
    "BACKLOG",
    "MAX_DELAY",
    "WARNED",
    "StoreWarning",
    "StoreWriter",
    "advice",
    "rollback",
    "run_ended",
    "run_started",
]


class StoreWarning(RuntimeWarning):
    """A run store is not usable; the run goes on in memory."""


_STOP: Final = object()


class _Begin(NamedTuple):
    run_id: str
    state: str
    input_dump: Any
    started: float
    origin: str


class _End(NamedTuple):
    run_id: str
    ended: float
    status: str


def _is_task(item: Any) -> bool:
    """Is this queued item a task run (a TaskRecord, or an engine's ``(head, outcome)``)?"""
    return type(item) is TaskRecord or type(item) is tuple


WARNED: set[tuple[str, str]] = set()  # (path, reason) already shown in this process

BACKLOG: Final = 20_000
"""Rows waiting that make the writer write even while a run is going on."""
MAX_DELAY: Final = 2.0
"""Seconds a row waits at most for the runs of the process to end before it is written."""
_POLL: Final = 0.025  # while runs go on, how often the writer looks at its backlog

_active_runs = 0
_active_lock = threading.Lock()
_IDLE = threading.Event()  # set while no run of the process is going on
_IDLE.set()


def run_started() -> None:
    """A run of this process starts: writers wait until it ends (see the module's notes)."""
    global _active_runs
    with _active_lock:
        _active_runs += 1
        _IDLE.clear()


def run_ended() -> None:
    """A run that called :func:`run_started` has ended (call it once per run)."""
    global _active_runs
    with _active_lock:
        _active_runs = max(0, _active_runs - 1)
        if not _active_runs:
            _IDLE.set()


class StoreWriter:
    """Queues runs and task runs, and writes them from one daemon thread.

    ``usable`` is False after a fatal error (``last_error`` says why) or ``close()``; then
    every method is a cheap no-op. The writing methods never warn (the engine calls them from
    any thread, under its lock): the failure's one warning is shown by the next read,
    ``flush()``, ``close()`` or :meth:`warn_failure`.
    """

    path: Path
    usable: bool
    last_error: str | None

    def __init__(
        self, path: Path, *, busy_timeout: float, interval: float, batch_size: int
    ) -> None:
        self.path = path
        self.usable = True
        self.last_error = None
        self._lock = threading.Lock()  # guards failing, closing and flush markers
        self._busy_timeout = busy_timeout
        self._interval = interval
        self._batch_size = batch_size
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()  # something was queued
        self._hurry = threading.Event()  # write now: a flush or close waits
        self._pending_warning: str | None = None
        self._rows_per_insert = 1  # set by the writer from SQLite's limit on parameters
        # The reuse keys in the file, by state (for states looked up so far), so that a lookup
        # miss costs no query. None: too many to keep in memory, every lookup asks SQLite.
        self._keys: dict[str, set[int]] | None = {}
        self._closed = False
        self._thread = threading.Thread(
            target=self._write_loop, name=f"germinate-store {path.name}", daemon=True
        )
        self._thread.start()

    def begin_run(
        self, run_id: str, state: str, input_dump: Any, started: float, *, origin: str = ""
    ) -> None:
        """Queue a new run (status ``running``); ``input_dump`` is stored as JSON if it can be."""
        self._enqueue(_Begin(run_id, state, input_dump, started, origin))

    def record(self, record: TaskRecord) -> None:
        """Queue a task run. Costs a deque append; never blocks, never raises, never warns."""
        if self.usable:
            self._queue.append(record)
            if not self._wake.is_set():
                self._wake.set()

    def outcome_sink(self) -> Any:
        """The engine's way to record: a function taking ``((run_id, state), outcome)`` pairs.

        It is the queue's own ``append`` (about 0.05 us): no record is built, nothing is
        checked, the writer is not woken. The writer turns the engine's
        :class:`~germinate_nb.execution.backend.Outcome` into a row (it reads ``name``,
        ``kind``, ``fingerprint``, ``input_dump``, ``dump``, ``output``'s type, ``log``,
        ``error``, ``start`` and ``duration``, which the engine no longer changes). Use it
        between :meth:`begin_run` (which wakes the writer) and :meth:`end_run`: while runs go
        on the writer looks at the queue itself.
        """
        return self._queue.append

    def end_run(self, run_id: str, ended: float, status: str) -> None:
        """Queue the end of a run: its end time and final status."""
        self._enqueue(_End(run_id, ended, status))

    def warn_failure(self, stacklevel: int = 2) -> None:
        """Show the one warning of a failure not shown yet (``stacklevel`` as for ``warn``)."""
        if self._pending_warning is not None:
            self._emit_pending(stacklevel=stacklevel + 2)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued before this call is written.

        Returns
        -------
        bool
            True when written; False on timeout or when the store is not usable.
        """
        done = self._flush(timeout)
        self._emit_pending()
        return done

    def _enqueue(self, item: Any) -> None:
        if self.usable:
            self._queue.append(item)
            self._wake.set()

    def _flush(self, timeout: float) -> bool:
        marker = threading.Event()
        with self._lock:
            queued = self.usable and self._thread.is_alive()
            if queued:
                self._queue.append(marker)
        if not queued:
            return False
        self._hurry.set()
        self._wake.set()
        return marker.wait(timeout) and self.usable

    def _write_loop(self) -> None:
        try:
            conn = store_schema.connect(self.path, self._busy_timeout)
            conn.execute("PRAGMA cache_size = -8192")  # 8 MiB: index pages stay in memory
        except sqlite3.Error as exc:
            self._fail(one_line(exc))
            return
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._rows_per_insert = max(1, min(self._batch_size, limit // rows.TASK_ROW_WIDTH))
        try:
            while True:
                self._wait_for_rows()
                if not self._hurry.is_set():
                    self._hurry.wait(self._interval)  # gather a batch
                self._wake.clear()
                self._wait_for_idle()
                self._hurry.clear()
                if self.last_error is not None or self._drain(conn):
                    return
        except BaseException as exc:  # noqa: BLE001 - the writer must record any failure
            self._fail(f"{type(exc).__name__}: {one_line(exc)}")
        finally:
            conn.close()

    def _wait_for_rows(self) -> None:
        """Sleep until woken; while runs go on, also wake when their rows are queued."""
        wake, queue = self._wake, self._queue
        while not wake.wait(None if _IDLE.is_set() else _POLL):
            if queue:
                return

    def _wait_for_idle(self) -> None:
        """Let the runs of the process go on: wait until none is active, within limits."""
        if _IDLE.is_set():
            return
        deadline = time.monotonic() + MAX_DELAY
        queue, hurry = self._queue, self._hurry
        while not _IDLE.is_set() and not hurry.is_set() and len(queue) < BACKLOG:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            _IDLE.wait(min(_POLL, left))

    def _drain(self, conn: sqlite3.Connection) -> bool:
        """Write everything queued, in batches; True when the writer must stop."""
        queue = self._queue
        while queue:
            items: list[Any] = []
            try:
                for _ in range(self._batch_size):
                    items.append(queue.popleft())
            except IndexError:  # drained (a reader's failure may empty the queue meanwhile)
                pass
            markers = [item for item in items if isinstance(item, threading.Event)]
            stop = any(item is _STOP for item in items)
            try:
                self._write(conn, items)
            except Exception as exc:  # SQLite's errors, or a record that cannot be a row
                rollback(conn)
                reason = one_line(exc)
                if not isinstance(exc, sqlite3.Error):
                    reason = f"{type(exc).__name__}: {reason}"
                self._fail(reason, dropped=sum(_is_task(item) for item in items))
                stop = True
            for marker in markers:
                marker.set()
            if stop:
                return True
        return False

    def _write(self, conn: sqlite3.Connection, items: list[Any]) -> None:
        """Write one batch of queued items in one transaction."""
        runs, tasks, ends = [], [], []
        for item in items:
            kind = type(item)
            if kind is tuple:  # the engine's (head, outcome)
                tasks.append(rows.outcome_row(*item))
            elif kind is TaskRecord:
                tasks.append(rows.task_row(item))
            elif kind is _Begin:
                run_id, state, dump, started, origin = item
                runs.append((run_id, state, started, rows.json_or_none(dump), origin))
            elif kind is _End:
                ends.append((item.ended, item.status, item.run_id))
        if not (runs or tasks or ends):
            return
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(rows.INSERT_RUN, runs)
        for i in range(0, len(tasks), self._rows_per_insert):
            chunk = tasks[i : i + self._rows_per_insert]
            conn.execute(rows.insert_tasks_sql(len(chunk)), _flat(chunk))
        conn.executemany(rows.END_RUN, ends)
        conn.execute("COMMIT")
        keys = self._keys  # what this process writes is known at once, for states loaded
        if keys is not None:
            for row in tasks:
                if row[-1] is not None:
                    known = keys.get(row[1])
                    if known is not None:
                        known.add(row[-1])

    def _fail(self, reason: str, *, dropped: int = 0) -> None:
        """Make the store unusable: drop what is queued, keep one warning for the next call."""
        with self._lock:
            first = self.last_error is None
            self.usable = False
            if first:
                self.last_error = reason
            while True:
                try:
                    item = self._queue.popleft()
                except IndexError:  # the writer may be draining too
                    break
                if _is_task(item):
                    dropped += 1
                elif isinstance(item, threading.Event):
                    item.set()
            if first:
                lost = f", {dropped} task runs not saved" if dropped else ""
                self._pending_warning = (
                    f"germinate_nb: run store {self.path} stopped working ({reason}){lost}; "
                    f"runs go on in memory. {advice(reason)}"
                )

    def _emit_pending(self, stacklevel: int = 3) -> None:
        with self._lock:
            msg, self._pending_warning = self._pending_warning, None
        key = (str(self.path), self.last_error or "")
        if msg is not None and key not in WARNED:
            WARNED.add(key)
            warnings.warn(msg, StoreWarning, stacklevel=stacklevel)

    def _stop_writer(self, timeout: float) -> bool:
        """Queue the stop after what is queued and wait for it; False if already closed."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            self.usable = False
            self._queue.append(_STOP)
        self._hurry.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():  # still writing (a locked file): say what may be lost
                waiting = sum(_is_task(item) for item in list(self._queue))
                with self._lock:
                    if self._pending_warning is None and self.last_error is None:
                        self.last_error = f"still writing after {timeout:.1f} s"
                        self._pending_warning = (
                            f"germinate_nb: run store {self.path} was still writing when it "
                            f"was closed ({timeout:.1f} s): the rows it was writing, and "
                            f"{waiting} task runs queued after them, may not be saved. "
                            f"{advice('locked')}"
                        )
        return True


def _flat(chunk: list[tuple[Any, ...]]) -> list[Any]:
    return [value for row in chunk for value in row]


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back an open transaction, if any, ignoring a file too broken even for that."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:  # a corrupt file may refuse even this; the store is given up anyway
        pass


def advice(reason: str) -> str:
    """How to fix a store failing for ``reason`` (a message of SQLite or of the store)."""
    text = reason.lower()
    if "newer" in text:
        return "Upgrade germinate_nb, or set GERMINATE_STORE=PATH to use another store."
    if "locked" in text or "busy" in text:
        return (
            "Another process holds it locked; retry later, or set GERMINATE_STORE=PATH to use "
            "another store."
        )
    if "not a folder" in text:
        return "Move that file away, or set GERMINATE_STORE=PATH or GERMINATE_STORE=off."
    if "germinate_nb" in text:  # not a run store, or one holding triggers or views
        return "Set GERMINATE_STORE=PATH to use another file, or GERMINATE_STORE=off."
    words = ("readonly", "read-only", "permission", "unable to open", "folder", "directory", "full")
    if any(w in text for w in words):
        return (
            "Make its folder writable (or free some space), or set GERMINATE_STORE=PATH "
            "or GERMINATE_STORE=off."
        )
    return (
        "Delete the file (it holds only run history and reusable outputs) or set "
        "GERMINATE_STORE=off."
    )
