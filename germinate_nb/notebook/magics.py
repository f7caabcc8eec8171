"""``%%germinate_task`` and ``%germinate``: thin adapters from magic lines to the library."""

from __future__ import annotations

import argparse
import builtins
import html
import json
import shlex
import warnings
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from pydantic import BaseModel

from germinate_nb.core.cell import compile_cell
from germinate_nb.core.executor import TaskExecutor
from germinate_nb.core.options import TaskOptions, task_options
from germinate_nb.core.registry import TaskRegistry, did_you_mean
from germinate_nb.core.schema import MergedInput, is_model
from germinate_nb.core.state import State, executor_name_for
from germinate_nb.errors import DagCycleError, DeclarationError, GerminateError

__all__ = ["GerminateMagics", "load", "unload"]

DEFAULT_STATE = "main"
SUBCOMMANDS = ("list", "show", "phases", "validate", "run", "export", "use", "rm", "store", "reset")


class Line:
    """A one-line display: plain text, and the same text HTML-escaped."""

    def __init__(self, text: str, css: str = "germinate-line") -> None:
        self.text = text
        self.css = css

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<div class='{self.css}'><code>{html.escape(self.text)}</code></div>"


class Table:
    """A small table shown as HTML (escaped) with a plain-text twin."""

    def __init__(self, header: list[str], rows: list[list[str]], title: str = "") -> None:
        self.header, self.rows, self.title = header, rows, title

    def __repr__(self) -> str:
        widths = [
            max(len(str(r[i])) for r in [self.header, *self.rows]) for i in range(len(self.header))
        ]
        lines = [self.title] if self.title else []
        for r in [self.header, *self.rows]:
            lines.append(
                "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self.header)
        body = "".join(
            "<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in self.rows
        )
        title = f"<b>{esc(self.title)}</b>" if self.title else ""
        return f"{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _registry() -> TaskRegistry:
    return TaskRegistry.default()


def default_state_name(create: bool = False) -> str:
    """The notebook's default state: set by ``%germinate use``, else the only one, else main."""
    registry = _registry()
    chosen = registry.default_state
    if chosen and chosen in registry.states:
        return str(chosen)
    states = list(registry.states)
    if len(states) == 1:
        return states[0]
    if not states or DEFAULT_STATE in registry.states:
        return DEFAULT_STATE
    msg = (
        f"this notebook has several states ({', '.join(states)}) and no default. Name one with "
        f"--state, or pick one with `%germinate use {states[0]}`."
    )
    raise UsageError(msg)


def resolve_state(name: str | None, *, create_default: bool = False) -> State:
    """Find a state by name (or the default one), as a UsageError when it does not exist."""
    registry = _registry()
    if name is None:
        name = default_state_name()
        if name not in registry.states:
            if create_default:
                return State(name)
            msg = "there are no states yet. Declare a task first (e.g. with %%germinate_task)."
            raise UsageError(msg)
    if name not in registry.states:
        known = ", ".join(registry.states) or "none"
        create = (
            f"Create it with `{name} = State('{name}')`."
            if name.isidentifier()
            else "A state's name is a Python identifier (letters, digits and _)."
        )
        msg = (
            f"unknown state {name!r}.{did_you_mean(name, list(registry.states))} "
            f"States: {known}. {create}"
        )
        raise UsageError(msg)
    return registry.states[name]


def _resolve_model(ns: dict[str, Any], dotted: str, option: str, where: str) -> type[BaseModel]:
    head, *rest = dotted.split(".")
    if head not in ns:
        candidates = [k for k, v in ns.items() if is_model(v)]
        msg = (
            f"unknown model '{dotted}' in {option} of {where}.{did_you_mean(head, candidates)} "
            "Define the pydantic model in a cell above and run that cell first."
        )
        raise UsageError(msg)
    value = ns[head]
    for part in rest:
        if not hasattr(value, part):
            msg = f"'{dotted}' in {option} of {where}: '{head}' has no attribute '{part}'."
            raise UsageError(msg)
        value = getattr(value, part)
    if not is_model(value):
        msg = (
            f"{option} {dotted} of {where} is a {type(value).__name__}, not a pydantic model. "
            "Pass the name of a BaseModel subclass."
        )
        raise UsageError(msg)
    return value  # type: ignore[no-any-return]


def _would_cycle(state: State, name: str, parents: list[str]) -> list[str] | None:
    """The cycle path that wiring ``parents >> name`` would close, or None."""
    snap = state.snapshot()
    if name not in snap:
        return None
    for parent in parents:
        # is `parent` downstream of `name`? then parent -> name closes a cycle
        path = _path(snap.children, name, parent)
        if path is not None:
            return [*path, name]
    return None


def _path(children: Any, start: str, target: str) -> list[str] | None:
    stack = [(start, [start])]
    seen = {start}
    while stack:
        task, path = stack.pop()
        for child in children[task]:
            if child == target:
                return [*path, target]
            if child not in seen:
                seen.add(child)
                stack.append((child, [*path, child]))
    return None


def _phase_of(state: State, name: str) -> str:
    try:
        phases = state.phases
    except DagCycleError:
        return "phase unknown (the state has a cycle)"
    for i, phase in enumerate(phases):
        if name in phase:
            return f"phase {i + 1} of {len(phases)}"
    return "no phase"


@magics_class
class GerminateMagics(Magics):
    """The germinate_nb magics."""

    @magic_arguments()
    @argument("name", help="Task name (a Python identifier).")
    @argument("--state", default=None, help="State to declare the task in (default: notebook's).")
    @argument("--after", default=None, help="Parents, comma-separated task names of the state.")
    @argument("--input", dest="input_model", default=None, help="Input model name.")
    @argument("--output", dest="output_model", default=None, help="Output model name.")
    @argument("--namespace", default="agent", help="Registry namespace (default: agent).")
    @argument("--retries", type=int, default=None, help="Extra attempts after a failure.")
    @argument("--retry-delay", type=float, default=None, help="Seconds before the 1st retry.")
    @argument("--backoff", type=float, default=None, help="Each retry waits this times longer.")
    @argument("--retry-on", default=None, help="Exception classes to retry, comma-separated.")
    @argument("--timeout", type=float, default=None, help="Seconds an attempt may take.")
    @argument("--limit", default=None, help="Concurrency limit name (run(limits={...})).")
    @cell_magic
    def germinate_task(self, line: str, cell: str) -> None:
        """Declare (or redefine) a task from the cell body; runs nothing.

        In the body, ``input`` is the validated input; the output is ``output`` if assigned,
        else the value of the last expression; ``await`` makes the task async.
        ``--retries 3 --retry-delay 1 --backoff 2 --retry-on TimeoutError,ConnectionError
        --timeout 30 --limit llm`` say how it runs, as ``@state.task(...)`` does.
        """
        task = declare_task(self.shell, line, cell)
        state = task.state
        assert state is not None
        parents = ", ".join(p.name for p in task.parents) or "none"
        display(
            Line(
                f"✓ task '{task.name}' in state '{state.name}' "
                f"(parents: {parents}; {_phase_of(state, task.name)})",
                "germinate-declared",
            )
        )

    @line_magic
    def germinate(self, line: str) -> Any:
        """``%germinate list|show|phases|validate|run|export|use|rm|store|reset``.

        ``%germinate store [PATH|off|info]`` chooses the run store of this kernel's later runs
        (and explorers) or reports on it; ``%germinate store prune --keep N [--vacuum]`` keeps
        the newest N runs of each state.
        """
        try:
            words = shlex.split(line)
        except ValueError as err:
            msg = f"cannot read `%germinate {line}`: {err}."
            raise UsageError(msg) from None
        if not words:
            msg = f"%germinate needs a subcommand: {', '.join(SUBCOMMANDS)}."
            raise UsageError(msg)
        sub, rest = words[0], words[1:]
        if sub not in SUBCOMMANDS:
            msg = (
                f"unknown subcommand '{sub}' of %germinate.{did_you_mean(sub, list(SUBCOMMANDS))} "
                f"Subcommands: {', '.join(SUBCOMMANDS)}."
            )
            raise UsageError(msg)
        args = _parser(sub).parse_args(rest)
        try:
            return getattr(self, f"_cmd_{sub}")(args)
        except GerminateError as err:
            raise UsageError(str(err)) from None

    # -- subcommands ------------------------------------------------------------------------

    def _cmd_list(self, args: argparse.Namespace) -> Table:
        registry = _registry()
        try:
            default = default_state_name()
        except UsageError:
            default = None
        rows = []
        for name, state in registry.states.items():
            try:
                phases = " | ".join(", ".join(p) for p in state.phases) or "(empty)"
            except DagCycleError as err:
                phases = f"cycle: {' -> '.join(err.cycle)}"
            label = f"{name} (default)" if name == default else name
            rows.append([label, str(len(state)), phases])
        if not rows:
            rows.append([f"{DEFAULT_STATE} (default)", "0", "(no tasks yet)"])
        return Table(["state", "tasks", "phases"], rows, "germinate_nb states")

    def _cmd_phases(self, args: argparse.Namespace) -> Table:
        state = resolve_state(args.state)
        rows = [[f"phase {i + 1}", ", ".join(p)] for i, p in enumerate(state.phases)]
        return Table(["phase", "tasks"], rows, f"phases of state '{state.name}'")

    def _cmd_validate(self, args: argparse.Namespace) -> Line:
        state = resolve_state(args.state)
        input_data = _json_input(args.input) if args.input is not None else None
        problems = state.validate(input=input_data)
        if not problems:
            n = len(state)
            return Line(f"✓ state '{state.name}' is valid ({n} task{'s' if n != 1 else ''}).")
        return Line("\n".join(f"✗ {p.message}" for p in problems), "germinate-problems")

    def _cmd_run(self, args: argparse.Namespace) -> Any:
        from germinate_nb.execution.runner import run

        state = resolve_state(args.state)
        input_data = _json_input(args.input) if args.input is not None else None
        return run(state, input_data, reuse=args.reuse)

    def _cmd_show(self, args: argparse.Namespace) -> Any:
        from germinate_nb.notebook.entry import explore

        return explore(resolve_state(args.state))

    def _cmd_export(self, args: argparse.Namespace) -> Any:
        state = resolve_state(args.state)
        from germinate_nb.render import export

        if args.format is None and not args.timeline:
            msg = "%germinate export needs --format png|svg|dot|mermaid, or --timeline."
            raise UsageError(msg)
        if args.output:  # a bad path is reported before anything is drawn
            export.check_output_path(args.output)
        if args.timeline:
            return self._export_timeline(state, args)
        data = export.export_state(state, args.format)
        if args.output:
            export.write_export(data, args.output)
            return Line(f"✓ wrote {args.format} of state '{state.name}' to {args.output}")
        return _displayable(data, args.format)

    def _export_timeline(self, state: State, args: argparse.Namespace) -> Any:
        """The timeline of the state's last run, as png (default) or svg."""
        from germinate_nb.render import export
        from germinate_nb.render.mpl import figure_png, figure_svg

        result = _registry().last_results.get(state.name)
        if result is None:
            msg = (
                f"%germinate export --timeline: state '{state.name}' has not run in this "
                f"kernel yet. Run it first (e.g. `%germinate run {state.name}`)."
            )
            raise UsageError(msg)
        fmt = args.format or "png"
        if fmt not in ("png", "svg"):
            msg = f"%germinate export --timeline draws png or svg, not {fmt}."
            raise UsageError(msg)
        figure = result.timeline()
        data = figure_png(figure) if fmt == "png" else figure_svg(figure)
        if args.output:
            export.write_export(data, args.output)
            return Line(f"✓ wrote the timeline of state '{state.name}' ({fmt}) to {args.output}")
        return _displayable(data, fmt)

    def _cmd_use(self, args: argparse.Namespace) -> Line:
        state = resolve_state(args.state)
        _registry().default_state = state.name
        return Line(f"✓ default state is now '{state.name}'")

    def _cmd_rm(self, args: argparse.Namespace) -> Line:
        state = resolve_state(args.state)
        names = [n.strip() for n in args.task.split(",") if n.strip()]
        missing = [n for n in names if n not in state]
        if missing:
            known = [t.name for t in state.tasks]
            msg = (
                f"%germinate rm: no task '{missing[0]}' in state '{state.name}'."
                f"{did_you_mean(missing[0], known)} Run `%germinate list` to see the tasks."
            )
            raise UsageError(msg)
        lines = []
        for name in names:
            task = state.get(name)
            edges = len(task.parents) + len(task.children)
            state.remove_task(name)
            lines.append(
                f"✓ removed task '{name}' from state '{state.name}'"
                + (f" with its {edges} edge{'s' if edges != 1 else ''}" if edges else "")
            )
        return Line("\n".join(lines))

    def _cmd_store(self, args: argparse.Namespace) -> Line:
        from germinate_nb.execution import store as stores

        target = (args.target or "info").strip()
        word = target.lower()
        if word != "prune" and (args.keep is not None or args.vacuum):
            msg = (
                f"--keep and --vacuum go with prune, not '{target}'. "
                "Use `%germinate store prune --keep 20`."
            )
            raise UsageError(msg)
        if word == "info":
            found = stores.default_store(stacklevel=3)
            if found is None:
                return Line(_store_off_text(stores))
            return Line(f"{found.info()}; this kernel's runs are recorded there")
        if word == "prune":
            if args.keep is None or args.keep < 0:
                got = "" if args.keep is None else f" (got {args.keep})"
                msg = (
                    f"%germinate store prune needs --keep N, the runs of each state to keep, "
                    f"0 or more{got}: e.g. `%germinate store prune --keep 20`."
                )
                raise UsageError(msg)
            found = stores.default_store(stacklevel=3)
            if found is None:
                msg = f"nothing to prune: {_store_off_text(stores)}"
                raise UsageError(msg)
            deleted = found.prune(args.keep, vacuum=args.vacuum)
            kept = f"the newest {args.keep} of each state kept"
            return Line(
                f"✓ pruned {deleted} run{'s' if deleted != 1 else ''} ({kept}); {found.info()}"
            )
        if word == "off":
            stores.set_default_store("off")
            return Line("✓ run store off: this kernel's runs keep their results in memory only")
        path = Path(target).expanduser().absolute()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stores.StoreWarning)
            found = stores.resolve_store(path)
        if found is None:  # say why, and keep the store used so far
            try:
                stores.RunStore.open(path).close()
            except stores.StoreError as err:
                raise UsageError(str(err)) from None
            msg = f"run store {path} cannot be used; the kernel keeps its store."
            raise UsageError(msg)
        stores.set_default_store(str(path))
        return Line(f"✓ this kernel's runs are recorded in {found.info()}")

    def _cmd_reset(self, args: argparse.Namespace) -> Line:
        if not args.force:
            msg = (
                "%germinate reset forgets every state, task and cached result of this kernel. "
                "Run `%germinate reset -f` to confirm."
            )
            raise UsageError(msg)
        registry = _registry()
        n = len(registry.states)
        registry.clear()
        return Line(f"✓ registry reset ({n} state{'s' if n != 1 else ''} removed)")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one-line UsageErrors."""

    def error(self, message: str) -> Any:
        msg = f"{self.prog}: {message}. Usage: {self._usage_line()}"
        raise UsageError(msg)

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise UsageError(message or f"Usage: {self._usage_line()}")

    def _usage_line(self) -> str:
        """The usage on one line, without argparse's own "usage: " before it."""
        return " ".join(self.format_usage().split()).removeprefix("usage: ")


def _parser(sub: str) -> _Parser:
    p = _Parser(prog=f"%germinate {sub}", add_help=False)
    if sub in ("show", "phases", "validate", "run", "export"):
        p.add_argument("state", nargs="?", default=None)
    if sub == "use":
        p.add_argument("state")
    if sub == "rm":
        p.add_argument("task", help="Task name (or names, comma-separated).")
        p.add_argument("--state", default=None, help="State of the task (default: notebook's).")
    if sub in ("validate", "run"):
        p.add_argument("--input", default=None, help="Run input as JSON.")
    if sub == "run":
        p.add_argument("--reuse", action="store_true", help="Reuse unchanged results.")
    if sub == "export":
        p.add_argument("--format", default=None, choices=["png", "svg", "dot", "mermaid"])
        p.add_argument("--timeline", action="store_true", help="The last run's timeline.")
        p.add_argument("-o", "--output", default=None, help="File to write.")
    if sub == "store":
        p.add_argument("target", nargs="?", default=None, help="PATH, off, info or prune.")
        p.add_argument("--keep", type=int, default=None, help="Runs of each state to keep.")
        p.add_argument("--vacuum", action="store_true", help="Give the space back to the disk.")
    if sub == "reset":
        p.add_argument("-f", "--force", action="store_true")
    return p


def _store_off_text(stores: Any) -> str:
    """Why this kernel has no run store, in one line."""
    import os

    if stores.default_store_choice() is not None:
        why = "`%germinate store off`"
    elif os.environ.get(stores.ENV_VAR, "").strip().lower() == "off":
        why = f"{stores.ENV_VAR}=off"
    else:
        why = "it cannot be used"
    return (
        f"the run store is off ({why}): runs keep results in memory only. "
        "Choose one with `%germinate store .germinate/runs.sqlite`."
    )


def _displayable(data: str | bytes, fmt: str) -> Any:
    from IPython.display import SVG, Code, Image  # type: ignore[attr-defined]

    if fmt == "png":
        return Image(data=data, format="png")
    if fmt == "svg":
        return SVG(data=data)
    return Code(str(data), language="dot" if fmt == "dot" else "text")


def _json_input(text: str) -> Any:
    shown = _shorten(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        msg = (
            f"--input is not valid JSON ({err.msg} at column {err.colno}): {shown}. "
            """Quote it, e.g. --input '{"text": "hello"}'."""
        )
        raise UsageError(msg) from None
    except RecursionError:
        msg = f"--input is JSON nested too deeply to read: {shown}. Flatten it."
        raise UsageError(msg) from None
    except ValueError as err:  # e.g. an integer longer than Python's digit limit
        msg = f"--input cannot be read as JSON ({err}): {shown}."
        raise UsageError(msg) from None
    if not isinstance(value, dict):
        msg = f"--input must be a JSON object, got {type(value).__name__}: {shown}."
        raise UsageError(msg)
    return value


def _shorten(text: str, limit: int = 80) -> str:
    """The repr of a user's text, cut to ``limit`` characters (the error stays one line)."""
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[: limit - 1]}… ({len(text)} characters)"


def declare_task(shell: Any, line: str, cell: str) -> Any:
    """Parse a ``%%germinate_task`` line and body and declare the task; UsageError on mistakes."""
    try:
        args = parse_argstring(GerminateMagics.germinate_task, line)
    except UsageError as err:
        msg = f"%%germinate_task: {err}"
        raise UsageError(msg) from None
    except ValueError as err:  # unbalanced quotes in the line
        msg = f"%%germinate_task: cannot read the options `{line}`: {err}."
        raise UsageError(msg) from None
    for key in ("name", "state", "after", "input_model", "output_model", "namespace", "limit"):
        setattr(args, key, _unquote(getattr(args, key)))
    _refuse_repeated_options(line)
    name = args.name
    where = f"%%germinate_task {name}"
    if not name.isidentifier():
        msg = (
            f"task name {name!r} in %%germinate_task is not a Python identifier. "
            "Use letters, digits and underscores, not starting with a digit."
        )
        raise UsageError(msg)
    ns = shell.user_ns
    try:
        state = resolve_state(args.state, create_default=True)
        parents = _parents(state, args.after, where)
        input_schema = (
            _resolve_model(ns, args.input_model, "--input", where) if args.input_model else None
        )
        output_schema = (
            _resolve_model(ns, args.output_model, "--output", where) if args.output_model else None
        )
        if not all(part.isidentifier() for part in args.namespace.split(".")):
            msg = (
                f"--namespace {args.namespace!r} of {where} is not a Python identifier (or "
                "identifiers joined by dots, e.g. agents.ideate)."
            )
            raise UsageError(msg)
        cycle = _would_cycle(state, name, parents)
        if cycle is not None:
            msg = (
                f"--after {args.after} of {where} would close a cycle in state '{state.name}': "
                f"{' -> '.join(cycle)}. Remove '{cycle[-2]}' from --after."
            )
            raise UsageError(msg)
        options = _task_options(ns, args, name, state.name, where)
        function, _ = compile_cell(name, cell, namespace=ns, where=where)
        executor = TaskExecutor(
            executor_name_for(name),
            function,
            input_schema=input_schema or MergedInput,
            output_schema=output_schema,
            namespace=args.namespace,
            source=cell,
        )
        return state.define_task(name, executor, parents=parents, options=options)
    except GerminateError as err:
        raise UsageError(str(err)) from None


def _refuse_repeated_options(line: str) -> None:
    """``--retries 2 --retries 3``: say so, rather than silently keep the last."""
    seen: set[str] = set()
    for word in line.split():
        if word.startswith("--"):
            option = word.split("=", 1)[0]
            if option in seen:
                msg = (
                    f"%%germinate_task: {option} is given twice in `{line.strip()}`; give it once."
                )
                raise UsageError(msg)
            seen.add(option)


def _task_options(
    ns: dict[str, Any], args: Any, name: str, state: str, where: str
) -> TaskOptions | None:
    """The run options of the magic line (None when it gives none); UsageError on mistakes."""
    given = {
        "retries": args.retries,
        "retry_delay": args.retry_delay,
        "backoff": args.backoff,
        "timeout": args.timeout,
        "limit": args.limit,
    }
    if args.retry_on:
        given["retry_on"] = tuple(
            _exception_class(ns, word.strip(), where)
            for word in _unquote(args.retry_on).split(",")
            if word.strip()
        )
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return None
    try:
        return task_options(name, state=state, **given)
    except DeclarationError as err:  # say it in the magic's words
        text = (
            str(err)
            .replace(
                "retry_on=(TimeoutError, ConnectionError)",
                "--retry-on TimeoutError,ConnectionError",
            )
            .replace("retry_delay=", "--retry-delay ")
            .replace("retry_on=", "--retry-on ")
            .replace("retry_on", "--retry-on")
        )
        for key in ("retries", "timeout", "limit", "backoff"):
            text = text.replace(f"{key}=", f"--{key} ")
        msg = f"{where}: {text.split(': ', 1)[-1]}"
        raise UsageError(msg) from None


def _exception_class(ns: dict[str, Any], word: str, where: str) -> type[BaseException]:
    """An exception class named in --retry-on: the user's namespace first, then builtins.

    A dotted name (``asyncio.TimeoutError``) is looked up from its first part on.
    """
    head, *rest = word.split(".")
    found = ns.get(head, getattr(builtins, head, None))
    for part in rest:
        found = getattr(found, part, None) if found is not None else None
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    if found is None:
        known = [n for n in dir(builtins) if n.endswith(("Error", "Exception"))]
        msg = (
            f"--retry-on {word} of {where}: no exception class '{word}' in the notebook or the "
            f"builtins.{did_you_mean(word, known)} Give exception class names, comma-separated, "
            "e.g. --retry-on TimeoutError,ConnectionError."
        )
    else:
        msg = (
            f"--retry-on {word} of {where}: '{word}' is a {type(found).__name__}, not an "
            "exception class. Give exception class names, e.g. --retry-on TimeoutError."
        )
    raise UsageError(msg)


def _unquote(value: str | None) -> str | None:
    """IPython's argument splitter keeps quotes around a value; drop one matching pair."""
    if value is not None and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _parents(state: State, after: str | None, where: str) -> list[str]:
    if not after:
        return []
    names = [p.strip() for p in after.split(",") if p.strip()]
    for name in names:
        if name in state:
            continue
        elsewhere = [s.name for s in _registry().states.values() if name in s and s is not state]
        hint = (
            f" Task '{name}' is in state '{elsewhere[0]}': add --state {elsewhere[0]}."
            if elsewhere
            else f" Run `%germinate list` to see the tasks of state '{state.name}'."
        )
        msg = (
            f"unknown parent '{name}' in --after of {where}."
            f"{did_you_mean(name, [t.name for t in state.tasks])}{hint}"
        )
        raise UsageError(msg)
    return names


_loaded: dict[int, GerminateMagics] = {}
_trackers: dict[int, Any] = {}


def load(ipython: Any) -> None:
    """Register the magics on ``ipython`` (once) and make ``State`` & co. easy to reach."""
    if id(ipython) in _loaded:
        return
    magics = GerminateMagics(ipython)
    ipython.register_magics(magics)
    _loaded[id(ipython)] = magics
    from germinate_nb.notebook.cells import CellTracker

    tracker = CellTracker(ipython)
    ipython.events.register("pre_run_cell", tracker.pre_run_cell)
    ipython.events.register("post_run_cell", tracker.post_run_cell)
    _trackers[id(ipython)] = tracker


def unload(ipython: Any) -> None:
    """Remove the magics registered by :func:`load`."""
    magics = _loaded.pop(id(ipython), None)
    if magics is None:
        return
    tracker = _trackers.pop(id(ipython), None)
    if tracker is not None:
        ipython.events.unregister("pre_run_cell", tracker.pre_run_cell)
        ipython.events.unregister("post_run_cell", tracker.post_run_cell)
    manager = ipython.magics_manager
    for kind, names in magics.magics.items():
        for name in names:
            manager.magics[kind].pop(name, None)
    manager.registry.pop(type(magics).__name__, None)
