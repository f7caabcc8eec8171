"""Schedule: the pure state machine of a run, tested without threads, clocks or sleeps."""

from __future__ import annotations

import pytest

from germinate_nb.errors import ScheduleError
from germinate_nb.execution.schedule import Schedule


def make(edges, names=None, phases=None):
    names = names or sorted({n for e in edges for n in e})
    parents = {n: tuple(a for a, b in edges if b == n) for n in names}
    children = {n: tuple(b for a, b in edges if a == n) for n in names}
    return Schedule(names, parents, children, phases=phases)


DIAMOND = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]


def test_tasks_become_ready_when_all_parents_succeeded():
    s = make(DIAMOND)
    assert s.take_ready() == ["a"]
    assert s.take_ready() == []  # taken once
    s.succeeded("a")
    assert s.take_ready() == ["b", "c"]
    s.succeeded("b")
    assert s.take_ready() == []  # d still waits for c
    s.succeeded("c")
    assert s.take_ready() == ["d"]
    s.succeeded("d")
    assert not s.is_active()
    assert [s.status(n) for n in "abcd"] == ["succeeded"] * 4


def test_failure_skips_every_pending_descendant_at_once():
    s = make([*DIAMOND, ("d", "e"), ("x", "y")], names=["a", "b", "c", "d", "e", "x", "y"])
    assert s.take_ready() == ["a", "x"]
    s.succeeded("a")
    assert s.take_ready() == ["b", "c"]
    assert s.failed("b") == ["d", "e"]
    assert s.status("d") == "skipped"
    s.succeeded("c")
    assert s.take_ready() == []  # d is skipped, not ready
    assert s.is_active()  # x is still running
    s.succeeded("x")
    assert s.take_ready() == ["y"]
    s.succeeded("y")
    assert not s.is_active()


def test_phases_hold_a_ready_task_until_the_earlier_phase_ends():
    edges = [("a", "b"), ("c", "d"), ("d", "e")]
    s = make(edges, names=["a", "b", "c", "d", "e"], phases=[["a", "c"], ["b", "d"], ["e"]])
    assert s.take_ready() == ["a", "c"]
    s.succeeded("a")
    assert s.take_ready() == []  # b must wait for the whole first phase (c)
    s.succeeded("c")
    assert s.take_ready() == ["b", "d"]
    s.succeeded("d")
    assert s.take_ready() == []  # e waits for b
    s.succeeded("b")
    assert s.take_ready() == ["e"]


def test_skipped_tasks_count_towards_their_phase():
    s = make([("a", "b"), ("c", "d")], names=["a", "b", "c", "d"], phases=[["a", "c"], ["b", "d"]])
    s.take_ready()
    s.failed("a")  # b is skipped: phase 2 is only d
    s.succeeded("c")
    assert s.take_ready() == ["d"]
    s.succeeded("d")
    assert not s.is_active()


def test_cancel_ends_everything_not_ended():
    s = make(DIAMOND)
    s.take_ready()
    s.succeeded("a")
    s.take_ready()
    s.succeeded("b")
    never, running = s.cancel()
    assert never == ["d"] and running == ["c"]
    assert not s.is_active()
    assert s.take_ready() == []
    assert s.status("c") == "cancelled"


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda s: s.succeeded("b"), "cannot mark task 'b' succeeded: it is pending, not running"),
        (lambda s: s.failed("zz"), "cannot mark task 'zz' failed: it is not a task of this"),
        (lambda s: s.status("zz"), "the schedule has no task 'zz'"),
    ],
)
def test_misuse_fails_loudly(action, message):
    s = make(DIAMOND)
    s.take_ready()
    with pytest.raises(ScheduleError, match=message):
        action(s)


def test_ending_a_task_twice_is_refused():
    s = make(DIAMOND)
    s.take_ready()
    s.succeeded("a")
    with pytest.raises(ScheduleError, match="cannot mark task 'a' failed: it is succeeded"):
        s.failed("a")


def test_empty_schedule_is_not_active():
    s = Schedule([], {}, {})
    assert not s.is_active() and s.take_ready() == []
