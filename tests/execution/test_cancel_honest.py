"""Cancelling sync tasks honestly: a cooperative signal, and tasks still running are named."""

from __future__ import annotations

import threading
import time

import pytest

from germinate_nb import GerminateError, State, TaskStatus, current_task, start_run
from germinate_nb.execution.result import RunResult
from tests.execution.conftest import X


def _until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("max_workers", [None, 1])
def test_a_sync_task_that_ignores_cancel_is_named_as_still_running(max_workers):
    s = State("s")
    release = threading.Event()
    started = threading.Event()

    @s.task()
    def crawl(input: X) -> X:
        started.set()
        release.wait(30)  # never looks at the cancel signal
        return input

    @s.task()
    def after(input: X) -> X:
        return input

    crawl >> after
    handle = start_run(s, {"x": 1}, max_workers=max_workers)
    assert started.wait(5)
    t0 = time.perf_counter()
    handle.cancel()
    result = handle.wait(5)
    assert result is not None, "wait() must return promptly after cancel()"
    assert time.perf_counter() - t0 < 1.0
    assert result.status == "cancelled"
    assert result.background == ["crawl"]
    assert result.background_note == "1 task still running in the background: crawl"
    assert "1 task still running in the background: crawl" in repr(result)
    assert result.task_runs["crawl"].background is True
    assert result.task_runs["after"].status is TaskStatus.CANCELLED
    release.set()  # the thread ends: its late result is discarded, the note goes away
    assert _until(lambda: result.background == [])
    assert result.task_runs["crawl"].status is TaskStatus.CANCELLED
    assert result.task_runs["crawl"].output is None


def test_a_cooperative_sync_task_stops_on_the_cancel_signal():
    s = State("s")
    started = threading.Event()
    seen = []

    @s.task()
    def poll(input: X) -> X:
        ctx = current_task()
        started.set()
        while not ctx.wait(0.02):
            pass
        seen.append(ctx.cancelled)
        ctx.raise_if_cancelled()
        return input

    handle = start_run(s, {"x": 1})
    assert started.wait(5)
    handle.cancel()
    result = handle.wait(5)
    assert result.task_runs["poll"].status is TaskStatus.CANCELLED
    assert _until(lambda: result.background == [])
    assert seen == [True]


def test_current_task_names_the_task_and_run():
    s = State("s")
    seen = {}

    @s.task()
    def who(input: X) -> X:
        ctx = current_task()
        seen.update(name=ctx.name, state=ctx.state, run_id=ctx.run_id, cancelled=ctx.cancelled)
        return input

    result = start_run(s, {"x": 1}).wait(5)
    assert seen == {"name": "who", "state": "s", "run_id": result.run_id, "cancelled": False}


def test_current_task_outside_a_task_is_a_clear_error():
    with pytest.raises(GerminateError, match=r"current_task\(\) is only available while a task"):
        current_task()


def test_cancel_after_the_end_changes_nothing(design):
    handle = start_run(design, {"text": "a b"})
    result = handle.wait(5)
    handle.cancel()
    assert result.ok and result.background == []


def test_the_background_note_names_a_task_once_with_its_attempts():
    result = RunResult("s", {}, background=["slow", "slow", "slow", "crawl"])
    assert result.background_note == (
        "2 tasks still running in the background: slow (3 attempts), crawl"
    )
