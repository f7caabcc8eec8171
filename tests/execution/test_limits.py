"""Concurrency limits: never more than N tasks of a limit at once, across sync and async."""

from __future__ import annotations

import time

import pytest
from pydantic import BaseModel

from germinate_nb import Schedule, State, TaskStatus, run, start_run
from tests.execution.limits_helpers import Go, limited_state, most_in_flight


@pytest.mark.parametrize("kind", ["sync", "async", "mixed"])
def test_a_limit_of_two_never_has_more_than_two_in_flight(kind):
    s = limited_state(f"lim_{kind}", kind=kind)
    result = run(s, {"seconds": 0.03}, echo=False, limits={"api": 2})
    assert result.ok
    spans = list(result.outputs.values())
    assert len(spans) == 20
    assert most_in_flight(spans) == 2


def test_without_a_count_a_limit_is_unlimited():
    s = limited_state("lim_none", n=8)
    result = run(s, {"seconds": 0.1}, echo=False)
    assert most_in_flight(list(result.outputs.values())) > 2


def test_limited_tasks_and_others_mix():
    s = limited_state("lim_mix", n=6)

    class Out(BaseModel):
        ok: bool

    @s.task()
    def free(input: Go) -> Out:
        return Out(ok=True)

    result = run(s, {"seconds": 0.02}, echo=False, limits={"api": 1})
    assert result.ok and result.task_runs["free"].status is TaskStatus.SUCCEEDED
    spans = [o for n, o in result.outputs.items() if n != "free"]
    assert most_in_flight(spans) == 1


def test_tasks_waiting_on_a_limit_are_visible_while_the_run_goes_on():
    s = limited_state("lim_wait", n=6)
    handle = start_run(s, {"seconds": 0.3}, limits={"api": 2})
    time.sleep(0.1)
    result = handle.result
    waiting = [n for n, tr in result.task_runs.items() if tr.waiting_for_limit]
    assert len(waiting) == 4
    assert result.limits == {"api": (2, 2)}
    assert result.waiting_note(waiting[0]) == "waiting (api 2/2)"
    assert result.task_runs[waiting[0]].status is TaskStatus.PENDING
    handle.wait(5)
    assert not any(tr.waiting_for_limit for tr in result.task_runs.values())
    assert result.ok and result.limits == {"api": (0, 2)}


def test_retries_keep_their_limit_slot_and_limits_hold_with_retries():
    s = State("lim_retry")
    calls: dict[str, int] = {}
    for i in range(6):

        def body(input: Go, _n=f"t{i}") -> Go:  # noqa: PT028
            calls[_n] = calls.get(_n, 0) + 1
            if calls[_n] == 1:
                raise ConnectionError("first call fails")
            return input

        body.__name__ = f"t{i}"
        s.task(limit="api", retries=1, retry_delay=0.01)(body)
    result = run(s, {}, echo=False, limits={"api": 2})
    assert result.ok and all(c == 2 for c in calls.values())


def test_schedule_limits_release_in_order_and_cancel_clears_them():
    names = ["a", "b", "c", "d"]
    s = Schedule(
        names,
        dict.fromkeys(names, ()),
        dict.fromkeys(names, ()),
        limit_of={"a": "x", "b": "x", "c": "x"},
        capacity={"x": 1},
    )
    assert s.take_ready() == ["a", "d"]
    assert s.take_blocked() == ["b", "c"] and s.take_blocked() == []
    assert s.waiting_on("b") == ("x", 1, 1) and s.waiting_on("d") is None
    s.failed("a")
    assert s.take_ready() == ["b"]
    assert s.usage() == {"x": (1, 1)}
    never, running = s.cancel()
    assert never == ["c"] and sorted(running) == ["b", "d"]
    assert s.waiting_on("c") is None


def test_status_line_and_details_show_attempts_and_limits():
    from germinate_nb.notebook.details import CAP, _attempts_table, _Cutter
    from germinate_nb.notebook.status import describe_run

    s = limited_state("lim_show", n=3)
    handle = start_run(s, {"seconds": 0.3}, limits={"api": 1})
    time.sleep(0.1)
    statuses = {n: tr.status.value for n, tr in handle.result.task_runs.items()}
    line = describe_run(handle.result, statuses, 3)
    assert "2 waiting (api 1/1)" in line
    handle.cancel()

    r = State("show_retry")
    calls = []

    @r.task(retries=2, retry_delay=0)
    def fetch(input: Go) -> Go:
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionError("reset by peer")
        return input

    result = run(r, {}, echo=False)
    tr = result.task_runs["fetch"]
    assert tr.note == "attempt 2/3"
    table = _attempts_table(tr, _Cutter(CAP))
    assert "1/3</td><td>failed" in table and "ConnectionError: reset by peer" in table
    assert "2/3</td><td>succeeded" in table
