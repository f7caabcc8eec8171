"""Traceback text for failed tasks: the user's frames first, germinate_nb's own frames hidden.

Every function here returns text and never raises an ``Exception``: an exception whose
``__str__`` (or an argument's ``__repr__``) raises is described by a fallback such as
``<exception str() failed: ValueError: boom>``, very deep tracebacks keep their first and last
frames, long chains and exception groups are cut with a note, and if formatting itself fails
the result is the exception's type and message with a line saying so.
"""

from __future__ import annotations

import builtins
import os
import sys
import traceback
import types
from collections.abc import Iterable

__all__ = [
    "DEFAULT_HIDDEN_PREFIXES",
    "PACKAGE_DIR",
    "format_full_traceback",
    "format_user_traceback",
    "safe_str",
]

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""Directory of the ``germinate_nb`` package: its frames are the engine's."""

DEFAULT_HIDDEN_PREFIXES: tuple[str, ...] = (PACKAGE_DIR,)

MAX_FRAMES = 100
"""Frames shown per traceback; beyond this the first and last ``MAX_FRAMES // 2`` are kept."""
MAX_CHAIN = 32
"""Chained exceptions (``__cause__`` / ``__context__``) shown."""
MAX_GROUP = 15
"""Sub-exceptions shown per exception group."""
MAX_GROUP_DEPTH = 6
"""Nesting of exception groups shown."""

# exception groups exist from Python 3.11 on; the package supports 3.10
_GROUP_TYPES: tuple[type, ...] = tuple(
    t for t in (getattr(builtins, "BaseExceptionGroup", None),) if isinstance(t, type)
)

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def safe_str(err: object) -> str:
    """``str(err)``, or a fallback text when that raises; never raises.

    Examples
    --------
    >>> class Bad(Exception):
    ...     def __str__(self):
    ...         raise ValueError("boom")
    >>> safe_str(Bad())
    '<exception str() failed: ValueError: boom>'
    >>> safe_str(KeyError("k"))
    "'k'"
    """
    try:
        text = str(err)
        if type(text) is not str:  # a str subclass with surprises
            text = str.__str__(text)
        return text
    except BaseException as failure:  # noqa: BLE001 - a broken __str__ may raise anything
        try:
            detail = str(failure)
        except BaseException:  # noqa: BLE001
            detail = "<str() failed>"
        name = _type_name(type(failure))
        return f"<exception str() failed: {name}{': ' + detail if detail else ''}>"


def format_user_traceback(
    err: BaseException, *, hidden_prefixes: tuple[str, ...] = DEFAULT_HIDDEN_PREFIXES
) -> str:
    """The traceback text of ``err`` with the engine's frames left out.

    Frames whose file lies under one of ``hidden_prefixes`` are dropped; each run of dropped
    frames leaves one line ``(N germinate_nb frames hidden)`` where it was. Frames of notebook
    cells, ``<germinate_task NAME>`` bodies and user modules are kept. When every frame of a
    traceback is hidden, the last one (where the error was raised) is kept. Chained exceptions
    and exception groups are included, formatted the same way.

    Parameters
    ----------
    err : BaseException
        The exception, with its ``__traceback__``.
    hidden_prefixes : tuple of str
        Directories (or path prefixes) of the frames to hide; the default is the
        ``germinate_nb`` package directory.

    Returns
    -------
    str
        The text, ending with a newline; never raises.

    See Also
    --------
    format_full_traceback : every frame, for "show engine frames".
    """
    try:
        prefixes = _normalize_prefixes(hidden_prefixes)
        return "".join(_format_chain(err, prefixes, depth=0))
    except Exception as failure:
        return _fallback(err, failure)


def format_full_traceback(err: BaseException) -> str:
    """The traceback text of ``err`` with every frame; never raises.

    Same limits and fallbacks as :func:`format_user_traceback`.
    """
    try:
        return "".join(_format_chain(err, (), depth=0))
    except Exception as failure:
        return _fallback(err, failure)


# ---------------------------------------------------------------------------------------------


def _type_name(cls: type) -> str:
    try:
        name = cls.__qualname__
        module = cls.__module__
    except Exception:
        return "<unknown exception type>"
    if module not in ("builtins", "__main__") and isinstance(module, str):
        return f"{module}.{name}"
    return str(name)


def _fallback(err: object, failure: BaseException) -> str:
    try:
        head = f"{_type_name(type(err))}: {safe_str(err)}"
    except Exception:  # pragma: no cover - both helpers are already defensive
        head = "<unprintable exception>"
    return f"{head}\n(the traceback could not be formatted: {safe_str(failure)})\n"


def _normalize_prefixes(prefixes: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for prefix in prefixes:
        for variant in {os.path.abspath(prefix), os.path.realpath(prefix)}:
            if os.path.isdir(variant):
                variant = os.path.join(variant, "")
            out.append(os.path.normcase(variant))
    return tuple(out)


def _is_hidden(filename: str, prefixes: tuple[str, ...], cache: dict[str, bool]) -> bool:
    if not prefixes or not filename or filename.startswith("<"):
        return False
    hidden = cache.get(filename)
    if hidden is None:
        path = os.path.normcase(os.path.abspath(filename))
        hidden = path.startswith(prefixes) or os.path.normcase(
            os.path.realpath(filename)
        ).startswith(prefixes)
        cache[filename] = hidden
    return hidden


def _exception_only(err: BaseException) -> list[str]:
    """The ``Type: message`` lines (with SyntaxError details and notes), never raising."""
    try:
        str(err)
    except Exception:
        lines = [f"{_type_name(type(err))}: {safe_str(err)}\n"]
        notes = getattr(err, "__notes__", None)
        if isinstance(notes, (list, tuple)):
            lines.extend(f"{safe_str(note)}\n" for note in notes)
        return lines
    try:
        return traceback.format_exception_only(type(err), err)
    except Exception:
        return [f"{_type_name(type(err))}: {safe_str(err)}\n"]


def _frames(tb: types.TracebackType | None, prefixes: tuple[str, ...]) -> list[str]:
    """The ``File ...`` lines of one traceback, hidden frames replaced by notes."""
    count = 0
    cursor = tb
    while cursor is not None:
        count += 1
        cursor = cursor.tb_next
    if count == 0:
        return []
    # (frames, omitted-after-them) segments: the first and last MAX_FRAMES // 2 when deep
    if count > MAX_FRAMES:
        keep = MAX_FRAMES // 2
        tail_tb = tb
        for _ in range(count - keep):
            assert tail_tb is not None
            tail_tb = tail_tb.tb_next
        segments = [
            (list(traceback.extract_tb(tb, limit=keep)), count - 2 * keep),
            (list(traceback.extract_tb(tail_tb)), 0),
        ]
    else:
        segments = [(list(traceback.extract_tb(tb)), 0)]

    cache: dict[str, bool] = {}
    flags = [[_is_hidden(f.filename, prefixes, cache) for f in frames] for frames, _ in segments]
    if all(all(seg) for seg in flags):  # every frame is the engine's: keep where it raised
        flags[-1][-1] = False

    cells = _cell_names()
    if cells:
        segments = [([_as_cell(f, cells) for f in frames], n) for frames, n in segments]
    out: list[str] = []
    for (frames, omitted), hidden in zip(segments, flags, strict=True):
        run: list[traceback.FrameSummary] = []
        dropped = 0
        for frame, is_hidden in zip(frames, hidden, strict=True):
            if is_hidden:
                if run:
                    out.extend(traceback.StackSummary.from_list(run).format())
                    run = []
                dropped += 1
                continue
            if dropped:
                out.append(_hidden_note(dropped))
                dropped = 0
            run.append(frame)
        if run:
            out.extend(traceback.StackSummary.from_list(run).format())
        if dropped:
            out.append(_hidden_note(dropped))
        if omitted:
            out.append(f"  ... {omitted} more frames not shown ...\n")
    return out


def _cell_names() -> dict[str, int]:
    """IPython's cell file names (a kernel's ``/tmp/ipykernel_.../123.py``) to cell numbers."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    found = getattr(getattr(shell, "compile", None), "_filename_map", None)
    return found if isinstance(found, dict) else {}


def _as_cell(frame: traceback.FrameSummary, cells: dict[str, int]) -> traceback.FrameSummary:
    """A frame of a notebook cell named as IPython names it, ``Cell In[3]``."""
    number = cells.get(frame.filename)
    if number is None:
        return frame
    return traceback.FrameSummary(
        f"Cell In[{number}]", frame.lineno, frame.name, lookup_line=False, line=frame.line,
        end_lineno=frame.end_lineno, colno=frame.colno, end_colno=frame.end_colno,
    )  # fmt: skip


def _hidden_note(n: int) -> str:
    return f"  ({n} germinate_nb frame{'s' if n != 1 else ''} hidden)\n"


def _format_one(err: BaseException, prefixes: tuple[str, ...], depth: int) -> list[str]:
    out: list[str] = []
    tb = err.__traceback__
    if tb is not None:
        out.append("Traceback (most recent call last):\n")
        out.extend(_frames(tb, prefixes))
    out.extend(_exception_only(err))
    subs = getattr(err, "exceptions", None) if isinstance(err, _GROUP_TYPES) else None
    if subs:
        if depth >= MAX_GROUP_DEPTH:
            out.append(f"  ({len(subs)} sub-exceptions, nested too deep to show)\n")
            return out
        shown = subs[:MAX_GROUP]
        for number, sub in enumerate(shown, start=1):
            out.append(f"  [sub-exception {number} of {len(subs)}]\n")
            text = "".join(_format_chain(sub, prefixes, depth + 1))
            out.extend(f"    {line}\n" for line in text.splitlines())
        if len(subs) > len(shown):
            out.append(f"  ({len(subs) - len(shown)} more sub-exceptions not shown)\n")
    return out


def _format_chain(err: BaseException, prefixes: tuple[str, ...], depth: int) -> list[str]:
    """Oldest exception first, joined by the interpreter's "above exception" sentences."""
    if not isinstance(err, BaseException):
        return [f"{safe_str(err)}\n"]
    # (exception, sentence printed between it and the newer exception that chains it)
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = err
    link = ""
    cut = False
    while current is not None:
        if id(current) in seen:
            break
        if len(chain) >= MAX_CHAIN:
            cut = True
            break
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    out: list[str] = []
    if cut:
        out.append(f"(earlier chained exceptions not shown: only the last {MAX_CHAIN} are)\n\n")
    for index in range(len(chain) - 1, -1, -1):
        exc, sentence = chain[index]
        out.extend(_format_one(exc, prefixes, depth))
        if index:
            out.append(sentence)
    return out
