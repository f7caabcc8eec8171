"""The run store: runs, task runs and JSON outputs kept in an embedded SQLite file.

Writes never sit on the scheduler's path: :meth:`RunStore.record` appends to a deque and one
daemon thread per store writes the rows in batches. A store that cannot be used (unwritable,
locked, corrupt, newer) warns once and turns every method into a cheap no-op or miss, so runs go
on in memory. The store holds JSON and text only, never pickles.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import sqlite3
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel
from pydantic_core import to_json

from germinate_nb.errors import GerminateError
from germinate_nb.execution import store_rows as rows
from germinate_nb.execution import store_schema
from germinate_nb.execution.store_rows import RunRow, StoreInfo, TaskRecord, TaskRow, one_line
from germinate_nb.execution.store_schema import SCHEMA_VERSION, SchemaError

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "SCHEMA_VERSION",
    "RunRow",
    "RunStore",
    "StoreError",
    "StoreInfo",
    "StoreWarning",
    "TaskRecord",
    "TaskRow",
    "input_hash",
    "resolve_store",
]

DEFAULT_PATH: Final = ".germinate/runs.sqlite"
ENV_VAR: Final = "GERMINATE_STORE"
_T = TypeVar("_T")


class StoreError(GerminateError, OSError):
    """A run store cannot be opened; ``path`` and ``reason`` hold the evidence."""

    def __init__(self, msg: str, *, path: str = "", reason: str = "") -> None:
        super().__init__(msg)
        self.path = path
        self.reason = reason


class StoreWarning(RuntimeWarning):
    """A run store is not usable; the run goes on in memory."""


def input_hash(input_dump: Any) -> str:
    """A stable hash of a task input: the same in every process, whatever ``PYTHONHASHSEED``.

    Sets are sorted and dict keys ordered before hashing, so equal inputs hash equal.

    Parameters
    ----------
    input_dump
        The python-mode ``model_dump()`` of the input, or None.

    Returns
    -------
    str
        32 hex digits, or ``""`` when the input cannot be turned into JSON (not reusable).
    """
    try:
        return hashlib.sha256(to_json(_canonical(input_dump))).hexdigest()[:32]
    except Exception:  # any unserialisable value: never reusable, never an error
        return ""


_ATOMS: Final = frozenset({str, int, float, bool, type(None)})


def _canonical(value: Any) -> Any:
    """``value`` with sets sorted and dict keys ordered, so its JSON is the same everywhere."""
    cls = type(value)
    if cls in _ATOMS:
        return value
    if cls is dict or isinstance(value, dict):
        try:
            keys = sorted(value)
        except TypeError:  # keys of mixed types: order them by their JSON
            keys = sorted(value, key=to_json)
        return {k: _canonical(value[k]) for k in keys}
    if cls is list or cls is tuple or isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=to_json)
    if isinstance(value, BaseModel):
        return _canonical(value.model_dump())
    return value


_STOP: Final = object()
_BEGIN: Final = "begin"
_END: Final = "end"


class RunStore:
    """An open run store: a background writer, and readers for reuse and history.

    Create it with :meth:`open` (or :func:`resolve_store`). Every method is safe to call from
    any thread. After a fatal error ``usable`` is False, ``last_error`` says why, one
    :class:`StoreWarning` is shown at the next call, and every method is a no-op or a miss.

    Examples
    --------
    >>> store = RunStore.open(".germinate/runs.sqlite")  # doctest: +SKIP
    >>> store.begin_run("r1", "design", {"text": "a b"}, time.time())  # doctest: +SKIP
    >>> store.flush()  # doctest: +SKIP
    True
    """

    path: Path
    usable: bool
    last_error: str | None

    def __init__(
        self, path: Path, conn: sqlite3.Connection, *, busy_timeout: float, interval: float,
        batch_size: int,
    ) -> None:  # fmt: skip
        self.path = path
        self.usable = True
        self.last_error = None
        self._conn = conn  # the readers' connection, used under _read_lock
        self._read_lock = threading.Lock()
        self._lock = threading.Lock()  # guards failing, closing and flush markers
        self._busy_timeout = busy_timeout
        self._interval = interval
        self._batch_size = batch_size
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()  # something was queued
        self._hurry = threading.Event()  # write now: a flush or close waits
        self._pending_warning: str | None = None
        self._rows_per_insert = 1  # set by the writer from SQLite's limit on parameters
        self._closed = False
        self._thread = threading.Thread(
            target=self._write_loop, name=f"germinate-store {path.name}", daemon=True
        )
        _LIVE.add(self)
        self._thread.start()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        interval: float = 0.1,
        batch_size: int = 1000,
    ) -> RunStore:
        """Open (or create) the store at ``path``: folder, schema, WAL mode, busy timeout.

        Parameters
        ----------
        path
            The SQLite file; its folder is created.
        busy_timeout
            Seconds to wait for another process's lock before the store gives up.
        interval
            Seconds the writer gathers rows before writing a batch (a flush writes at once).
        batch_size
            Most rows written in one transaction. Small transactions cost more per row (SQLite
            rewrites every index page a transaction touches): about 30, 17, 12 and 10 us of CPU
            per row at 50, 200, 500 and 2,000 rows per transaction on the development machine.

        Raises
        ------
        StoreError
            One line naming the file, the reason and the fix (unwritable folder, not an SQLite
            file, corrupt, written by a newer germinate_nb, locked beyond ``busy_timeout``).
        """
        target = Path(os.fspath(path)).expanduser().absolute()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            reason = f"{exc.filename} is a file, not a folder"
            raise _open_error(target, reason) from exc
        except OSError as exc:
            reason = f"cannot create its folder {exc.filename}: {exc.strerror or one_line(exc)}"
            raise _open_error(target, reason) from exc
        if target.is_dir():
            raise _open_error(target, "it is a directory")
        try:
            conn = store_schema.connect(target, busy_timeout)
        except sqlite3.Error as exc:
            raise _open_error(target, one_line(exc)) from exc
        try:
            version = store_schema.read_version(conn)
            if version > SCHEMA_VERSION:  # never touch a newer file, not even its journal mode
                msg = f"it has schema v{version}, newer than v{SCHEMA_VERSION} this version reads"
                raise SchemaError(msg)
            found = store_schema.unexpected_objects(conn)
            if found:
                msg = f"it holds {found[0]}, which germinate_nb never creates"
                raise SchemaError(msg)
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            if version < SCHEMA_VERSION:
                store_schema.migrate(conn)
        except (sqlite3.Error, SchemaError) as exc:
            conn.close()
            raise _open_error(target, one_line(exc)) from exc
        return cls(
            target, conn, busy_timeout=busy_timeout, interval=interval, batch_size=batch_size
        )

    # -- writing: queued, never blocking ------------------------------------------------------

    def begin_run(
        self, run_id: str, state: str, input_dump: Any, started: float, *, origin: str = ""
    ) -> None:
        """Queue a new run (status ``running``); ``input_dump`` is stored as JSON if it can be."""
        self._enqueue((_BEGIN, run_id, state, input_dump, started, origin))

    def record(self, record: TaskRecord) -> None:
        """Queue a task run. Costs a deque append; never blocks, never raises for the store."""
        if self.usable:
            self._queue.append(record)
            if not self._wake.is_set():
                self._wake.set()
        elif self._pending_warning is not None:
            self._emit_pending()

    def end_run(self, run_id: str, ended: float, status: str) -> None:
        """Queue the end of a run: its end time and final status."""
        self._enqueue((_END, run_id, ended, status))

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
        elif self._pending_warning is not None:
            self._emit_pending(stacklevel=4)

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
                self._wake.wait()
                if not self._hurry.is_set():
                    self._hurry.wait(self._interval)  # gather a batch
                self._wake.clear()
                self._hurry.clear()
                if self.last_error is not None or self._drain(conn):
                    return
        except BaseException as exc:  # noqa: BLE001 - the writer must record any failure
            self._fail(f"{type(exc).__name__}: {one_line(exc)}")
        finally:
            conn.close()

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
                _rollback(conn)
                reason = one_line(exc)
                if not isinstance(exc, sqlite3.Error):
                    reason = f"{type(exc).__name__}: {reason}"
                self._fail(reason, dropped=sum(type(item) is TaskRecord for item in items))
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
            if type(item) is TaskRecord:
                tasks.append(rows.task_row(item))
            elif type(item) is tuple:
                if item[0] == _BEGIN:
                    _, run_id, state, dump, started, origin = item
                    runs.append((run_id, state, started, rows.json_or_none(dump), origin))
                else:
                    ends.append((item[2], item[3], item[1]))
        if not (runs or tasks or ends):
            return
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(rows.INSERT_RUN, runs)
        for i in range(0, len(tasks), self._rows_per_insert):
            chunk = tasks[i : i + self._rows_per_insert]
            conn.execute(rows.insert_tasks_sql(len(chunk)), _flat(chunk))
        conn.executemany(rows.END_RUN, ends)
        conn.execute("COMMIT")

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
                if type(item) is TaskRecord:
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
        if msg is not None and key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(msg, StoreWarning, stacklevel=stacklevel)

    # -- reading: reuse and history -----------------------------------------------------------

    def _query(self, read: Callable[[sqlite3.Connection], _T], default: _T) -> _T:
        if not self.usable:
            return default
        with self._read_lock:
            try:
                return read(self._conn)
            except sqlite3.Error as exc:
                _rollback(self._conn)
                self._fail(one_line(exc))
                return default

    def lookup(self, state: str, task: str, fingerprint: str, input_hash: str) -> str | None:
        """The output JSON of the newest reusable run of a task with exactly these keys.

        Returns
        -------
        str or None
            JSON text to validate into the current output model (a failure is a miss, for the
            caller to decide), or None on a miss, an empty ``input_hash`` or an unusable store.
        """
        if not input_hash:
            return None
        found = self._query(lambda c: rows.lookup(c, state, task, fingerprint, input_hash), None)
        self._emit_pending()
        return found

    def lookup_many(self, state: str, keys: Sequence[tuple[str, str, str]]) -> dict[str, str]:
        """:meth:`lookup` for many ``(task, fingerprint, input_hash)`` keys in one read.

        Returns
        -------
        dict
            Task name to output JSON, for the hits only.
        """
        wanted = [k for k in keys if k[2]]
        if not wanted:
            return {}
        none: dict[str, str] = {}
        result = self._query(lambda c: rows.lookup_many(c, state, wanted), none)
        self._emit_pending()
        return result

    def runs(self, state: str | None = None, limit: int = 20) -> list[RunRow]:
        """Past runs, newest first (all states, or one), with task counts by final status."""
        self._flush(1.0)
        none: list[RunRow] = []
        found = self._query(lambda c: rows.read_runs(c, state, limit), none)
        self._emit_pending()
        return found

    def task_runs(self, run_id: str) -> list[TaskRow]:
        """The task runs of one run, in the order they were recorded (retries included)."""
        self._flush(1.0)
        none: list[TaskRow] = []
        found = self._query(lambda c: rows.read_task_runs(c, run_id), none)
        self._emit_pending()
        return found

    def prune(self, keep: int, *, vacuum: bool = False) -> int:
        """Keep the newest ``keep`` runs of each state; delete the others and their task runs.

        Task runs of runs that were never begun are deleted too. ``vacuum=True`` gives the
        space back to the file system. Returns how many runs were deleted.
        """
        if keep < 0:
            msg = f"prune(keep={keep}): keep is how many runs of each state stay; use 0 or more"
            raise ValueError(msg)
        self._flush(5.0)
        deleted = self._query(lambda c: rows.prune(c, keep, vacuum), 0)
        self._emit_pending()
        return deleted

    def info(self) -> StoreInfo:
        """The size report: file sizes, row counts, schema version and health."""
        self._flush(1.0)
        counts: tuple[int | None, int | None, str] = (None, None, "")
        runs, tasks, mode = self._query(rows.count_rows, counts)
        self._emit_pending()
        db, wal = _size(self.path), _size(self.path.with_name(self.path.name + "-wal"))
        return StoreInfo(
            str(self.path), db + wal, db, wal, runs, tasks, SCHEMA_VERSION, self.usable,
            self.last_error, mode,
        )  # fmt: skip

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (waiting at most ``timeout`` s), stop the writer, close files."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.usable = False
            self._queue.append(_STOP)
        self._hurry.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._read_lock:
            self._conn.close()
        _LIVE.discard(self)
        self._emit_pending()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r}, usable={self.usable})"


def _flat(chunk: list[tuple[Any, ...]]) -> list[Any]:
    return [value for row in chunk for value in row]


def _rollback(conn: sqlite3.Connection) -> None:
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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _open_error(path: Path, reason: str) -> StoreError:
    msg = f"run store {path} cannot be opened: {reason}. {advice(reason)}"
    return StoreError(msg, path=str(path), reason=reason)


# -- the process's stores: one per path, written out at exit, forgotten in a forked child ----

_LIVE: set[RunStore] = set()
_REGISTRY: dict[str, RunStore] = {}
_REGISTRY_LOCK = threading.Lock()
_WARNED: set[tuple[str, str]] = set()
_EXIT_TIMEOUT: Final = 5.0


def resolve_store(
    store: RunStore | str | os.PathLike[str] | bool | None = None,
    *,
    base: str | os.PathLike[str] | None = None,
    stacklevel: int = 2,
) -> RunStore | None:
    """The run store a run should use, or None to run in memory only. Never raises for a file.

    Parameters
    ----------
    store
        None: ``$GERMINATE_STORE`` if set (``off`` means none), else ``DEFAULT_PATH`` under
        ``base``. True: the same, but ``off`` in the environment is overridden. False or
        ``"off"``: none. A path (relative to the current directory): that file. A RunStore:
        itself. The same path always gives the same open RunStore in one process.
    base
        Folder of the default store, usually the notebook's; default: the current directory.
    stacklevel
        Passed to ``warnings.warn`` (2: the caller of ``resolve_store``).

    Returns
    -------
    RunStore or None
        None, after one :class:`StoreWarning` per path and reason, when the file is unusable.
    """
    if isinstance(store, RunStore):
        return store
    path = _store_path(store, base)
    if path is None:
        return None
    key = str(path.resolve())
    with _REGISTRY_LOCK:
        found = _REGISTRY.get(key)
        if found is not None and found.usable:
            return found
        if found is not None:  # it failed since: try the file again
            del _REGISTRY[key]
            found.close(timeout=0.5)
        try:
            opened = RunStore.open(path)
        except StoreError as exc:
            error = exc
        else:
            _REGISTRY[key] = opened
            return opened
    if (str(path), error.reason) not in _WARNED:
        _WARNED.add((str(path), error.reason))
        msg = (
            f"germinate_nb: run store {path} is not usable ({error.reason}); runs go on in "
            f"memory. {advice(error.reason)}"
        )
        warnings.warn(msg, StoreWarning, stacklevel=stacklevel)
    return None


def _store_path(store: str | os.PathLike[str] | bool | None, base: Any) -> Path | None:
    if store is False:
        return None
    if store is None or store is True:
        env = os.environ.get(ENV_VAR, "").strip()
        if env.lower() == "off":
            return None if store is None else Path(base or os.getcwd()) / DEFAULT_PATH
        return Path(env).expanduser() if env else Path(base or os.getcwd()) / DEFAULT_PATH
    if isinstance(store, (str, os.PathLike)):
        text = os.fsdecode(os.fspath(store)).strip()
        if text.lower() == "off":
            return None
        return Path(text).expanduser() if text else _store_path(None, base)
    msg = (
        f"store={store!r} is not a run store: pass a path, 'off', True, False, None or a "
        "RunStore (e.g. store='.germinate/runs.sqlite')"
    )
    raise TypeError(msg)


def _close_all_at_exit() -> None:
    deadline = time.monotonic() + _EXIT_TIMEOUT
    for store in list(_LIVE):
        try:
            store.close(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001, S110 - nothing to report to at exit
            pass


def _forget_after_fork() -> None:
    # A forked child has no writer thread and must not share the parent's SQLite handles.
    global _REGISTRY_LOCK
    for store in list(_LIVE):
        store._lock = threading.Lock()
        store._closed, store.usable, store.last_error = True, False, "forked process"
        store._pending_warning = None
        store._queue.clear()
    _LIVE.clear()
    _REGISTRY.clear()
    _REGISTRY_LOCK = threading.Lock()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
