"""What tasks print and log lands in their TaskRun.log, per task, never mixed."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading

import pytest

from germinate_nb import Depends, State, TaskStatus, current_task, run, start_run
from germinate_nb.execution import logs
from tests.execution.conftest import X


@pytest.fixture(autouse=True)
def _restore_streams():
    yield
    logs.uninstall()


def chatty_state(kind: str, n: int = 4) -> State:
    s = State(f"chatty_{kind}")
    barrier = threading.Barrier(n) if kind == "sync" else None

    for i in range(n):
        name = f"t{i}"
        if kind == "sync":

            def fn(input: X, i=i) -> X:
                barrier.wait(5)  # all running at once: their lines interleave in time
                for k in range(20):
                    print(f"task {i} line {k}")
                    logging.getLogger("chatty").warning("task %d warns %d", i, k)
                return input

        else:

            async def fn(input: X, i=i) -> X:
                for k in range(20):
                    print(f"task {i} line {k}")
                    logging.getLogger("chatty").warning("task %d warns %d", i, k)
                    await asyncio.sleep(0)
                return input

        fn.__name__ = name
        s.task()(fn)
    return s


def _expected(i: int) -> str:
    return "".join(f"task {i} line {k}\nWARNING chatty: task {i} warns {k}\n" for k in range(20))


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_concurrent_tasks_keep_their_own_prints_and_log_records(kind):
    result = start_run(chatty_state(kind), {"x": 1}).wait(10)
    assert result.ok
    for i in range(4):
        assert result.task_runs[f"t{i}"].log == _expected(i)


def test_a_run_started_from_a_cell_still_shows_the_output_there(capsys):
    s = State("s")

    @s.task()
    def hello(input: X) -> X:
        print("hello from the task")
        print("and its stderr", file=sys.stderr)
        return input

    result = run(s, {"x": 1})
    out, err = capsys.readouterr()
    assert "hello from the task" in out and "and its stderr" in err
    assert result.task_runs["hello"].log == "hello from the task\nand its stderr\n"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_echoed_output_keeps_whole_lines_and_a_task_end_writes_its_partial_line(kind, capsys):
    s = chatty_state(kind)

    @s.task()
    def partial(input: X) -> X:
        print("no newline", end="")
        return input

    @s.task()
    def after(input: X) -> X:
        print("after it")
        return input

    [s.get(f"t{i}") for i in range(4)] >> partial >> after
    result = start_run(s, {"x": 1}, echo=True).wait(10)
    assert result.ok
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    for i in range(4):  # whole lines, each labelled with its task, in the task's order
        assert [line for line in lines if line.startswith(f"[t{i}] ")] == [
            f"[t{i}] task {i} line {k}" for k in range(20)
        ]
    # partial's end wrote its text and ended its line before after ran
    assert out.endswith("[partial] no newline\n[after] after it\n")
    assert result.task_runs["partial"].log == "no newline"  # the log keeps the text as written


def test_echoed_progress_bars_and_failures_keep_their_label(capsys):
    s = State("progress")

    @s.task()
    def progress(input: X) -> X:
        for pct in (0, 50, 100):
            print(f"\r{pct}%", end="", flush=True)  # a progress bar redrawing its line
        print()
        print("a\n\nb")
        return input

    @s.task()
    def bad(input: X) -> X:
        print("half", end="")
        raise ValueError("broken")

    progress >> bad
    result = run(s, {"x": 1}, echo=True, max_workers=1)
    assert result.task_runs["bad"].status is TaskStatus.FAILED
    out, _ = capsys.readouterr()
    assert out == (
        "[progress] \r[progress] 0%\r[progress] 50%\r[progress] 100%\n"
        "[progress] a\n\n[progress] b\n"
        "[bad] half\n"
    )
    assert result.task_runs["progress"].log == "\r0%\r50%\r100%\na\n\nb\n"


def test_a_background_run_keeps_output_out_of_the_cell(capsys):
    s = State("s")

    @s.task()
    def hello(input: X) -> X:
        print("only in the log")
        return input

    result = start_run(s, {"x": 1}).wait(5)
    assert "only in the log" not in capsys.readouterr().out
    assert result.task_runs["hello"].log == "only in the log\n"


def _client():
    print("factory connecting")
    return "client"


def test_depends_factories_log_into_the_task_that_resolves_them():
    s = State("s")

    @s.task()
    def uses(input: X, client=Depends(_client)) -> X:
        print(f"got {client}")
        return input

    result = start_run(s, {"x": 1}).wait(5)
    assert result.task_runs["uses"].log == "factory connecting\ngot client\n"


def test_the_log_is_readable_live_while_the_task_runs():
    s = State("s")
    printed, release = threading.Event(), threading.Event()

    @s.task()
    def slow(input: X) -> X:
        print("step 1 done")
        printed.set()
        release.wait(5)
        print("step 2 done")
        return input

    handle = start_run(s, {"x": 1})
    assert printed.wait(5)
    assert handle.result.task_runs["slow"].live_log == "step 1 done\n"
    release.set()
    result = handle.wait(5)
    assert result.task_runs["slow"].log == "step 1 done\nstep 2 done\n"
    assert result.task_runs["slow"].live_log == result.task_runs["slow"].log


def test_a_huge_log_is_bounded_with_a_note():
    s = State("s")

    @s.task()
    def loud(input: X) -> X:
        for _ in range(20_000):
            print("x" * 20)
        return input

    log = start_run(s, {"x": 1}).wait(10).task_runs["loud"].log
    assert len(log) < logs.DEFAULT_LIMIT + 100
    assert "characters truncated]" in log


def test_a_failed_task_traceback_starts_with_the_user_frame():
    s = State("s")

    @s.task()
    def fact_check(input: X) -> X:
        raise ValueError("moon is not a planet")

    error = run(s, {"x": 1}).task_runs["fact_check"].error
    assert "germinate_nb frame" in error.traceback and "hidden" in error.traceback
    assert "germinate_nb/execution" not in error.traceback
    assert 'in fact_check\n    raise ValueError("moon is not a planet")' in error.traceback
    assert error.traceback.rstrip().endswith("ValueError: moon is not a planet")
    assert "germinate_nb/execution/invoke.py" in error.full_traceback


def test_current_task_works_inside_a_capture_block_of_the_task():
    s = State("s")
    seen = []

    @s.task()
    def inner(input: X) -> X:
        own = logs.TaskLog()
        with logs.capture(own):
            seen.append(current_task().name)
            print("to my own log")
        seen.append(own.text)
        return input

    run(s, {"x": 1})
    assert seen == ["inner", "to my own log\n"]


@pytest.mark.parametrize("max_workers", [1, None])
def test_a_timed_out_task_shows_its_last_partial_line_at_once(max_workers, capsys):
    s = State("hang")
    release = threading.Event()

    @s.task(timeout=0.2)
    def hang(input: X) -> X:
        print("connecting...", end="")
        release.wait(5)
        return input

    result = run(s, {"x": 1}, echo=True, max_workers=max_workers)
    out, _ = capsys.readouterr()
    release.set()
    assert result.task_runs["hang"].status is TaskStatus.FAILED
    assert out == "[hang] connecting...\n"  # shown when the run gave up on it
