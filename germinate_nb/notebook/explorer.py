"""The DagExplorer widget: toolbar, status line, input form, the interactive DAG, details, history.

The parts live in their own modules (canvas, details, strip, status, history, follow, forms);
this one composes them and keeps them in step with the registry and with runs.
"""

from __future__ import annotations

import html
import threading
import weakref
from typing import Any

import ipywidgets as widgets
from traitlets import Unicode

from germinate_nb.core.options import check_run_options
from germinate_nb.core.registry import did_you_mean
from germinate_nb.core.schema import is_any_model
from germinate_nb.core.snapshot import DagSnapshot
from germinate_nb.core.state import State
from germinate_nb.core.validate import Problem
from germinate_nb.core.workflow import Workflow
from germinate_nb.errors import DagValidationError, GerminateError
from germinate_nb.execution.cache import clear_cache
from germinate_nb.execution.result import RunResult, RunStatus, TaskStatus
from germinate_nb.execution.runner import RunHandle, start_run
from germinate_nb.execution.store import resolve_store, store_path
from germinate_nb.execution.store_rows import RunRow
from germinate_nb.notebook.canvas import DagCanvas
from germinate_nb.notebook.details import DetailsPane, TaskView
from germinate_nb.notebook.follow import RunFollower, report, spawn
from germinate_nb.notebook.forms import InputForm
from germinate_nb.notebook.history import HistoryView, run_label
from germinate_nb.notebook.search import match_tasks
from germinate_nb.notebook.status import StatusLine
from germinate_nb.notebook.strip import PhaseStrip
from germinate_nb.render.canvas import Geometry, canvas_geometry

__all__ = ["DagExplorer"]

ERROR = "var(--jp-error-color1, #cf222e)"
MUTED = "var(--jp-ui-font-color2, #57606a)"
NOT_RUN = "not run"
STORED_RUNS = 20
"""Past runs of the state listed from the run store (this kernel's own runs come first)."""


def _guard(method: Any) -> Any:
    """Wrap a widget callback so exceptions are shown, not swallowed."""

    def wrapper(self: DagExplorer, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as err:
            report(err)
            return None

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class DagExplorer(widgets.VBox):
    """Explore and run a state's DAG (or a workflow's states) inside the notebook.

    Public parts: ``state_selector``, ``run_button``, ``stop_button``, ``run_selected_button``,
    ``clear_cache_button``, ``search`` (a Text: names, namespaces, ``status:failed``),
    ``status_line``, ``input_form``, ``view_selector`` (Graph, Timeline, History), ``graph``
    (the interactive :class:`DagCanvas`), ``phase_strip``, ``details``, ``timeline``,
    ``history``, ``last_result``; ``select(name)``, ``node_xy(name)``, ``remove(name)``,
    ``wait(timeout)``.
    """

    selected = Unicode("", help="Name of the selected task.").tag(sync=True)
    state_name = Unicode("", help="Name of the state on display.").tag(sync=True)

    def __init__(
        self,
        target: State | Workflow,
        *,
        reuse: bool = True,
        max_workers: int | None = None,
        store: Any = None,
        retries: int | None = None,
        timeout: float | None = None,
        limits: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        # the runs the explorer starts get these (checked now: a mistake shows at explore())
        self.run_options: dict[str, Any] = {
            "retries": retries,
            "timeout": timeout,
            "limits": check_run_options(retries, timeout, limits),
        }
        self.add_class("germinate-explorer")
        if isinstance(target, Workflow):
            self.workflow: Workflow | None = target
            states = target.states
            if not states:
                msg = f"workflow '{target.name}' has no states to explore: add_state() first."
                raise GerminateError(msg)
            start = target.initial_state or states[0]
        elif isinstance(target, State):
            self.workflow = None
            start = target
        else:
            msg = f"explore() takes a State or a Workflow, got {type(target).__name__}."
            raise TypeError(msg)
        self.registry = start.registry
        if self.workflow is not None:  # its conditions become tasks: show them like tasks
            self.workflow.build(raise_on_error=False)
        self.reuse = reuse
        self.max_workers = max_workers
        self.store = store
        self.last_result: RunResult | None = None  # the latest run of the state on display
        self.statuses: dict[str, str] = {}  # of the run on display (the latest, or a chosen one)
        self.marks: dict[str, str] = {}  # "changed": code changed since the task last ran
        self.problems: list[Problem] = []
        self.redraws = 0
        self._handle: RunHandle | None = None
        self._lock = threading.RLock()
        self._run_done = threading.Event()
        self._run_done.set()
        self._geometry_key: Any = None
        self._snap: DagSnapshot | None = None
        self._viewing: RunResult | None = None  # an earlier run chosen in the history
        self._stored_rows: list[RunRow] = []  # the state's runs in the run store
        self._refresh_timer: threading.Thread | None = None
        self._log_version: tuple[str, int] = ("", -1)
        self._build()
        self.follower = RunFollower(self, self.registry)
        self._unsubscribe = _subscribe(self)
        self.state_selector.value = start.name
        self._load_state(start.name)

    # -- parts -------------------------------------------------------------------------------

    def _build(self) -> None:
        self.state_selector = widgets.Dropdown(
            options=self._state_names(), description="State", layout={"width": "220px"}
        )
        self.executor_selector = widgets.Dropdown(
            options=[("local", "local"), ("Dask cluster", "dask")],
            value="local",
            description="Run on",
            layout={"width": "190px"},
        )
        button = {"layout": {"width": "auto", "min_width": "fit-content"}}
        self.run_button = widgets.Button(
            description="Run",
            icon="play",
            button_style="success",
            tooltip="Run the DAG (reusing unchanged results)",
            **button,
        )
        self.stop_button = widgets.Button(
            description="Stop",
            icon="stop",
            button_style="danger",
            disabled=True,
            tooltip="Cancel the run",
            **button,
        )
        self.run_selected_button = widgets.Button(
            description="Run selected",
            icon="crosshairs",
            disabled=True,
            tooltip="Run the selected task and its upstream",
            **button,
        )
        self.clear_cache_button = widgets.Button(
            description="Clear cache", icon="trash", tooltip="Forget reusable results", **button
        )
        self.search = widgets.Text(
            placeholder="Search tasks (name, ns:…, status:failed)",
            continuous_update=True,
            layout={"width": "260px"},
        )
        self.search.add_class("germinate-search")
        self.status_line = StatusLine()
        self.message = widgets.HTML("")
        self.input_form = InputForm([])
        self._form_box = widgets.VBox([self.input_form])
        self.machine = widgets.HTML(layout={"width": "100%"})
        self.graph = DagCanvas(layout={"width": "100%"})
        self.phase_strip = PhaseStrip(self._on_task_click)
        self.details = DetailsPane(on_remove=self._on_remove_click)
        self.timeline = widgets.HTML(layout={"width": "100%"})
        self.timeline_note = widgets.HTML("<i>The timeline of a run shows after it ends.</i>")
        self.history = HistoryView(self._on_view_run, load=self._load_stored_run)
        self.view_selector = widgets.ToggleButtons(
            options=["Graph", "Timeline", "History"], value="Graph", style={"button_width": "auto"}
        )
        full = {"width": "100%"}
        self.views = widgets.Stack(
            [
                widgets.VBox([self.graph, self.phase_strip], layout=full),
                widgets.VBox([self.timeline_note, self.timeline], layout=full),
                self.history,
            ],
            selected_index=0,
            layout=full,
        )
        self.run_button.on_click(self._on_run_button_click)
        self.stop_button.on_click(self._on_stop_button_click)
        self.run_selected_button.on_click(self._on_run_selected_button_click)
        self.clear_cache_button.on_click(self._on_clear_cache_button_click)
        self.state_selector.observe(self._on_state_selector_change, names="value")
        self.search.observe(self._on_search_change, names="value")
        self.search.on_msg(self._on_search_msg)
        self.view_selector.observe(self._on_view_selector_change, names="value")
        self.graph.observe(self._on_graph_selected_change, names="selected")
        self.graph.on_focus(self._on_graph_focus)
        self.graph.on_views(self._on_views_change)
        tools: list[widgets.Widget] = [
            self.state_selector,
            self.run_button,
            self.stop_button,
            self.run_selected_button,
            self.clear_cache_button,
            self.search,
        ]
        if _dask_client_available():  # offer the cluster only when one is connected
            tools.insert(1, self.executor_selector)
        toolbar = widgets.HBox(tools, layout={"flex_flow": "row wrap", "align_items": "center"})
        toolbar.add_class("germinate-toolbar")
        body = widgets.HBox(
            [
                widgets.VBox(
                    [self.view_selector, self.views],
                    layout={"flex": "3 1 420px", "min_width": "0"},
                ),
                widgets.VBox(
                    [self.details],
                    layout={
                        "flex": "2 1 300px",
                        "min_width": "0",
                        "padding": "0 0 0 12px",
                        "max_height": "620px",
                        "overflow": "auto",
                    },
                ),
            ],
            layout={"flex_flow": "row wrap", "align_items": "flex-start"},
        )
        parts: list[widgets.Widget] = [toolbar, self.status_line, self.message, self._form_box]
        if self.workflow is not None:
            parts.insert(1, self.machine)
        self.children = [*parts, body]

    # -- model -------------------------------------------------------------------------------

    def _state_names(self) -> list[str]:
        if self.workflow is not None:
            return [s.name for s in self.workflow.states]
        return list(self.registry.states)

    @property
    def state(self) -> State | None:
        """The state on display (None after ``%germinate reset``)."""
        return self.registry.states.get(self.state_name)

    @property
    def displayed_run(self) -> RunResult | None:
        """The run whose statuses are on display: an earlier one from the history, or the latest."""
        return self._viewing or self.last_result

    def _load_state(self, name: str) -> None:
        with self._lock:
            self.state_name = name
            self._viewing = None
            self.last_result = self.registry.last_results.get(name)
            if self.selected and (self.state is None or self.selected not in self.state):
                self.selected = ""
            self._geometry_key = None
            self._stored_rows = self._stored_runs(name)
            self.refresh()

    def refresh(self) -> None:
        """Rebuild what depends on the DAG: form, picture, strip, statuses, details, history."""
        with self._lock:
            state = self.state
            options = self._state_names()
            if list(self.state_selector.options) != options:
                self.state_selector.options = options
                if state is not None and state.name in options:
                    self.state_selector.value = state.name
            if state is None:
                self._show_no_state()
                return
            snap = state.snapshot()
            self._snap = snap
            self.problems = state.validate()
            self._refresh_form(snap)
            self._refresh_statuses()
            self._refresh_picture(snap)
            self._refresh_problems()
            if self.workflow is not None:
                from germinate_nb.render.mpl import draw_workflow, inked, themed_svg

                with inked():
                    machine = draw_workflow(self.workflow, current=state.name)
                self.machine.value = themed_svg(machine)
            self._refresh_history(state.name)
            self._sync_buttons()
            self._show_status()
            self._show_details()

    def _refresh_history(self, name: str) -> None:
        runs = list(self.registry.run_history.get(name, ()))
        self.history.refresh(runs, self._stored_rows if name == self.state_name else ())

    def _stored_runs(self, name: str) -> list[RunRow]:
        """The state's past runs in the run store (earlier kernels' too), newest first.

        Read when a state is shown, never on a run's path; a store that does not exist yet
        is not created, and one that cannot be read lists nothing (it warns once on use).
        """
        try:
            path = store_path(self.store)
            if path is None or not path.exists():
                return []
            store = resolve_store(self.store)
            return store.runs(name, limit=STORED_RUNS) if store is not None else []
        except Exception:  # the history is a convenience: never an error in the explorer
            return []

    def _load_stored_run(self, run_id: str) -> RunResult | None:
        try:
            store = resolve_store(self.store)
            return store.load_result(run_id, self.state) if store is not None else None
        except Exception:
            return None

    def _show_no_state(self) -> None:
        self._snap = None
        self.phase_strip.rebuild([], {}, {}, "")
        self.graph.set_geometry(canvas_geometry(_empty_snapshot(self.state_name)))
        self.details.clear("No state.")
        self.message.value = (
            f"<span style='color:{MUTED}'>State '{html.escape(self.state_name)}' no longer "
            "exists (the registry was reset). Declare tasks again to see them here.</span>"
        )
        self.run_button.disabled = True

    def _refresh_form(self, snap: DagSnapshot) -> None:
        roots = list(  # each model once, as the form keeps them
            dict.fromkeys(
                spec.executor.input_schema
                for spec in (snap.tasks[n] for n in snap.roots)
                if spec.executor is not None
                and spec.executor.input_schema is not None
                and not is_any_model(spec.executor.input_schema)
                and not spec.foreign_parents
            )
        )
        if roots == self.input_form.models:
            return
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

    def _refresh_problems(self) -> None:
        if self.problems:
            lines = "".join(
                f"<li style='overflow-wrap:anywhere'>{html.escape(p.message)}</li>"
                for p in self.problems
            )
            self.message.value = f"<ul style='color:{ERROR};margin:2px 0'>{lines}</ul>"
        else:
            self.message.value = ""

    def _refresh_picture(self, snap: DagSnapshot) -> None:
        key = (snap.state, snap.version, tuple(p.message for p in self.problems))
        if key != self._geometry_key:
            self._geometry_key = key
            geo: Geometry = canvas_geometry(snap, self.problems)
            conditions = [
                n for n in snap.names if getattr(snap.tasks[n].executor, "kind", "") == "condition"
            ]
            self.graph.set_geometry(geo, conditions)
            self.phase_strip.rebuild(
                self._layers(snap, geo), self.statuses, self.marks, self.selected
            )
            self.redraws += 1
        self.graph.reset_statuses(self.statuses, self._notes(), self.marks)
        self.phase_strip.update(self.statuses, self.marks, self.selected)
        self._refresh_search()

    @staticmethod
    def _layers(snap: DagSnapshot, geo: Geometry) -> list[list[str]]:
        if not snap.has_cycle:
            return snap.phases
        columns: dict[float, list[str]] = {}
        for name, (x, _) in zip(geo.names, geo.xy.tolist(), strict=True):
            columns.setdefault(x, []).append(name)
        return [sorted(columns[x]) for x in sorted(columns)]

    def _refresh_statuses(self) -> None:
        """The statuses of the run on display, and the tasks whose code changed since."""
        snap = self._snap
        if snap is None:
            return
        shown = self.displayed_run
        statuses: dict[str, str] = {}
        if shown is not None:
            for name in snap.names:
                run = shown.task_runs.get(name)
                statuses[name] = run.status.value if run is not None else NOT_RUN
        self.statuses = statuses
        last: dict[str, str] = {}
        for result in self.registry.run_history.get(snap.state, ()):  # oldest to newest
            for name, run in result.task_runs.items():
                if run.fingerprint:
                    last[name] = run.fingerprint
        marks = {}
        for name in snap.names:
            ex = snap.tasks[name].executor
            if name in last and ex is not None and ex.fingerprint != last[name]:
                marks[name] = "changed"
        self.marks = marks

    def _notes(self, names: Any = None) -> dict[str, dict[str, str]]:
        shown = self.displayed_run
        if shown is None:
            return {}
        notes = {}
        for name in names if names is not None else shown.task_runs:
            run = shown.task_runs.get(name)
            if run is None:
                continue
            note = {}
            if run.duration is not None:
                note["duration"] = f"{run.duration:.3f} s"
            if run.error is not None:
                note["error"] = str(run.error)[:300]
            if run.note:  # "attempt 2/4", "waiting (llm 4/4)"
                note["limit" if run.waiting_for_limit else "attempt"] = run.note
            if note:
                notes[name] = note
        return notes

    # -- selection, search and details -------------------------------------------------------

    def select(self, name: str) -> None:
        """Select a task: highlight it in the picture and the strip, show its details."""
        state = self.state
        if state is None or name not in state:
            names = [t.name for t in state.tasks] if state is not None else []
            msg = f"no task '{name}' in state '{self.state_name}'.{did_you_mean(name, names)}"
            raise GerminateError(msg)
        with self._lock:
            self.selected = name
            if self.graph.selected != name:
                self.graph.selected = name
            self._show_details()  # first: what the user waits for reaches the page first
            self._sync_buttons()
            self.phase_strip.update(self.statuses, self.marks, name)
            self.history.select_task(name)

    def node_xy(self, name: str) -> tuple[float, float]:
        """The task's centre in the picture, as fractions (0-1) of its width and height.

        Measured from the top-left corner of the element with class ``germinate-canvas``, in
        the current view (zoom and pan included).
        """
        return self.graph.node_xy(name)

    def _show_details(self) -> None:
        snap, name = self._snap, self.selected
        if snap is None or not name or name not in snap:
            self.details.clear()
            return
        shown = self.displayed_run
        run = shown.task_runs.get(name) if shown is not None else None
        viewing = run_label(self._viewing) if self._viewing is not None else ""
        phase = snap.phase_of.get(name)
        self.details.show(
            TaskView(
                snap.state,
                snap.tasks[name],
                phase,
                self.statuses.get(name, "pending"),
                run,
                changed=bool(self.marks.get(name)),
                viewing=viewing,
            )
        )

    def _refresh_search(self) -> None:
        snap = self._snap
        query = self.search.value
        found = match_tasks(snap, query, self.statuses, self.marks) if snap is not None else []
        with self.graph.hold_sync():
            self.graph.search = query
            self.graph.matches = found
        self.phase_strip.set_matches(found if query.split() else None)

    @_guard
    def _on_search_change(self, change: dict[str, Any]) -> None:
        self._refresh_search()

    @_guard
    def _on_search_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "submit":  # Enter
            self.select_first_match()

    def select_first_match(self) -> str | None:
        """Select the first task the search names and bring it into view (what Enter does)."""
        if not self.graph.matches:
            return None
        name = self.graph.matches[0]
        self.select(name)
        self.graph.center(name)
        return name

    @_guard
    def _on_task_click(self, name: str) -> None:
        self.select(name)

    @_guard
    def _on_graph_selected_change(self, change: dict[str, Any]) -> None:
        name = change["new"]
        if name and name != self.selected and self.state is not None and name in self.state:
            self.select(name)

    @_guard
    def _on_views_change(self, views: int) -> None:
        """Follow runs only while the explorer is on screen (its output cleared: unsubscribe)."""
        if views == 0:
            self.follower.pause()
        elif not self.follower.following:
            self.follower.resume()
            self._load_state(self.state_name)  # catch up with what happened meanwhile

    @_guard
    def _on_graph_focus(self, name: str) -> None:
        """A double-click: the task's lineage, the rest dimmed."""
        if self._snap is not None and name in self._snap:
            self.select(name)
            self.graph.focus_on(self._snap.lineage(name))

    # -- buttons -------------------------------------------------------------------------------

    def _running(self) -> bool:
        return self._handle is not None and not self._run_done.is_set()

    def _sync_buttons(self) -> None:
        running = self._running()
        ok = self.state is not None and self.input_form.valid and self._viewing is None
        self.run_button.disabled = running or not ok
        self.stop_button.disabled = not running
        self.run_selected_button.disabled = running or not ok or not self.selected
        self.clear_cache_button.disabled = running
        self.state_selector.disabled = running
        self.details.remove_button.disabled = running or self._viewing is not None

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
            options: dict[str, Any] = {
                "reuse": self.reuse,
                "max_workers": self.max_workers,
                "targets": targets,
                "backend": None if self.executor_selector.value == "local" else "dask",
            }
            if self.store is not None:
                options["store"] = self.store
            options.update((k, v) for k, v in self.run_options.items() if v is not None)
            try:
                self._handle = start_run(state, self.input_form.value, **options)
            except DagValidationError as err:
                self._run_done.set()
                self.problems = list(err.problems)
                lines = "".join(f"<li>{html.escape(p.message)}</li>" for p in err.problems)
                self.message.value = (
                    f"<b style='color:{ERROR}'>Cannot run:</b><ul style='color:{ERROR}'>"
                    f"{lines}</ul>"
                )
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
        self.message.value = f"<span style='color:{MUTED}'>Cache cleared ({n} results).</span>"

    @_guard
    def _on_state_selector_change(self, change: dict[str, Any]) -> None:
        if change["new"] and change["new"] != self.state_name:
            self.selected = ""
            self._load_state(change["new"])

    @_guard
    def _on_remove_click(self, name: str) -> None:
        self.remove(name)

    def remove(self, name: str) -> None:
        """Remove a task (and its edges) from the state on display."""
        state = self.state
        if state is None:
            return
        parents = ", ".join(p.name for p in state.get(name).parents) or "none"
        state.remove_task(name)
        if self.selected == name:
            self.selected = ""
        self.message.value = (
            f"<span style='color:{MUTED}'>Removed task '{html.escape(name)}' (parents: "
            f"{html.escape(parents)}) and its edges.</span>"
        )

    # -- views ---------------------------------------------------------------------------------

    @_guard
    def _on_view_selector_change(self, change: dict[str, Any]) -> None:
        self.views.selected_index = ["Graph", "Timeline", "History"].index(change["new"])
        if change["new"] == "Timeline":
            self._draw_timeline()

    def _draw_timeline(self) -> None:
        shown = self.displayed_run
        if shown is None or not RunStatus(shown.status).is_final:
            self.timeline_note.value = "<i>The timeline of a run shows after it ends.</i>"
            return
        from germinate_nb.render.timeline import timeline_svg

        self.timeline.value = timeline_svg(shown)
        self.timeline_note.value = f"<i>{html.escape(run_label(shown))}</i>"

    @_guard
    def _on_view_run(self, result: RunResult | None) -> None:
        with self._lock:
            self._viewing = result
            self._refresh_statuses()
            self.graph.reset_statuses(self.statuses, self._notes(), self.marks)
            self.phase_strip.update(self.statuses, self.marks, self.selected)
            self._refresh_search()  # a status: search follows the run on display
            self._sync_buttons()
            self._show_status()
            self._show_details()
            if self.view_selector.value == "Timeline":
                self._draw_timeline()

    def _show_status(self) -> None:
        total = len(self._snap) if self._snap is not None else 0
        viewing = run_label(self._viewing) if self._viewing is not None else ""
        self.status_line.show(self.displayed_run, self.statuses, total, viewing)

    # -- live runs (called on the follower's UI thread) ------------------------------------------

    def _apply_run_changes(self) -> bool:
        """Show what the followed run did since the last call; True while it goes on."""
        result, started, _ended = self.follower.take()
        if result is None:
            return False
        with self._lock:
            if started:
                self._viewing = None
                self.last_result = result
                self.history.view("latest")
            if result is not self.last_result:
                return False
            snap = self._snap
            if snap is None:
                return False
            final = RunStatus(result.status).is_final  # read first: statuses below are final
            statuses = self.statuses
            changed = set()
            for name, run in result.task_runs.items():
                status = run.status.value
                if statuses.get(name) != status:
                    statuses[name] = status
                    changed.add(name)
            if started:  # the tasks outside a "run selected" are not run in it
                for name in snap.names:
                    if name not in result.task_runs and statuses.get(name) != NOT_RUN:
                        statuses[name] = NOT_RUN
                        changed.add(name)
            if final:
                self._finish_run(result)
                return False
            if changed:
                ended = [n for n in changed if statuses[n] not in ("pending", "running", NOT_RUN)]
                self.graph.set_statuses({n: statuses[n] for n in changed}, self._notes(ended))
                self.phase_strip.update(statuses, self.marks, self.selected, changed)
            self._show_status()
            self._show_live_details(result, changed)
            return True

    def _show_live_details(self, result: RunResult, changed: set[str]) -> None:
        name = self.selected
        run = result.task_runs.get(name) if name else None
        if run is None:
            return
        live = run._live
        version = (name, live._log.version if live is not None and live._log is not None else -1)
        if name in changed or (run.status is TaskStatus.RUNNING and version != self._log_version):
            self._log_version = version
            self._show_details()

    def _finish_run(self, result: RunResult) -> None:
        """The run ended: every status, the status line, the first failure selected."""
        for name, run in result.task_runs.items():
            self.statuses[name] = run.status.value
        self._refresh_statuses()
        self.graph.reset_statuses(self.statuses, self._notes(), self.marks)
        failed = [n for n, r in result.task_runs.items() if r.status is TaskStatus.FAILED]
        if failed:
            self.selected = failed[0]
            self.graph.selected = failed[0]
            self.history.select_task(failed[0])
        self.phase_strip.update(self.statuses, self.marks, self.selected)
        self._refresh_search()  # "status:failed" names other tasks now
        self._refresh_history(result.state)
        self._show_status()
        self._show_details()
        if self.view_selector.value == "Timeline":
            self._draw_timeline()
        self._run_done.set()
        self._sync_buttons()

    def wait(self, timeout: float | None = None) -> RunResult | None:
        """Block until the run on display (started here or anywhere) has ended and shows.

        Returns the latest run, or None on timeout.
        """
        if not self._run_done.wait(timeout):
            return None
        return self.last_result

    # -- live model ----------------------------------------------------------------------------

    def _on_registry_change(self, kind: str, state: State | None, task: Any) -> None:
        if kind == "reset" or state is None or state.name == self.state_name or kind == "state":
            self._schedule_refresh()

    def _schedule_refresh(self, delay: float = 0.15) -> None:
        with self._lock:
            if self._refresh_timer is not None:
                return
            self._refresh_timer = spawn(self._timed_refresh, "germinate-refresh", delay)

    def _timed_refresh(self) -> None:
        with self._lock:
            self._refresh_timer = None
        try:
            if not self._running():
                self.refresh()
            else:
                self._schedule_refresh(0.5)
        except Exception as err:
            report(err)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Display; an explorer shown earlier by the same notebook cell is closed.

        Re-running ``explore(state)`` replaces the cell's output, but the old widget would
        otherwise live on in the kernel and keep following every run.
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
        follower = getattr(self, "follower", None)
        if follower is not None:
            follower.stop()
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
    from germinate_nb.execution.dask import DaskBackend

    return DaskBackend.available()


def _empty_snapshot(name: str) -> DagSnapshot:
    return DagSnapshot(name or "-", None, [])


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
