"""TaskOptions: how a task is run (retries, timeout, concurrency limit), checked when declared.

Options are not part of a task's code: changing them never changes its fingerprint, so reuse
survives ``retries=3`` becoming ``retries=5``. A field left ``None`` takes the run's default
(``run(..., retries=2, timeout=30)``), else the built-in one: no retry, no timeout, no limit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from germinate_nb.errors import DeclarationError

__all__ = [
    "NO_OPTIONS",
    "OPTION_NAMES",
    "TaskOptions",
    "check_limits",
    "check_run_options",
    "task_options",
]

OPTION_NAMES = ("retries", "retry_delay", "backoff", "retry_on", "timeout", "limit")
DEFAULT_RETRY_DELAY = 1.0
DEFAULT_BACKOFF = 2.0
MAX_RETRIES = 10_000
"""Most retries a task may ask for (each attempt is kept in its TaskRun)."""
MAX_SECONDS = 30 * 24 * 3600.0
"""Longest timeout or retry delay, and the most any one retry waits however steep the backoff."""
_LIMIT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")  # whole name: used with fullmatch


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How one task runs; ``None`` fields take the run's defaults.

    Examples
    --------
    >>> opts = task_options("fetch", retries=3, retry_delay=0.5, timeout=10, limit="api")
    >>> opts.retries, opts.delay(0), opts.delay(2), opts.limit
    (3, 0.5, 2.0, 'api')
    """

    retries: int | None = None
    retry_delay: float = DEFAULT_RETRY_DELAY
    backoff: float = DEFAULT_BACKOFF
    retry_on: tuple[type[BaseException], ...] | None = None
    timeout: float | None = None
    limit: str | None = None

    def delay(self, k: int) -> float:
        """Seconds to wait before retry ``k + 1`` (``k`` = 0 for the first retry), no jitter.

        At most ``MAX_SECONDS``, however steep the backoff or many the retries.
        """
        if self.retry_delay == 0:
            return 0.0
        try:
            return float(min(MAX_SECONDS, self.retry_delay * self.backoff**k))
        except OverflowError:
            return MAX_SECONDS

    @property
    def is_default(self) -> bool:
        """Does the task declare nothing (every option from the run or the built-in default)?"""
        return self is NO_OPTIONS or self == NO_OPTIONS


NO_OPTIONS = TaskOptions()
"""The options of a task that declares none (frozen: every such task shares it)."""


def _where(task: str, state: str | None) -> str:
    return f"task '{task}'" + (f" in state '{state}'" if state else "")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def task_options(
    task: str,
    *,
    state: str | None = None,
    retries: int | None = None,
    retry_delay: float | None = None,
    backoff: float | None = None,
    retry_on: Any = None,
    timeout: float | None = None,
    limit: str | None = None,
) -> TaskOptions:
    """Check a task's options and bundle them; raises :class:`DeclarationError` naming the fix.

    Examples
    --------
    >>> task_options("fetch", retries=-1)
    Traceback (most recent call last):
    ...
    germinate_nb.errors.DeclarationError: task 'fetch': retries=-1 must be an int from 0 to \
10,000 (the number of extra attempts after a failure), e.g. retries=3.
    """
    where = _where(task, state)
    if retries is not None and (
        isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES
    ):
        msg = (
            f"{where}: retries={retries!r} must be an int from 0 to {MAX_RETRIES:,} (the "
            "number of extra attempts after a failure), e.g. retries=3."
        )
        raise DeclarationError(msg, task=task)
    if retry_delay is not None and (
        not _number(retry_delay) or not 0 <= retry_delay <= MAX_SECONDS
    ):
        msg = (
            f"{where}: retry_delay={retry_delay!r} must be a number of seconds from 0 to "
            f"{MAX_SECONDS:,.0f} (30 days), e.g. 1.0."
        )
        raise DeclarationError(msg, task=task)
    if backoff is not None and (not _number(backoff) or backoff < 1):
        msg = (
            f"{where}: backoff={backoff!r} must be a number >= 1 (each retry waits backoff "
            "times longer than the one before; 1 keeps the delay constant), e.g. 2.0."
        )
        raise DeclarationError(msg, task=task)
    if timeout is not None and (not _number(timeout) or not 0 < timeout <= MAX_SECONDS):
        msg = (
            f"{where}: timeout={timeout!r} must be a number of seconds > 0 and at most "
            f"{MAX_SECONDS:,.0f} (30 days), e.g. timeout=30 (leave it out for no timeout)."
        )
        raise DeclarationError(msg, task=task)
    if limit is not None and (not isinstance(limit, str) or not _LIMIT_NAME.fullmatch(limit)):
        msg = (
            f"{where}: limit={limit!r} must be a name (letters, digits, '_', '.' or '-', "
            "e.g. limit='llm'); the run says how many may run at once: "
            "run(..., limits={'llm': 4})."
        )
        raise DeclarationError(msg, task=task)
    classes = None if retry_on is None else _exception_classes(retry_on, where, task)
    return TaskOptions(
        retries,
        DEFAULT_RETRY_DELAY if retry_delay is None else float(retry_delay),
        DEFAULT_BACKOFF if backoff is None else float(backoff),
        classes,
        None if timeout is None else float(timeout),
        limit,
    )


def _exception_classes(value: Any, where: str, task: str) -> tuple[type[BaseException], ...]:
    items = value if isinstance(value, (tuple, list)) else (value,)
    bad = [x for x in items if not (isinstance(x, type) and issubclass(x, BaseException))]
    never = [x.__name__ for x in items if x not in bad and not issubclass(x, Exception)]
    if never:
        msg = (
            f"{where}: retry_on={', '.join(never)} would never retry: only an Exception is "
            "retried (KeyboardInterrupt, SystemExit and other BaseExceptions always fail the "
            "task). Give Exception classes, e.g. retry_on=(TimeoutError, ConnectionError)."
        )
        raise DeclarationError(msg, task=task)
    if bad or not items:
        shown = ", ".join(repr(x) for x in bad) or "nothing"
        msg = (
            f"{where}: retry_on must be an exception class or a tuple of them, got {shown}. "
            "E.g. retry_on=(TimeoutError, ConnectionError)."
        )
        raise DeclarationError(msg, task=task)
    return tuple(items)


def check_run_options(retries: Any, timeout: Any, limits: Any) -> dict[str, int] | None:
    """Check ``run()``'s ``retries=``, ``timeout=`` and ``limits=``; returns the limits as a dict.

    Raises ``ValueError`` (as ``run()``'s other options do) with the fix.
    """
    if retries is not None and (
        isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES
    ):
        msg = (
            f"run(retries={retries!r}): give an int from 0 to {MAX_RETRIES:,} (extra attempts "
            "per failing task)."
        )
        raise ValueError(msg)
    if timeout is not None and (not _number(timeout) or not 0 < timeout <= MAX_SECONDS):
        msg = (
            f"run(timeout={timeout!r}): give a number of seconds > 0 and at most "
            f"{MAX_SECONDS:,.0f} (30 days), or None for no timeout."
        )
        raise ValueError(msg)
    return check_limits(limits)


def check_limits(limits: Any) -> dict[str, int] | None:
    """``limits={"llm": 4}`` checked: names to positive ints (None: no limits)."""
    if limits is None:
        return None
    if not hasattr(limits, "items"):
        msg = f"run(limits={limits!r}): give a dict of limit name to count, e.g. {{'llm': 4}}."
        raise ValueError(msg)
    out: dict[str, int] = {}
    for name, n in limits.items():
        if not isinstance(name, str) or not _LIMIT_NAME.fullmatch(name):
            msg = (
                f"run(limits=...): {name!r} is not a limit name; use the name the tasks give "
                "as limit= (letters, digits, '_', '.' or '-'), e.g. limits={'llm': 4}."
            )
            raise ValueError(msg)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            msg = (
                f"run(limits=...): limit '{name}' is {n!r}; give how many tasks tagged "
                f"limit='{name}' may run at once, an int >= 1."
            )
            raise ValueError(msg)
        out[name] = n
    return out
