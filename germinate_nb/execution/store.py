"""The run store: runs, task runs and JSON outputs kept in an embedded SQLite file.

Writes never sit on the scheduler's path: :meth:`RunStore.record` appends to a deque and one
daemon thread per store writes the rows in batches. A store that cannot be used (unwritable,
locked, corrupt, newer) warns once and turns every method into a cheap no-op or miss, so runs go
on in memory. The store holds JSON and text only, never pickles.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from germinate_nb.errors import GerminateError
from germinate_nb.execution import store_rows as rows
from germinate_nb.execution import store_schema
from germinate_nb.execution.store_rows import (
    RunRow,
    StoreInfo,
    TaskRecord,
    TaskRow,
    input_hash,
    one_line,
)
from germinate_nb.execution.store_schema import SCHEMA_VERSION, SchemaError, reuse_key
from germinate_nb.execution.store_writer import (
    WARNED,
    StoreWarning,
    StoreWriter,
    advice,
    rollback,
    run_ended,
    run_started,
)

if TYPE_CHECKING:
    from germinate_nb.core.state import State
    from germinate_nb.execution.result import RunResult

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "SCHEMA_VERSION",
    "ReuseLookup",
    "RunRow",
    "RunStore",
    "StoreError",
    "StoreInfo",
    "StoreWarning",
    "TaskRecord",
    "TaskRow",
    "default_store",
    "default_store_choice",
    "input_hash",
    "resolve_store",
    "run_ended",
    "run_started",
    "run_origin",
    "set_default_store",
    "set_origin",
    "store_path",
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
        found = self.lookup_quietly(state, task, fingerprint, input_hash)
        self._emit_pending()
        return found

    def lookup_quietly(
        self, state: str, task: str, fingerprint: str, input_hash: str
    ) -> str | None:
        """:meth:`lookup` that never warns: for the engine's worker threads.

        A failure met here still makes the store unusable; its warning waits for the next
        call that may warn (:meth:`warn_failure` when the run ends).
        """
        if not input_hash:
            return None
        key = (reuse_key(state, task, fingerprint, input_hash), task, fingerprint, input_hash)
        keys = self._keys
        known = keys.get(state) if keys is not None else None
        if known is not None and key[0] not in known:  # a miss that needs no query
            return None

        def read(conn: sqlite3.Connection) -> str | None:
            if known is None:
                loaded = self._refresh_keys(conn, state)
                if loaded is not None and key[0] not in loaded:
                    return None
            return rows.lookup(conn, state, key)

        return self._query(read, None)

    def catch_up(self, state: str) -> None:
        """Learn the reusable task runs of ``state`` that other processes recorded since.

        Single lookups only know the keys read so far and those this process wrote; a run
        calls this once (on its first lookup), so it sees what another kernel or
        ``germinate-nb run`` recorded meanwhile. Never warns.
        """
        if self._keys is not None:
            self._query(lambda c: self._refresh_keys(c, state), None)

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

    def find_run(self, run_id: str) -> RunRow | None:
        """The run whose id is ``run_id``, or the only one whose id starts with it.

        Raises
        ------
        LookupError
            When several runs start with ``run_id`` (the message lists some of them).
        """
        self._flush(1.0)
        none: list[RunRow] = []
        found = self._query(lambda c: rows.find_runs(c, run_id), none)
        self._emit_pending()
        exact = [r for r in found if r.run_id == run_id]
        if exact:
            return exact[0]
        if len(found) <= 1:
            return found[0] if found else None
        ids = ", ".join(r.run_id for r in found[:5])
        msg = (
            f"run id '{run_id}' is ambiguous in run store {self.path}: it starts {ids}"
            f"{', ...' if len(found) > 5 else ''}. Give more of it."
        )
        raise LookupError(msg)

    def load_result(self, run_id: str, state: State | None = None) -> RunResult | None:
        """A past run as a :class:`RunResult` (see :func:`store_history.load_result`)."""
        from germinate_nb.execution.store_history import load_result

        return load_result(self, run_id, state)

    def forget(self, state: str | None = None) -> int:
        """Make the stored outputs of ``state`` (or of every state) never reused again.

        History stays: the task runs keep their rows and outputs, only their reuse ends (what
        clearing the reuse cache means after a restart). Returns how many rows stopped being
        reusable.
        """
        self._flush(5.0)
        count = self._query(lambda c: rows.forget(c, state), 0)
        with self._read_lock:
            if self._keys is not None:
                if state is None:
                    self._keys.clear()
                    self._keys_rowid.clear()
                else:
                    self._keys.pop(state, None)
                    self._keys_rowid.pop(state, None)
        self._emit_pending()
        return count

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

    def close(self, timeout: float = 5.0, *, warn: bool = True) -> None:
        """Write what is queued (waiting at most ``timeout`` s), stop the writer, close files.

        A failure not reported yet is shown as its one warning, unless ``warn`` is False.
        """
        if self._stop_writer(timeout):
            with self._read_lock:
                self._conn.close()
            _LIVE.discard(self)
            with _REGISTRY_LOCK:
                for table in (_REGISTRY, _BY_TEXT):
                    for key, found in list(table.items()):
                        if found is self:
                            del table[key]
        if warn:
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


class ReuseLookup:
    """The store's reuse lookups for one run of one state: what ``Job.store`` holds.

    Called from the engine's worker threads, never from the scheduler; never warns, never
    raises. The first lookup of the run catches up with what other processes recorded, and
    first writes the rows this process had queued before the run began (an earlier run's,
    which the writer held back), so they can be found.
    """

    __slots__ = ("_caught_up", "_lock", "_write_first", "state", "store")

    def __init__(self, store: RunStore, state: str) -> None:
        self.store = store
        self.state = state
        self._caught_up = False
        self._lock = threading.Lock()
        self._write_first = bool(store._queue)  # made before the run queues its own rows

    def lookup(self, task: str, fingerprint: str, input_key: Any) -> str | None:
        """The stored output JSON of ``task`` run with this code and this input, or None.

        ``input_key`` is the engine's reuse key of the input (hashed here with
        :func:`input_hash`, as the writer hashes it when recording).
        """
        digest = input_hash(input_key)
        if not digest:
            return None
        if not self._caught_up:
            with self._lock:
                if not self._caught_up:
                    if self._write_first:
                        self.store._flush(10.0)
                    self.store.catch_up(self.state)
                    self._caught_up = True
        return self.store.lookup_quietly(self.state, task, fingerprint, digest)

    def __repr__(self) -> str:
        return f"<ReuseLookup {self.state!r} in {self.store.path}>"


# -- the process's stores: one per path, written out at exit, forgotten in a forked child ----

_LIVE: set[RunStore] = set()
_REGISTRY: dict[str, RunStore] = {}  # by resolved path
_BY_TEXT: dict[str, RunStore] = {}  # by the absolute path as written, for resolve_store's speed
_REGISTRY_LOCK = threading.Lock()
_EXIT_TIMEOUT: Final = 5.0
StoreChoice = RunStore | str | os.PathLike[str] | bool | None
_DEFAULT: list[StoreChoice] = [None]  # chosen by set_default_store(); None: not chosen
_ORIGIN: list[str] = [""]


def set_default_store(store: StoreChoice) -> StoreChoice:
    """Choose the store of the runs of this process given no ``store=`` (or ``store=None``).

    What ``%germinate store PATH|off`` does for a kernel: later runs, and explorers, use it.

    Parameters
    ----------
    store
        A path, a :class:`RunStore`, ``"off"``/False (runs in memory only), or None to go back
        to ``$GERMINATE_STORE`` and the default path.

    Returns
    -------
    The previous choice (None when there was none).

    Raises
    ------
    TypeError
        When ``store`` is none of these.
    """
    if not isinstance(store, RunStore):
        _store_path(store, None)  # a TypeError for what is not a store, before anything changes
    previous, _DEFAULT[0] = _DEFAULT[0], store
    return previous


def default_store_choice() -> StoreChoice:
    """What :func:`set_default_store` chose (None: nothing, the environment decides)."""
    return _DEFAULT[0]


def default_store(*, stacklevel: int = 2) -> RunStore | None:
    """The store runs given no ``store=`` use here (``resolve_store(None)``), or None."""
    return resolve_store(None, stacklevel=stacklevel + 1)


def set_origin(text: str) -> str:
    """Name what starts this process's runs in the store's history (``germinate-nb run X``).

    Without it, a kernel's runs are named after its notebook when Jupyter says which
    (``$JPY_SESSION_NAME``). Returns the previous name.
    """
    previous, _ORIGIN[0] = _ORIGIN[0], text
    return previous


def run_origin() -> str:
    """What the runs of this process are recorded as coming from (may be empty)."""
    return _ORIGIN[0] or os.path.basename(os.environ.get("JPY_SESSION_NAME", ""))


def store_path(
    store: StoreChoice = None, *, base: str | os.PathLike[str] | None = None
) -> Path | None:
    """The file :func:`resolve_store` would open for ``store``, without opening or creating it.

    None when the store is off. Relative paths in ``$GERMINATE_STORE`` are relative to
    ``base`` (default: the current directory), as in a kernel or ``germinate-nb run``, whose
    current directory is the notebook's folder.
    """
    store = _chosen(store)
    if isinstance(store, RunStore):
        return store.path
    return _store_path(store, base)


def _chosen(store: StoreChoice) -> StoreChoice:
    """``store`` with None (and True) standing for the process's choice, if one was made."""
    if store is None or store is True:
        chosen = _DEFAULT[0]
        if isinstance(chosen, RunStore) and not chosen.usable:
            chosen = chosen.path  # it failed since: try its file again
        if chosen is not None and not (store is True and _is_off(chosen)):
            return chosen
    return store


def resolve_store(
    store: StoreChoice = None,
    *,
    base: str | os.PathLike[str] | None = None,
    stacklevel: int = 2,
) -> RunStore | None:
    """The run store a run should use, or None to run in memory only. Never raises for a file.

    Parameters
    ----------
    store
        None: the store chosen with :func:`set_default_store` if any, else
        ``$GERMINATE_STORE`` if set (``off`` means none), else ``DEFAULT_PATH`` under
        ``base``. True: the same, but an ``off`` choice or environment is overridden. False
        or ``"off"``: none. A path (relative to the current directory): that file. A
        RunStore: itself. The same path always gives the same open RunStore in one process.
    base
        Folder of the default store, usually the notebook's; default: the current directory.
    stacklevel
        Passed to ``warnings.warn`` (2: the caller of ``resolve_store``).

    Returns
    -------
    RunStore or None
        None, after one :class:`StoreWarning` per path and reason, when the file is unusable.
    """
    store = _chosen(store)
    if isinstance(store, RunStore):
        return store
    where = _store_text(store, base)
    if where is None:
        return None
    quick = _BY_TEXT.get(where)  # each run resolves its store: no file system access then
    if quick is not None and quick.usable:
        return quick
    path = Path(where)
    try:
        key = str(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop: the file will fail to open anyway
        key = str(path.absolute())
    failed = None
    with _REGISTRY_LOCK:
        found = _REGISTRY.get(key)
        if found is not None and found.usable:
            _BY_TEXT[where] = found
            return found
        if found is not None:  # it failed since: try the file again
            del _REGISTRY[key]
            failed = found
        try:
            opened = RunStore.open(path)
        except StoreError as exc:
            error: StoreError | None = exc
        else:
            _REGISTRY[key] = _BY_TEXT[where] = opened
            error = None
    if failed is not None:
        failed.close(timeout=0.5, warn=False)
        failed.warn_failure(stacklevel=stacklevel)  # shown once, if not shown yet
    if error is None:
        return opened
    if (str(path), error.reason) not in WARNED:
        WARNED.add((str(path), error.reason))
        msg = (
            f"germinate_nb: run store {path} is not usable ({error.reason}); runs go on in "
            f"memory. {advice(error.reason)}"
        )
        warnings.warn(msg, StoreWarning, stacklevel=stacklevel)
    return None


def _is_off(store: StoreChoice) -> bool:
    if store is False:
        return True
    return isinstance(store, str) and store.strip().lower() == "off"


def _store_path(store: StoreChoice, base: Any) -> Path | None:
    where = _store_text(store, base)
    return None if where is None else Path(where)


def _store_text(store: StoreChoice, base: Any) -> str | None:
    """The absolute path of the store file, as text (cheap: no file system access)."""
    if store is False:
        return None
    if store is None or store is True:
        env = os.environ.get(ENV_VAR, "").strip()
        if env.lower() == "off":
            if store is None:
                return None
            env = ""
        name = os.path.expanduser(env) if env else DEFAULT_PATH
        return os.path.abspath(os.path.join(base if base is not None else os.getcwd(), name))
    if isinstance(store, (str, os.PathLike)):
        text = os.fsdecode(os.fspath(store)).strip()
        if text.lower() == "off":
            return None
        if not text:
            return _store_text(None, base)
        return os.path.abspath(os.path.expanduser(text))
    msg = (
        f"store={store!r} is not a run store: pass a path, 'off', True, False, None or a "
        "RunStore (e.g. store='.germinate/runs.sqlite')"
    )
    raise TypeError(msg)


def close_all(timeout: float = _EXIT_TIMEOUT) -> None:
    """Close every store this process opened, writing what is queued (``timeout`` in all).

    Each failure's one warning shows now: the CLI calls this before it exits, so the warning
    is shown its way, and rows waiting for a locked file are never lost unsaid.
    """
    deadline = time.monotonic() + timeout
    for store in list(_LIVE):
        store.close(timeout=max(0.1, deadline - time.monotonic()))


def _close_all_at_exit() -> None:
    try:
        close_all()
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
    _BY_TEXT.clear()
    _REGISTRY_LOCK = threading.Lock()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
