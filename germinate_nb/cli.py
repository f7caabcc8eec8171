"""The ``germinate-nb`` command: run, check and draw a notebook's DAG, and list its past runs.

Code cells (``%%germinate_task`` included) run in order in an in-process IPython shell with the
extension loaded; widgets are never imported here. ``history`` reads the notebook's run store
without running any cell.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from germinate_nb.execution.tracebacks import safe_str

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_MESSAGE = 400  # characters of user text (an exception message...) quoted in one line


class CliError(Exception):
    """A usage or validation problem: printed as one message, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``germinate-nb``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["GERMINATE_NB_HEADLESS"] = "1"
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return int(args.func(args))
            finally:
                _close_stores()
    except CliError as err:
        sys.stderr.write(f"germinate-nb: error: {_printable(str(err))}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("germinate-nb: interrupted\n")
        return EXIT_INTERRUPTED


def _json_text(doc: Any) -> str:
    """``doc`` as indented JSON and a newline; objects JSON has no type for as their repr.

    Integers are written whole, however long (Python refuses to turn one of more than 4,300
    digits into text unless told to; this command is its own process, so it is told to).
    """
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else None
    if limit is not None:
        sys.set_int_max_str_digits(0)
    try:
        return json.dumps(doc, indent=2, default=_safe_repr) + "\n"
    finally:
        if limit is not None:
            sys.set_int_max_str_digits(limit)


def _close_stores() -> None:
    """Write the run stores' last rows now, so a store that fails shows its warning our way.

    At exit it came in Python's format, or not at all when a locked file outlasted the exit.
    """
    store = sys.modules.get("germinate_nb.execution.store")
    if store is not None:
        store.close_all(timeout=STORE_CLOSE_SECONDS)


STORE_CLOSE_SECONDS = 15.0
"""How long the command waits for its run store's last rows (a locked file is waited for
5 s per attempt)."""


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Show germinate_nb's own warnings (a run store that cannot be used) as one line."""
    from germinate_nb.execution.store import StoreWarning

    if not issubclass(category, StoreWarning):
        _default_showwarning(message, category, filename, lineno, file, line)
        return
    text = str(message).removeprefix("germinate_nb: ")
    sys.stderr.write(f"germinate-nb: warning: {_one_line(text, 1000)}\n")


_default_showwarning = warnings.showwarning


def _printable(text: str) -> str:
    r"""The text with control characters (terminal escapes...) shown as escapes; newlines kept.

    >>> _printable("a\x1b[2Jb\nc")
    'a\\x1b[2Jb\nc'
    """
    if text.isprintable():
        return text
    return "".join(c if c == "\n" or c.isprintable() else repr(c)[1:-1] for c in text)


def _one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """User text (an exception message) on one line, control characters escaped, cut short."""
    flat = " ".join(_printable(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _safe_repr(value: Any) -> str:
    """``repr(value)``, or a note saying why it failed (a user's ``__repr__`` may raise)."""
    try:
        return repr(value)
    except Exception as err:
        return (
            f"<{type(value).__name__} object: repr failed: {type(err).__name__}: {safe_str(err)}>"
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="germinate-nb",
        description="Run, check and draw the task DAGs declared in a Jupyter notebook.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="execute the notebook's cells, then run a state's DAG")
    run_p.add_argument("notebook", help="path to the .ipynb file")
    which = run_p.add_mutually_exclusive_group()
    which.add_argument("--state", help="state to run (default: the only one)")
    which.add_argument("--workflow", help="workflow to run (its name or variable name)")
    run_p.add_argument("--input", help="run input: a JSON object, or @file.json")
    run_p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    reuse = run_p.add_mutually_exclusive_group()
    reuse.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the outputs of tasks whose code and input are unchanged, from the "
        "notebook's run store (as the explorer does)",
    )
    reuse.add_argument("--no-cache", action="store_true", help="do not reuse results (default)")
    run_p.add_argument("--store", metavar="PATH|off", help=STORE_HELP)
    run_p.add_argument("--max-workers", type=int, default=None, help="threads for sync tasks")
    run_p.add_argument(
        "--logs", action="store_true", help="echo what each task printed or logged, on stderr"
    )
    run_p.set_defaults(func=_cmd_run)
    check_p = sub.add_parser("check", help="execute the declarations and validate every state")
    check_p.add_argument("notebook")
    check_p.add_argument("--state", help="check only this state")
    check_p.set_defaults(func=_cmd_check)
    graph_p = sub.add_parser("graph", help="draw a state's DAG to a file")
    graph_p.add_argument("notebook")
    graph_p.add_argument("-o", "--output", required=True, help="FILE.png|.svg|.dot|.mmd")
    graph_p.add_argument("--state", help="state to draw (default: the only one)")
    graph_p.set_defaults(func=_cmd_graph)
    history_p = sub.add_parser(
        "history", help="list the notebook's past runs, or one run's task runs (runs no cell)"
    )
    history_p.add_argument("notebook")
    history_p.add_argument("run_id", nargs="?", help="show this run's task runs (an id prefix)")
    history_p.add_argument("--state", help="only the runs of this state")
    history_p.add_argument("--limit", type=int, default=20, help="most runs listed (20)")
    history_p.add_argument("--json", action="store_true", help="print one JSON document")
    history_p.add_argument("--store", metavar="PATH|off", help=STORE_HELP)
    history_p.set_defaults(func=_cmd_history)
    return parser


STORE_HELP = (
    "run store (default: $GERMINATE_STORE, else .germinate/runs.sqlite next to the notebook)"
)


# -- loading a notebook ---------------------------------------------------------------------


class _ExitCalled(SystemExit):
    """``exit()`` or ``quit`` in a cell (IPython asks its shell to exit)."""


def _ask_exit() -> None:
    raise _ExitCalled


def load_notebook(path: str) -> Any:
    """Execute the notebook's code cells in order in a fresh in-process shell; returns the shell."""
    file = Path(path)
    if not file.exists():
        msg = f"no such notebook: {path}"
        raise CliError(msg)
    cells = read_code_cells(file)  # a broken notebook is reported before IPython is imported
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.ask_exit = _ask_exit  # type: ignore[attr-defined]  # exit(), quit: no way out of its own
    shell.extension_manager.load_extension("germinate_nb")
    os.chdir(file.resolve().parent)
    for number, source in enumerate(cells, start=1):
        if not source.strip():
            continue
        with _cell_output_discarded():
            result = shell.run_cell(source, store_history=False, silent=False)
        error = result.error_before_exec or result.error_in_exec
        if isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt  # Ctrl-C while a cell ran: exit 130, "interrupted"
        if isinstance(error, SystemExit):
            if isinstance(error, _ExitCalled):
                call = "exit() or quit"
            elif error.code is None:
                call = "sys.exit()"
            else:
                call = f"sys.exit({_safe_repr(error.code)})"
            msg = (
                f"code cell {number} of {path} called {call}{_where(error, source)}: "
                "a notebook run by germinate-nb must not exit. Remove the call, or raise an "
                "exception to report a problem."
            )
            raise CliError(msg)
        if error is not None:
            text = _one_line(error.msg if isinstance(error, SyntaxError) else safe_str(error))
            msg = (
                f"code cell {number} of {path} raised {type(error).__name__}"
                f"{_where(error, source)}: {text}. Fix that cell (it fails in Jupyter too), "
                "then run germinate-nb again."
            )
            raise CliError(msg)
    return shell


def _where(error: BaseException, source: str) -> str:
    """`` (line N: `code`)``: the line of the cell where ``error`` was raised, if known."""
    lineno = getattr(error, "lineno", None) if isinstance(error, SyntaxError) else None
    if lineno is None:
        cell_file = None
        tb = error.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if cell_file is None and code.co_name == "<module>":
                cell_file = code.co_filename
            if cell_file is not None and code.co_filename == cell_file:
                lineno = tb.tb_lineno
            tb = tb.tb_next
    lines = source.splitlines()
    if not isinstance(lineno, int) or not 1 <= lineno <= len(lines):
        return ""
    code_line = _one_line(lines[lineno - 1].strip(), 80)
    return f" (line {lineno}: `{code_line}`)"


@contextlib.contextmanager
def _cell_output_discarded() -> Iterator[None]:
    """Discard what a cell prints, text or bytes, through sys.stdout or straight to fd 1 and 2.

    stdout carries the table or the ``--json`` document: a cell's output must not get into it.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved: list[int] = []
    with open(os.devnull, "w", encoding="utf-8", errors="backslashreplace") as sink:
        try:
            for fd in (1, 2):
                try:
                    saved.append(os.dup(fd))
                    os.dup2(sink.fileno(), fd)
                except OSError:  # no such descriptor (embedded use): nothing to protect
                    break
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                yield
        finally:
            for fd, copy in zip((1, 2), saved, strict=False):
                os.dup2(copy, fd)
                os.close(copy)


def read_code_cells(file: Path) -> list[str]:
    """The sources of a notebook's code cells, in order.

    A v4 notebook is read as the JSON it is (``import nbformat`` costs ~2 s here, through
    jsonschema's format checkers); older formats go through ``nbformat`` to be upgraded.
    """
    where = f"cannot read {file} as a notebook"
    try:
        doc = _parse_json(file.read_text(encoding="utf-8"), f"{where}: it")
    except OSError as err:
        msg = f"{where}: {err.strerror or err}."
        raise CliError(msg) from None
    except UnicodeDecodeError as err:
        msg = (
            f"{where}: it is not UTF-8 text (byte 0x{err.object[err.start]:02x} at position "
            f"{err.start}). Is it really an .ipynb file? Save it again from Jupyter."
        )
        raise CliError(msg) from None
    if not isinstance(doc, dict):
        msg = f"{where}: the JSON is a {_json_type(doc)}, not an object with a list of cells."
        raise CliError(msg)
    version = doc.get("nbformat")
    if isinstance(version, str | float | bool):
        found = _one_line(json.dumps(version), 40)
        msg = (
            f'{where}: "nbformat" is {found}, it must be the whole number 4 (or 3). '
            'Write "nbformat": 4 without quotes, or save the notebook from Jupyter.'
        )
        raise CliError(msg)
    if version != 4:
        return _read_old_notebook(file, where)
    cells = doc.get("cells")
    if not isinstance(cells, list):
        found = 'no "cells" key' if cells is None else f'"cells" is a {_json_type(cells)}'
        msg = f'{where}: {found}; an nbformat 4 notebook has a list of cells. Add "cells": [].'
        raise CliError(msg)
    sources: list[str] = []
    for index, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            msg = f"{where}: cell {index} is a {_json_type(cell)}, not an object."
            raise CliError(msg)
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(part, str) for part in source):
            source = "".join(source)
        if not isinstance(source, str):
            msg = (
                f"{where}: the source of code cell {len(sources) + 1} (cell {index}) is "
                f"{_one_line(json.dumps(source), 80)}; it must be a string or a list of strings."
            )
            raise CliError(msg)
        sources.append(source)
    return sources


def _read_old_notebook(file: Path, where: str) -> list[str]:
    import nbformat

    try:
        nb = nbformat.read(file, as_version=4)
        return [str(c.source) for c in nb.cells if c.cell_type == "code"]
    except Exception as err:
        msg = f"{where}: {type(err).__name__}: {_one_line(safe_str(err))}"
        raise CliError(msg) from None


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _parse_json(text: str, source: str) -> Any:
    """``json.loads`` with every failure (bad syntax, nesting, huge numbers) as a CliError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"{source} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})."
        raise CliError(msg) from None
    except RecursionError:
        msg = (
            f"{source} is JSON nested too deeply to read (thousands of levels of brackets). "
            "Flatten it."
        )
        raise CliError(msg) from None
    except ValueError as err:  # e.g. an integer longer than Python's digit limit
        msg = f"{source} cannot be read as JSON: {_one_line(str(err), 200)}."
        raise CliError(msg) from None


def _pick_state(name: str | None) -> Any:
    from germinate_nb.core.registry import TaskRegistry, did_you_mean

    states = TaskRegistry.default().states
    if name is not None:
        if name not in states:
            known = ", ".join(states) or "none"
            hint = did_you_mean(name, list(states))
            msg = f"no state '{name}' in the notebook.{hint} States: {known}."
            raise CliError(msg)
        return states[name]
    populated = [s for s in states.values() if len(s)]
    if len(populated) == 1:
        return populated[0]
    if not populated:
        msg = "the notebook declares no tasks."
        raise CliError(msg)
    names = ", ".join(s.name for s in populated)
    msg = f"the notebook has several states ({names}); choose one with --state."
    raise CliError(msg)


def _pick_workflow(shell: Any, name: str) -> Any:
    from germinate_nb.core.workflow import Workflow

    found = {}
    for var, value in shell.user_ns.items():
        if isinstance(value, Workflow) and not var.startswith("_"):
            found[var] = value
            found.setdefault(value.name, value)
    if name not in found:
        known = ", ".join(sorted({w.name for w in found.values()})) or "none"
        msg = f"no workflow '{name}' in the notebook. Workflows: {known}."
        raise CliError(msg)
    return found[name]


def _read_input(text: str | None) -> Any:
    if text is None:
        return None
    source = "--input"
    if text.startswith("@"):
        source = text[1:]
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as err:
            msg = f"cannot read --input file {source}: {err.strerror or err}."
            raise CliError(msg) from None
        except UnicodeDecodeError as err:
            msg = (
                f"--input file {source} is not UTF-8 text (byte 0x{err.object[err.start]:02x} "
                f"at position {err.start}). Give a JSON file saved as UTF-8."
            )
            raise CliError(msg) from None
    value = _parse_json(text, source)
    if not isinstance(value, dict):
        msg = f"{source} must be a JSON object, got {type(value).__name__}."
        raise CliError(msg)
    return value


# -- progress ---------------------------------------------------------------------------------


class Progress:
    """One line on stderr per finished task, and a bar when stderr is a terminal."""

    def __init__(self, stream: TextIO, total: int, *, logs: bool = False) -> None:
        self.stream = stream
        self.total = total
        self.done = 0
        self.tty = stream.isatty()
        self.logs = logs

    def on_task_end(self, result: Any, task_run: Any) -> None:
        """Print the task's line (and redraw the bar)."""
        self.done += 1
        ms = f"{task_run.duration * 1000:8.1f} ms" if task_run.duration is not None else " " * 11
        mark = {"succeeded": "✓", "cached": "=", "failed": "✗", "skipped": "-"}.get(
            task_run.status.value, "·"
        )
        line = f"{mark} {task_run.name:<24} {task_run.status.value:<10} {ms}"
        if task_run.error is not None:
            first = (task_run.error.message.splitlines() or [""])[0]
            line += f"  {task_run.error.type}: {_one_line(first, 120)}"
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(line + "\n")
        if self.logs and task_run.log:
            for text in task_run.log.splitlines():
                self.stream.write(f"    │ {_printable(text)}\n")
        if self.tty:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            self.stream.write(f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
        self.stream.flush()

    def on_run_end(self, result: Any) -> None:
        """Clear the bar."""
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _output_json(value: Any) -> Any:
    if value is None:
        return None
    try:
        return value.model_dump(mode="json")
    except Exception:
        return _safe_repr(value)


def _result_json(result: Any) -> dict[str, Any]:
    return {
        "state": result.state,
        "status": result.status,
        "ok": result.ok,
        "duration": result.duration,
        "tasks": {
            name: {
                "status": tr.status.value,
                "duration": tr.duration,
                "output": _output_json(tr.output),
                "error": str(tr.error) if tr.error is not None else None,
                "traceback": tr.error.traceback if tr.error is not None else None,
                "skipped_because": tr.skipped_because,
                "log": tr.log,
                "attempts": [
                    {
                        "number": a.number,
                        "status": a.status,
                        "start": a.start,
                        "duration": a.duration,
                        "error": str(a.error) if a.error is not None else None,
                    }
                    for a in tr.attempts
                ],
            }
            for name, tr in result.task_runs.items()
        },
    }


def _table(result: Any) -> str:
    from germinate_nb.execution.result import short_repr

    rows = [("task", "status", "time", "output / error")]
    for name, tr in result.task_runs.items():
        ms = f"{tr.duration * 1000:.1f} ms" if tr.duration is not None else ""
        if tr.error is not None:
            detail = _printable((str(tr.error).splitlines() or [""])[0])
        elif tr.skipped_because:
            detail = f"after '{tr.skipped_because}' failed"
        else:
            detail = short_repr(tr.output) if tr.output is not None else ""
        rows.append((name, tr.status.value, ms, detail))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip()
        for r in rows
    ]
    took = f"{result.duration:.3f} s" if result.duration is not None else "?"
    lines.append(f"state '{result.state}': {result.status} in {took}")
    return "\n".join(lines) + "\n"


# -- subcommands --------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from germinate_nb.errors import DagValidationError
    from germinate_nb.execution.runner import run
    from germinate_nb.execution.workflows import run_workflow

    if args.max_workers is not None and args.max_workers < 1:
        msg = f"--max-workers must be at least 1, got {args.max_workers}."
        raise CliError(msg)
    from germinate_nb.execution.store import set_origin

    run_input = _read_input(args.input)
    store = _store_option(args.store)  # before load_notebook() moves to the notebook's folder
    set_origin(f"germinate-nb run {Path(args.notebook).name}")
    shell = load_notebook(args.notebook)
    # task output never reaches stdout (the table or the JSON): it is in each task's log
    options: dict[str, Any] = {
        "reuse": args.reuse,
        "max_workers": args.max_workers,
        "echo": False,
        "store": store,
    }
    try:
        if args.workflow:
            workflow = _pick_workflow(shell, args.workflow)
            wf_result = run_workflow(workflow, run_input, **options)
            results = [step.result for step in wf_result.steps]
            if args.json:
                doc = {
                    "workflow": wf_result.workflow,
                    "ok": wf_result.ok,
                    "path": wf_result.path,
                    "output": wf_result.output,
                    "error": wf_result.error,
                    "steps": [_result_json(r) for r in results],
                }
                sys.stdout.write(_json_text(doc))
            else:
                for r in results:
                    sys.stdout.write(_table(r))
                sys.stdout.write(
                    f"workflow '{wf_result.workflow}': {' -> '.join(wf_result.path)}\n"
                )
            if wf_result.error:  # why the workflow stopped, in one line (stdout has the steps)
                first = (wf_result.error.strip().splitlines() or [""])[0]
                sys.stderr.write(f"germinate-nb: workflow '{wf_result.workflow}': {first}\n")
            return EXIT_OK if wf_result.ok else EXIT_FAILED
        state = _pick_state(args.state)
        progress = Progress(sys.stderr, len(state), logs=args.logs)
        result = run(state, run_input, observers=[progress], **options)
    except DagValidationError as err:
        raise CliError(str(err)) from None
    if result.status == "cancelled":
        sys.stderr.write("germinate-nb: interrupted\n")
        return EXIT_INTERRUPTED
    if args.json:
        sys.stdout.write(_json_text(_result_json(result)))
    else:
        sys.stdout.write(_table(result))
    return EXIT_OK if result.ok else EXIT_FAILED


def _cmd_check(args: argparse.Namespace) -> int:
    from germinate_nb.core.registry import TaskRegistry
    from germinate_nb.core.workflow import Workflow

    shell = load_notebook(args.notebook)
    bad = 0
    workflows = {id(v): v for v in shell.user_ns.values() if isinstance(v, Workflow)}
    for workflow in workflows.values():  # as run_workflow will: condition tasks placed
        for message in workflow.check():
            bad += 1
            sys.stdout.write(f"✗ {message}\n")
        workflow.build(raise_on_error=False)
    states = (
        [_pick_state(args.state)] if args.state else list(TaskRegistry.default().states.values())
    )
    if not states:
        msg = "the notebook declares no states."
        raise CliError(msg)
    for state in states:
        problems = state.validate()
        if problems:
            bad += len(problems)
            for p in problems:
                sys.stdout.write(f"✗ {p.message}\n")
        else:
            phases = len(state.phases)
            sys.stdout.write(
                f"✓ state '{state.name}' is valid ({len(state)} tasks, {phases} phases)\n"
            )
    if bad:
        sys.stderr.write(f"germinate-nb: {bad} problem{'s' if bad > 1 else ''} found\n")
        return EXIT_USAGE
    return EXIT_OK


def _cmd_graph(args: argparse.Namespace) -> int:
    from germinate_nb.errors import OutputPathError
    from germinate_nb.render.export import (
        check_output_path,
        export_state,
        format_for_path,
        write_export,
    )

    try:
        fmt = format_for_path(args.output)
        output = check_output_path(args.output)  # before the notebook runs
    except ValueError as err:
        raise CliError(_one_line(str(err))) from None
    load_notebook(args.notebook)
    state = _pick_state(args.state)
    try:
        write_export(export_state(state, fmt), output)
    except OutputPathError as err:  # the folder changed while the notebook ran
        raise CliError(_one_line(str(err))) from None
    sys.stderr.write(f"wrote {fmt} of state '{state.name}' to {args.output}\n")
    return EXIT_OK


def _store_option(value: str | None) -> str | None:
    """``--store`` as the run needs it: None (the default store), "off", or an absolute path."""
    if value is None:
        return None
    if not value.strip():
        msg = "--store needs a path or off, e.g. --store .germinate/runs.sqlite."
        raise CliError(msg)
    if value.strip().lower() == "off":
        return "off"
    return str(Path(value).expanduser().absolute())


def _cmd_history(args: argparse.Namespace) -> int:
    from germinate_nb.execution.store import ENV_VAR, RunStore, StoreError, store_path

    if args.limit < 1:
        msg = f"--limit must be at least 1, got {args.limit}."
        raise CliError(msg)
    notebook = Path(args.notebook)
    if not notebook.is_file():
        msg = f"no such notebook: {args.notebook}"
        raise CliError(msg)
    folder = notebook.resolve().parent
    path = store_path(_store_option(args.store), base=folder)
    if path is None:
        where = "--store off" if args.store is not None else f"{ENV_VAR}=off"
        msg = f"the run store is off ({where}), so there is no history. Give --store PATH."
        raise CliError(msg)
    if not path.is_file():
        if args.json:
            sys.stdout.write("[]\n" if args.run_id is None else "null\n")
        sys.stderr.write(
            f"germinate-nb: no runs recorded yet: no run store at {path} (runs of "
            f"{notebook.name} are recorded there)\n"
        )
        return EXIT_OK if args.run_id is None else EXIT_USAGE
    try:
        store = RunStore.open(path)
    except StoreError as err:
        raise CliError(str(err)) from None
    try:
        if args.run_id is not None:
            return _show_run(store, args.run_id, args, notebook)
        runs = store.runs(args.state, limit=args.limit)
        if args.json:
            doc = [_run_json(r) for r in runs]
            sys.stdout.write(_json_text(doc))
        elif runs:
            sys.stdout.write(_runs_table(runs))
        else:
            of = f" of state '{args.state}'" if args.state else ""
            sys.stderr.write(f"germinate-nb: no runs{of} in {path}\n")
    finally:
        store.close(warn=False)
    return EXIT_OK


def _show_run(store: Any, run_id: str, args: argparse.Namespace, notebook: Path) -> int:
    try:
        found = store.find_run(run_id)
    except LookupError as err:
        raise CliError(str(err)) from None
    if found is None:
        msg = (
            f"no run '{_one_line(run_id, 80)}' in run store {store.path}. "
            f"`germinate-nb history {notebook}` lists the runs."
        )
        raise CliError(msg)
    tasks = store.task_runs(found.run_id)
    if args.json:
        doc = _run_json(found)
        doc["tasks"] = [_task_row_json(t) for t in tasks]
        sys.stdout.write(_json_text(doc))
        return EXIT_OK
    sys.stdout.write(_runs_table([found], header=False))
    rows = [("task", "status", "try", "time", "output / error")]
    for t in tasks:
        ms = f"{t.duration * 1000:.1f} ms" if t.duration is not None else ""
        if t.error:
            detail = (t.error.splitlines() or [""])[0]
        elif t.output_json is not None:
            detail = t.output_json + ("" if t.reusable else f"  ({t.note or 'not reusable'})")
        else:
            detail = t.note
        rows.append((t.task, t.status, str(t.attempt), ms, _one_line(detail, 100)))
    sys.stdout.write(_columns(rows, right=(3,)))
    return EXIT_OK


def _when(stamp: float | None) -> str:
    from datetime import datetime

    if stamp is None:
        return ""
    try:
        return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):  # a row this command did not write
        return f"? ({_one_line(_safe_repr(stamp), 24)})"


def _took(run: Any) -> str:
    if run.started is None or run.ended is None:
        return ""
    try:
        return f"{run.ended - run.started:.3f} s"
    except (TypeError, ValueError):  # times that are not numbers: _when shows them
        return "?"


def _runs_table(runs: Sequence[Any], *, header: bool = True) -> str:
    rows = [("run", "state", "status", "started", "took", "tasks")] if header else []
    for r in runs:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(r.counts.items()))
        rows.append((r.run_id, _printable(r.state), r.status, _when(r.started), _took(r), counts))
    return _columns(rows, right=(4,))


def _columns(rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for r in rows:
        cells = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r[:-1])
        ]
        lines.append("  ".join([*cells, _printable(r[-1])]).rstrip())
    return "\n".join(lines) + "\n"


def _run_json(run: Any) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "state": run.state,
        "status": run.status,
        "started": run.started,
        "ended": run.ended,
        "duration": run.ended - run.started if None not in (run.started, run.ended) else None,
        "counts": run.counts,
        "origin": run.origin,
        "input": _loads(run.input_json),
    }


def _task_row_json(t: Any) -> dict[str, Any]:
    return {
        "task": t.task,
        "status": t.status,
        "attempt": t.attempt,
        "start": t.start,
        "duration": t.duration,
        "fingerprint": t.fingerprint,
        "input_hash": t.input_hash,
        "output": _loads(t.output_json),
        "output_type": t.output_type,
        "reusable": t.reusable,
        "note": t.note,
        "log": t.log,
        "error": t.error or None,
    }


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:  # never written by germinate_nb: show the text as it is
        return text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
