"""Timers: one daemon thread per process calls functions at due times (retry delays, timeouts).

Started on first use, so a run without retries or timeouts never starts it. A callback runs
on the timer thread: it must be quick (the run only takes its lock, decides, and submits).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["TIMERS", "TimerThread"]

_log = logging.getLogger("germinate_nb")


MAX_WAIT = 3600.0
"""Longest single wait of the timer thread; a later due time is waited for in steps."""


class TimerThread:
    """Calls ``fn()`` at ``time.monotonic()`` due times, in due order, on one daemon thread.

    Examples
    --------
    >>> timers = TimerThread()
    >>> fired = threading.Event()
    >>> handle = timers.call_later(0.01, fired.set)
    >>> fired.wait(2)
    True
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._cond = threading.Condition(threading.Lock())
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, fn: Callable[[], None]) -> int:
        """Call ``fn()`` in ``delay`` seconds; returns a handle for :meth:`cancel`."""
        due = time.monotonic() + max(0.0, delay)
        with self._cond:
            handle = next(self._ids)
            heap = self._heap
            heapq.heappush(heap, (due, handle, fn))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._main, name="germinate-timers", daemon=True
                )
                self._thread.start()
            elif heap[0][1] == handle:
                # the thread waits for the earliest due time: only an earlier one must wake it
                # (a wake costs the caller a GIL hand-over to the timer thread)
                self._cond.notify()
        return handle

    def cancel(self, handle: int) -> None:
        """Do not call the function of ``handle`` (if it has not been called yet)."""
        with self._cond:
            if any(h == handle for _, h, _ in self._heap):
                self._cancelled.add(handle)

    def _main(self) -> None:
        heap = self._heap
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    if heap and heap[0][0] <= now:
                        _, handle, fn = heapq.heappop(heap)
                        if handle in self._cancelled:
                            self._cancelled.discard(handle)
                            continue
                        break
                    # never past what the platform can wait for (a huge due time would raise
                    # OverflowError here and end the process's timer thread)
                    self._cond.wait(min(heap[0][0] - now, MAX_WAIT) if heap else None)
            try:
                fn()
            except BaseException:  # noqa: BLE001 - a timer never kills the thread
                _log.warning("germinate_nb: a timer callback raised", exc_info=True)


TIMERS = TimerThread()
"""The process's timer thread."""
