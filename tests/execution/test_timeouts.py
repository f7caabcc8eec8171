"""Timeouts: an attempt past its timeout fails with TaskTimeoutError, then may be retried."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from pydantic import BaseModel

from germinate_nb import State, TaskStatus, TaskTimeoutError, run
from germinate_nb.errors import GerminateError


class N(BaseModel):
    n: int


def test_task_timeout_error_is_a_timeout_error_and_a_germinate_error():
    assert issubclass(TaskTimeoutError, TimeoutError)
    assert issubclass(TaskTimeoutError, GerminateError)


def test_async_task_past_its_timeout_is_cancelled_and_fails():
    s = State("async_timeout")
    cancelled = threading.Event()

    @s.task(timeout=0.2)
    async def slow(input: N) -> N:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return input

    @s.task()
    def after(input: N) -> N:
        return input

    slow >> after
    t0 = time.perf_counter()
    result = run(s, {"n": 1}, echo=False)
    assert time.perf_counter() - t0 < 1.5
    tr = result.task_runs["slow"]
    assert tr.status is TaskStatus.FAILED and tr.error.type == "TaskTimeoutError"
    assert tr.error.message == (
        "task 'slow' in state 'async_timeout' timed out: attempt 1 ran past its timeout of "
        "0.2 s and was cancelled. Raise timeout= if the task needs longer."
    )
    assert result.task_runs["after"].status is TaskStatus.SKIPPED
    assert cancelled.wait(2) and not result.background
    assert tr.attempts[0].status == "timed out"
    assert tr.lane == "event loop"


def test_sync_task_past_its_timeout_is_abandoned_its_late_result_discarded():
    s = State("sync_timeout")
    finished = threading.Event()

    @s.task(timeout=0.2)
    def stuck(input: N) -> N:
        time.sleep(1.0)
        finished.set()
        return N(n=99)

    @s.task()
    def other(input: N) -> N:
        return N(n=input.n + 1)

    t0 = time.perf_counter()
    result = run(s, {"n": 1}, echo=False)
    took = time.perf_counter() - t0
    assert took < 0.8, took
    tr = result.task_runs["stuck"]
    assert tr.status is TaskStatus.FAILED and tr.background
    assert result.background == ["stuck"]
    with pytest.raises(TimeoutError, match=r"task 'stuck' in state 'sync_timeout' timed out"):
        raise TaskTimeoutError(tr.error.message, task="stuck", timeout=0.2)
    assert "attempt 1 ran past its timeout of 0.2 s" in tr.error.message
    assert "its thread goes on in the background; its result will be discarded" in tr.error.message
    assert result.task_runs["other"].output == N(n=2)
    assert finished.wait(3)
    time.sleep(0.1)
    assert tr.output is None and tr.status is TaskStatus.FAILED  # the late result was discarded
    assert result.background == []  # the thread ended


def test_timed_out_attempts_are_retried_and_can_succeed():
    s = State("timeout_retry")
    calls = []

    @s.task(timeout=0.2, retries=2, retry_delay=0.01, retry_on=TimeoutError)
    async def sometimes_slow(input: N) -> N:
        calls.append(1)
        if calls.count(1) < 3:
            await asyncio.sleep(5)
        return N(n=calls.count(1))

    @s.task(timeout=0.2, retries=1, retry_delay=0.01)
    def sync_slow_once(input: N) -> N:
        calls.append(2)
        if calls.count(2) == 1:
            time.sleep(0.6)
            return N(n=-1)
        return N(n=7)

    result = run(s, {"n": 1}, echo=False)
    assert result.ok, result
    assert result.outputs["sometimes_slow"] == N(n=3)
    assert result.outputs["sync_slow_once"] == N(n=7)
    statuses = [a.status for a in result.task_runs["sometimes_slow"].attempts]
    assert statuses == ["timed out", "timed out", "succeeded"]
    time.sleep(0.6)
    assert result.outputs["sync_slow_once"] == N(n=7)  # the first attempt's late result ignored


def test_run_wide_timeout_and_a_pool_that_is_not_exhausted_by_stuck_threads():
    s = State("many_stuck")
    release = threading.Event()

    for i in range(4):

        def stuck(input: N, _i=i) -> N:  # noqa: PT028
            release.wait(5)
            return input

        stuck.__name__ = f"stuck{i}"
        s.task()(stuck)

    @s.task(timeout=5)
    def fine(input: N) -> N:
        return N(n=5)

    t0 = time.perf_counter()
    result = run(s, {"n": 1}, echo=False, timeout=0.2, max_workers=2)
    took = time.perf_counter() - t0
    release.set()
    assert took < 1.5, took  # two slots, four stuck threads abandoned: the run still ends
    assert result.outputs["fine"] == N(n=5)
    assert sorted(result.by_status("failed")) == [f"stuck{i}" for i in range(4)]


def test_inline_runs_give_up_on_a_sync_task_past_its_timeout():
    # max_workers=1 runs tasks one at a time in the calling thread; a task with a timeout runs
    # on a worker thread meanwhile, so the timeout can give up on it and the run go on
    s = State("inline_timeout")
    finished = threading.Event()
    lanes: dict[str, str] = {}

    @s.task(timeout=0.2)
    def stuck(input: N) -> N:
        lanes["stuck"] = threading.current_thread().name
        time.sleep(1.0)
        finished.set()
        return N(n=99)

    @s.task()
    def quick(input: N) -> N:
        lanes["quick"] = threading.current_thread().name
        return N(n=input.n + 1)

    @s.task(timeout=5)
    def timed_but_quick(input: N) -> N:
        return N(n=input.n + 2)

    stuck >> quick
    t0 = time.perf_counter()
    result = run(s, {"n": 1}, echo=False, max_workers=1)
    took = time.perf_counter() - t0
    assert took < 0.8, took
    tr = result.task_runs["stuck"]
    assert tr.status is TaskStatus.FAILED and tr.background
    assert "its thread goes on in the background; its result will be discarded" in tr.error.message
    assert result.task_runs["quick"].status is TaskStatus.SKIPPED
    assert result.outputs["timed_but_quick"] == N(n=3)
    assert lanes["stuck"] != threading.current_thread().name
    assert tr.lane == lanes["stuck"]  # the thread it was given up on (the timeline's row)
    assert finished.wait(3)
    time.sleep(0.1)
    assert tr.output is None and result.background == []  # late result discarded, thread ended


def test_inline_timed_out_attempt_is_retried():
    s = State("inline_timeout_retry")
    calls: list[int] = []

    @s.task(timeout=0.2, retries=1, retry_delay=0.01)
    def slow_once(input: N) -> N:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.6)
            return N(n=-1)
        return N(n=7)

    @s.task()
    def child(input: N) -> N:
        return N(n=input.n * 2)

    slow_once >> child
    t0 = time.perf_counter()
    result = run(s, {"n": 1}, echo=False, max_workers=1)
    took = time.perf_counter() - t0
    assert result.ok, result
    assert took < 0.5, took  # the retry did not wait for the first attempt's 0.6 s
    assert result.outputs["child"] == N(n=14)
    assert [a.status for a in result.task_runs["slow_once"].attempts] == ["timed out", "succeeded"]
    time.sleep(0.6)
    assert result.outputs["slow_once"] == N(n=7)  # the abandoned attempt's late result ignored


@pytest.mark.parametrize("max_workers", [1, None])
def test_a_task_that_ended_in_time_is_not_timed_out_while_its_outcome_is_on_its_way(
    max_workers, monkeypatch
):
    from germinate_nb.execution.runner import Run

    deliver = Run.deliver

    def late_deliver(self, outcome):  # the outcome reaches the run after the timeout is due
        time.sleep(0.3)
        deliver(self, outcome)

    monkeypatch.setattr(Run, "deliver", late_deliver)
    s = State("in_time")

    @s.task(timeout=0.2)
    def quick(input: N) -> N:
        time.sleep(0.05)
        return N(n=input.n + 1)

    result = run(s, {"n": 1}, echo=False, max_workers=max_workers)
    assert result.ok, result.task_runs["quick"].error
    assert result.outputs["quick"] == N(n=2)
