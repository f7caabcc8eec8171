"""The process's timer thread: due order, and waking the thread only when it must."""

from __future__ import annotations

import threading
import time

from germinate_nb.execution.timers import TimerThread


class CountingCondition(threading.Condition):
    """A condition that counts its notifications (each wakes the timer thread)."""

    def __init__(self) -> None:
        super().__init__(threading.Lock())
        self.notified = 0

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        super().notify(n)


def test_timers_fire_in_due_order_whatever_order_they_were_added_in() -> None:
    timers = TimerThread()
    fired: list[str] = []
    done = threading.Event()
    timers.call_later(0.15, lambda: (fired.append("late"), done.set()))
    timers.call_later(0.05, lambda: fired.append("early"))
    timers.call_later(0.10, lambda: fired.append("middle"))
    assert done.wait(5)
    assert fired == ["early", "middle", "late"]


def test_an_earlier_timer_wakes_a_thread_waiting_for_a_later_one() -> None:
    timers = TimerThread()
    far = timers.call_later(30, lambda: None)
    time.sleep(0.05)  # the thread now waits for the far one
    fired = threading.Event()
    t0 = time.monotonic()
    timers.call_later(0.02, fired.set)
    assert fired.wait(5)
    assert time.monotonic() - t0 < 2, "the thread slept on until the far timer's due time"
    timers.cancel(far)


def test_a_later_timer_does_not_wake_the_thread() -> None:
    timers = TimerThread()
    cond = timers._cond = CountingCondition()
    first = threading.Event()
    timers.call_later(0.2, first.set)  # starts the thread: nothing to wake yet
    assert cond.notified == 0
    for delay in (0.5, 0.3, 0.4):  # none is due before the one waited for
        timers.call_later(delay, lambda: None)
    assert cond.notified == 0
    sooner = threading.Event()
    timers.call_later(0.01, sooner.set)  # due first: the waiting thread must hear of it
    assert cond.notified == 1
    assert sooner.wait(5) and first.wait(5)
