"""Following runs without slowing them: events are recorded, widgets updated from a thread of ours.

A :class:`RunFollower` is an observer of every run of the registry (``registry.run_observers``).
It hears only a run's start and end: per-task events would cost the run a call per task, while
the :class:`RunResult` is live anyway, so one UI thread per explorer reads the statuses that
changed from it at most ``INTERVAL`` apart (and at once when the run ends). The run's threads
never wait on widgets.
The follower holds its explorer weakly and unsubscribes itself when the explorer is closed or
collected (``weakref.finalize``), so one explorer is one subscription.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from germinate_nb.core.registry import TaskRegistry
from germinate_nb.execution.result import RunResult

if TYPE_CHECKING:
    from germinate_nb.notebook.explorer import DagExplorer

__all__ = ["INTERVAL", "RunFollower", "report", "spawn"]

_log = logging.getLogger("germinate_nb")

INTERVAL = 0.1
"""Seconds between two widget updates during a run (the picture patch, strip, status line)."""
UI_SHARE = 0.02
"""Most of the interpreter the updates during a run may take: an update that cost 5 ms waits
0.25 s for the next, so the run's own threads keep the GIL 98 % of the time."""
MAX_PAUSE = 1.0
"""Longest wait between two updates during a run, however much one costs."""
IDLE_EXIT = 5.0
"""Seconds without a run after which the UI thread ends."""
END_GRACE = 0.01
"""Seconds the UI thread waits before showing a run's end: the run's caller (``run()``
returning, the cell going on) gets the interpreter first, instead of waiting for the update."""

SHUTTING_DOWN = threading.Event()
_THREADS: set[threading.Thread] = set()
_THREADS_LOCK = threading.Lock()


def spawn(target: Callable[[], Any], name: str, delay: float = 0.0) -> threading.Thread | None:
    """Start a daemon helper thread that the interpreter's exit waits for (no drawing then)."""
    if SHUTTING_DOWN.is_set():
        return None

    def body() -> None:
        try:
            if delay and SHUTTING_DOWN.wait(delay):
                return
            if not SHUTTING_DOWN.is_set():
                target()
        finally:
            with _THREADS_LOCK:
                _THREADS.discard(threading.current_thread())

    thread = threading.Thread(target=body, name=name, daemon=True)
    with _THREADS_LOCK:
        _THREADS.add(thread)
    thread.start()
    return thread


@atexit.register
def _stop_helpers() -> None:
    """At exit, let helper threads finish what they draw: C++ mid-draw must not be torn down."""
    SHUTTING_DOWN.set()
    with _THREADS_LOCK:
        threads = list(_THREADS)
    for thread in threads:
        thread.join(timeout=2.0)


def report(err: BaseException) -> None:
    """Show an unexpected error in the notebook (never let it vanish)."""
    try:
        from IPython import get_ipython  # type: ignore[attr-defined]

        shell = get_ipython()
    except Exception:
        shell = None
    if shell is not None:
        shell.showtraceback((type(err), err, err.__traceback__))
    else:
        _log.error("germinate_nb explorer: %s", err, exc_info=err)


class RunFollower:
    """Records the events of every run of one state for an explorer; a UI thread applies them."""

    def __init__(self, explorer: DagExplorer, registry: TaskRegistry) -> None:
        self._ref = weakref.ref(explorer)
        self._registry = registry
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self.result: RunResult | None = None  # the run being followed
        self.started = False
        self.ended = False
        self.paused = False  # no view on screen: events are still recorded, nothing is drawn
        self._thread: threading.Thread | None = None
        registry.run_observers.append(self)
        weakref.finalize(explorer, self.stop)

    # -- the observer protocol: called from the run's threads, never waits ---------------------

    def _mine(self, result: RunResult) -> bool:
        explorer = self._ref()
        if explorer is None or self._stopped.is_set():
            self.stop()
            return False
        return result.state == explorer.state_name

    def on_run_start(self, result: RunResult) -> None:
        """A run of the state starts: follow it (a newer run replaces an older one)."""
        if not self._mine(result):
            return
        with self._lock:
            self.result = result
            self.started, self.ended = True, False
        explorer = self._ref()
        if explorer is not None:
            explorer._run_done.clear()  # wait() now waits for this run to be on display
        # no wake-up: the first update comes INTERVAL later, so a short run never shares the
        # interpreter with widget updates (its end wakes the thread at once)
        self._ensure_thread()

    def on_run_end(self, result: RunResult) -> None:
        """Record the end: the UI thread shows it at once."""
        if result is self.result:
            with self._lock:
                self.ended = True
            self._wake.set()

    # -- the UI thread -------------------------------------------------------------------------

    def take(self) -> tuple[RunResult | None, bool, bool]:
        """The run followed, and whether it started or ended since the last call."""
        with self._lock:
            taken = (self.result, self.started, self.ended)
            self.started = self.ended = False
            return taken

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = spawn(self._loop, "germinate-ui")

    def _loop(self) -> None:
        busy = True  # a run just started
        pause = INTERVAL
        while not self._stopped.is_set() and not SHUTTING_DOWN.is_set():
            if busy:
                self._wake.wait(pause)  # the run's end wakes it at once
            elif not self._wake.wait(IDLE_EXIT):
                return  # idle: the next run's start starts a new loop
            self._wake.clear()
            if self.ended and SHUTTING_DOWN.wait(END_GRACE):
                return
            explorer = self._ref()
            if explorer is None:
                self.stop()
                return
            try:
                t0 = time.perf_counter()
                busy = bool(explorer._apply_run_changes())
                pause = min(MAX_PAUSE, max(INTERVAL, (time.perf_counter() - t0) / UI_SHARE))
            except Exception as err:
                report(err)
                busy = False
            del explorer

    def pause(self) -> None:
        """Stop hearing runs until :meth:`resume` (nothing of the explorer is on screen)."""
        observers = self._registry.run_observers
        if self in observers:
            observers.remove(self)

    def resume(self) -> None:
        """Hear runs again (the explorer is on screen again)."""
        if not self._stopped.is_set() and self not in self._registry.run_observers:
            self._registry.run_observers.append(self)

    @property
    def following(self) -> bool:
        """Is the follower hearing runs?"""
        return self in self._registry.run_observers

    def stop(self) -> None:
        """Stop following for good (the explorer is closed or gone)."""
        self._stopped.set()
        self._wake.set()
        observers = self._registry.run_observers
        if self in observers:
            observers.remove(self)
