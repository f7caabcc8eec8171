"""The run store's rows: records turned into SQL rows, and the queries of reuse and history.

Everything here runs on a connection handed in by :class:`~germinate_nb.execution.store.RunStore`
(the writer thread's or the readers'); nothing here opens files, holds locks or warns.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from pydantic import BaseModel
from pydantic_core import from_json, to_json

from germinate_nb.execution.store_schema import reuse_key

__all__ = ["RunRow", "StoreInfo", "TaskRecord", "TaskRow", "input_hash"]

REUSABLE_STATUSES: Final = ("succeeded", "cached")


class TaskRecord(NamedTuple):
    """One task run handed to ``RunStore.record``; the writer thread turns it into a row.

    Immutable, and a NamedTuple because the engine builds one per task on its hot path
    (``tuple.__new__(TaskRecord, values)``: about 0.2 us). Everything that costs more than
    holding a reference (hashing the input, JSON, text) is left to the writer thread, so the
    objects handed over must not change afterwards: the engine hands its own dumps, never
    objects the user holds.

    ``input`` is the task input's reuse key (the input data or model dump the engine keys
    reuse on), hashed by the writer with :func:`input_hash`; a ``str`` is taken as a hash
    already made (``""``: none, the run is recorded but never reused). ``output`` is the output
    model, its python-mode dump, or None. ``output_type`` is a name or the model class.
    ``error`` is text or a ``TaskError`` (written as ``type: message`` and its traceback).
    """

    run_id: str
    state: str
    task: str
    fingerprint: str
    input: Any
    status: str
    output: Any
    output_type: Any
    log: str
    error: Any
    start: float | None
    duration: float | None
    attempt: int = 1


def input_hash(input_dump: Any) -> str:
    """A stable hash of a task input: the same in every process, whatever ``PYTHONHASHSEED``.

    Dict keys are ordered and sets sorted at every level, so equal values hash equal whatever
    order they were built in (as ``==`` says of dicts and sets).

    Parameters
    ----------
    input_dump
        The input's reuse key: the python-mode ``model_dump()`` or the input data, or None.

    Returns
    -------
    str
        32 hex digits, or ``""`` when the input cannot be turned into JSON (not reusable).

    Examples
    --------
    >>> input_hash({"b": 1, "a": {"y", "x"}}) == input_hash({"a": {"x", "y"}, "b": 1})
    True
    >>> input_hash({"x": object()})
    ''
    """
    try:
        if type(input_dump) is dict:
            flat = True
            for value in input_dump.values():
                if type(value) not in _ATOMS:
                    flat = False
                    break
            if flat:  # the common case: a flat model dump, its keys ordered only
                data: Any = {k: input_dump[k] for k in sorted(input_dump)}
            else:
                data = _canonical(input_dump)
        else:
            data = _canonical(input_dump)
        return hashlib.sha256(to_json(data)).hexdigest()[:32]
    except Exception:  # any unserialisable value: never reusable, never an error
        return ""


_ATOMS: Final = frozenset({str, int, float, bool, type(None)})


def _canonical(value: Any) -> Any:
    """``value`` as JSON data that tells apart what ``==`` tells apart, the same everywhere.

    Dict keys are ordered and sets sorted. Values JSON has no type for are tagged with their
    type, so they never hash like the text or list JSON would make of them (an ``Any`` field
    holding ``datetime(2020, 1, 1)`` and one holding ``"2020-01-01T00:00:00"`` are different
    inputs): tuples, sets, dicts with non-text keys, and any other value JSON can hold only as
    text (datetimes, decimals, bytes...). Plain JSON data is left as it is.

    >>> _canonical({"b": (1, 2), "a": {2, 1}}) == {"a": [_SET, [1, 2]], "b": [_TUPLE, [1, 2]]}
    True
    """
    cls = type(value)
    if cls in _ATOMS:
        return value
    if cls is list:
        return [_canonical(v) for v in value]
    if cls is dict or isinstance(value, dict):
        if all(type(k) is str for k in value):
            return {k: _canonical(value[k]) for k in sorted(value)}
        pairs = [[_canonical(k), _canonical(v)] for k, v in value.items()]
        return [_KEYED, sorted(pairs, key=to_json)]
    if cls is tuple:
        return [_TUPLE, [_canonical(v) for v in value]]
    if isinstance(value, (set, frozenset)):
        return [_SET, sorted((_canonical(v) for v in value), key=to_json)]
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, BaseModel):
        return _canonical(value.model_dump())
    return [f"\x00{cls.__module__}.{cls.__qualname__}", to_json(value).decode()]


_TUPLE: Final = "\x00tuple"
_SET: Final = "\x00set"
_KEYED: Final = "\x00dict"


@dataclass(frozen=True, slots=True)
class RunRow:
    """One past run; ``counts`` maps each final task status to how many tasks ended in it."""

    run_id: str
    state: str
    status: str
    started: float | None
    ended: float | None
    input_json: str | None
    counts: dict[str, int]
    origin: str


@dataclass(frozen=True, slots=True)
class TaskRow:
    """One stored task run: a :class:`TaskRecord` with its output as JSON text.

    ``output_json`` is None when the output was None or not JSON-serialisable (``note`` says
    so); ``reusable`` tells whether ``lookup`` may return it.
    """

    run_id: str
    state: str
    task: str
    fingerprint: str
    input_hash: str
    status: str
    output_json: str | None
    output_type: str
    reusable: bool
    note: str
    log: str
    error: str
    start: float | None
    duration: float | None
    attempt: int


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """The size report of a run store; ``str()`` is one readable line.

    ``runs`` and ``task_runs`` are None when the store could not be read.
    """

    path: str
    size_bytes: int
    db_bytes: int
    wal_bytes: int
    runs: int | None
    task_runs: int | None
    schema_version: int
    usable: bool
    last_error: str | None
    journal_mode: str

    def __str__(self) -> str:
        size = (
            f"{_human(self.size_bytes)} (db {_human(self.db_bytes)} + wal {_human(self.wal_bytes)})"
        )
        if self.runs is None or self.task_runs is None:
            rows = "rows unknown"
        else:
            rows = f"{self.runs:,} runs, {self.task_runs:,} task runs"
            if self.task_runs >= 1000:
                rows += f", ~{self.size_bytes * 1000 // self.task_runs:,} bytes per 1,000 task runs"
        health = "usable" if self.usable else f"not usable: {self.last_error or 'closed'}"
        mode = f", {self.journal_mode.upper()} journal" if self.journal_mode else ""
        return (
            f"run store {self.path}: {size}, {rows}, schema v{self.schema_version}{mode}; {health}"
        )


def one_line(exc: BaseException | str, limit: int = 200) -> str:
    """An exception's message on one line, cut to ``limit`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- writing --------------------------------------------------------------------------------

INSERT_RUN: Final = (
    "INSERT OR REPLACE INTO runs (run_id, state, status, started, ended, input_json, origin)"
    " VALUES (?, ?, 'running', ?, NULL, ?, ?)"
)
END_RUN: Final = "UPDATE runs SET ended = ?, status = ? WHERE run_id = ?"
_TASK_INSERT_COLUMNS = (
    "run_id, state, task, fingerprint, input_hash, status, output_json, output_type, reusable,"
    " note, log, error, start, duration, attempt, reuse_key"
)
TASK_ROW_WIDTH: Final = 16


@functools.lru_cache(maxsize=8)
def insert_tasks_sql(n: int) -> str:
    """One INSERT of ``n`` task rows, which SQLite runs in one step.

    So the writer thread takes the GIL back once per batch instead of once per row, and holds
    the write lock briefly even while other threads keep the GIL busy.
    """
    row = "(" + ", ".join("?" * TASK_ROW_WIDTH) + ")"
    return f"INSERT INTO task_runs ({_TASK_INSERT_COLUMNS}) VALUES {', '.join([row] * n)}"


def task_row(r: TaskRecord) -> tuple[Any, ...]:
    """The ``task_runs`` row of a record: output as JSON text, or NULL and a note saying why."""
    run_id, state, task, fingerprint, key, status, output, output_type, log, error, *rest = r
    ih = key if type(key) is str else input_hash(key)
    output_json, note, reuse = None, "", None
    if output is not None:
        try:
            output_json = to_json(output).decode()
        except Exception as exc:  # numpy arrays, arbitrary objects: recorded, not reusable
            note = f"output is not JSON-serialisable: {type(exc).__name__}: {one_line(exc)}"
        if output_json is not None and status in REUSABLE_STATUSES:
            if not ih:
                note = "input is not JSON-serialisable, so the output is not reusable"
            elif not round_trips(output, output_json, output_type):
                note = (
                    "output changes on its way through JSON (a value JSON has no type for, "
                    "such as a datetime, set or non-text key in an untyped field), so it is "
                    "not reusable"
                )
            else:
                reuse = reuse_key(state, task, fingerprint, ih)
    if type(output_type) is not str:
        output_type = f"{output_type.__module__}.{output_type.__qualname__}"
    return (
        run_id, state, task, fingerprint, ih, str(status), output_json, output_type,
        0 if reuse is None else 1, note, log or "", error_text(error), *rest, reuse,
    )  # fmt: skip


def round_trips(output: Any, text: str, output_type: Any) -> bool:
    """Does ``text`` (the output's JSON) give back an equal output, as a reuse would rebuild it?

    A stored output is reused after a restart by validating its JSON into the output model.
    JSON has no datetimes, sets, tuples, bytes or non-text keys: in a typed field validation
    rebuilds them, in an ``Any`` field they would come back as text and lists. The data itself
    coming back equal is the common case (one parse); else the output model is rebuilt from
    the JSON and its dump compared.

    >>> round_trips({"n": 1, "tags": ["a"]}, '{"n":1,"tags":["a"]}', "m.Model")
    True
    >>> round_trips({"when": {1, 2}}, '{"when":[1,2]}', "m.Model")
    False
    """
    try:
        dump = (
            output.__pydantic_serializer__.to_python(output)
            if isinstance(output, BaseModel)
            else output
        )
        if from_json(text) == dump:
            return True
        if not (isinstance(output_type, type) and issubclass(output_type, BaseModel)):
            return False
        back = output_type.__pydantic_validator__.validate_json(text)
        return bool(back.__pydantic_serializer__.to_python(back) == dump)
    except Exception:  # it cannot be rebuilt: never reused, never an error
        return False


def outcome_row(head: tuple[str, str], outcome: Any) -> tuple[Any, ...]:
    """The ``task_runs`` row of an engine outcome (see ``StoreWriter.outcome_sink``)."""
    run_id, state = head
    kind = outcome.kind
    if kind == "ok" or kind == "cached":
        record = TaskRecord(
            run_id, state, outcome.name, outcome.fingerprint, outcome.input_dump,
            "succeeded" if kind == "ok" else "cached", outcome.dump, type(outcome.output),
            outcome.log, "", outcome.start, outcome.duration, outcome.attempt,
        )  # fmt: skip
    else:  # an error, or a task an eager backend did not run: failed
        record = TaskRecord(
            run_id, state, outcome.name, outcome.fingerprint, "", "failed", None, "",
            outcome.log, outcome.error, outcome.start, outcome.duration, outcome.attempt,
        )  # fmt: skip
    return task_row(record)


def error_text(error: Any) -> str:
    """A task error as stored: ``type: message``, then its traceback (text is kept as it is)."""
    if not error:
        return ""
    if type(error) is str:
        return error
    text = str(error)
    traceback = getattr(error, "traceback", "")
    return f"{text}\n\n{traceback}" if traceback else text


def json_or_none(value: Any) -> str | None:
    """``value`` as JSON text, or None when it is not JSON-serialisable."""
    try:
        return to_json(value).decode()
    except Exception:  # an input that is not JSON: the run is kept without it
        return None


# -- reading --------------------------------------------------------------------------------

_REUSABLE = (
    "t.reusable = 1 AND t.status IN ('succeeded', 'cached') AND typeof(t.output_json) = 'text'"
)
_LOOKUP = (
    "SELECT t.output_json FROM task_runs t WHERE t.state = ? AND t.reuse_key = ?"
    f" AND t.task = ? AND t.fingerprint = ? AND t.input_hash = ? AND {_REUSABLE}"
    " ORDER BY t.rowid DESC LIMIT 1"
)
_LOOKUP_CHUNK = 200  # keys per lookup_many statement (4 parameters each, under SQLite's 999)
_TASK_COLUMNS = (
    "run_id, state, task, fingerprint, input_hash, status, output_json, output_type, reusable,"
    " note, log, error, start, duration, attempt"
)
_PRUNED = (
    "SELECT run_id FROM (SELECT run_id, ROW_NUMBER() OVER (PARTITION BY state"
    " ORDER BY started DESC, rowid DESC) AS n FROM runs) WHERE n > ?"
)


Key = tuple[int, str, str, str]  # (reuse_key, task, fingerprint, input_hash)


def lookup(conn: sqlite3.Connection, state: str, key: Key) -> str | None:
    """Output JSON of the newest reusable task run with these keys, or None."""
    found = conn.execute(_LOOKUP, (state, *key)).fetchall()
    value = found[0][0] if found else None
    return value if isinstance(value, str) else None


def lookup_many(conn: sqlite3.Connection, state: str, keys: list[Key]) -> dict[str, str]:
    """:func:`lookup` for many keys, in one read snapshot; task name to output JSON."""
    found: dict[str, str] = {}
    conn.execute("BEGIN")
    try:
        for i in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[i : i + _LOOKUP_CHUNK]
            sql = (
                "WITH k(reuse_key, task, fingerprint, input_hash) AS"
                f" (VALUES {', '.join(['(?, ?, ?, ?)'] * len(chunk))})"
                " SELECT k.task, (SELECT t.output_json FROM task_runs t"
                " WHERE t.state = ? AND t.reuse_key = k.reuse_key AND t.task = k.task"
                " AND t.fingerprint = k.fingerprint AND t.input_hash = k.input_hash"
                f" AND {_REUSABLE} ORDER BY t.rowid DESC LIMIT 1) FROM k"
            )
            params: list[Any] = [p for key in chunk for p in key]
            params.append(state)
            for task, text in conn.execute(sql, params).fetchall():
                if isinstance(text, str):
                    found[task] = text
    finally:
        conn.execute("COMMIT")
    return found


def read_state_keys(conn: sqlite3.Connection, state: str) -> tuple[int, set[int]]:
    """The last rowid and the reuse keys of ``state``, from one snapshot (an index-only scan)."""
    conn.execute("BEGIN")
    try:
        last = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM task_runs").fetchall()[0][0]
        # One text of distinct keys: a Python row per key would cost more than the scan.
        text = conn.execute(
            "SELECT group_concat(reuse_key) FROM (SELECT DISTINCT reuse_key FROM task_runs"
            " WHERE state = ? AND reuse_key IS NOT NULL)",
            (state,),
        ).fetchall()[0][0]
    finally:
        conn.execute("COMMIT")
    return int(last), set(map(int, text.split(","))) if text else set()


def read_new_keys(conn: sqlite3.Connection, state: str, after: int) -> list[tuple[int, int]]:
    """``(rowid, reuse_key)`` of the reusable task runs of ``state`` after rowid ``after``."""
    found: list[tuple[int, int]] = conn.execute(
        # unary + keeps SQLite on the rowid range (the new rows), off the state's whole index
        "SELECT rowid, reuse_key FROM task_runs WHERE rowid > ? AND +state = ?"
        " AND +reuse_key IS NOT NULL ORDER BY rowid",
        (after, state),
    ).fetchall()
    return found


def read_runs(conn: sqlite3.Connection, state: str | None, limit: int) -> list[RunRow]:
    """Runs newest first, each with the count of its tasks by their last status."""
    where, params = ("WHERE state = ?", [state]) if state is not None else ("", [])
    rows = conn.execute(
        "SELECT run_id, state, status, started, ended, input_json, origin FROM runs"
        f" {where} ORDER BY started DESC, rowid DESC LIMIT ?",
        [*params, limit],
    ).fetchall()
    counts = read_counts(conn, [r[0] for r in rows])
    return [RunRow(r[0], r[1], r[2], r[3], r[4], r[5], counts[r[0]], r[6]) for r in rows]


def read_counts(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per run, how many tasks ended in each status (the last attempt of each task counts)."""
    counts: dict[str, dict[str, int]] = {run_id: {} for run_id in run_ids}
    if counts:
        marks = ", ".join("?" * len(counts))
        for run_id, status, n in conn.execute(
            "SELECT t.run_id, t.status, COUNT(*) FROM task_runs t JOIN (SELECT MAX(rowid) AS last"
            f" FROM task_runs WHERE run_id IN ({marks}) GROUP BY run_id, task) m"
            " ON t.rowid = m.last GROUP BY t.run_id, t.status",
            list(counts),
        ).fetchall():
            counts[run_id][status] = n
    return counts


def find_runs(conn: sqlite3.Connection, run_id: str, limit: int = 6) -> list[RunRow]:
    """The runs whose id is ``run_id`` or starts with it: that one first, then newest first."""
    pattern = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = conn.execute(
        "SELECT run_id, state, status, started, ended, input_json, origin FROM runs"
        " WHERE run_id = ? OR run_id LIKE ? ESCAPE '\\' ORDER BY run_id = ? DESC,"
        " started DESC LIMIT ?",
        (run_id, pattern, run_id, limit),
    ).fetchall()
    if not found:
        return []
    counted = read_counts(conn, [r[0] for r in found])
    return [RunRow(r[0], r[1], r[2], r[3], r[4], r[5], counted[r[0]], r[6]) for r in found]


def forget(conn: sqlite3.Connection, state: str | None) -> int:
    """Mark the reusable task runs of ``state`` (or all) not reusable; returns how many."""
    where, params = ("AND state = ?", (state,)) if state is not None else ("", ())
    conn.execute("BEGIN IMMEDIATE")
    try:
        changed = conn.execute(
            "UPDATE task_runs SET reusable = 0, reuse_key = NULL,"
            " note = 'reuse cleared (clear_cache)' WHERE reuse_key IS NOT NULL " + where,
            params,
        ).rowcount
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return int(changed)


def read_task_runs(conn: sqlite3.Connection, run_id: str) -> list[TaskRow]:
    """The task runs of a run in the order they were recorded."""
    sql = f"SELECT {_TASK_COLUMNS} FROM task_runs WHERE run_id = ? ORDER BY rowid"
    rows = conn.execute(sql, (run_id,)).fetchall()
    return [TaskRow(*(row[:8] + (bool(row[8]),) + row[9:])) for row in rows]


def count_rows(conn: sqlite3.Connection) -> tuple[int, int, str]:
    """How many runs and task runs the file holds, and its journal mode."""
    runs = conn.execute("SELECT COUNT(*) FROM runs").fetchall()[0][0]
    tasks = conn.execute("SELECT COUNT(*) FROM task_runs").fetchall()[0][0]
    return int(runs), int(tasks), str(conn.execute("PRAGMA journal_mode").fetchall()[0][0])


def prune(conn: sqlite3.Connection, keep: int, vacuum: bool) -> int:
    """Delete all but the newest ``keep`` runs of each state, with their (and orphan) task runs."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(f"DELETE FROM task_runs WHERE run_id IN ({_PRUNED})", (keep,))
        deleted = conn.execute(f"DELETE FROM runs WHERE run_id IN ({_PRUNED})", (keep,)).rowcount
        conn.execute("DELETE FROM task_runs WHERE run_id NOT IN (SELECT run_id FROM runs)")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if vacuum:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return int(deleted)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover
