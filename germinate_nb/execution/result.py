"""RunResult, TaskRun, TaskStatus and RunStatus: what a run did, task by task."""

from __future__ import annotations

import collections
import html
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Any, NamedTuple

from pydantic import BaseModel

from germinate_nb.errors import RunFailedError

__all__ = [
    "Attempt",
    "RunResult",
    "RunStatus",
    "TaskError",
    "TaskRun",
    "TaskStatus",
    "capped_html",
    "short_repr",
]

_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80
_short.maxlist = 8
_short.maxdict = 8
REPR_TASKS = 40
"""Tasks listed by ``repr(RunResult)``; a bigger run lists failures first, then a sample."""
HTML_TASKS = 200
"""Tasks listed by the notebook view of a RunResult (failures first, then a sample)."""
HTML_CAP = 20_000
"""Characters of one value, error, traceback or log shown in HTML: the notebook stays small."""


class TaskStatus(str, Enum):
    """Where a task is in a run."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CACHED = "cached"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        """Is the task done (one way or another)?"""
        return self not in (TaskStatus.PENDING, TaskStatus.RUNNING)

    @property
    def is_ok(self) -> bool:
        """Did the task produce an output (run or reused)?"""
        return self in (TaskStatus.SUCCEEDED, TaskStatus.CACHED)


class RunStatus(str, Enum):
    """Where a whole run is: ``running``, then ``succeeded``, ``failed`` or ``cancelled``.

    A ``str`` enum, so ``result.status == "succeeded"`` holds.
    """

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        """Has the run ended?"""
        return self is not RunStatus.RUNNING


@dataclass(slots=True)
class TaskError:
    """An exception a task raised (or met while its input or output was handled).

    ``traceback`` shows the user's frames (germinate_nb's own are hidden, with a note);
    ``full_traceback`` shows every frame.
    """

    type: str
    message: str
    traceback: str = ""
    full_traceback: str = ""

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.type else self.message


class Attempt(NamedTuple):
    """One attempt of a task: its number (from 1), wall-clock start, duration, error, status.

    ``status`` is ``succeeded``, ``cached``, ``failed``, ``timed out`` or ``cancelled``.
    """

    number: int
    start: float | None
    duration: float | None
    error: TaskError | None
    status: str


@dataclass
class TaskRun:
    """One task's part of a run.

    ``background`` is True for a sync task that was cancelled while its thread was still
    running its code (Python cannot stop a thread): its late result is discarded. ``log`` is
    what the task printed and logged (stdout, stderr, logging records; bounded, with a
    truncation note); :attr:`live_log` also shows it while the task runs. ``fingerprint`` is
    that of the code that ran (or whose output was reused).

    ``attempt`` is the attempt running (or the last one), of ``max_attempts`` (1 + the task's
    retries); :attr:`attempts` lists each attempt with its error. While a retry waits for its
    delay the task stays ``running``. ``limit`` names the task's concurrency limit;
    ``waiting_for_limit`` is True while it is ready but its limit is full.
    """

    name: str
    status: TaskStatus = TaskStatus.PENDING
    input: BaseModel | None = None
    output: BaseModel | None = None
    error: TaskError | None = None
    start_time: float | None = None
    duration: float | None = None
    skipped_because: str | None = None
    background: bool = False
    lane: str | None = None
    log: str = ""
    fingerprint: str = ""
    attempt: int = 1
    max_attempts: int = 1
    limit: str | None = None
    limit_capacity: int | None = None
    waiting_for_limit: bool = False
    _attempts: list[Attempt] | tuple[()] = field(default=(), repr=False, compare=False)
    _live: Any = field(default=None, repr=False, compare=False)

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """Every attempt so far, the last one last (one attempt for a task run once)."""
        if self._attempts:
            return tuple(self._attempts)
        status = self.status
        if self.start_time is None or not status.is_final:
            return ()
        if status is TaskStatus.SKIPPED:
            return ()
        error = self.error
        shown = (
            "timed out" if error is not None and error.type == "TaskTimeoutError" else status.value
        )
        return (Attempt(1, self.start_time, self.duration, error, shown),)

    @property
    def note(self) -> str:
        """``"waiting (llm 4/4)"``, ``"attempt 2/4"`` (a task that may be retried), or ``""``.

        A task waits for its limit only while the limit is full, hence ``4/4``.
        """
        if self.waiting_for_limit and self.status is TaskStatus.PENDING:
            cap = self.limit_capacity
            return f"waiting ({self.limit} {cap}/{cap})"
        if self.max_attempts <= 1 or self.start_time is None:
            return ""
        shown = len(self._attempts) if self.status.is_final and self._attempts else self.attempt
        return f"attempt {shown}/{self.max_attempts}"

    @property
    def retried(self) -> int:
        """How many times the task was retried."""
        return max(0, len(self._attempts) - 1) if self.status.is_final else self.attempt - 1

    @property
    def started_at(self) -> datetime | None:
        """When the task started (local time), or None if it never started."""
        if self.start_time is None:
            return None
        return datetime.fromtimestamp(self.start_time).astimezone()

    @property
    def live_log(self) -> str:
        """The log so far while the task runs, else :attr:`log`."""
        live = self._live
        if live is not None and self.status is TaskStatus.RUNNING:
            text: str = live.log_text
            return self.log + text if self._attempts else text
        return self.log

    @property
    def error_type(self) -> str | None:
        """Exception class name, if the task failed."""
        return self.error.type if self.error else None

    @property
    def error_message(self) -> str | None:
        """Exception message, if the task failed."""
        return self.error.message if self.error else None

    @property
    def traceback(self) -> str | None:
        """Traceback text, if the task failed."""
        return self.error.traceback if self.error else None

    def __repr__(self) -> str:
        extra = ""
        if self.duration is not None:
            extra += f", {self.duration * 1000:.1f} ms"
        if self.error is not None:
            extra += f", {self.error}"
        if len(self._attempts) > 1:
            extra += f", {len(self._attempts)} attempts"
        if self.background:
            extra += ", still running in the background"
        return f"<TaskRun {self.name}: {self.status.value}{extra}>"


def pending_task_runs(names: Iterable[str]) -> dict[str, TaskRun]:
    """A pending :class:`TaskRun` per name, for a run about to start (one per task).

    Made without the dataclass's ``__init__``: every field but the name reads its default
    from the class until the run sets it (0.17 us a task here, against 0.34 for the slotted
    dataclass this class was before).
    """
    runs = {}
    new = object.__new__
    for name in names:
        tr = new(TaskRun)
        tr.name = name
        runs[name] = tr
    return runs


@dataclass
class RunResult:
    """The outcome of running one state's DAG.

    ``status`` is ``succeeded`` when every task succeeded or was reused, ``failed`` when any
    failed or was skipped, and ``cancelled`` when the run was stopped. ``background`` names
    the sync tasks that were cancelled while their code went on running in a thread.
    ``parents`` holds the DAG's edges as run (for :meth:`timeline`), ``targets`` the tasks a
    "run selected" asked for (None: the whole state).
    ``limits`` holds, per concurrency limit of the run, ``(running, capacity)``, live.
    ``store`` is the :class:`~germinate_nb.execution.store.RunStore` the run is recorded in
    (None: in memory only); ``store.runs(state)`` and ``store.task_runs(run_id)`` read the
    history, across kernel restarts.
    """

    state: str
    task_runs: dict[str, TaskRun]
    status: RunStatus = RunStatus.RUNNING
    started_at: datetime | None = None
    duration: float | None = None
    observer_errors: list[str] = field(default_factory=list)
    background: list[str] = field(default_factory=list)
    run_id: str = ""
    parents: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    targets: tuple[str, ...] | None = None
    store: Any = field(default=None, repr=False, compare=False)
    limits: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    _outputs: Mapping[str, BaseModel] | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Did every task succeed (or get reused)?"""
        return self.status == RunStatus.SUCCEEDED

    @property
    def outputs(self) -> Mapping[str, BaseModel]:
        """Task name to output model, for tasks that succeeded or were reused (read-only).

        Computed once for a finished run, so reading it in a loop stays cheap.
        """
        if self._outputs is not None:
            return self._outputs
        outputs = MappingProxyType(
            {
                name: run.output
                for name, run in self.task_runs.items()
                if run.status.is_ok and run.output is not None
            }
        )
        if RunStatus(self.status).is_final:
            self._outputs = outputs
        return outputs

    def by_status(self, status: TaskStatus | str) -> list[str]:
        """Names of the tasks with this status."""
        status = TaskStatus(status)
        return [n for n, r in self.task_runs.items() if r.status is status]

    def counts(self) -> dict[str, int]:
        """Number of tasks per status (only statuses that occur)."""
        counts: dict[str, int] = {}
        for run in self.task_runs.values():
            counts[run.status.value] = counts.get(run.status.value, 0) + 1
        return counts

    def raise_for_status(self) -> RunResult:
        """Raise :class:`RunFailedError` unless the run succeeded; return self otherwise."""
        if self.ok:
            return self
        failed = [r for r in self.task_runs.values() if r.status is TaskStatus.FAILED]
        lines = [f"- {r.name}: {r.error}" for r in failed]
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts().items()))
        msg = f"run of state '{self.state}' {self.status} ({counts})"
        msg += ":\n" + "\n".join(lines) if lines else "."
        raise RunFailedError(msg)

    def timeline(self, *, width: float = 10.0) -> Any:
        """A Gantt chart of this run: a matplotlib Figure, one lane per thread or event loop.

        Bars are coloured by status; the critical path (the chain of tasks that decided when
        the run ended) is outlined. Needs matplotlib (imported now, not with the package).
        """
        from germinate_nb.render.timeline import draw_timeline

        return draw_timeline(self, width=width)

    def waiting_note(self, name: str) -> str:
        """``"waiting (llm 4/4)"`` for a task waiting for room in its limit, else ``""``."""
        tr = self.task_runs.get(name)
        return tr.note if tr is not None and tr.waiting_for_limit else ""

    def attempt_note(self, name: str) -> str:
        """``"attempt 2/4"`` for a task that may be retried (and has started), else ``""``."""
        tr = self.task_runs.get(name)
        return tr.note if tr is not None and not tr.waiting_for_limit else ""

    @property
    def background_note(self) -> str:
        """``"1 task still running in the background: crawl"``, or an empty string.

        ``background`` names a task once per attempt whose thread still runs; the note names
        each task once, with its count of such attempts: ``"slow (3 attempts)"``.
        """
        if not self.background:
            return ""
        threads = collections.Counter(self.background)  # in the order they were named
        n = len(threads)
        shown = [f"{t} ({k} attempts)" if k > 1 else t for t, k in list(threads.items())[:5]]
        names = ", ".join(shown) + (", ..." if n > 5 else "")
        return f"{n} task{'s' if n > 1 else ''} still running in the background: {names}"

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts().items()))
        took = f" in {self.duration:.3f} s" if self.duration is not None else ""
        lines = [f"<RunResult {self.state}: {self.status}{took} ({counts})"]
        if self.background:
            lines.append(f"  ({self.background_note})")
        shown = list(self.task_runs.values())
        if len(shown) > REPR_TASKS:  # a big run reads as its problems first, then a sample
            shown.sort(key=lambda r: r.status.is_ok)
            rest = len(shown) - REPR_TASKS
            shown = shown[:REPR_TASKS]
        else:
            rest = 0
        for run in shown:
            detail = ""
            if run.error is not None:
                detail = f" - {short_repr(str(run.error))}"
            elif run.skipped_because:
                detail = f" - after '{run.skipped_because}' failed"
            elif run.output is not None:
                detail = f" -> {short_repr(run.output)}"
            lines.append(f"  {run.name}: {run.status.value}{detail}")
        if rest:
            lines.append(f"  ... and {rest} more tasks")
        return "\n".join(lines) + ">"

    def _repr_html_(self) -> str:
        esc = html.escape
        took = f" in {self.duration:.3f} s" if self.duration is not None else ""
        rows = []
        shown = list(self.task_runs.values())
        more = ""
        if len(shown) > HTML_TASKS:  # problems first, then a sample: the notebook stays small
            shown.sort(key=lambda r: r.status.is_ok)
            more = (
                f"<div><i>... and {len(shown) - HTML_TASKS} more tasks (see "
                "result.task_runs)</i></div>"
            )
            shown = shown[:HTML_TASKS]
        for run in shown:
            where = f"result.task_runs[{run.name!r}]"
            if run.error is not None:
                detail = f"<pre>{capped_html(str(run.error), f'{where}.error')}</pre>"
                if run.error.traceback:
                    detail += (
                        "<details><summary>traceback</summary><pre>"
                        f"{capped_html(run.error.traceback, f'{where}.error.traceback')}"
                        "</pre></details>"
                    )
            elif run.skipped_because:
                detail = f"skipped: '{esc(run.skipped_because)}' failed"
            elif run.output is not None:
                detail = f"<code>{esc(short_repr(run.output))}</code>"
            else:
                detail = ""
            if run.log:
                lines = run.log.count("\n")
                detail += (
                    f"<details><summary>log ({lines} line{'s' if lines != 1 else ''})</summary>"
                    f"<pre>{capped_html(run.log, f'{where}.log')}</pre></details>"
                )
            ms = f"{run.duration * 1000:.1f} ms" if run.duration is not None else ""
            rows.append(
                f"<tr class='germinate-status-{run.status.value}'><td>{esc(run.name)}</td>"
                f"<td>{run.status.value}</td><td>{ms}</td><td>{detail}</td></tr>"
            )
        note = f"<div><i>{esc(self.background_note)}</i></div>" if self.background else ""
        return (
            f"<div class='germinate-run'><b>Run of {esc(self.state)}: {esc(self.status)}</b>"
            f"{took}{note}<table><thead><tr><th>task</th><th>status</th><th>time</th>"
            f"<th>output / error</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"{more}</div>"
        )


def capped_html(text: str, whole: str, limit: int | None = None) -> str:
    """``text`` escaped, cut at ``limit`` characters with a note saying where to read it whole.

    Examples
    --------
    >>> capped_html("<b>" * 3, "result.log", limit=6)
    '&lt;b&gt;&lt;b&gt; <i>… 3 more characters: read them whole in result.log</i>'
    """
    limit = HTML_CAP if limit is None else limit
    if len(text) <= limit:
        return html.escape(text)
    rest = len(text) - limit
    return (
        f"{html.escape(text[:limit])} <i>… {rest} more characters: read them whole in "
        f"{html.escape(whole)}</i>"
    )


def short_repr(value: Any) -> str:
    """A repr cut to a readable length; never raises (a failing ``__repr__`` is described)."""
    try:
        return _short.repr(value)
    except Exception as err:
        return f"<{type(value).__name__}: repr() failed: {type(err).__name__}>"
