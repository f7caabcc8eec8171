"""The engine and the run store together: what runs record, reuse from the store, failures."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import warnings

import pytest
from pydantic import BaseModel, ConfigDict

from germinate_nb import State, TaskRegistry, clear_cache, run, start_run
from germinate_nb.execution import store as store_module
from germinate_nb.execution import store_writer
from germinate_nb.execution.runner import arun
from germinate_nb.execution.store import (
    DEFAULT_PATH,
    ENV_VAR,
    RunStore,
    StoreWarning,
    input_hash,
    resolve_store,
    set_default_store,
)
from tests.execution.conftest import C, Q, T

CALLS: list[str] = []


@pytest.fixture(autouse=True)
def isolated_stores():
    """Stores opened here are closed after each test, and the process's choice is reset."""
    before = set(store_module._REGISTRY)
    CALLS.clear()
    yield
    set_default_store(None)
    for key in set(store_module._REGISTRY) - before:
        store_module._REGISTRY.pop(key).close(warn=False)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "runs.sqlite"


def design(fail: str | None = None, suffix: str = "") -> State:
    """tokenize -> count -> report, and tokenize -> side; ``fail`` names a task that raises."""
    s = State("design")

    @s.task()
    def tokenize(input: Q) -> T:
        CALLS.append("tokenize")
        print(f"splitting {input.text!r}")
        return T(tokens=input.text.split())

    @s.task()
    def count(input: T) -> C:
        CALLS.append("count")
        if fail == "count":
            raise ValueError("boom in count")
        return C(n=len(input.tokens))

    @s.task()
    def report(input: C) -> C:
        CALLS.append("report")
        return C(n=input.n * 10)

    @s.task()
    def side(input: T) -> T:
        CALLS.append("side")
        return T(tokens=[*input.tokens, suffix] if suffix else input.tokens)

    tokenize >> count >> report
    tokenize >> side
    return s


def restart() -> None:
    """What a kernel restart does to the engine: a new registry, nothing cached in memory."""
    TaskRegistry.set_default(TaskRegistry())


def statuses(result) -> dict[str, str]:
    return {name: tr.status.value for name, tr in result.task_runs.items()}


# -- what a run records -------------------------------------------------------------------


def test_a_run_and_its_task_runs_are_recorded(path):
    s = design()
    result = run(s, {"text": "a b c"}, store=path)
    assert result.ok and isinstance(result.store, RunStore) and result.store.path == path
    [past] = result.store.runs()
    assert (past.run_id, past.state, past.status) == (result.run_id, "design", "succeeded")
    assert past.counts == {"succeeded": 4} and json.loads(past.input_json) == {"text": "a b c"}
    assert past.started <= past.ended
    rows = {r.task: r for r in result.store.task_runs(result.run_id)}
    assert set(rows) == {"tokenize", "count", "report", "side"}
    tok = rows["tokenize"]
    executor = s.get("tokenize").executor
    assert (tok.status, tok.fingerprint, tok.attempt) == ("succeeded", executor.fingerprint, 1)
    assert tok.input_hash == input_hash({"text": "a b c"})
    assert json.loads(tok.output_json) == {"tokens": ["a", "b", "c"]} and tok.reusable
    assert tok.output_type == "tests.resources.models.T"
    assert tok.log == "splitting 'a b c'\n"
    assert tok.start == result.task_runs["tokenize"].start_time
    assert tok.duration == result.task_runs["tokenize"].duration
    assert json.loads(rows["report"].output_json) == {"n": 30}


def test_failed_and_skipped_task_runs_are_recorded_with_the_error_text(path):
    result = run(design(fail="count"), {"text": "a b"}, store=path)
    assert not result.ok
    rows = {r.task: r for r in result.store.task_runs(result.run_id)}
    assert rows["count"].status == "failed" and not rows["count"].reusable
    error = rows["count"].error
    assert error.startswith("ValueError: boom in count\n\nTraceback (most recent call last):")
    assert 'raise ValueError("boom in count")' in error
    assert rows["count"].output_json is None
    assert (rows["report"].status, rows["report"].error) == ("skipped", "skipped: 'count' failed")
    assert rows["side"].status == "succeeded"
    [past] = result.store.runs()
    assert past.status == "failed"
    assert past.counts == {"succeeded": 2, "failed": 1, "skipped": 1}


def test_cancelled_task_runs_are_recorded(path):
    s = State("slow")
    started = threading.Event()

    @s.task()
    async def wait(input: Q) -> T:
        started.set()
        await asyncio.sleep(30)
        return T(tokens=[])

    @s.task()
    def after(input: T) -> T:
        return input

    wait >> after
    handle = start_run(s, {"text": "x"}, store=path)
    assert started.wait(10)
    handle.cancel()
    result = handle.wait(10)
    assert result.status == "cancelled"
    rows = {r.task: r.status for r in result.store.task_runs(result.run_id)}
    assert rows == {"wait": "cancelled", "after": "cancelled"}
    assert result.store.runs()[0].status == "cancelled"


def test_what_the_user_does_to_outputs_after_the_run_is_not_recorded(path):
    result = run(design(), {"text": "a b"}, store=path)
    result.outputs["tokenize"].tokens.append("mutated")  # before the writer wrote the row
    rows = {r.task: r for r in result.store.task_runs(result.run_id)}
    assert json.loads(rows["tokenize"].output_json) == {"tokens": ["a", "b"]}


def test_runs_record_even_without_reuse_and_never_look_up(path):
    run(design(), {"text": "a b"}, store=path)
    restart()
    result = run(design(), {"text": "a b"}, store=path)  # reuse=False, the default of run()
    assert set(statuses(result).values()) == {"succeeded"}
    assert len(result.store.runs()) == 2


# -- reuse from the store -------------------------------------------------------------------


def test_after_a_restart_reuse_comes_from_the_store(path):
    run(design(), {"text": "a b c"}, reuse=True, store=path)
    assert sorted(CALLS) == ["count", "report", "side", "tokenize"]
    restart()
    CALLS.clear()
    s = design()
    result = run(s, {"text": "a b c"}, reuse=True, store=path)
    assert CALLS == []
    assert set(statuses(result).values()) == {"cached"}
    assert result.outputs["report"] == C(n=30)
    assert type(result.outputs["tokenize"]) is T
    # the hits fill the in-memory cache: the next run needs no store
    assert set(TaskRegistry.default().cache) == {("design", t.name) for t in s.tasks}
    rows = {r.task: r for r in result.store.task_runs(result.run_id)}
    assert rows["count"].status == "cached" and rows["count"].reusable
    assert json.loads(rows["count"].output_json) == {"n": 3}


def test_a_changed_input_misses_and_an_older_input_hits_again(path):
    for text in ("a b", "c d e", "a b"):
        restart()
        CALLS.clear()
        result = run(design(), {"text": text}, reuse=True, store=path)
    # the third run's input was run first: the store still has it, memory only had "c d e"
    assert CALLS == [] and result.outputs["count"] == C(n=2)


def test_editing_one_task_reruns_it_and_its_descendants_only(path):
    run(design(), {"text": "a b"}, reuse=True, store=path)
    restart()
    CALLS.clear()
    s = design()

    @s.task()
    def count(input: T) -> C:  # redefined with new code
        CALLS.append("count")
        return C(n=len(input.tokens) + 100)

    result = run(s, {"text": "a b"}, reuse=True, store=path)
    assert sorted(CALLS) == ["count", "report"]
    assert statuses(result) == {
        "tokenize": "cached", "count": "succeeded", "report": "succeeded", "side": "cached",
    }  # fmt: skip
    assert result.outputs["report"] == C(n=1020)


def test_a_stored_output_that_no_longer_validates_is_a_miss(path):
    first = run(design(), {"text": "a b"}, reuse=True, store=path)
    first.store.flush()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE task_runs SET output_json = '{\"tokens\": 5}' WHERE task = 'tokenize'")
    restart()
    CALLS.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run(design(), {"text": "a b"}, reuse=True, store=path)
    assert result.ok and CALLS == ["tokenize"]
    assert result.task_runs["tokenize"].status == "succeeded"
    assert result.task_runs["count"].status == "cached"


class Blob:
    """Not JSON: an arbitrary type in an output model."""

    def __init__(self, data: bytes) -> None:
        self.data = data


class Raw(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    blob: Blob


def test_an_output_that_is_not_json_is_recorded_not_reusable_and_reruns_alone(path):
    def build() -> State:
        s = design()

        @s.task()
        def pack(input: T) -> Raw:
            CALLS.append("pack")
            return Raw(blob=Blob(" ".join(input.tokens).encode()))

        s.get("tokenize") >> s.get("pack")
        return s

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run(build(), {"text": "a b"}, reuse=True, store=path)
    assert result.ok
    [row] = [r for r in result.store.task_runs(result.run_id) if r.task == "pack"]
    assert row.status == "succeeded" and row.output_json is None and not row.reusable
    assert row.note.startswith("output is not JSON-serialisable: PydanticSerializationError")
    assert row.output_type.endswith("test_store_runs.Raw")
    restart()
    CALLS.clear()
    result = run(build(), {"text": "a b"}, reuse=True, store=path)
    assert CALLS == ["pack"]
    assert result.ok and result.by_status("succeeded") == ["pack"]


def test_async_tasks_reuse_from_the_store_with_arun(path):
    def build() -> State:
        s = State("asyncy")

        @s.task()
        async def fetch(input: Q) -> T:
            CALLS.append("fetch")
            await asyncio.sleep(0)
            return T(tokens=input.text.split())

        return s

    asyncio.run(arun(build(), {"text": "x y"}, reuse=True, store=path))
    restart()
    CALLS.clear()
    result = asyncio.run(arun(build(), {"text": "x y"}, reuse=True, store=path))
    assert CALLS == [] and result.task_runs["fetch"].status == "cached"
    assert result.outputs["fetch"] == T(tokens=["x", "y"])


def test_an_any_output_model_comes_back_as_a_merged_input(path):
    def build() -> State:
        s = State("loose")

        @s.task()
        def anything(input: Q) -> BaseModel:
            CALLS.append("anything")
            return T(tokens=[input.text])

        @s.task()
        def after(input: T) -> C:
            CALLS.append("after")
            return C(n=len(input.tokens))

        anything >> after
        return s

    run(build(), {"text": "x"}, reuse=True, store=path)
    restart()
    CALLS.clear()
    result = run(build(), {"text": "x"}, reuse=True, store=path)
    assert CALLS == [] and result.outputs["anything"].tokens == ["x"]
    assert result.outputs["after"] == C(n=1)


def test_clear_cache_also_ends_reuse_from_the_store_but_keeps_history(path):
    run(design(), {"text": "a b"}, reuse=True, store=path)
    assert clear_cache("design", store=path) == 4
    restart()
    CALLS.clear()
    result = run(design(), {"text": "a b"}, reuse=True, store=path)
    assert sorted(CALLS) == ["count", "report", "side", "tokenize"]
    assert len(result.store.runs()) == 2
    first = result.store.runs()[1]
    assert all(not r.reusable for r in result.store.task_runs(first.run_id))


# -- which store ----------------------------------------------------------------------------


def test_the_default_store_is_next_to_the_notebook_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.chdir(tmp_path)
    result = run(design(), {"text": "a"})
    assert result.store.path == tmp_path / DEFAULT_PATH
    assert result.store.runs()[0].run_id == result.run_id


def test_the_environment_and_the_process_choice_pick_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.sqlite"))
    assert run(design(), {"text": "a"}).store.path == tmp_path / "env.sqlite"
    set_default_store(str(tmp_path / "chosen.sqlite"))  # what %germinate store PATH does
    assert run(design(), {"text": "a"}).store.path == tmp_path / "chosen.sqlite"
    assert run(design(), {"text": "a"}, store="off").store is None
    set_default_store("off")
    assert run(design(), {"text": "a"}).store is None
    assert run(design(), {"text": "a"}, store=True).store.path == tmp_path / "env.sqlite"
    monkeypatch.setenv(ENV_VAR, "off")
    set_default_store(None)
    assert run(design(), {"text": "a"}).store is None


# -- never in the way -----------------------------------------------------------------------


def test_a_corrupt_store_warns_once_and_the_run_goes_on_in_memory(path):
    path.write_bytes(b"not a database " * 300)
    with pytest.warns(StoreWarning) as caught:
        result = run(design(), {"text": "a b"}, reuse=True, store=path)
    assert [str(w.message) for w in caught] == [
        f"germinate_nb: run store {path} is not usable (file is not a database); runs go on "
        "in memory. Delete the file (it holds only run history and reusable outputs) or set "
        "GERMINATE_STORE=off."
    ]
    assert caught[0].filename == __file__  # points at the run() call
    assert result.ok and result.store is None
    CALLS.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same problem is not repeated
        again = run(design(), {"text": "a b"}, reuse=True, store=path)
    assert again.ok and set(statuses(again).values()) == {"cached"}  # in memory still


def test_a_store_locked_while_writing_warns_once_after_the_run(path):
    store = RunStore.open(path, busy_timeout=0.2, interval=0.0)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        result = run(design(), {"text": "a b"}, store=store)
        assert result.ok
        deadline = time.monotonic() + 10
        while store.usable and time.monotonic() < deadline:  # the writer gives up after 0.2 s
            time.sleep(0.01)
        assert not store.usable
        with pytest.warns(StoreWarning, match=r"stopped working \(database is locked\), 4 task"):
            again = run(design(), {"text": "a b"}, store=store)
        assert again.ok
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert run(design(), {"text": "a b"}, store=store).ok
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        store.close(warn=False)


@pytest.mark.parametrize("reuse", [False, True])
def test_the_writer_waits_for_the_run_to_end(path, reuse):
    resolve_store(path).flush()  # an idle store: nothing queued before the run
    seen: list[int] = []
    s = State("waits")

    @s.task()
    def first(input: Q) -> T:
        return T(tokens=[input.text])

    @s.task()
    def second(input: T) -> T:
        time.sleep(0.4)  # the writer gathers for 0.1 s, then waits for the run
        with sqlite3.connect(path) as conn:
            seen.append(conn.execute("SELECT COUNT(*) FROM task_runs").fetchone()[0])
        return input

    first >> second
    result = run(s, {"text": "x"}, store=path, reuse=reuse)
    assert seen == [0]
    assert [r.task for r in result.store.task_runs(result.run_id)] == ["first", "second"]


def test_rows_an_earlier_run_left_queued_are_found_by_the_next_runs_lookups(path):
    store = RunStore.open(path, interval=60.0)  # a writer that would sit on the rows a minute
    try:
        run(design(), {"text": "a b"}, store=store)
        assert store._queue  # not written yet
        restart()
        CALLS.clear()
        result = run(design(), {"text": "a b"}, reuse=True, store=store)
        assert CALLS == [] and set(statuses(result).values()) == {"cached"}
    finally:
        store.close()


def test_a_long_run_has_its_rows_written_after_max_delay(path, monkeypatch):
    monkeypatch.setattr(store_writer, "MAX_DELAY", 0.2)
    seen: list[int] = []
    s = State("long")

    @s.task()
    def first(input: Q) -> T:
        return T(tokens=[input.text])

    @s.task()
    def second(input: T) -> T:
        deadline = time.monotonic() + 10
        while not seen or not seen[-1]:  # the first row is written while this task runs
            assert time.monotonic() < deadline, "first's row was not written during the run"
            time.sleep(0.02)
            with sqlite3.connect(path) as conn:
                seen.append(conn.execute("SELECT COUNT(*) FROM task_runs").fetchone()[0])
        return input

    first >> second
    assert run(s, {"text": "x"}, store=path).ok
    assert seen[-1] == 1


def test_a_run_that_raises_before_starting_leaves_no_active_run(path):
    s = State("broken")

    @s.task()
    def needs(input: Q) -> T:
        return T(tokens=[])

    with pytest.raises(ValueError, match="cannot run"):
        run(s, {"nope": 1}, store=path)
    assert store_writer._IDLE.is_set()
    run(design(), {"text": "a"}, store=path)
    assert store_writer._IDLE.is_set()


def test_resolve_store_gives_the_store_runs_use(path):
    store = resolve_store(path)
    result = run(design(), {"text": "a"}, store=str(path))
    assert result.store is store


# -- history as RunResults ------------------------------------------------------------------


def test_a_past_run_loads_back_as_a_run_result_after_a_restart(path):
    live = run(design(fail="count"), {"text": "a b"}, store=path)
    restart()
    s = design()
    past = live.store.load_result(live.run_id[:5], state=s)
    assert past.run_id == live.run_id and past.store is live.store
    assert (past.state, past.status) == ("design", "failed")
    assert past.duration == pytest.approx(live.duration, abs=0.05)
    assert list(past.task_runs) == ["tokenize", "count", "report", "side"]  # declared order
    assert statuses(past) == statuses(live)
    assert type(past.outputs["tokenize"]) is T and past.outputs["tokenize"] == T(tokens=["a", "b"])
    count = past.task_runs["count"]
    assert (count.error.type, count.error.message) == ("ValueError", "boom in count")
    assert count.error.traceback.startswith("Traceback (most recent call last):")
    assert count.error.traceback == live.task_runs["count"].error.traceback
    assert past.task_runs["report"].skipped_because == "count"
    assert past.task_runs["tokenize"].log == "splitting 'a b'\n"
    assert past.task_runs["side"].start_time == live.task_runs["side"].start_time
    loose = live.store.load_result(live.run_id)  # without the state: fields as they were
    assert loose.outputs["side"].tokens == ["a", "b"] and type(loose.outputs["side"]) is not T
    assert live.store.load_result("nope") is None
    assert "Run of design: failed" in past._repr_html_()
