"""Schedule: which tasks may start, given which have ended (pure: no threads, no clock, no I/O)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

from germinate_nb.errors import ScheduleError

__all__ = ["Schedule"]

PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, CANCELLED = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "skipped",
    "cancelled",
)
_FINAL = frozenset((SUCCEEDED, FAILED, SKIPPED, CANCELLED))


class Schedule:
    """The state machine of one run, in the shape of :class:`graphlib.TopologicalSorter`.

    The caller owns execution: it takes the tasks that may start with :meth:`take_ready`,
    reports each end with :meth:`succeeded` or :meth:`failed`, and may :meth:`cancel` the
    rest. A task may start once all its parents succeeded; with ``phases`` it also waits
    until every task of the earlier phases has ended (the seed's strict phase barriers). A
    failure skips every pending descendant at once. Telling the schedule something
    impossible (ending a task that is not running, say) raises :class:`ScheduleError`.

    Examples
    --------
    >>> s = Schedule(["a", "b", "c"], {"a": (), "b": ("a",), "c": ("a",)},
    ...              {"a": ("b", "c"), "b": (), "c": ()})
    >>> s.take_ready()
    ['a']
    >>> s.succeeded("a")
    >>> s.take_ready()
    ['b', 'c']
    >>> s.failed("b")
    []
    >>> s.succeeded("c"); s.is_active()
    False
    """

    __slots__ = (
        "_children",
        "_held",
        "_open",
        "_parents",
        "_phase",
        "_phase_left",
        "_phase_of",
        "_ready",
        "_state",
        "_waiting",
    )

    def __init__(
        self,
        names: Sequence[str],
        parents: Mapping[str, Sequence[str]],
        children: Mapping[str, Sequence[str]],
        *,
        phases: Sequence[Sequence[str]] | None = None,
    ) -> None:
        self._parents = parents
        self._children = children
        self._waiting = {n: len(parents[n]) for n in names}
        self._state = dict.fromkeys(names, PENDING)
        self._open = len(names)
        self._ready: deque[str] = deque()
        self._phase_of: dict[str, int] = {}
        self._phase_left: list[int] = []
        self._held: dict[int, list[str]] = {}
        self._phase = 0
        if phases is not None:
            for i, phase in enumerate(phases):
                members = [n for n in phase if n in self._state]
                for n in members:
                    self._phase_of[n] = i
                self._phase_left.append(len(members))
        for n in names:
            if not self._waiting[n]:
                self._release(n)

    # -- asking -------------------------------------------------------------------------------

    def take_ready(self) -> list[str]:
        """The tasks that may start now, in the order they became ready; they are now running."""
        ready = self._ready
        if not ready:
            return []
        names = list(ready)
        ready.clear()
        state = self._state
        for n in names:
            state[n] = RUNNING
        return names

    def is_active(self) -> bool:
        """Is any task not yet ended (pending, ready or running)?"""
        return self._open > 0

    def status(self, name: str) -> str:
        """Where a task is: pending (ready ones too), running, or how it ended."""
        try:
            return self._state[name]
        except KeyError:
            msg = f"the schedule has no task '{name}'."
            raise ScheduleError(msg) from None

    @property
    def running(self) -> list[str]:
        """Tasks taken and not yet ended."""
        return [n for n, s in self._state.items() if s is RUNNING]

    # -- telling ------------------------------------------------------------------------------

    def succeeded(self, name: str) -> None:
        """A running task produced its output (run or reused): its children may become ready."""
        state = self._state
        if state.get(name) is not RUNNING or self._phase_of:
            self._end(name, SUCCEEDED)  # the checks, and phase bookkeeping
        else:
            state[name] = SUCCEEDED
            self._open -= 1
        waiting = self._waiting
        for child in self._children[name]:
            left = waiting[child] - 1
            waiting[child] = left
            if left == 0 and state[child] is PENDING:
                if self._phase_of:
                    self._release(child)
                else:
                    self._ready.append(child)

    def failed(self, name: str) -> list[str]:
        """A running task failed: every pending descendant is skipped; returns them in order."""
        self._end(name, FAILED)
        skipped: list[str] = []
        state = self._state
        queue = deque(self._children[name])
        while queue:
            child = queue.popleft()
            if state[child] is not PENDING:
                continue
            state[child] = SKIPPED
            skipped.append(child)
            self._closed_one(child)
            queue.extend(self._children[child])
        return skipped

    def cancel(self) -> tuple[list[str], list[str]]:
        """End everything not ended: returns (tasks that never started, tasks that were running)."""
        never: list[str] = []
        running: list[str] = []
        state = self._state
        for n, s in state.items():
            if s is PENDING:
                never.append(n)
            elif s is RUNNING:
                running.append(n)
            else:
                continue
            state[n] = CANCELLED
        self._ready.clear()
        self._held.clear()
        self._open = 0
        return never, running

    # -- inside -------------------------------------------------------------------------------

    def _end(self, name: str, status: str) -> None:
        current = self._state.get(name)
        if current is not RUNNING:
            what = "not a task of this schedule" if current is None else f"{current}"
            msg = f"cannot mark task '{name}' {status}: it is {what}, not running."
            raise ScheduleError(msg)
        self._state[name] = status
        self._closed_one(name)

    def _release(self, name: str) -> None:
        phase = self._phase_of.get(name)
        if phase is not None and phase > self._phase:
            self._held.setdefault(phase, []).append(name)
        else:
            self._ready.append(name)

    def _closed_one(self, name: str) -> None:
        self._open -= 1
        if not self._phase_of:
            return
        self._phase_left[self._phase_of[name]] -= 1
        while self._phase < len(self._phase_left) and self._phase_left[self._phase] == 0:
            self._phase += 1
            self._ready.extend(self._held.pop(self._phase, []))
