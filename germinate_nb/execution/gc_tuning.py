"""A raised garbage-collector threshold while runs go on (process-wide, reference counted)."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["GC_GEN0_THRESHOLD", "gc_relaxed"]

GC_GEN0_THRESHOLD = 50_000
_lock = threading.Lock()
_users = 0
_saved: tuple[int, ...] | None = None


def relax() -> None:
    """Raise the collector's first threshold (the first concurrent run does it)."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = gc.get_threshold()
            if _saved[0] and _saved[0] < GC_GEN0_THRESHOLD:
                gc.set_threshold(GC_GEN0_THRESHOLD, *_saved[1:])
        _users += 1


def restore() -> None:
    """Undo one :func:`relax` (the last concurrent run restores the threshold)."""
    global _users, _saved
    with _lock:
        _users -= 1
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
        restore()
