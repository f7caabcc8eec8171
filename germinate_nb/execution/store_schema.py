"""The run store's SQLite layout: connections, the versioned schema and its migrations.

Version 0 is the unversioned layout of the store's first draft (``runs`` and ``task_runs``
without ``origin``, ``state``, ``reusable``, ``note`` and ``attempt``, no indexes, no
``schema_version`` table); an empty file is version 0 too. Each migration in ``MIGRATIONS``
takes the schema from ``version - 1`` to ``version``; :func:`migrate` applies the missing ones
in order inside one transaction, so a failed migration leaves the file as it was.

Every column holds TEXT, REAL or INTEGER: the store holds JSON and text, never pickles. Reuse
looks task runs up by ``reuse_key``, an integer digest of (state, task, fingerprint, input hash)
indexed for reusable rows only; history reads a run's task runs by ``run_id``.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SchemaError",
    "connect",
    "migrate",
    "read_version",
    "reuse_key",
    "unexpected_objects",
]

Migration = Callable[[sqlite3.Connection], None]

V0_RUNS = ("run_id", "state", "status", "started", "ended", "input_json")
V0_TASK_RUNS = (
    "run_id",
    "task",
    "fingerprint",
    "input_hash",
    "status",
    "output_json",
    "output_type",
    "log",
    "error",
    "start",
    "duration",
)

_V1_TABLES = """
CREATE TABLE runs (
    run_id     TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    status     TEXT NOT NULL,
    started    REAL,
    ended      REAL,
    input_json TEXT,
    origin     TEXT NOT NULL DEFAULT ''
);
CREATE TABLE task_runs (
    run_id      TEXT NOT NULL,
    state       TEXT NOT NULL,
    task        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    input_hash  TEXT NOT NULL,
    status      TEXT NOT NULL,
    output_json TEXT,
    output_type TEXT NOT NULL DEFAULT '',
    reusable    INTEGER NOT NULL DEFAULT 0,
    note        TEXT NOT NULL DEFAULT '',
    log         TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    start       REAL,
    duration    REAL,
    attempt     INTEGER NOT NULL DEFAULT 1,
    reuse_key   INTEGER
);
"""

_V1_UPGRADE_V0 = """
ALTER TABLE runs ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE task_runs ADD COLUMN state TEXT NOT NULL DEFAULT '';
ALTER TABLE task_runs ADD COLUMN reusable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE task_runs ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE task_runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE task_runs ADD COLUMN reuse_key INTEGER;
UPDATE task_runs SET state = COALESCE(
    (SELECT r.state FROM runs r WHERE r.run_id = task_runs.run_id), '');
UPDATE task_runs SET reusable = 1
    WHERE status IN ('succeeded', 'cached') AND typeof(output_json) = 'text'
      AND typeof(task) = 'text' AND typeof(fingerprint) = 'text' AND input_hash != '';
UPDATE task_runs SET reuse_key = germinate_reuse_key(state, task, fingerprint, input_hash)
    WHERE reusable = 1;
"""

_V1_INDEXES = """
CREATE INDEX task_runs_reuse ON task_runs(state, reuse_key) WHERE reuse_key IS NOT NULL;
CREATE INDEX task_runs_history ON task_runs(run_id);
CREATE INDEX runs_history ON runs(state, started);
CREATE INDEX runs_started ON runs(started);
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (0);
"""


def _to_v1(conn: sqlite3.Connection) -> None:
    """Create the v1 schema, or upgrade a v0 (first draft) layout in place, keeping its rows."""
    if _tables(conn):
        conn.create_function("germinate_reuse_key", 4, reuse_key, deterministic=True)
        _executescript(conn, _V1_UPGRADE_V0)
    else:
        _executescript(conn, _V1_TABLES)
    _executescript(conn, _V1_INDEXES)


def reuse_key(state: str, task: str, fingerprint: str, input_hash: str) -> int:
    """The ``reuse_key`` column: a 60-bit digest of the four keys of a reusable task run.

    The first 60 bits of the input hash (a SHA-256, already uniform) XOR a CRC-32 of the task's
    identity, shifted. Indexing this integer instead of the four text keys makes the index about
    four times smaller and each insert cheaper; lookups still compare the four keys, so a
    collision can never return another task's output. The same in every process.
    """
    ident = zlib.crc32(f"{state}\x1f{task}\x1f{fingerprint}".encode())
    try:
        digest = int(input_hash[:15], 16)
    except ValueError:  # not hex (a hand-made or v0 row): still a stable key
        digest = zlib.crc32(input_hash.encode())
    return digest ^ (ident << 28)


MIGRATIONS: Mapping[int, Migration] = {1: _to_v1}
SCHEMA_VERSION: int = max(MIGRATIONS)


class SchemaError(Exception):
    """The file is not a run store this code may use; ``str()`` is the reason."""


def connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """A connection in autocommit mode with the store's per-connection pragmas.

    ``check_same_thread=False`` because the store closes every connection from the thread that
    calls ``close()``; each connection is still used by one thread at a time (under a lock).
    """
    conn = sqlite3.connect(
        str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {max(0, int(busy_timeout * 1000))}")
        conn.execute("PRAGMA trusted_schema = OFF")  # no SQL functions with side effects
        conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe in WAL mode
    except BaseException:
        conn.close()
        raise
    return conn


def read_version(conn: sqlite3.Connection) -> int:
    """The schema version of the open file, without writing to it.

    Raises
    ------
    SchemaError
        The file holds tables that are neither a run store nor its v0 draft.
    sqlite3.DatabaseError
        The file is not an SQLite database, or is corrupt.
    """
    tables = _tables(conn)
    if "schema_version" in tables:
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchall()[0]
        if not isinstance(row[0], int):
            msg = "its schema_version table holds no version"
            raise SchemaError(msg)
        return row[0]
    if not tables:
        return 0
    if tables == {"runs", "task_runs"} and _has_columns(conn, "runs", V0_RUNS):
        if _has_columns(conn, "task_runs", V0_TASK_RUNS):
            return 0
    msg = f"it is not a germinate_nb run store (tables: {', '.join(sorted(tables))})"
    raise SchemaError(msg)


def migrate(conn: sqlite3.Connection, migrations: Mapping[int, Migration] = MIGRATIONS) -> int:
    """Bring the file to the newest version in ``migrations``, in one transaction.

    Takes the write lock first (``BEGIN IMMEDIATE``), so two processes opening a new store at
    once migrate it once. Returns the version the file had.

    Raises
    ------
    SchemaError
        The file is newer than ``migrations`` (it is left untouched) or not a run store.
    sqlite3.Error
        A migration failed; the transaction is rolled back.
    """
    target = max(migrations)
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = read_version(conn)
        if found > target:
            msg = f"it has schema v{found}, newer than v{target} that this germinate_nb reads"
            raise SchemaError(msg)
        for version in range(found + 1, target + 1):
            migrations[version](conn)
        if found < target:
            conn.execute("UPDATE schema_version SET version = ?", (target,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found


def unexpected_objects(conn: sqlite3.Connection) -> list[str]:
    """Triggers and views in the file: a run store made by germinate_nb has none."""
    rows = conn.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('trigger', 'view')"
    ).fetchall()
    return [f"{kind} {name!r}" for kind, name in rows]


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return {str(r[0]) for r in rows}


def _has_columns(conn: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> bool:
    found = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})").fetchall()}
    return set(columns) <= found


def _executescript(conn: sqlite3.Connection, script: str) -> None:
    # conn.executescript() would COMMIT the open transaction first; run statement by statement.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)
