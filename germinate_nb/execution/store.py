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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel
from pydantic_core import to_json

from germinate_nb.errors import GerminateError
from germinate_nb.execution import store_rows as rows
from germinate_nb.execution import store_schema
from germinate_nb.execution.store_rows import RunRow, StoreInfo, TaskRecord, TaskRow, one_line
from germinate_nb.execution.store_schema import SCHEMA_VERSION, SchemaError, reuse_key
from germinate_nb.execution.store_writer import WARNED, StoreWarning, StoreWriter, advice, rollback

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
_KEY_LIMIT: Final = 2_000_000  # reuse keys kept in memory (~100 MB) before lookups query instead
_T = TypeVar("_T")


class StoreError(GerminateError, OSError):
    """A run store cannot be opened; ``path`` and ``reason`` hold the evidence."""

    def __init__(self, msg: str, *, path: str = "", reason: str = "") -> None:
        super().__init__(msg)
        self.path = path
        self.reason = reason


def input_hash(input_dump: Any) -> str:
    """A stable hash of a task input: the same in every process, whatever ``PYTHONHASHSEED``.

    The top level is a model dump, hashed in field order; below it, dict keys are ordered and
    sets sorted, so equal values hash equal whatever order they were built in.

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
        data = input_dump
        if type(input_dump) is dict:
            for value in input_dump.values():
                if type(value) not in _ATOMS:  # something nested: order it
                    data = {k: _canonical(v) for k, v in input_dump.items()}
                    break
        else:
            data = _canonical(input_dump)
        return hashlib.sha256(to_json(data)).hexdigest()[:32]
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


class RunStore(StoreWriter):
    """An open run store: a background writer, and readers for reuse and history.

    Create it with :meth:`open` (or :func:`resolve_store`). ``begin_run``, ``record``,
    ``end_run`` and ``flush`` come from :class:`StoreWriter`; the readers are here. Every
    method is safe to call from any thread. After a fatal error ``usable`` is False,
    ``last_error`` says why, one :class:`StoreWarning` is shown at the next call, and every
    method is a no-op or a miss.

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
        self._conn = conn  # the readers' connection, used under _read_lock
        self._read_lock = threading.Lock()
        self._keys_rowid: dict[str, int] = {}  # by state: the last task run whose key is known
        super().__init__(path, busy_timeout=busy_timeout, interval=interval, batch_size=batch_size)
        _LIVE.add(self)

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

    # -- reading: reuse and history -----------------------------------------------------------

    def _query(self, read: Callable[[sqlite3.Connection], _T], default: _T) -> _T:
        if not self.usable:
            return default
        with self._read_lock:
            try:
                return read(self._conn)
            except sqlite3.Error as exc:
                rollback(self._conn)
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
        key = (reuse_key(state, task, fingerprint, input_hash), task, fingerprint, input_hash)
        keys = self._keys
        known = keys.get(state) if keys is not None else None
        if known is not None and key[0] not in known:  # a miss that needs no query
            if self._pending_warning is not None:
                self._emit_pending()
            return None

        def read(conn: sqlite3.Connection) -> str | None:
            if known is None:
                loaded = self._refresh_keys(conn, state)
                if loaded is not None and key[0] not in loaded:
                    return None
            return rows.lookup(conn, state, key)

        found = self._query(read, None)
        self._emit_pending()
        return found

    def lookup_many(self, state: str, keys: Sequence[tuple[str, str, str]]) -> dict[str, str]:
        """:meth:`lookup` for many ``(task, fingerprint, input_hash)`` keys in one read.

        Call it when a run starts: it also catches up with the reusable task runs that other
        processes recorded since (single lookups only see those after the next call).

        Returns
        -------
        dict
            Task name to output JSON, for the hits only.
        """
        wanted = [(reuse_key(state, *k), *k) for k in keys if k[2]]

        def read(conn: sqlite3.Connection) -> dict[str, str]:
            known = self._refresh_keys(conn, state)
            candidates = wanted if known is None else [k for k in wanted if k[0] in known]
            return rows.lookup_many(conn, state, candidates) if candidates else {}

        none: dict[str, str] = {}
        result = self._query(read, none)
        self._emit_pending()
        return result

    def _refresh_keys(self, conn: sqlite3.Connection, state: str) -> set[int] | None:
        """The reuse keys of ``state`` in the file, brought up to date (under ``_read_lock``).

        None when there are too many to keep in memory: then every lookup asks SQLite.
        """
        keys = self._keys
        if keys is None:
            return None
        known = keys.get(state)
        if known is None:  # first use of this state: an index-only scan of its keys
            self._keys_rowid[state], known = rows.read_state_keys(conn, state)
            keys[state] = known
        else:
            found = rows.read_new_keys(conn, state, self._keys_rowid[state])
            known.update(key for _, key in found)
            if found:
                self._keys_rowid[state] = found[-1][0]
        if sum(len(k) for k in list(keys.values())) > _KEY_LIMIT:
            self._keys = None  # a very large store: every lookup asks SQLite instead
            return None
        return known

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
        with self._read_lock:  # SQLite may give deleted rowids out again: learn keys anew
            if self._keys is not None:
                self._keys.clear()
            self._keys_rowid.clear()
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
        if self._stop_writer(timeout):
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
    try:
        key = str(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop: the file will fail to open anyway
        key = str(path.absolute())
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
    if (str(path), error.reason) not in WARNED:
        WARNED.add((str(path), error.reason))
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
