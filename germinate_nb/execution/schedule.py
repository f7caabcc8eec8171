"""Schedule: which tasks may start, given which have ended (pure: no threads, no clock, no I/O)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

from germinate_nb.errors import ScheduleError

__all__ = ["Schedule", "parent_counts"]

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

    With ``limit_of`` (task to limit name) and ``capacity`` (limit name to how many may run at
    once), :meth:`take_ready` never has more than ``capacity[L]`` tasks of limit ``L``
    running: a ready task over its limit waits (still pending, see :meth:`waiting_on`) and is
    released, in order, when one of its limit ends. A limit without a capacity is unlimited.
    Without limits the schedule pays nothing for them.

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
    >>> s = Schedule(["x", "y"], {"x": (), "y": ()}, {"x": (), "y": ()},
    ...              limit_of={"x": "api", "y": "api"}, capacity={"api": 1})
    >>> s.take_ready(), s.waiting_on("y")
    (['x'], ('api', 1, 1))
    >>> s.succeeded("x"); s.take_ready()
    ['y']
    """

    __slots__ = (
        "_blocked",
        "_capacity",
        "_children",
        "_held",
        "_limit_of",
        "_newly_blocked",
        "_slow",
        "_used",
        "_open",
        "_parents",
        "_phase",
        "_phase_left",
        "_phase_of",
        "_ready",
        "_state",
    )

    def __init__(
        self,
        names: Sequence[str],
        parents: Mapping[str, Sequence[str]],
        children: Mapping[str, Sequence[str]],
        *,
        phases: Sequence[Sequence[str]] | None = None,
        limit_of: Mapping[str, str] | None = None,
        capacity: Mapping[str, int] | None = None,
        counts: Mapping[str, int] | None = None,
    ) -> None:
        self._parents = parents
        self._children = children
        if counts is None:  # each task's number of parents (a run passes its snapshot's)
            counts = parent_counts(names, parents)
        # a pending task's state is how many of its parents have not succeeded yet (an int);
        # once taken it is a status string (one dict: a task's children are looked up once)
        self._state: dict[str, int | str] = dict(counts)
        self._open = len(names)
        self._ready: deque[str] = deque()
        self._phase_of: dict[str, int] = {}
        self._phase_left: list[int] = []
        self._held: dict[int, list[str]] = {}
        self._phase = 0
        # limits: only the tasks whose limit has a capacity are limited
        limited = {n: lim for n, lim in (limit_of or {}).items() if lim in (capacity or {})}
        self._limit_of: dict[str, str] | None = limited or None
        self._capacity: dict[str, int] = dict(capacity or {}) if limited else {}
        self._used: dict[str, int] = dict.fromkeys(self._capacity, 0)
        self._blocked: dict[str, deque[str]] = {lim: deque() for lim in self._capacity}
        self._newly_blocked: list[str] = []
        self._slow = phases is not None or bool(limited)
        if phases is not None:
            for i, phase in enumerate(phases):
                members = [n for n in phase if n in self._state]
                for n in members:
                    self._phase_of[n] = i
                self._phase_left.append(len(members))
        roots = [n for n, count in self._state.items() if not count]
        if phases is None:
            self._ready.extend(roots)
        else:
            for n in roots:
                self._release(n)

    # -- asking -------------------------------------------------------------------------------

    def take_ready(self) -> list[str]:
        """The tasks that may start now, in the order they became ready; they are now running."""
        ready = self._ready
        if not ready:
            return []
        if self._limit_of is not None:
            return self._take_limited()
        names = list(ready)
        ready.clear()
        state = self._state
        for n in names:
            state[n] = RUNNING
        return names

    def _take_limited(self) -> list[str]:
        names = []
        limit_of, used, capacity = self._limit_of, self._used, self._capacity
        assert limit_of is not None
        state = self._state
        for n in self._ready:
            lim = limit_of.get(n)
            if lim is not None:
                if used[lim] >= capacity[lim]:
                    self._blocked[lim].append(n)
                    self._newly_blocked.append(n)
                    continue
                used[lim] += 1
            state[n] = RUNNING
            names.append(n)
        self._ready.clear()
        return names

    def waiting_on(self, name: str) -> tuple[str, int, int] | None:
        """``(limit, running, capacity)`` when a ready task waits for room in its limit."""
        limit_of = self._limit_of
        if limit_of is None or type(self._state.get(name)) is not int:
            return None
        lim = limit_of.get(name)
        if lim is None or name not in self._blocked[lim]:
            return None
        return lim, self._used[lim], self._capacity[lim]

    def take_blocked(self) -> list[str]:
        """The tasks that started waiting for their limit since the last call."""
        found = self._newly_blocked
        if not found:
            return found
        self._newly_blocked = []
        return found

    def usage(self) -> dict[str, tuple[int, int]]:
        """Per limit with a capacity: ``(running, capacity)``."""
        return {lim: (self._used[lim], cap) for lim, cap in self._capacity.items()}

    def is_active(self) -> bool:
        """Is any task not yet ended (pending, ready or running)?"""
        return self._open > 0

    def status(self, name: str) -> str:
        """Where a task is: pending (ready ones too), running, or how it ended."""
        try:
            state = self._state[name]
        except KeyError:
            msg = f"the schedule has no task '{name}'."
            raise ScheduleError(msg) from None
        return PENDING if type(state) is int else state  # type: ignore[return-value]

    @property
    def running(self) -> list[str]:
        """Tasks taken and not yet ended."""
        return [n for n, s in self._state.items() if s is RUNNING]

    # -- telling ------------------------------------------------------------------------------

    def succeeded(self, name: str) -> None:
        """A running task produced its output (run or reused): its children may become ready."""
        state = self._state
        if state.get(name) is not RUNNING or self._slow:
            self._end(name, SUCCEEDED)  # the checks, phase and limit bookkeeping
        else:
            state[name] = SUCCEEDED
            self._open -= 1
        for child in self._children[name]:
            left = state[child]
            if type(left) is int:  # pending (a child skipped meanwhile holds its status)
                left -= 1
                state[child] = left
                if not left:
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
            if type(state[child]) is not int:  # not pending
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
            if type(s) is int:
                never.append(n)
            elif s is RUNNING:
                running.append(n)
            else:
                continue
            state[n] = CANCELLED
        self._ready.clear()
        self._held.clear()
        for blocked in self._blocked.values():
            blocked.clear()
        self._newly_blocked = []
        self._open = 0
        return never, running

    # -- inside -------------------------------------------------------------------------------

    def _end(self, name: str, status: str) -> None:
        current = self._state.get(name)
        if current is not RUNNING:
            if current is None:
                what = "not a task of this schedule"
            else:
                what = PENDING if isinstance(current, int) else current
            msg = f"cannot mark task '{name}' {status}: it is {what}, not running."
            raise ScheduleError(msg)
        self._state[name] = status
        if self._limit_of is not None:
            lim = self._limit_of.get(name)
            if lim is not None:
                self._used[lim] -= 1
                blocked = self._blocked[lim]
                if blocked:
                    self._ready.append(blocked.popleft())
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


def parent_counts(names: Sequence[str], parents: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each task's number of parents, in ``names`` order (a :class:`Schedule` starts from it)."""
    return dict(zip(names, map(len, map(parents.__getitem__, names)), strict=True))
