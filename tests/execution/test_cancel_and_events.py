import asyncio
import os
import signal
import threading
import time

import pytest

from germinate_nb import Depends, State, TaskStatus, run, start_run
from tests.execution.conftest import X


def chain_state(kind, seconds):
    s = State(f"slow_{kind}")

    if kind == "async":

        @s.task()
        async def slow(input: X) -> X:
            await asyncio.sleep(seconds)
            return input

    else:

        @s.task()
        def slow(input: X) -> X:
            time.sleep(seconds)
            return input

    @s.task()
    def after(input: X) -> X:
        return input

    slow >> after
    return s


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_cancel_stops_running_and_pending_tasks(kind):
    s = chain_state(kind, 1.0)
    handle = start_run(s, {"x": 1})
    time.sleep(0.2)
    assert not handle.done
    t0 = time.perf_counter()
    handle.cancel()
    result = handle.wait(5)
    assert time.perf_counter() - t0 < 0.5
    assert result is not None and handle.done
    assert result.status == "cancelled"
    assert result.task_runs["slow"].status is TaskStatus.CANCELLED
    assert result.task_runs["after"].status is TaskStatus.CANCELLED
    time.sleep(1.0)  # the sync thread finishes now: its output must be discarded
    assert result.task_runs["slow"].status is TaskStatus.CANCELLED
    assert result.task_runs["slow"].output is None


def test_cancelled_async_task_sees_cancellation():
    s = State("s")
    seen = []

    @s.task()
    async def slow(input: X) -> X:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return input

    handle = start_run(s, {"x": 1})
    time.sleep(0.2)
    handle.cancel()
    handle.wait(5)
    assert seen == ["cancelled"]


def test_start_run_returns_at_once():
    s = chain_state("sync", 1.0)
    t0 = time.perf_counter()
    handle = start_run(s, {"x": 1})
    assert time.perf_counter() - t0 < 0.3
    assert handle.wait(0.05) is None
    assert handle.result.task_runs["slow"].status is TaskStatus.RUNNING
    handle.cancel()
    handle.wait(5)


def test_wait_returns_finished_result():
    s = chain_state("sync", 0.05)
    handle = start_run(s, {"x": 3})
    result = handle.wait(5)
    assert result.ok and result.outputs["after"] == X(x=3)


def test_keyboard_interrupt_cancels_and_reraises(fresh_registry):
    s = chain_state("sync", 2.0)
    # a real SIGINT, as a kernel interrupt sends
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run(s, {"x": 1})
    assert time.perf_counter() - t0 < 1.5
    result = fresh_registry.last_results[s.name]
    assert result.status == "cancelled"
    assert {r.status for r in result.task_runs.values()} == {TaskStatus.CANCELLED}


def test_keyboard_interrupt_inside_inline_task():
    s = State("s")

    @s.task()
    def a(input: X) -> X:
        raise KeyboardInterrupt

    @s.task()
    def b(input: X) -> X:
        return input

    a >> b
    with pytest.raises(KeyboardInterrupt):
        run(s, {"x": 1}, max_workers=1)
    result = s.registry.last_results["s"]
    assert result.task_runs["a"].status is TaskStatus.CANCELLED
    assert result.task_runs["b"].status is TaskStatus.CANCELLED


class Recorder:
    def __init__(self):
        self.events = []

    def on_run_start(self, result):
        self.events.append(("run_start", None, None))

    def on_task_start(self, result, task_run):
        self.events.append(("task_start", task_run.name, task_run.status.value))

    def on_task_end(self, result, task_run):
        self.events.append(("task_end", task_run.name, task_run.status.value))

    def on_run_end(self, result):
        self.events.append(("run_end", None, result.status))


def test_observer_sees_events_in_order():
    s = State("s")

    @s.task()
    def a(input: X) -> X:
        return input

    @s.task()
    def b(input: X) -> X:
        raise ValueError("no")

    @s.task()
    def c(input: X) -> X:
        return input

    a >> b >> c
    rec = Recorder()
    run(s, {"x": 1}, observers=[rec])
    assert rec.events == [
        ("run_start", None, None),
        ("task_start", "a", "running"),
        ("task_end", "a", "succeeded"),
        ("task_start", "b", "running"),
        ("task_end", "b", "failed"),
        ("task_end", "c", "skipped"),
        ("run_end", None, "failed"),
    ]


def test_partial_observer_and_callable_observer():
    s = State("s")

    @s.task()
    def a(input: X) -> X:
        return input

    class OnlyEnd:
        def __init__(self):
            self.seen = []

        def on_task_end(self, result, task_run):
            self.seen.append(task_run.name)

    calls = []
    only = OnlyEnd()
    run(s, {"x": 1}, observers=[only, lambda ev, res, tr: calls.append(ev)])
    assert only.seen == ["a"]
    assert calls == ["run_start", "task_start", "task_end", "run_end"]


def test_observer_exception_is_contained_and_reported(caplog):
    s = State("s")

    @s.task()
    def a(input: X) -> X:
        return input

    class Broken:
        def on_task_end(self, result, task_run):
            raise RuntimeError("observer broke")

    result = run(s, {"x": 1}, observers=[Broken()])
    assert result.ok
    assert result.observer_errors == [
        "observer Broken.on_task_end raised RuntimeError: observer broke"
    ]
    assert "observer broke" in caplog.text


def test_observer_called_from_background_thread_for_start_run():
    s = State("s")

    @s.task()
    def a(input: X) -> X:
        return input

    threads = []
    handle = start_run(
        s, {"x": 1}, observers=[lambda ev, res, tr: threads.append(threading.current_thread())]
    )
    handle.wait(5)
    assert threads and all(t is not threading.main_thread() for t in threads)


def test_depends_resolved_once_per_run_and_shared():
    s = State("s")
    made = []

    def make_client():
        made.append(1)
        return object()

    got = []

    @s.task()
    def a(input: X, client=Depends(make_client)) -> X:
        got.append(client)
        return input

    @s.task()
    def b(input: X, client=Depends(make_client)) -> X:
        got.append(client)
        return input

    run(s, {"x": 1})
    assert len(made) == 1 and got[0] is got[1]
    run(s, {"x": 1})
    assert len(made) == 2 and got[2] is not got[0]


def test_a_single_observer_without_a_list_is_accepted():
    s = State("single")

    @s.task()
    def a(input: X) -> X:
        return input

    seen = []
    run(s, {"x": 1}, observers=lambda ev, res, tr: seen.append(ev))
    rec = Recorder()
    run(s, {"x": 1}, observers=rec)
    assert seen[0] == "run_start" and rec.events[-1][0] == "run_end"
