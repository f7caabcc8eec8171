"""A raised garbage-collector threshold while runs go on (process-wide, reference counted)."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator

__all__ = ["GC_GEN0_THRESHOLD", "gc_relaxed"]

GC_GEN0_THRESHOLD = 50_000
RESTORE_DELAY = 1.0
"""Seconds after the last run ends before the threshold is restored (runs back to back, in a
loop or a benchmark, keep the relaxed threshold instead of paying a full collection each)."""
_lock = threading.Lock()
_users = 0
_saved: tuple[int, ...] | None = None
_timer: threading.Timer | None = None
_last_end = 0.0


def relax() -> None:
    """Raise the collector's first threshold (the first concurrent run does it)."""
    global _users, _saved
    with _lock:
        if _users == 0 and _saved is None:
            _saved = gc.get_threshold()
            if _saved[0] and _saved[0] < GC_GEN0_THRESHOLD:
                gc.set_threshold(GC_GEN0_THRESHOLD, *_saved[1:])
        _users += 1


def restore(delay: float = RESTORE_DELAY) -> None:
    """Undo one :func:`relax`; the threshold comes back ``delay`` seconds after the last run.

    Restoring it at once would make the next allocation pay the collections the run deferred,
    inside the run's own end (a full collection took 50 ms here with 50,000 live objects).
    One timer thread waits per idle period, not one per run.
    """
    global _users, _timer, _last_end
    with _lock:
        _users -= 1
        if _users:
            return
        _last_end = time.monotonic()
        if delay <= 0:
            _restore_if_idle()
        elif _timer is None:
            _timer = threading.Timer(delay, _restore_when_idle, args=(delay,))
            _timer.daemon = True
            _timer.start()


def _restore_when_idle(delay: float) -> None:
    global _timer
    with _lock:
        _timer = None
        if _users:
            return  # a run is on: its end arms the timer again
        left = _last_end + delay - time.monotonic()
        if left > 0:
            _timer = threading.Timer(left, _restore_when_idle, args=(delay,))
            _timer.daemon = True
            _timer.start()
            return
        _restore_if_idle()


def _restore_if_idle() -> None:
    global _saved
    if _users == 0 and _saved is not None:
        if gc.get_threshold()[0] == GC_GEN0_THRESHOLD:
            gc.set_threshold(*_saved)
        _saved = None


@contextlib.contextmanager
def gc_relaxed() -> Iterator[None]:
    """Raise the collector's first threshold while runs go on, restore it after the last one.

    A run keeps a TaskRun, an input and an output per task alive; with the default threshold
    (700 allocations) the collector keeps re-walking every task of a big DAG, which took a third
    of a 10,000-task run here. Collection still happens, just less often.
    """
    relax()
    try:
        yield
    finally:
        restore(0)
