"""The ``germinate-nb`` command: run, check and draw a notebook's DAG without a browser.

Code cells (``%%germinate_task`` included) run in order in an in-process IPython shell with the
extension loaded; widgets are never imported here.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """A usage or validation problem: printed as one message, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``germinate-nb``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["GERMINATE_NB_HEADLESS"] = "1"
    try:
        return int(args.func(args))
    except CliError as err:
        sys.stderr.write(f"germinate-nb: error: {err}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("germinate-nb: interrupted\n")
        return EXIT_INTERRUPTED


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
    run_p.add_argument("--no-cache", action="store_true", help="do not reuse results")
    run_p.add_argument("--max-workers", type=int, default=None, help="threads for sync tasks")
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
    return parser


# -- loading a notebook ---------------------------------------------------------------------


def load_notebook(path: str) -> Any:
    """Execute the notebook's code cells in order in a fresh in-process shell; returns the shell."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    file = Path(path)
    if not file.exists():
        msg = f"no such notebook: {path}"
        raise CliError(msg)
    cells = read_code_cells(file)
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.extension_manager.load_extension("germinate_nb")
    os.chdir(file.resolve().parent)
    for number, source in enumerate(cells, start=1):
        if not source.strip():
            continue
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            result = shell.run_cell(source, store_history=False, silent=False)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            lines = source.strip().splitlines()
            head = "\n".join(f"    {line}" for line in lines[:3])
            more = "\n    ..." if len(lines) > 3 else ""
            msg = (
                f"code cell {number} of {path} raised {type(error).__name__}: {error}\n{head}{more}"
            )
            raise CliError(msg)
    return shell


def read_code_cells(file: Path) -> list[str]:
    """The sources of a notebook's code cells, in order.

    A v4 notebook is read as the JSON it is (``import nbformat`` costs ~2 s here, through
    jsonschema's format checkers); older formats go through ``nbformat`` to be upgraded.
    """
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = f"cannot read {file} as a notebook: {type(err).__name__}: {err}"
        raise CliError(msg) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cells", []), list):
        msg = f"cannot read {file} as a notebook: no list of cells."
        raise CliError(msg)
    if doc.get("nbformat") != 4:
        import nbformat

        try:
            nb = nbformat.read(file, as_version=4)
        except Exception as err:
            msg = f"cannot read {file} as a notebook: {type(err).__name__}: {err}"
            raise CliError(msg) from None
        return [c.source for c in nb.cells if c.cell_type == "code"]
    sources = []
    for cell in doc["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        sources.append("".join(source) if isinstance(source, list) else str(source))
    return sources


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
            text = Path(source).read_text()
        except OSError as err:
            msg = f"cannot read --input file {source}: {err.strerror}"
            raise CliError(msg) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"{source} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})."
        raise CliError(msg) from None
    if not isinstance(value, dict):
        msg = f"{source} must be a JSON object, got {type(value).__name__}."
        raise CliError(msg)
    return value


# -- progress ---------------------------------------------------------------------------------


class Progress:
    """One line on stderr per finished task, and a bar when stderr is a terminal."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self.done = 0
        self.tty = stream.isatty()

    def on_task_end(self, result: Any, task_run: Any) -> None:
        """Print the task's line (and redraw the bar)."""
        self.done += 1
        ms = f"{task_run.duration * 1000:8.1f} ms" if task_run.duration is not None else " " * 11
        mark = {"succeeded": "✓", "cached": "=", "failed": "✗", "skipped": "-"}.get(
            task_run.status.value, "·"
        )
        line = f"{mark} {task_run.name:<24} {task_run.status.value:<10} {ms}"
        if task_run.error is not None:
            line += f"  {task_run.error.type}: {task_run.error.message.splitlines()[0][:120]}"
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(line + "\n")
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
        return repr(value)


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
                "skipped_because": tr.skipped_because,
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
            detail = str(tr.error).splitlines()[0]
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
    run_input = _read_input(args.input)
    shell = load_notebook(args.notebook)
    options: dict[str, Any] = {"reuse": not args.no_cache, "max_workers": args.max_workers}
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
                sys.stdout.write(json.dumps(doc, indent=2, default=repr) + "\n")
            else:
                for r in results:
                    sys.stdout.write(_table(r))
                sys.stdout.write(
                    f"workflow '{wf_result.workflow}': {' -> '.join(wf_result.path)}\n"
                )
            return EXIT_OK if wf_result.ok else EXIT_FAILED
        state = _pick_state(args.state)
        progress = Progress(sys.stderr, len(state))
        result = run(state, run_input, observers=[progress], **options)
    except DagValidationError as err:
        raise CliError(str(err)) from None
    if result.status == "cancelled":
        return EXIT_INTERRUPTED
    if args.json:
        sys.stdout.write(json.dumps(_result_json(result), indent=2, default=repr) + "\n")
    else:
        sys.stdout.write(_table(result))
    return EXIT_OK if result.ok else EXIT_FAILED


def _cmd_check(args: argparse.Namespace) -> int:
    from germinate_nb.core.registry import TaskRegistry

    load_notebook(args.notebook)
    states = (
        [_pick_state(args.state)] if args.state else list(TaskRegistry.default().states.values())
    )
    if not states:
        msg = "the notebook declares no states."
        raise CliError(msg)
    bad = 0
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
    from germinate_nb.render.export import export_state, format_for_path, write_export

    try:
        fmt = format_for_path(args.output)
    except ValueError as err:
        raise CliError(str(err)) from None
    output = Path(args.output).resolve()
    load_notebook(args.notebook)
    state = _pick_state(args.state)
    write_export(export_state(state, fmt), output)
    sys.stderr.write(f"wrote {fmt} of state '{state.name}' to {args.output}\n")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
