"""The SQLite run store: records, reuse lookups, history, failures, migrations, concurrency."""

from __future__ import annotations

import ast
import hashlib
import os
import pickle
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from germinate_nb.errors import GerminateError
from germinate_nb.execution import store as store_module
from germinate_nb.execution import store_schema
from germinate_nb.execution.store import (
    DEFAULT_PATH,
    ENV_VAR,
    SCHEMA_VERSION,
    RunStore,
    StoreError,
    StoreWarning,
    TaskRecord,
    input_hash,
    resolve_store,
)

ROOT = Path(__file__).resolve().parents[2]


class Tokens(BaseModel):
    tokens: list[str]


def rec(task, *, run_id="r1", state="design", fp="fp1", ih=None, status="succeeded",
        output=None, attempt=1, log="", error="", start=100.0, duration=0.5):  # fmt: skip
    if output is None and status in ("succeeded", "cached"):
        output = {"tokens": [task]}
    ih = input_hash({"text": task}) if ih is None else ih
    return TaskRecord(
        run_id, state, task, fp, ih, status, output, "tests.Tokens", log, error, start, duration,
        attempt,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def isolated_stores(monkeypatch):
    """No GERMINATE_STORE from outside; stores opened by resolve_store are closed after."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    before = set(store_module._REGISTRY)
    yield
    for key in set(store_module._REGISTRY) - before:
        store_module._REGISTRY.pop(key).close()


@pytest.fixture
def store(tmp_path):
    s = RunStore.open(tmp_path / "runs.sqlite")
    yield s
    s.close()


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    assert [str(w.message) for w in caught] == []


def python(code: str, *args: str, env: dict[str, str] | None = None, **kw):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code, *args],
        env=full_env, capture_output=True, text=True, timeout=120, **kw,
    )  # fmt: skip


# -- records and history ------------------------------------------------------------------


def test_runs_and_task_runs_round_trip(store, no_warnings):
    store.begin_run("r1", "design", {"text": "a b"}, 100.0, origin="notebook.ipynb")
    store.record(rec("tokenize", log="split 2 words\n", start=100.1, duration=0.25))
    store.record(rec("count", status="failed", error="Traceback ...\nValueError: boom"))
    store.record(rec("report", status="skipped"))
    store.end_run("r1", 101.5, "failed")
    assert store.flush()

    [run] = store.runs()
    assert (run.run_id, run.state, run.status, run.started, run.ended) == (
        "r1", "design", "failed", 100.0, 101.5,
    )  # fmt: skip
    assert run.input_json == '{"text":"a b"}'
    assert run.origin == "notebook.ipynb"
    assert run.counts == {"succeeded": 1, "failed": 1, "skipped": 1}

    rows = {r.task: r for r in store.task_runs("r1")}
    assert list(rows) == ["tokenize", "count", "report"]
    tok = rows["tokenize"]
    assert tok.output_json == '{"tokens":["tokenize"]}'
    assert Tokens.model_validate_json(tok.output_json) == Tokens(tokens=["tokenize"])
    assert (tok.fingerprint, tok.input_hash, tok.output_type) == (
        "fp1", input_hash({"text": "tokenize"}), "tests.Tokens",
    )  # fmt: skip
    assert (tok.log, tok.start, tok.duration, tok.attempt, tok.reusable) == (
        "split 2 words\n", 100.1, 0.25, 1, True,
    )  # fmt: skip
    assert rows["count"].error == "Traceback ...\nValueError: boom"
    assert rows["count"].output_json is None and not rows["count"].reusable


def test_runs_are_newest_first_filtered_by_state_and_limited(store):
    for i, state in enumerate(["a", "b", "a", "b", "a"]):
        store.begin_run(f"r{i}", state, None, 100.0 + i)
        store.end_run(f"r{i}", 200.0 + i, "succeeded")
    assert [r.run_id for r in store.runs()] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.run_id for r in store.runs("a")] == ["r4", "r2", "r0"]
    assert [r.run_id for r in store.runs(limit=2)] == ["r4", "r3"]
    assert store.runs("nope") == []


def test_run_counts_use_the_last_attempt_of_each_task(store):
    store.begin_run("r1", "design", None, 1.0)
    store.record(rec("flaky", status="failed", attempt=1))
    store.record(rec("flaky", status="failed", attempt=2))
    store.record(rec("flaky", status="succeeded", attempt=3))
    store.record(rec("steady"))
    assert store.runs()[0].counts == {"succeeded": 2}
    assert [r.attempt for r in store.task_runs("r1")] == [1, 2, 3, 1]


def test_history_readers_see_rows_just_queued(store):
    store.begin_run("r1", "design", None, 1.0)
    store.record(rec("tokenize"))
    assert [r.task for r in store.task_runs("r1")] == ["tokenize"]  # no flush() needed


def test_input_that_is_not_json_leaves_the_run_without_input(store, no_warnings):
    store.begin_run("r1", "design", {"x": object()}, 1.0)
    assert store.flush()
    assert store.runs()[0].input_json is None


# -- reuse lookups ------------------------------------------------------------------------


KEYS = ("design", "tokenize", "fp1", input_hash({"text": "tokenize"}))


@pytest.mark.parametrize("position", [0, 1, 2, 3])
def test_lookup_misses_when_any_one_key_differs(store, position):
    store.record(rec("tokenize"))
    assert store.flush()
    assert store.lookup(*KEYS) == '{"tokens":["tokenize"]}'
    other = list(KEYS)
    other[position] = "other"
    assert store.lookup(*other) is None
    assert store.lookup_many(other[0], [tuple(other[1:])]) == {}


def test_lookup_returns_the_newest_succeeded_or_cached_output(store):
    store.record(rec("tokenize", output={"tokens": ["old"]}))
    store.record(rec("tokenize", output={"tokens": ["new"]}))
    store.record(rec("tokenize", status="failed", error="boom"))
    store.record(rec("tokenize", status="cancelled"))
    assert store.flush()
    assert store.lookup(*KEYS) == '{"tokens":["new"]}'
    store.record(rec("tokenize", status="cached", output={"tokens": ["cached"]}))
    assert store.flush()
    assert store.lookup(*KEYS) == '{"tokens":["cached"]}'


def test_a_lookup_miss_costs_no_query_once_the_keys_are_known(store):
    store.record(rec("tokenize"))
    assert store.flush()
    statements = []
    store._conn.set_trace_callback(statements.append)
    assert store.lookup("design", "count", "fp1", "IH") is None  # the first loads the keys
    assert len(statements) == 4 and "group_concat(reuse_key)" in statements[2]
    statements.clear()
    assert store.lookup("design", "count", "fp1", "IH") is None
    assert store.lookup("design", "tokenize", "fp2", KEYS[3]) is None
    assert statements == []
    assert store.lookup(*KEYS) == '{"tokens":["tokenize"]}'
    assert len(statements) == 1 and statements[0].startswith("SELECT t.output_json")
    store.record(rec("count"))  # what this process writes is known at once
    assert store.flush()
    assert store.lookup("design", "count", "fp1", input_hash({"text": "count"})) is not None


def test_another_process_rows_are_seen_from_the_next_lookup_many(tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunStore.open(path) as mine, RunStore.open(path) as theirs:  # two connections
        assert mine.lookup(*KEYS) is None
        theirs.record(rec("tokenize"))
        assert theirs.flush()
        assert mine.lookup(*KEYS) is None  # not known yet: a miss, never a wrong hit
        assert mine.lookup_many("design", [KEYS[1:]]) == {"tokenize": '{"tokens":["tokenize"]}'}
        assert mine.lookup(*KEYS) == '{"tokens":["tokenize"]}'


def test_lookup_with_an_empty_input_hash_is_a_miss(store):
    store.record(rec("tokenize", ih=""))
    assert store.flush()
    assert store.lookup("design", "tokenize", "fp1", "") is None
    assert store.lookup_many("design", [("tokenize", "fp1", "")]) == {}
    [row] = store.task_runs("r1")
    assert not row.reusable
    assert row.note == "input is not JSON-serialisable, so the output is not reusable"


def test_lookup_many_matches_single_lookups_across_chunks(store):
    n = 600  # more than one statement's worth of keys
    for i in range(n):
        if i % 3:
            store.record(rec(f"t{i}", output={"tokens": [str(i)]}))
    assert store.flush()
    keys = [(f"t{i}", "fp1", input_hash({"text": f"t{i}"})) for i in range(n)]
    keys.append(("t1", "fp-other", keys[1][2]))
    found = store.lookup_many("design", keys)
    assert len(found) == 400
    assert found == {k[0]: v for k in keys if (v := store.lookup("design", *k)) is not None}
    assert found["t1"] == '{"tokens":["1"]}'


def test_output_not_json_serialisable_is_recorded_not_reusable(store, no_warnings):
    np = pytest.importorskip("numpy")
    store.begin_run("r1", "design", None, 1.0)
    store.record(rec("array", output={"values": np.arange(3)}))
    store.record(rec("obj", output={"thing": object()}))
    store.end_run("r1", 2.0, "succeeded")
    assert store.flush()
    rows = {r.task: r for r in store.task_runs("r1")}
    for name in ("array", "obj"):
        row = rows[name]
        assert row.status == "succeeded" and row.output_json is None and not row.reusable
        assert row.note.startswith("output is not JSON-serialisable: PydanticSerializationError:")
        assert store.lookup("design", name, "fp1", input_hash({"text": name})) is None
    assert "numpy.ndarray" in rows["array"].note
    assert store.runs()[0].status == "succeeded"


def test_a_task_record_is_immutable_and_takes_keywords():
    r = TaskRecord(
        run_id="r1", state="design", task="t", fingerprint="fp", input="ih",
        status="succeeded", output=None, output_type="T", log="", error="", start=None,
        duration=None,
    )  # fmt: skip
    assert r.attempt == 1
    with pytest.raises(AttributeError):
        r.status = "failed"


def test_a_model_instance_is_accepted_as_output(store):
    store.record(rec("tokenize", output=Tokens(tokens=["a", "b"])))
    assert store.flush()
    assert Tokens.model_validate_json(store.lookup(*KEYS)) == Tokens(tokens=["a", "b"])


# -- input_hash ---------------------------------------------------------------------------


def test_input_hash_is_stable_and_insensitive_to_nested_order():
    # The top level is a model dump (field order); nested dicts and sets may come in any order.
    dump = {"text": "a b", "tags": {"x", "y", "z"}, "weights": {"b": 1, "a": 2}}
    same = {"text": "a b", "tags": {"z", "y", "x"}, "weights": {"a": 2, "b": 1}}
    assert input_hash(dump) == input_hash(same)
    assert len(input_hash(dump)) == 32
    assert input_hash(dump) != input_hash({**dump, "text": "a c"})
    assert input_hash({"x": 1}) == hashlib.sha256(b'{"x":1}').hexdigest()[:32]
    assert input_hash(None) == hashlib.sha256(b"null").hexdigest()[:32]
    assert input_hash({"m": {1: "a", "1": "b"}}) == input_hash({"m": {"1": "b", 1: "a"}})
    assert input_hash(Tokens(tokens=["a"])) == input_hash({"tokens": ["a"]})


def test_input_hash_of_unserialisable_input_is_empty():
    assert input_hash({"x": object()}) == ""
    assert input_hash({"bytes": b"\xff\xfe"}) == ""  # not UTF-8: no JSON for it


def test_input_hash_is_the_same_under_different_pythonhashseed():
    code = (
        "from germinate_nb.execution.store import input_hash\n"
        "from pydantic_core import to_json\n"
        "tags = {'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'}\n"
        "counts = {t: len(t) for t in tags}\n"  # a dict whose insertion order follows the seed
        "dump = {'text': 'a b', 'tags': tags, 'nested': [{'s': frozenset(tags)}], 'n': counts}\n"
        "print(input_hash(dump), to_json(tags).decode())\n"
    )
    out = {}
    for seed in ("1", "2"):
        proc = python(code, env={"PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr
        out[seed] = proc.stdout.split()
    assert out["1"][1] != out["2"][1], "the seeds must order the set differently"
    assert out["1"][0] == out["2"][0] != ""


# -- a store that cannot be used ----------------------------------------------------------


def test_corrupt_file_warns_once_and_runs_go_on_in_memory(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is not SQLite " * 500)
    with pytest.raises(StoreError, match=r"cannot be opened: file is not a database\. Delete"):
        RunStore.open(path)
    with pytest.warns(StoreWarning) as caught:
        assert resolve_store(path) is None
    [w] = caught
    assert str(w.message) == (
        f"germinate_nb: run store {path} is not usable (file is not a database); runs go on "
        "in memory. Delete the file (it holds only run history and reusable outputs) or set "
        "GERMINATE_STORE=off."
    )
    assert w.filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_store(path) is None  # the same problem is not repeated


def test_store_error_is_a_germinate_error_and_an_oserror(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"x" * 100)
    with pytest.raises(StoreError) as info:
        RunStore.open(path)
    assert isinstance(info.value, GerminateError) and isinstance(info.value, OSError)
    assert (info.value.path, info.value.reason) == (str(path), "file is not a database")


def test_corruption_found_while_reading_warns_once_and_misses(tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunStore.open(path) as s:
        for i in range(3000):
            s.record(rec(f"t{i}", output={"tokens": ["x" * 50]}))
    size = path.stat().st_size
    with path.open("r+b") as f:  # the first pages (header, schema) stay intact
        f.seek(size // 2)
        f.write(b"\xff" * (size - size // 2))
    s = RunStore.open(path)
    keys = [(f"t{i}", "fp1", input_hash({"text": f"t{i}"})) for i in range(3000)]
    with pytest.warns(StoreWarning, match=r"stopped working \(database disk image is malformed\)"):
        assert s.lookup_many("design", keys) == {}
    assert not s.usable and s.last_error == "database disk image is malformed"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert s.lookup(*KEYS) is None
        s.record(rec("more"))
        assert s.flush() is False
        assert s.runs() == []
    s.close()


def test_a_file_in_place_of_the_folder_warns_and_returns_none(tmp_path):
    (tmp_path / ".germinate").write_text("not a folder")
    with pytest.warns(StoreWarning, match=r"\.germinate is a file, not a folder\); runs go on"):
        assert resolve_store(None, base=str(tmp_path)) is None


def test_an_unwritable_place_warns_and_returns_none():
    # Tests run as root, where chmod does not stop writes; /proc refuses new files to anyone.
    with pytest.raises(StoreError, match=r"cannot create its folder /proc/germinate-test"):
        RunStore.open("/proc/germinate-test/runs.sqlite")
    with pytest.warns(StoreWarning, match=r"\(unable to open database file\); runs go on in mem"):
        assert resolve_store("/proc/self/runs.sqlite") is None


def test_a_directory_is_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="it is a directory"):
        RunStore.open(tmp_path)


def test_locked_beyond_the_busy_timeout_warns_once_and_drops_rows(tmp_path, no_warnings):
    path = tmp_path / "runs.sqlite"
    s = RunStore.open(path, busy_timeout=0.2)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        s.begin_run("r1", "design", None, 1.0)
        for task in ("a", "b", "c"):
            s.record(rec(task))
        with pytest.warns(StoreWarning) as caught:
            assert s.flush() is False
    finally:
        blocker.execute("ROLLBACK")
    assert [str(w.message) for w in caught] == [
        f"germinate_nb: run store {path} stopped working (database is locked), 3 task runs not "
        "saved; runs go on in memory. Another process holds it locked; retry later, or set "
        "GERMINATE_STORE=PATH to use another store."
    ]
    assert caught[0].filename == __file__
    assert not s.usable and s.last_error == "database is locked"
    s.record(rec("d"))  # a no-op now, and no second warning
    s.end_run("r1", 2.0, "succeeded")
    assert s.lookup(*KEYS) is None
    s.close()
    count = sqlite3.connect(path).execute("SELECT COUNT(*) FROM task_runs").fetchone()[0]
    assert count == 0


def test_a_record_that_cannot_become_a_row_warns_once_and_never_raises(store):
    bad = rec("tokenize", log=["not", "text"])  # the engine's bug, not the user's
    store.record(bad)
    with pytest.warns(StoreWarning, match=r"stopped working \(Error binding parameter .*list"):
        assert store.flush() is False
    assert not store.usable


def test_locked_while_opening_a_new_store_is_a_store_error(tmp_path):
    path = tmp_path / "runs.sqlite"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match=r"database is locked\. Another process holds it"):
            RunStore.open(path, busy_timeout=0.1)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_resolve_store_reopens_a_store_that_failed(tmp_path):
    path = tmp_path / "runs.sqlite"
    first = resolve_store(path)
    first._fail("database is locked")  # as the writer does when it gives up
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first.record(rec("a"))  # writing never warns: the engine writes from its threads
        first.begin_run("r2", "design", None, 1.0)
    with pytest.warns(StoreWarning, match="stopped working") as caught:
        second = resolve_store(path)  # the failure's one warning, at the caller
    assert second is not first and second.usable
    assert [w.filename for w in caught] == [__file__]
    assert not first._thread.is_alive()


# -- the schema: versions, migrations, nothing but JSON and text --------------------------

V0_DDL = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, state TEXT, status TEXT, started REAL, ended REAL,
                   input_json TEXT);
CREATE TABLE task_runs (run_id TEXT, task TEXT, fingerprint TEXT, input_hash TEXT, status TEXT,
                        output_json TEXT, output_type TEXT, log TEXT, error TEXT, start REAL,
                        duration REAL);
INSERT INTO runs VALUES ('old', 'design', 'failed', 10.0, 11.0, '{"text":"a b"}');
INSERT INTO task_runs VALUES ('old', 'tokenize', 'fp1', 'IH', 'succeeded',
                              '{"tokens":["a","b"]}', 'Tokens', '', '', 10.0, 0.1);
INSERT INTO task_runs VALUES ('old', 'count', 'fp1', 'IH', 'failed', NULL, 'C', '',
                              'boom', 10.1, 0.1);
"""


def test_a_v0_file_is_migrated_to_v1_keeping_its_rows(tmp_path):
    path = tmp_path / "runs.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(V0_DDL)
    conn.close()
    with RunStore.open(path) as s:
        assert s.info().schema_version == SCHEMA_VERSION == 1
        [run] = s.runs()
        assert (run.run_id, run.status, run.origin, run.counts) == (
            "old", "failed", "", {"succeeded": 1, "failed": 1},
        )  # fmt: skip
        assert s.lookup("design", "tokenize", "fp1", "IH") == '{"tokens":["a","b"]}'
        assert s.lookup("design", "count", "fp1", "IH") is None
        tok, count = s.task_runs("old")
        assert (tok.state, tok.reusable, tok.attempt, count.reusable) == ("design", True, 1, False)
        s.record(rec("new", run_id="new"))
        assert s.flush()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"task_runs_reuse", "task_runs_history", "runs_history"} <= indexes
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_migrations_apply_in_order_and_a_failing_one_rolls_back(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)

    def add_table(c):
        c.execute("CREATE TABLE labels (run_id TEXT, label TEXT)")

    def broken(c):
        c.execute("CREATE TABLE half_done (x TEXT)")
        raise sqlite3.OperationalError("migration 3 failed")

    v1 = store_schema.MIGRATIONS[1]
    with pytest.raises(sqlite3.OperationalError, match="migration 3 failed"):
        store_schema.migrate(conn, {1: v1, 2: add_table, 3: broken})
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "labels" not in tables and "half_done" not in tables
    assert store_schema.read_version(conn) == 1
    assert store_schema.migrate(conn, {1: v1, 2: add_table}) == 1
    assert store_schema.read_version(conn) == 2
    assert conn.execute("SELECT COUNT(*) FROM labels").fetchone() == (0,)


def test_a_newer_store_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"schema v2, newer than v1 .* Upgrade germinate_nb"):
        RunStore.open(path)
    with pytest.warns(StoreWarning, match=r"is not usable \(it has schema v2, newer"):
        assert resolve_store(path) is None
    assert path.read_bytes() == before


def test_a_foreign_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "runs.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"not a germinate_nb run store \(tables: invoices\)"):
        RunStore.open(path)
    assert path.read_bytes() == before


def test_a_store_with_a_trigger_is_refused(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TRIGGER sneaky AFTER INSERT ON runs BEGIN DELETE FROM task_runs; END")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"it holds trigger 'sneaky', which germinate_nb never"):
        RunStore.open(path)


def test_the_store_holds_json_and_text_never_pickles(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore.open(path).close()
    conn = sqlite3.connect(path)
    types = {
        col[2]
        for table in ("runs", "task_runs", "schema_version")
        for col in conn.execute(f"PRAGMA table_info({table})")
    }
    assert types <= {"TEXT", "REAL", "INTEGER"}
    banned = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve"}
    for name in (
        "store.py",
        "store_rows.py",
        "store_schema.py",
        "store_writer.py",
        "store_history.py",
    ):
        tree = ast.parse((ROOT / "germinate_nb" / "execution" / name).read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
        assert "sqlite3" in imported or name != "store.py"
        assert not imported & banned, name


class Boom:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["GERMINATE_TEST_SENTINEL"]),))


def test_a_crafted_pickle_payload_is_only_a_miss(tmp_path, monkeypatch):
    sentinel = tmp_path / "pwned"
    monkeypatch.setenv("GERMINATE_TEST_SENTINEL", str(sentinel))
    payload = pickle.dumps(Boom())
    path = tmp_path / "runs.sqlite"
    RunStore.open(path).close()
    conn = sqlite3.connect(path)
    insert = (
        "INSERT INTO task_runs (run_id, state, task, fingerprint, input_hash, status, output_json,"
        " reusable, reuse_key) VALUES ('x', 'design', ?, 'fp1', 'IH', 'succeeded', ?, 1, ?)"
    )
    for task, value in [
        ("blob", payload),  # a BLOB where JSON text belongs
        ("text", payload.decode("latin-1")),  # pickle bytes smuggled in as text
    ]:
        conn.execute(insert, (task, value, store_schema.reuse_key("design", task, "fp1", "IH")))
    conn.commit()
    conn.close()
    with RunStore.open(path) as s:
        assert s.lookup("design", "blob", "fp1", "IH") is None
        assert s.lookup_many("design", [("blob", "fp1", "IH")]) == {}
        text = s.lookup("design", "text", "fp1", "IH")
        assert text is not None  # handed back as text, never unpickled
        assert s.lookup_many("design", [("text", "fp1", "IH")]) == {"text": text}
        with pytest.raises(ValidationError):  # what the engine does with it: a miss
            Tokens.model_validate_json(text)
    assert not sentinel.exists()


# -- prune and the size report ------------------------------------------------------------


def test_prune_keeps_the_newest_runs_of_each_state(store):
    for state in ("a", "b"):
        for i in range(5):
            run_id = f"{state}{i}"
            store.begin_run(run_id, state, None, 100.0 + i)
            for task in ("x", "y", "z"):
                store.record(rec(task, run_id=run_id, state=state))
            store.end_run(run_id, 200.0 + i, "succeeded")
    store.record(rec("orphan", run_id="never-begun"))
    assert store.prune(2) == 6
    assert [r.run_id for r in store.runs()] == ["b4", "a4", "b3", "a3"]
    assert store.info().task_runs == 12
    assert store.task_runs("a0") == [] and store.task_runs("never-begun") == []
    assert store.prune(2) == 0
    assert store.lookup("a", "x", "fp1", input_hash({"text": "x"})) is not None
    assert store.lookup("a", "nope", "fp1", input_hash({"text": "nope"})) is None
    with pytest.raises(ValueError, match=r"prune\(keep=-1\): keep is how many runs"):
        store.prune(-1)


def test_prune_with_vacuum_gives_space_back(store):
    for i in range(20):
        store.begin_run(f"r{i}", "design", None, float(i))
        for t in range(100):
            store.record(rec(f"t{t}", run_id=f"r{i}", output={"tokens": ["x" * 100]}))
    before = store.info()
    assert store.prune(1, vacuum=True) == 19
    after = store.info()
    assert (after.runs, after.task_runs) == (1, 100)
    assert after.size_bytes < before.size_bytes / 5
    assert after.wal_bytes == 0


def test_info_is_a_size_report(store):
    store.begin_run("r1", "design", None, 1.0)
    for i in range(1000):
        store.record(rec(f"t{i}"))
    info = store.info()
    assert (info.runs, info.task_runs, info.schema_version, info.usable) == (1, 1000, 1, True)
    assert info.size_bytes == info.db_bytes + info.wal_bytes > 0
    assert info.journal_mode == "wal" and info.last_error is None
    text = str(info)
    assert text.startswith(f"run store {store.path}: ")
    assert "1 runs, 1,000 task runs, ~" in text and "bytes per 1,000 task runs" in text
    assert text.endswith("schema v1, WAL journal; usable")
    store.close()
    closed = store.info()
    assert closed.runs is None and not closed.usable
    assert str(closed).endswith("rows unknown, schema v1; not usable: closed")


# -- resolve_store ------------------------------------------------------------------------


def test_resolve_store_defaults_next_to_the_notebook(tmp_path):
    s = resolve_store(None, base=str(tmp_path))
    assert s.path == tmp_path / DEFAULT_PATH and s.path.exists()
    assert resolve_store(tmp_path / ".germinate" / "runs.sqlite") is s  # one object per path
    assert resolve_store(True, base=str(tmp_path)) is s
    assert resolve_store(s) is s


def test_resolve_store_off_and_environment(tmp_path, monkeypatch):
    assert resolve_store(False) is None
    assert resolve_store("off") is None
    assert resolve_store(" OFF ") is None
    monkeypatch.setenv(ENV_VAR, "off")
    assert resolve_store(None, base=str(tmp_path)) is None
    assert resolve_store(True, base=str(tmp_path)).path == tmp_path / DEFAULT_PATH
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere.sqlite"))
    assert resolve_store(None, base=str(tmp_path)).path == tmp_path / "elsewhere.sqlite"


def test_resolve_store_relative_path_is_from_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = resolve_store("sub/runs.sqlite")
    assert s.path == tmp_path / "sub" / "runs.sqlite"
    assert resolve_store(tmp_path / "sub" / "runs.sqlite") is s


def test_resolve_store_rejects_what_is_not_a_store():
    with pytest.raises(TypeError, match=r"store=42 is not a run store: pass a path, 'off'"):
        resolve_store(42)


# -- the writer: never in the way, nothing lost ---------------------------------------------


def test_record_never_blocks_even_while_the_writer_waits_for_a_lock(tmp_path):
    path = tmp_path / "runs.sqlite"
    s = RunStore.open(path, busy_timeout=30.0)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    s.begin_run("r1", "design", None, 1.0)
    time.sleep(0.1)  # the writer is now inside SQLite's busy wait
    records = [rec(f"t{i}") for i in range(10_000)]
    t0 = time.perf_counter()
    for r in records:
        s.record(r)
    elapsed = time.perf_counter() - t0
    blocker.execute("ROLLBACK")
    assert s.flush(30.0)
    assert elapsed < 0.1, f"10,000 record() calls took {elapsed * 1e3:.1f} ms"
    assert s.info().task_runs == 10_000
    s.close()


def test_close_writes_what_is_queued(tmp_path):
    path = tmp_path / "runs.sqlite"
    s = RunStore.open(path)
    s.begin_run("r1", "design", None, 1.0)
    for i in range(1000):
        s.record(rec(f"t{i}"))
    s.end_run("r1", 2.0, "succeeded")
    s.close()
    assert not s.usable and not s._thread.is_alive()
    with RunStore.open(path) as again:
        assert again.runs()[0].counts == {"succeeded": 1000}


def test_the_writer_is_one_daemon_thread_per_store(store):
    writers = [t for t in threading.enumerate() if t.name == "germinate-store runs.sqlite"]
    assert writers == [store._thread] and store._thread.daemon


def test_rows_queued_at_exit_are_written_and_reused_after_a_restart(tmp_path):
    path = tmp_path / "runs.sqlite"
    code = (
        "import sys\n"
        "from germinate_nb.execution.store import RunStore, TaskRecord, input_hash\n"
        "s = RunStore.open(sys.argv[1])\n"
        "s.begin_run('r1', 'design', None, 1.0)\n"
        "for i in range(1000):\n"
        "    s.record(TaskRecord('r1', 'design', f't{i}', 'fp', input_hash({'i': {str(i)}}),\n"
        "                        'succeeded', {'i': i}, 'Out', '', '', 1.0, 0.1))\n"
        "s.end_run('r1', 2.0, 'succeeded')\n"  # no flush(), no close(): atexit does it
    )
    t0 = time.perf_counter()
    proc = python(code, str(path), env={"PYTHONHASHSEED": "7"})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert time.perf_counter() - t0 < 30  # the daemon writer does not hold the process
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM task_runs").fetchone() == (1000,)
    assert conn.execute("SELECT status FROM runs").fetchall() == [("succeeded",)]

    class Out(BaseModel):
        i: int

    with RunStore.open(path) as s:  # "after the restart", in this process
        keys = [(f"t{i}", "fp", input_hash({"i": {str(i)}})) for i in range(1000)]
        found = s.lookup_many("design", keys)
    assert {t: Out.model_validate_json(j).i for t, j in found.items()} == {
        f"t{i}": i for i in range(1000)
    }


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_use_the_parents_store(store):
    store.begin_run("parent", "design", None, 1.0)
    assert store.flush()
    pid = os.fork()
    if pid == 0:  # the child: the inherited store is off; a fresh one works
        code = 1
        try:
            store.record(rec("from-child", run_id="parent"))
            fresh = resolve_store(store.path)
            if not store.usable and fresh is not store and fresh.usable:
                fresh.begin_run("child", "design", None, 2.0)
                code = 0 if fresh.flush() else 2
                fresh.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.usable
    assert sorted(r.run_id for r in store.runs()) == ["child", "parent"]
    assert store.task_runs("parent") == []


CHILD = r"""
import sys, time
from pathlib import Path
from germinate_nb.execution.store import RunStore, TaskRecord, input_hash
path, name, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
store = RunStore.open(path, busy_timeout=30.0, interval=0.0, batch_size=20)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
for r in range(10):
    run_id = f"{name}-{r}"
    store.begin_run(run_id, "s", {"r": r}, time.time())
    for i in range(100):
        store.record(TaskRecord(run_id, "s", f"t{i}", "fp", input_hash({"i": i}), "succeeded",
                                {"i": i, "who": name}, "Out", "log line", "", time.time(), 0.001))
        if i % 20 == 19:
            time.sleep(0.001)  # let the two writers interleave
    store.end_run(run_id, time.time(), "succeeded")
    store.lookup_many("s", [(f"t{i}", "fp", input_hash({"i": i})) for i in range(100)])
ok = store.flush(60.0)
store.close()
print("ok" if ok and store.last_error is None else f"failed: {store.last_error}", flush=True)
"""


def test_two_processes_writing_at_once_lose_nothing_and_corrupt_nothing(tmp_path):
    path, go = tmp_path / "runs.sqlite", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", CHILD, str(path), name, str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name in ("p1", "p2")
    ]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        go.touch()
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, results, strict=True):
        assert (p.returncode, out.strip(), err) == (0, "ok", "")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("SELECT COUNT(*) FROM task_runs").fetchone() == (2000,)
    who = "SELECT json_extract(output_json, '$.who'), COUNT(*) FROM task_runs GROUP BY 1"
    per_process = dict(conn.execute(who).fetchall())
    assert per_process == {"p1": 1000, "p2": 1000}
    assert conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY 1").fetchall() == [
        ("succeeded", 20)
    ]


def test_closing_while_a_locked_file_holds_the_writer_says_what_may_be_lost(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore.open(path).close()
    store = RunStore.open(path, busy_timeout=3.0)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store.begin_run("r1", "design", None, 1.0)
        store.record(rec("tokenize"))
        with pytest.warns(StoreWarning) as caught:
            store.close(timeout=0.3)  # the writer waits for the lock meanwhile
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    [warning] = caught
    assert str(warning.message).startswith(
        f"germinate_nb: run store {path} was still writing when it was closed (0.3 s): the "
        "rows it was writing, and "
    )
    assert "may not be saved. Another process holds it locked" in str(warning.message)
