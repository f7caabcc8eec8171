"""The DagExplorer widget: toolbar, input form, live DAG picture, phase strip and details pane."""

from __future__ import annotations

import atexit
import html
import logging
import threading
import time
import weakref
from typing import Any

import ipywidgets as widgets
from pydantic import BaseModel
from traitlets import Unicode

from germinate_nb.core.schema import MergedInput, type_name
from germinate_nb.core.state import State
from germinate_nb.core.validate import Problem
from germinate_nb.core.workflow import Workflow
from germinate_nb.errors import DagCycleError, DagValidationError, GerminateError
from germinate_nb.execution.cache import clear_cache
from germinate_nb.execution.result import RunResult, TaskRun, TaskStatus
from germinate_nb.execution.runner import RunHandle, start_run
from germinate_nb.notebook.forms import InputForm
from germinate_nb.render.mpl import MAX_LABELS, draw_state, draw_workflow, figure_png
from germinate_nb.render.text import STATUS_COLORS

__all__ = ["DagExplorer"]

_log = logging.getLogger("germinate_nb")

TRUNCATE = 300
REDRAW_INTERVAL = 0.3  # seconds between two redraws of the picture during a run
BUTTON_INTERVAL = 0.1  # seconds between two updates of the task buttons during a run


_SHUTTING_DOWN = threading.Event()
_THREADS: set[threading.Thread] = set()
_THREADS_LOCK = threading.Lock()


def _spawn(target: Any, name: str, delay: float = 0.0) -> threading.Thread | None:
    """Start a daemon helper thread that the interpreter's exit waits for (no drawing then)."""
    if _SHUTTING_DOWN.is_set():
        return None

    def body() -> None:
        try:
            if delay and _SHUTTING_DOWN.wait(delay):
                return
            if not _SHUTTING_DOWN.is_set():
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
    _SHUTTING_DOWN.set()
    with _THREADS_LOCK:
        threads = list(_THREADS)
    for thread in threads:
        thread.join(timeout=2.0)


def _report(err: BaseException) -> None:
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


def _guard(method: Any) -> Any:
    """Wrap a widget callback so exceptions are shown, not swallowed."""

    def wrapper(self: DagExplorer, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as err:
            _report(err)
            return None

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


def _cut(text: str, limit: int = TRUNCATE) -> str:
    """Escaped text, long values folded into a <details> that expands to the whole."""
    if len(text) <= limit:
        return html.escape(text)
    head = html.escape(text[:limit])
    return (
        f"<details class='germinate-long'><summary>{head}… ({len(text)} characters, click to "
        f"expand)</summary><pre style='white-space:pre-wrap'>{html.escape(text)}</pre></details>"
    )


def _fields_table(model: type[BaseModel] | None) -> str:
    if model is None:
        return "<i>none</i>"
    if model is MergedInput:
        return "<i>the merged outputs of the parents (any fields)</i>"
    rows = "".join(
        f"<tr><td><code>{html.escape(name)}</code></td>"
        f"<td><code>{html.escape(type_name(info.annotation))}</code></td>"
        f"<td>{'yes' if info.is_required() else 'no'}</td></tr>"
        for name, info in model.model_fields.items()
    )
    return (
        f"<b>{html.escape(model.__name__)}</b><table><thead><tr><th>field</th><th>type</th>"
        f"<th>required</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def safe_repr(value: Any) -> str:
    """``repr(value)``, or ``<repr failed: ValueError: ...>`` when the value's repr raises."""
    try:
        return repr(value)
    except Exception as err:
        try:
            detail = str(err)
        except Exception:
            detail = "(its message cannot be shown either)"
        return f"<repr failed: {type(err).__name__}: {detail}>"


def _output_table(output: BaseModel) -> str:
    data = output.model_dump()
    rows = "".join(
        f"<tr><td><code>{html.escape(str(k))}</code></td><td>{_cut(safe_repr(v))}</td></tr>"
        for k, v in data.items()
    )
    return (
        f"<b>{html.escape(type(output).__name__)}</b><table class='germinate-output'><tbody>"
        f"{rows}</tbody></table>"
    )


class _Observer:
    """Forwards the events of every run of the shown state to the explorer.

    Registered in ``registry.run_observers``, so runs started anywhere (a cell, the magic, the
    Run button) update the explorer; holds the explorer weakly and removes itself once it is gone.
    """

    def __init__(self, explorer: DagExplorer) -> None:
        self._ref = weakref.ref(explorer)
        self._registry = explorer.registry

    def _target(self, result: RunResult) -> DagExplorer | None:
        explorer = self._ref()
        if explorer is None:
            if self in self._registry.run_observers:
                self._registry.run_observers.remove(self)
            return None
        return explorer if result.state == explorer.state_name else None

    def on_run_start(self, result: RunResult) -> None:
        if (explorer := self._target(result)) is not None:
            explorer._on_run_event(result, None)

    def on_task_start(self, result: RunResult, task_run: TaskRun) -> None:
        if (explorer := self._target(result)) is not None:
            explorer._on_run_event(result, task_run)

    def on_task_end(self, result: RunResult, task_run: TaskRun) -> None:
        if (explorer := self._target(result)) is not None:
            explorer._on_run_event(result, task_run)

    def on_run_end(self, result: RunResult) -> None:
        if (explorer := self._target(result)) is not None:
            explorer._on_run_end(result)


class DagExplorer(widgets.VBox):
    """Explore and run a state's DAG (or a workflow's states) inside the notebook.

    Public parts: ``state_selector``, ``run_button``, ``stop_button``, ``run_selected_button``,
    ``clear_cache_button``, ``progress``, ``progress_label``, ``input_form``, ``graph``,
    ``phase_strip``, ``details``, ``last_result``; ``select(name)`` and ``wait(timeout)``.
    """

    selected = Unicode("", help="Name of the selected task.").tag(sync=True)
    state_name = Unicode("", help="Name of the state on display.").tag(sync=True)

    def __init__(
        self,
        target: State | Workflow,
        *,
        reuse: bool = True,
        max_workers: int | None = None,
    ) -> None:
        super().__init__()
        self.add_class("germinate-explorer")
        if isinstance(target, Workflow):
            self.workflow: Workflow | None = target
            states = target.states
            if not states:
                msg = f"workflow '{target.name}' has no states to explore: add_state() first."
                raise GerminateError(msg)
            start = target.initial_state or states[0]
            registry = start.registry
        elif isinstance(target, State):
            self.workflow = None
            start = target
            registry = target.registry
        else:
            msg = f"explore() takes a State or a Workflow, got {type(target).__name__}."
            raise TypeError(msg)
        self.registry = registry
        self.reuse = reuse
        self.max_workers = max_workers
        self.last_result: RunResult | None = None
        self.statuses: dict[str, str] = {}
        self.problems: list[Problem] = []
        self.redraws = 0
        self._handle: RunHandle | None = None
        self._lock = threading.RLock()
        self._dirty = False
        self._refresh_timer: threading.Thread | None = None
        self._buttons: dict[str, widgets.Button] = {}
        self._run_done = threading.Event()
        self._run_done.set()
        self._changed: set[str] = set()
        self._live: threading.Event | None = None

        self.state_selector = widgets.Dropdown(
            options=self._state_names(), description="State", layout={"width": "240px"}
        )
        self.run_button = widgets.Button(
            description="Run",
            icon="play",
            button_style="success",
            tooltip="Run the DAG (reusing unchanged results)",
        )
        self.stop_button = widgets.Button(
            description="Stop",
            icon="stop",
            button_style="danger",
            disabled=True,
            tooltip="Cancel the run",
        )
        self.run_selected_button = widgets.Button(
            description="Run selected",
            icon="crosshairs",
            disabled=True,
            tooltip="Run the selected task and its upstream",
        )
        self.clear_cache_button = widgets.Button(
            description="Clear cache", icon="trash", tooltip="Forget reusable results"
        )
        self.focus_selector = widgets.Dropdown(
            options=[
                ("whole DAG", "all"),
                ("selected + lineage", "lineage"),
                ("selected, 1 hop", "1"),
                ("selected, 2 hops", "2"),
            ],
            value="all",
            description="Show",
            layout={"width": "240px"},
        )
        self.executor_selector = widgets.Dropdown(
            options=[("local", "local"), ("Dask cluster", "dask")],
            value="local",
            description="Run on",
            layout={"width": "200px"},
        )
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout={"width": "220px"})
        self.progress_label = widgets.Label("0/0 tasks")
        self.message = widgets.HTML("")
        self.graph = widgets.Image(format="png", layout={"max_width": "100%"})
        self.machine = widgets.Image(format="png", layout={"max_width": "100%"})
        self.phase_strip = widgets.VBox()
        self.phase_strip.add_class("germinate-phase-strip")
        self.details = widgets.HTML("<i>Select a task to see its details.</i>")
        self.details.add_class("germinate-details")
        self.input_form = InputForm([])

        self.run_button.on_click(self._on_run_button_click)
        self.stop_button.on_click(self._on_stop_button_click)
        self.run_selected_button.on_click(self._on_run_selected_button_click)
        self.clear_cache_button.on_click(self._on_clear_cache_button_click)
        self.state_selector.observe(self._on_state_selector_change, names="value")
        self.focus_selector.observe(self._on_focus_change, names="value")

        toolbar_items = [
            self.state_selector,
            self.run_button,
            self.stop_button,
            self.run_selected_button,
            self.clear_cache_button,
            self.progress,
            self.progress_label,
        ]
        if _dask_client_available():  # offer the cluster only when one is connected
            toolbar_items.insert(1, self.executor_selector)
        toolbar = widgets.HBox(toolbar_items)
        self._form_box = widgets.VBox([self.input_form])
        body = widgets.HBox(
            [
                widgets.VBox([self.graph, self.phase_strip], layout={"flex": "3"}),
                widgets.VBox([self.details], layout={"flex": "2", "padding": "0 0 0 12px"}),
            ]
        )
        parts: list[widgets.Widget] = [
            toolbar,
            self.message,
            self._form_box,
            self.focus_selector,
            body,
        ]
        if self.workflow is not None:
            parts.insert(1, self.machine)
        self.children = parts
        self._unsubscribe = _subscribe(self)
        self._observer = _Observer(self)
        registry.run_observers.append(self._observer)
        self.state_selector.value = start.name
        self._load_state(start.name)

    # -- model ------------------------------------------------------------------------------

    def _state_names(self) -> list[str]:
        if self.workflow is not None:
            return [s.name for s in self.workflow.states]
        return list(self.registry.states)

    @property
    def state(self) -> State | None:
        """The state on display (None after ``%germinate reset``)."""
        return self.registry.states.get(self.state_name)

    def _load_state(self, name: str) -> None:
        self.state_name = name
        self.statuses = {}
        last = self.registry.last_results.get(name)
        if last is not None:
            self.statuses = {n: r.status.value for n, r in last.task_runs.items()}
            self.last_result = last
        if self.selected and (self.state is None or self.selected not in self.state):
            self.selected = ""
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the form, phase strip, picture and details from the registry."""
        with self._lock:
            self._dirty = False
            state = self.state
            options = self._state_names()
            if list(self.state_selector.options) != options:
                self.state_selector.options = options
                if state is not None and state.name in options:
                    self.state_selector.value = state.name
            if state is None:
                self.phase_strip.children = []
                self._buttons = {}
                self.graph.value = b""
                self.details.value = "<i>No state.</i>"
                self.message.value = (
                    f"<span style='color:#57606a'>State '{html.escape(self.state_name)}' no longer "
                    "exists (the registry was reset). Declare tasks again to see them here.</span>"
                )
                self.run_button.disabled = True
                return
            self.problems = state.validate()
            roots = list(  # each model once, as the form keeps them
                dict.fromkeys(
                    t.executor.input_schema
                    for t in state.tasks
                    if t.executor is not None
                    and t.executor.input_schema is not None
                    and t.executor.input_schema is not MergedInput
                    and not any(p.state is state for p in t.parents)
                )
            )
            if roots != self.input_form.models:
                previous = self.input_form.value
                self.input_form = InputForm(roots)
                for key, value in previous.items():
                    if key in self.input_form.fields:
                        try:
                            self.input_form.set(**{key: value})
                        except Exception:  # a value the new field cannot show
                            pass
                self.input_form.observe(self._on_form_valid_change, names="valid")
                self._form_box.children = [self.input_form]
            self._build_strip(state)
            self.progress.max = max(len(state), 1)
            self._update_progress()
            if self.problems:
                lines = "".join(f"<li>{html.escape(p.message)}</li>" for p in self.problems)
                self.message.value = f"<ul style='color:#cf222e'>{lines}</ul>"
            else:
                self.message.value = ""
            if self.workflow is not None:
                self.machine.value = figure_png(draw_workflow(self.workflow, current=state.name))
            self._sync_buttons()
            self.redraw()
            self._show_details()

    def _build_strip(self, state: State) -> None:
        try:
            phases = state.phases
        except DagCycleError:
            phases = [[t.name for t in state.tasks]]
        buttons: dict[str, widgets.Button] = {}
        rows = []
        for i, phase in enumerate(phases):
            row = [widgets.HTML(f"<b>phase {i + 1}</b>", layout={"width": "70px"})]
            for name in phase:
                button = self._buttons.get(name) or self._make_button(name)
                self._style_button(button, name)
                buttons[name] = button
                row.append(button)
            rows.append(widgets.HBox(row, layout={"flex_flow": "row wrap"}))
        self._buttons = buttons
        self.phase_strip.children = rows

    def _make_button(self, name: str) -> widgets.Button:
        button = widgets.Button(description=name, tooltip=name, layout={"width": "auto"})
        button.add_class("germinate-task")
        button.on_click(lambda _b, name=name: self._on_task_click(name))
        return button

    def _style_button(self, button: widgets.Button, name: str) -> None:
        status = self.statuses.get(name, "pending")
        # one message per trait that really changes: these run for every task event
        classes = tuple(c for c in button._dom_classes if not c.startswith("germinate-status-"))
        classes += (f"germinate-status-{status}",)
        if button._dom_classes != classes:
            button._dom_classes = classes
        color = STATUS_COLORS.get(status, STATUS_COLORS["pending"])
        if button.style.button_color != color:
            button.style.button_color = color
        border = "2px solid #0969da" if name == self.selected else ""
        if (button.layout.border or "") != border:
            button.layout.border = border

    def redraw(self) -> None:
        """Draw the DAG picture now."""
        state = self.state
        if state is None:
            return
        mode = self.focus_selector.value
        focus = self.selected if self.selected and mode != "all" else None
        if focus is None and self.selected and len(state) > MAX_LABELS:
            focus = self.selected  # big DAGs: show the selected task's lineage
        hops = int(mode) if mode in ("1", "2") else None
        fig = draw_state(
            state,
            statuses=self.statuses,
            problems=self.problems,
            selected=self.selected or None,
            focus=focus,
            hops=hops,
        )
        self.graph.value = figure_png(fig)
        self.redraws += 1

    # -- selection and details ----------------------------------------------------------------

    def select(self, name: str) -> None:
        """Select a task: highlight it, show its details, enable Run selected."""
        state = self.state
        if state is None or name not in state:
            from germinate_nb.core.registry import did_you_mean

            names = [t.name for t in state.tasks] if state is not None else []
            msg = f"no task '{name}' in state '{self.state_name}'.{did_you_mean(name, names)}"
            raise GerminateError(msg)
        previous = self.selected
        self.selected = name
        for n in (previous, name):
            if n in self._buttons:
                self._style_button(self._buttons[n], n)
        self._sync_buttons()
        self._show_details()
        self.redraw()

    @_guard
    def _on_task_click(self, name: str) -> None:
        self.select(name)

    def _show_details(self) -> None:
        state = self.state
        name = self.selected
        if state is None or not name or name not in state:
            self.details.value = "<i>Select a task to see its details.</i>"
            return
        task = state.get(name)
        ex = task.executor
        run = self.last_result.task_runs.get(name) if self.last_result is not None else None
        esc = html.escape
        parts = [
            f"<h4 style='margin:0'>{esc(name)}</h4><table>"
            f"<tr><td>state</td><td>{esc(state.name)}</td></tr>"
            f"<tr><td>namespace</td><td>{esc(ex.namespace if ex else '')}</td></tr>"
            f"<tr><td>executor</td><td><code>{esc(task.registered_name or '')}</code></td></tr>"
            f"<tr><td>parents</td><td>{esc(', '.join(p.name for p in task.parents) or '-')}"
            "</td></tr>"
            f"<tr><td>children</td><td>{esc(', '.join(c.name for c in task.children) or '-')}"
            "</td></tr>"
        ]
        status = self.statuses.get(name, "pending")
        took = f", {run.duration * 1000:.1f} ms" if run is not None and run.duration else ""
        parts.append(
            f"<tr><td>last status</td><td class='germinate-status-{esc(status)}'>{esc(status)}"
            f"{took}</td></tr></table>"
        )
        if ex is not None:
            parts.append(f"<div><u>input</u> {_fields_table(ex.input_schema)}</div>")
            parts.append(f"<div><u>output</u> {_fields_table(ex.output_schema)}</div>")
        if run is not None and run.output is not None and run.status.is_ok:
            parts.append(
                f"<div class='germinate-task-output'><u>output value</u> "
                f"{_output_table(run.output)}</div>"
            )
        if run is not None and run.error is not None:
            parts.append(
                f"<div class='germinate-task-error' style='color:#cf222e'><b>"
                f"{esc(run.error.type)}</b>: {_cut(run.error.message)}"
                f"<pre style='white-space:pre-wrap;font-size:11px'>"
                f"{esc(run.error.traceback or '')}</pre></div>"
            )
        if run is not None and run.skipped_because:
            parts.append(f"<div>skipped because '{esc(run.skipped_because)}' failed</div>")
        if ex is not None:
            parts.append(f"<details><summary>source</summary><pre>{esc(ex.source)}</pre></details>")
        self.details.value = "".join(parts)

    # -- buttons ------------------------------------------------------------------------------

    def _running(self) -> bool:
        return self._handle is not None and not self._run_done.is_set()

    def _sync_buttons(self) -> None:
        running = self._running()
        ok = self.state is not None and self.input_form.valid
        self.run_button.disabled = running or not ok
        self.stop_button.disabled = not running
        self.run_selected_button.disabled = running or not ok or not self.selected
        self.clear_cache_button.disabled = running
        self.state_selector.disabled = running

    @_guard
    def _on_form_valid_change(self, change: dict[str, Any]) -> None:
        self._sync_buttons()

    @_guard
    def _on_run_button_click(self, _button: Any = None) -> None:
        self._start(targets=None)

    @_guard
    def _on_run_selected_button_click(self, _button: Any = None) -> None:
        if self.selected:
            self._start(targets=[self.selected])

    def _start(self, targets: list[str] | None) -> None:
        with self._lock:
            if self._running():
                return  # a second click never starts a second run
            state = self.state
            if state is None or not self.input_form.valid:
                return
            self._run_done.clear()
            try:
                self._handle = start_run(
                    state,
                    self.input_form.value,
                    reuse=self.reuse,
                    max_workers=self.max_workers,
                    targets=targets,
                    executor=None if self.executor_selector.value == "local" else "dask",
                )
            except DagValidationError as err:
                self._run_done.set()
                self.problems = list(err.problems)
                lines = "".join(f"<li>{html.escape(p.message)}</li>" for p in err.problems)
                self.message.value = (
                    "<b style='color:#cf222e'>Cannot run:</b>"
                    f"<ul style='color:#cf222e'>{lines}</ul>"
                )
                self.redraw()
                return
            except BaseException:
                self._run_done.set()
                raise
            self._sync_buttons()

    @_guard
    def _on_stop_button_click(self, _button: Any = None) -> None:
        if self._handle is not None:
            self._handle.cancel()

    @_guard
    def _on_clear_cache_button_click(self, _button: Any = None) -> None:
        n = clear_cache(self.state_name, registry=self.registry)
        self.message.value = f"<span style='color:#57606a'>Cache cleared ({n} results).</span>"

    @_guard
    def _on_state_selector_change(self, change: dict[str, Any]) -> None:
        if change["new"] and change["new"] != self.state_name:
            self.selected = ""
            self._load_state(change["new"])

    @_guard
    def _on_focus_change(self, change: dict[str, Any]) -> None:
        self.redraw()

    # -- live run -----------------------------------------------------------------------------

    def _on_run_event(self, result: RunResult, task_run: TaskRun | None) -> None:
        """Record a run event; the widgets follow in the UI loop (the run never waits on them)."""
        if task_run is None:  # run start: everything in the run is pending again
            with self._lock:
                for name in result.task_runs:
                    self.statuses[name] = TaskStatus.PENDING.value
                self._changed.update(result.task_runs)
                self.last_result = result
            self._start_ui_loop()
            return
        self.statuses[task_run.name] = task_run.status.value
        self._changed.add(task_run.name)
        self._dirty = True

    def _apply_changes(self) -> None:
        """Restyle the task buttons that changed and move the progress bar."""
        with self._lock:
            changed, self._changed = self._changed, set()
        for name in changed:
            if name in self._buttons:
                self._style_button(self._buttons[name], name)
        if changed:
            self._update_progress()

    def _on_run_end(self, result: RunResult) -> None:
        try:
            with self._lock:
                if self._live is not None:
                    self._live.set()
                    self._live = None
                self._changed.clear()
            self.last_result = result
            for name, tr in result.task_runs.items():
                self.statuses[name] = tr.status.value
                if name in self._buttons:
                    self._style_button(self._buttons[name], name)
            self._update_progress()
            counts = ", ".join(f"{n} {s}" for s, n in sorted(result.counts().items()))
            color = "#1a7f37" if result.ok else "#cf222e"
            took = f" in {result.duration:.2f} s" if result.duration is not None else ""
            self.message.value = (
                f"<span style='color:{color}'>Run {html.escape(result.status)}{took}: "
                f"{html.escape(counts)}.</span>"
            )
            self._show_details()
            self.redraw()
        except Exception as err:
            _report(err)
        finally:
            self._run_done.set()
            self._sync_buttons()

    def _update_progress(self) -> None:
        state = self.state
        total = (
            len(self.last_result.task_runs) if self.last_result is not None else len(state or [])
        )
        done = 0
        if self.last_result is not None:
            done = sum(
                1
                for n in self.last_result.task_runs
                if TaskStatus(self.statuses.get(n, "pending")).is_final
            )
        self.progress.max = max(total, 1)
        self.progress.value = done
        self.progress_label.value = f"{done}/{total} tasks"

    def _start_ui_loop(self) -> None:
        """Follow a run: buttons and progress every 0.1 s, the picture every 0.3 s at most."""
        live = threading.Event()
        with self._lock:
            if self._live is not None:
                self._live.set()  # a newer run: retire the loop of the previous one
            self._live = live

        def loop() -> None:
            last_draw, gap = 0.0, REDRAW_INTERVAL
            while not live.wait(BUTTON_INTERVAL) and not _SHUTTING_DOWN.is_set():
                try:
                    self._apply_changes()
                    now = time.monotonic()
                    if self._dirty and now - last_draw >= gap:
                        self._dirty = False
                        self.redraw()
                        last_draw = time.monotonic()
                        # drawing holds the GIL: keep it under a third of the run's time
                        gap = max(REDRAW_INTERVAL, 3 * (last_draw - now))
                except Exception as err:
                    _report(err)

        _spawn(loop, "germinate-ui")

    def wait(self, timeout: float | None = None) -> RunResult | None:
        """Block until the current run (if any) has ended and the explorer shows it."""
        if self._handle is None:
            return self.last_result
        if not self._run_done.wait(timeout):
            return None
        return self.last_result

    # -- live model ---------------------------------------------------------------------------

    def _on_registry_change(self, kind: str, state: State | None, task: Any) -> None:
        if kind == "reset" or state is None or state.name == self.state_name or kind == "state":
            self._schedule_refresh()

    def _schedule_refresh(self, delay: float = 0.15) -> None:
        with self._lock:
            if self._refresh_timer is not None:
                return
            self._refresh_timer = _spawn(self._timed_refresh, "germinate-refresh", delay)

    def _timed_refresh(self) -> None:
        with self._lock:
            self._refresh_timer = None
        try:
            if not self._running():
                self.refresh()
            else:
                self._schedule_refresh(0.5)
        except Exception as err:
            _report(err)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Display; an explorer shown earlier by the same notebook cell is closed.

        Re-running ``explore(state)`` replaces the cell's output, but the old widget would
        otherwise live on in the kernel and keep following (and drawing) every run.
        """
        cell = _current_cell_id()
        if cell is not None:
            previous = _BY_CELL.get(cell)
            old = previous() if previous is not None else None
            if old is not None and old is not self:
                old.close()
            _BY_CELL[cell] = weakref.ref(self)
        return super()._repr_mimebundle_(**kwargs)

    def close(self) -> None:
        """Stop listening to the registry and its runs, and close the widgets."""
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe is not None:
            unsubscribe()
        observer = getattr(self, "_observer", None)
        if observer is not None and observer in self.registry.run_observers:
            self.registry.run_observers.remove(observer)
        super().close()


_BY_CELL: dict[str, weakref.ref[DagExplorer]] = {}


def _current_cell_id() -> str | None:
    """The id of the notebook cell being executed (JupyterLab and Notebook 7 send it)."""
    try:
        from IPython import get_ipython  # type: ignore[attr-defined]

        kernel = getattr(get_ipython(), "kernel", None)
        parent = kernel.get_parent() if kernel is not None else None
        cell = (parent or {}).get("metadata", {}).get("cellId")
    except Exception:
        return None
    return cell if isinstance(cell, str) and cell else None


def _dask_client_available() -> bool:
    from germinate_nb.execution.dask import DaskExecutor

    return DaskExecutor.available()


def _subscribe(explorer: DagExplorer) -> Any:
    """Subscribe through a weak reference so a forgotten explorer can be collected."""
    ref = weakref.ref(explorer)
    registry = explorer.registry

    def callback(kind: str, state: Any, task: Any) -> None:
        target = ref()
        if target is None:
            unsubscribe()
            return
        target._on_registry_change(kind, state, task)

    unsubscribe = registry.subscribe(callback)
    return unsubscribe
