"""Per-task log capture: stdout, stderr and logging records routed to the running task's log.

How it works
------------
:func:`install` replaces ``sys.stdout`` and ``sys.stderr`` with routing proxies that wrap whatever
was there (ipykernel's ``OutStream`` in a kernel) and chains a log-record factory
(:func:`logging.setLogRecordFactory`). :func:`capture` sets a :class:`contextvars.ContextVar` for
the block it guards; a proxy's ``write`` reads that variable and sends the text to the task's
:class:`TaskLog` (and, with ``echo=True``, also to the wrapped stream). Outside any capture a
proxy passes every call straight through.

Routing is context-local:

- a thread (``threading.Thread``, ``ThreadPoolExecutor.submit``, ``loop.run_in_executor``) starts
  with an empty context, so output of a thread that a task starts itself goes to the normal
  stream, not to the task's log; ``asyncio.to_thread`` and ``contextvars.copy_context().run`` carry
  the context, so their output IS captured;
- each asyncio task runs in its own copy of the context: entering :func:`capture` inside a task's
  coroutine routes that task only.

Logging records are captured when they are created in a captured context, formatted as
``"LEVEL name: message"`` (plus the traceback for ``exc_info`` and the stack for
``stack_info``). The logger's level decides what is created, as usual; logger filters are not
consulted (a record that a filter later drops is still in the task log). Text that a logging
handler writes for an already-captured record through the proxies (``logging.basicConfig``'s
handler on ``sys.stderr``, ``logging.lastResort``) is not written to the log a second time; with
``echo=True`` it still reaches the original stream, as it would without capture.

Echoed text reaches the original stream a whole line at a time (``print`` writes its text and
its newline in two calls; two threads printing at once would otherwise mix inside a line). Text
after the last newline is held until the next newline, a ``flush()`` (``print(..., flush=True)``,
a progress bar's refresh) or the end of the capture or task. A task's echoed lines start with
its name (``[fetch] page 3 done``), so concurrent tasks' lines can be told apart; the task log
itself keeps the text as written.

Not captured: writes to ``sys.stdout.buffer``, to file descriptors (C extensions, subprocesses),
to a stream object held from before :func:`install`, or done while ``sys.stdout`` is replaced by
someone else (``contextlib.redirect_stdout``): that output goes where it would have gone anyway.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
import re
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from germinate_nb.execution.tracebacks import format_full_traceback, safe_str

__all__ = ["DEFAULT_LIMIT", "TaskLog", "capture", "install", "is_installed", "uninstall"]

DEFAULT_LIMIT = 64_000
"""Characters kept per task run: the first three quarters and the last quarter."""

_NOTE = "\n… [{dropped} characters truncated] …\n"


class TaskLog:
    r"""A bounded, thread-safe text buffer for one task run.

    Up to ``limit`` characters are kept whole. Beyond that, the first ``limit * 3 // 4`` and the
    last ``limit - limit * 3 // 4`` characters are kept and :attr:`text` says how many were
    dropped in between.

    Parameters
    ----------
    limit : int
        Characters kept, at least 1.

    Raises
    ------
    ValueError
        If ``limit`` is not a positive integer.

    Examples
    --------
    >>> log = TaskLog(limit=8)
    >>> log.write("0123456789")
    >>> log.text
    '012345\n… [2 characters truncated] …\n89'
    >>> log.size, log.truncated, log.version
    (10, True, 1)
    """

    __slots__ = (
        "_head",
        "_head_limit",
        "_limit",
        "_lock",
        "_parts",
        "_size",
        "_tail",
        "_tail_len",
        "_tail_limit",
        "_version",
    )

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            msg = f"TaskLog limit must be a positive int (characters kept), got {limit!r}."
            raise ValueError(msg)
        self._limit = limit
        self._head_limit = limit * 3 // 4
        self._tail_limit = limit - self._head_limit  # >= 1
        self._parts: list[str] = []  # everything written, until the first truncation
        self._head = ""  # the first _head_limit characters, once truncated
        self._tail: collections.deque[str] = collections.deque()  # holds >= the last _tail_limit
        self._tail_len = 0
        self._size = 0
        self._version = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        """Append ``text``; an empty string changes nothing.

        Raises
        ------
        TypeError
            If ``text`` is not a ``str``.
        """
        if not isinstance(text, str):
            msg = f"TaskLog.write() argument must be str, not {type(text).__name__}"
            raise TypeError(msg)
        if not text:
            return
        with self._lock:
            before = self._size
            self._size = before + len(text)
            self._version += 1
            if self._size <= self._limit:
                self._parts.append(text)
            elif before <= self._limit:  # the first write past the limit
                whole = "".join(self._parts) + text
                self._parts = []
                self._head = whole[: self._head_limit]
                self._push_tail(whole[self._head_limit :])
            else:
                self._push_tail(text)

    def _push_tail(self, text: str) -> None:
        limit = self._tail_limit
        if len(text) >= limit:
            self._tail.clear()
            self._tail.append(text[-limit:])
            self._tail_len = limit
            return
        self._tail.append(text)
        self._tail_len += len(text)
        while self._tail_len - len(self._tail[0]) >= limit:
            self._tail_len -= len(self._tail.popleft())

    @property
    def text(self) -> str:
        """What is kept: everything, or head + truncation note + tail."""
        with self._lock:
            if self._size <= self._limit:
                if len(self._parts) > 1:
                    self._parts = ["".join(self._parts)]
                return self._parts[0] if self._parts else ""
            tail = "".join(self._tail)[-self._tail_limit :]
            return self._head + _NOTE.format(dropped=self._size - self._limit) + tail

    @property
    def truncated(self) -> bool:
        """Whether characters were dropped."""
        return self._size > self._limit

    @property
    def size(self) -> int:
        """Characters ever written, kept or not."""
        return self._size

    @property
    def version(self) -> int:
        """Incremented by each non-empty write, so a UI can poll cheaply for changes."""
        return self._version

    @property
    def limit(self) -> int:
        """Characters kept at most (the truncation note comes on top)."""
        return self._limit

    def __bool__(self) -> bool:
        return self._size > 0

    def __repr__(self) -> str:
        return f"TaskLog(size={self._size}, limit={self._limit}, truncated={self.truncated})"

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {
                "limit": self._limit,
                "parts": ["".join(self._parts)],
                "head": self._head,
                "tail": "".join(self._tail),
                "size": self._size,
                "version": self._version,
            }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["limit"])  # type: ignore[misc]
        self._parts = [p for p in state["parts"] if p]
        self._head = state["head"]
        if state["tail"]:
            self._tail.append(state["tail"])
            self._tail_len = len(state["tail"])
        self._size = state["size"]
        self._version = state["version"]


class _Capture:
    """One ``capture()`` block: the context manager and, while it runs, the context's route.

    One object for both keeps entering and leaving a capture to one allocation.
    """

    __slots__ = ("_token", "echo", "echo_tails", "job", "log", "records")
    echo_label = ""  # echoed text is not labelled (a task's job labels it with its name)

    def __init__(self, log: TaskLog, echo: bool) -> None:
        self.log = log
        self.echo = echo
        self.job: Any = None  # the engine's job around this block, if any (current_task())
        # logging records already written to ``log``, so their handler output is not written twice
        self.records: weakref.WeakSet[logging.LogRecord] | None = None
        # (stream, thread) -> echoed text waiting for its newline (see _echo)
        self.echo_tails: dict[tuple[Any, int], _Held] | None = None
        self._token: contextvars.Token[_Capture | None] | None = None

    def __enter__(self) -> TaskLog:
        if not _installed:
            install()
        outer = _ROUTE.get()
        self.job = getattr(outer, "job", None)
        if outer is not None and outer.echo_tails:  # keep the order of what this thread echoes
            flush_echo(outer, here=True)
        self._token = _ROUTE.set(self)
        return self.log

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        token = self._token
        if token is not None:
            self._token = None
            _ROUTE.reset(token)
        if self.echo_tails:
            flush_echo(self, end=True)


_ROUTE: contextvars.ContextVar[Any] = contextvars.ContextVar("germinate_nb_log_route", default=None)
"""Where this context's output goes: a ``capture()`` block, or the engine's running job (any
object with ``log`` (a TaskLog), ``echo``, ``echo_label``, writable ``records`` and
``echo_tails``, and ``job``)."""


def capture(log: TaskLog, *, echo: bool = False) -> contextlib.AbstractContextManager[TaskLog]:
    r"""Route what the current context prints and logs to ``log`` while the block runs.

    Covers ``print()`` / ``sys.stdout.write``, ``sys.stderr`` and logging records created in the
    current context (thread, or asyncio task). Other threads and tasks are unaffected. Nested
    captures write to the innermost log only. Calls :func:`install` first if it never ran.

    Parameters
    ----------
    log : TaskLog
        The buffer that receives the text.
    echo : bool
        Also write stdout/stderr text to the stream that the proxies wrap (the notebook cell's
        stream in a kernel), so a run started from a cell still shows its prints there.

    Returns
    -------
    contextlib.AbstractContextManager[TaskLog]
        A one-shot context manager whose ``__enter__`` returns ``log``.

    Examples
    --------
    >>> install()
    >>> log = TaskLog()
    >>> with capture(log):
    ...     print("hello")
    >>> log.text
    'hello\n'
    >>> uninstall()
    """
    return _Capture(log, echo)


# ---------------------------------------------------------------------------------------------
# Streams


def _record_being_handled(frame: types.FrameType | None) -> object:
    """The record a logging handler is writing, if this write comes from one, else None."""
    for _ in range(_MAX_HANDLER_DEPTH):
        if frame is None:
            return None
        code = frame.f_code
        if code is _HANDLE_ERROR_CODE:  # "--- Logging error ---": keep it
            return None
        if code is _CALL_HANDLERS_CODE:
            return frame.f_locals.get("record")
        frame = frame.f_back
    return None


def _is_handler_output(records: weakref.WeakSet[logging.LogRecord], frame: types.FrameType) -> bool:
    """Whether a logging handler is writing a record that is already in the log."""
    record = _record_being_handled(frame)
    return isinstance(record, logging.LogRecord) and record in records


_CALL_HANDLERS_CODE = logging.Logger.callHandlers.__code__
_HANDLE_ERROR_CODE = logging.Handler.handleError.__code__
_MAX_HANDLER_DEPTH = 64


class _RoutingStream:
    """Stands in for ``sys.stdout`` / ``sys.stderr`` and routes captured text to a task log.

    Every attribute other than ``write``, ``writelines`` and ``flush`` is read from and set on
    the wrapped stream.
    """

    __slots__ = ("_germinate_name", "_germinate_target")

    def __init__(self, target: Any, name: str) -> None:
        object.__setattr__(self, "_germinate_target", target)
        object.__setattr__(self, "_germinate_name", name)

    def write(self, s: str) -> int:
        route = _ROUTE.get()
        if route is None:
            return self._germinate_target.write(s)  # type: ignore[no-any-return]
        if not isinstance(s, str):
            msg = f"write() argument must be str, not {type(s).__name__}"
            raise TypeError(msg)
        records = route.records  # None, or the records captured so far that are still alive
        if not records or not _is_handler_output(records, sys._getframe(1)):
            route.log.write(s)
        if route.echo:
            _echo(self, route, s)
        return len(s)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        route = _ROUTE.get()
        if route is None:
            self._germinate_target.flush()
            return
        if route.echo_tails:
            flush_echo(route, self, here=True)
        try:
            self._germinate_target.flush()
        except (OSError, ValueError):  # a closed cell stream must not fail the task
            pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_germinate_"):  # an unset slot (a copy made without __init__)
            raise AttributeError(name)
        return getattr(self._germinate_target, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._germinate_target, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._germinate_target, name)

    def __repr__(self) -> str:
        return f"<germinate_nb routing {self._germinate_name} of {self._germinate_target!r}>"


_ECHO_LOCK = threading.RLock()
_LONE_CR = re.compile(r"\r(?!\n)")
ECHO_HOLD = 8192
"""Longest text held for its newline; beyond it, the text so far is echoed as a partial line."""


class _Held:
    """Echoed text of one thread on one stream, waiting for its newline."""

    __slots__ = ("begun", "chunks", "size")

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.size = 0
        self.begun = False  # part of the line was written already (a flush, a long line)


def _echo(stream: _RoutingStream, route: Any, s: str) -> None:
    r"""Echo ``s`` to the wrapped stream a whole line at a time, labelled with the route's task.

    ``print`` writes its text and its newline in two calls, so two threads echoing at once
    would otherwise interleave mid-line ("line Aline B\n"). The text after the last newline
    waits in ``route.echo_tails`` (per stream and thread) until a newline, a ``flush()`` in
    the same thread, ``ECHO_HOLD`` characters, or the end of the route (:func:`flush_echo`).
    Each line a task's text begins starts with the route's ``echo_label`` (``"[fetch] "``; a
    ``capture()`` block has none).
    """
    key = (stream, threading.get_ident())
    with _ECHO_LOCK:
        tails = route.echo_tails
        if tails is None:
            tails = route.echo_tails = {}
        held = tails.get(key)
        if "\n" not in s:
            if held is None:
                held = tails[key] = _Held()
            held.chunks.append(s)
            held.size += len(s)
            if held.size > ECHO_HOLD:
                _write_held(stream, route.echo_label, held)
            return
        if held is not None and held.chunks:
            held.chunks.append(s)
            text = "".join(held.chunks)
        else:
            text = s
        begun = held is not None and held.begun
        cut = text.rfind("\n") + 1
        _write_through(stream, _labelled(text[:cut], route.echo_label, not begun))
        if cut < len(text):
            held = tails[key] = _Held()
            held.chunks.append(text[cut:])
            held.size = len(text) - cut
        elif held is not None:
            del tails[key]


def _write_held(stream: _RoutingStream, label: str, held: _Held) -> None:
    """Echo the held text as a partial line (its line goes on)."""
    if held.chunks:
        _write_through(stream, _labelled("".join(held.chunks), label, not held.begun))
        held.chunks.clear()
        held.size = 0
        held.begun = True


def _labelled(text: str, label: str, at_line_start: bool) -> str:
    r"""``label`` before each non-empty line ``text`` begins, and after each lone ``\r``."""
    if not label:
        return text
    parts = _LONE_CR.sub(lambda _: "\r" + label, text).split("\n")
    for i, part in enumerate(parts):
        if part and (i or at_line_start):
            parts[i] = label + part
    return "\n".join(parts)


def _write_through(stream: _RoutingStream, text: str) -> None:
    try:
        stream._germinate_target.write(text)
    except (OSError, ValueError):  # a closed cell stream must not fail the task
        pass


def flush_echo(
    route: Any, stream: _RoutingStream | None = None, *, end: bool = False, here: bool = False
) -> None:
    """Write the echoed text still waiting for a newline.

    ``stream`` limits it to one stream, ``here`` to the calling thread's text (what the
    proxies' ``flush()`` and a nested capture ask for). With ``end=True`` (a capture block or
    a task's job ends, or the task is given up on) every held text is written and a task's
    line left open is ended, so the next task's text starts a line.
    """
    with _ECHO_LOCK:
        tails = route.echo_tails
        if not tails:
            return
        label = route.echo_label
        me = threading.get_ident()
        for key in list(tails):
            held_stream, thread = key
            if (stream is not None and held_stream is not stream) or (here and thread != me):
                continue
            held = tails[key]
            _write_held(held_stream, label, held)
            if end:
                del tails[key]
                if label and held.begun:
                    _write_through(held_stream, "\n")


# ---------------------------------------------------------------------------------------------
# Logging


def _format_record(record: logging.LogRecord) -> str:
    """``LEVEL name: message`` plus traceback / stack; never raises."""
    try:
        message = record.getMessage()
    except Exception as err:
        message = f"{safe_str(record.msg)} (message formatting failed: {safe_str(err)})"
    parts = [f"{record.levelname} {record.name}: {message}\n"]
    exc_info = record.exc_info
    if exc_info and exc_info[1] is not None:
        parts.append(format_full_traceback(exc_info[1]))
    if record.stack_info:
        parts.append(f"{record.stack_info}\n")
    return "".join(parts)


def _capture_record(route: _Capture, record: logging.LogRecord) -> None:
    if record.name is None or record.levelno is None:  # logging.makeLogRecord(dict)
        return
    records = route.records
    if records is None:
        records = route.records = weakref.WeakSet()
    elif record in records:  # our factory is chained twice
        return
    records.add(record)
    try:
        text = _format_record(record)
    except Exception:  # pragma: no cover - _format_record is already defensive
        text = f"{record.levelname} {record.name}: <unformattable record>\n"
    route.log.write(text)


_factory_active = False  # our factories capture (else they only pass through)


def _make_record_factory(
    previous: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    """Wrap the current log-record factory; each install() chains a new wrapper at most.

    ``previous`` is fixed when the wrapper is made, so a chain of factories can never loop back
    to a wrapper above it, whoever else wraps or replaces factories in between. Two of our
    wrappers in one chain capture a record once (``_capture_record`` skips known records).
    """

    def _germinate_record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _factory_active:
            route = _ROUTE.get()
            if route is not None:
                _capture_record(route, record)
        return record

    _germinate_record_factory.germinate_previous = previous  # type: ignore[attr-defined]
    return _germinate_record_factory


def _is_our_factory(factory: object) -> bool:
    return hasattr(factory, "germinate_previous")


# ---------------------------------------------------------------------------------------------
# install / uninstall

_lock = threading.RLock()
_installed = False


def install() -> None:
    """Route captured output: wrap ``sys.stdout``/``sys.stderr`` and hook log-record creation.

    Idempotent and thread-safe; cheap when already installed. A stream that is not a routing
    proxy (``None`` excepted) is wrapped, so calling it again after someone replaced
    ``sys.stdout`` (``redirect_stdout``, ``%%capture``, a new ``OutStream``) routes the new
    stream too. Call it in the thread that owns the streams (extension load, the start of a
    run), not from task threads.

    Log records are captured by wrapping :func:`logging.getLogRecordFactory` (a handler on the
    root logger would turn every later ``logging.basicConfig()`` into a no-op and silence
    ``logging.lastResort``). If another library replaces the factory without chaining ours,
    records are not captured as records until the next :func:`install`, but what handlers write
    to the proxied streams still lands in the task log.
    """
    global _installed, _factory_active
    with _lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None and not isinstance(stream, _RoutingStream):
                setattr(sys, name, _RoutingStream(stream, name))
        current = logging.getLogRecordFactory()
        if not _is_our_factory(current):
            logging.setLogRecordFactory(_make_record_factory(current))
        _factory_active = True
        _installed = True


def uninstall() -> None:
    """Undo :func:`install` where it is still in place.

    ``sys.stdout``/``sys.stderr`` get back the stream the proxy wraps when the proxy is still
    installed (a stream someone else put there since is left alone); the previous record factory
    is restored when ours is still the current one (one that another library wrapped stays in
    its chain, passing records through). Proxies still referenced elsewhere (a
    ``StreamHandler`` created after :func:`install`) keep passing text through.
    """
    global _installed, _factory_active
    with _lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, _RoutingStream):
                while isinstance(stream, _RoutingStream):
                    stream = stream._germinate_target
                setattr(sys, name, stream)
        current = logging.getLogRecordFactory()
        if _is_our_factory(current):
            logging.setLogRecordFactory(current.germinate_previous)  # type: ignore[attr-defined]
        _factory_active = False
        _installed = False


def is_installed() -> bool:
    """Whether both streams are routing proxies and log records are captured."""
    return (
        _factory_active
        and isinstance(sys.stdout, _RoutingStream)
        and isinstance(sys.stderr, _RoutingStream)
    )
