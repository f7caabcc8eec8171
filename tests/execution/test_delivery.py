"""How outcomes reach the run: batched inline and per loop turn, never late or lost."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from germinate_nb import State, TaskExecutor, TaskStatus, run, start_run
from germinate_nb.execution import runner
from germinate_nb.execution.local import BATCH_SECONDS, LoopThread
from tests.execution.conftest import X


class Events:
    def __init__(self):
        self.ends: list[str] = []
        self.threads: set[str] = set()

    def on_task_end(self, result, task_run):
        self.ends.append(task_run.name)
        self.threads.add(threading.current_thread().name)


def test_inline_run_delivers_every_outcome_once_in_batches(monkeypatch):
    s = State("fan")

    @s.task()
    def root(input: X) -> X:
        return input

    leaves = []
    for i in range(200):

        def leaf(input: X, i: int = i) -> X:
            return X(x=input.x + i)

        ex = TaskExecutor(f"leaf{i}_executor", leaf, input_schema=X, output_schema=X)
        leaves.append(s.define_task(f"leaf{i}", ex))
    for leaf_task in leaves:
        root >> leaf_task
    delivered: list[int] = []  # the size of each batch of outcomes the run applied
    real = runner.Run._apply_batch

    def counting(self, batch):
        delivered.append(len(batch))
        return real(self, batch)

    monkeypatch.setattr(runner.Run, "_apply_batch", counting)
    events = Events()
    result = run(s, {"x": 1}, max_workers=1, observers=[events])
    assert result.ok, result.counts()
    assert sorted(events.ends) == sorted(result.task_runs)  # each task's end once
    assert [result.outputs[f"leaf{i}"].x for i in (0, 7, 199)] == [1, 8, 200]
    # the 200 leaves became ready together: far fewer hand-overs than tasks
    assert 0 < len([n for n in delivered if n]) < 50, delivered


def test_an_inline_outcome_is_not_held_while_a_long_task_runs():
    s = State("s")
    slow_started = threading.Event()

    @s.task()
    def quick(input: X) -> X:
        return input

    @s.task()
    def slow(input: X) -> X:
        slow_started.set()
        time.sleep(1.0)
        return input

    handle = start_run(s, {"x": 1}, max_workers=1)
    assert slow_started.wait(5)
    # quick ended before slow started: its status must not wait for slow's second
    deadline = time.monotonic() + 0.5
    status = handle.result.task_runs["quick"].status
    while status is not TaskStatus.SUCCEEDED and time.monotonic() < deadline:
        time.sleep(BATCH_SECONDS)
        status = handle.result.task_runs["quick"].status
    assert status is TaskStatus.SUCCEEDED
    assert handle.result.task_runs["slow"].status is TaskStatus.RUNNING
    result = handle.wait(10)
    assert result is not None and result.ok


def test_ctrl_c_in_an_inline_task_keeps_what_ended_before_it():
    s = State("s")

    @s.task()
    def a(input: X) -> X:
        return input

    @s.task()
    def b(input: X) -> X:
        return input

    @s.task()
    def c(input: X) -> X:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(s, {"x": 1}, max_workers=1)
    result = s.registry.last_results["s"]
    assert result.task_runs["a"].status is TaskStatus.SUCCEEDED
    assert result.task_runs["b"].status is TaskStatus.SUCCEEDED
    assert result.task_runs["c"].status is TaskStatus.CANCELLED
    assert result.status == "cancelled"


def test_async_outcomes_of_one_loop_turn_go_together_and_all_arrive():
    s = State("s")
    roots = []
    for i in range(50):

        async def root(input: X, i: int = i) -> X:
            await asyncio.sleep(0.01)
            return X(x=i)

        ex = TaskExecutor(f"r{i}_executor", root, input_schema=X, output_schema=X)
        roots.append(s.define_task(f"r{i}", ex))
    events = Events()
    result = run(s, {"x": 0}, observers=[events])
    assert result.ok, result.counts()
    assert sorted(events.ends) == sorted(result.task_runs)
    assert {result.outputs[f"r{i}"].x for i in range(50)} == set(range(50))


def test_the_run_loop_wakes_for_timers_on_time_and_for_io_at_once():
    thread = LoopThread()
    loop = thread.loop
    try:

        async def slept(seconds: float) -> float:
            t0 = time.perf_counter()
            await asyncio.sleep(seconds)
            return time.perf_counter() - t0

        for seconds in (0.0004, 0.0025, 0.0101):
            took = asyncio.run_coroutine_threadsafe(slept(seconds), loop).result(5)
            assert took >= seconds  # never early, at any part of a millisecond

        a, b = socket.socketpair()
        try:

            async def read_one() -> float:
                t0 = time.perf_counter()
                await loop.sock_recv(a, 1)
                return time.perf_counter() - t0

            future = asyncio.run_coroutine_threadsafe(read_one(), loop)
            time.sleep(0.05)
            sent = time.perf_counter()
            b.send(b"x")
            future.result(5)
            assert time.perf_counter() - sent < 0.5  # IO wakes the loop, no timer needed
        finally:
            a.close()
            b.close()
    finally:
        thread.stop()
