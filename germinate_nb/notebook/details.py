"""The explorer's details pane: one task's definition, last run, output, error and log.

Every value, log and traceback is cut at ``CAP`` characters (the notebook file stays small);
"Show all" renders the selected task's details whole, on demand, up to ``WHOLE_CAP`` characters
each. User text is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
from pydantic import BaseModel

from germinate_nb.core.schema import is_any_model, type_name
from germinate_nb.core.snapshot import TaskSpec
from germinate_nb.execution.result import TaskRun
from germinate_nb.execution.tracebacks import safe_str

__all__ = ["CAP", "DetailsPane", "TaskView", "safe_repr"]

CAP = 20_000
"""Characters of one value, log or traceback shown until "Show all"."""
WHOLE_CAP = 1_000_000
"""Characters of one value, log or traceback "Show all" shows (in about a second); the rest
is in the run's result."""
ERROR = "var(--jp-error-color1, #cf222e)"
MUTED = "var(--jp-ui-font-color2, #57606a)"


def safe_repr(value: Any) -> str:
    """``repr(value)``, or a note saying why it failed (a user's ``__repr__`` may raise)."""
    try:
        return repr(value)
    except Exception as err:
        return f"<repr failed: {type(err).__name__}: {safe_str(err)}>"


@dataclass
class TaskView:
    """What the pane shows about one task."""

    state: str
    spec: TaskSpec
    phase: int | None
    status: str
    run: TaskRun | None
    changed: bool = False
    viewing: str = ""  # "" for the latest run, else a label of the older run on display


class DetailsPane(widgets.VBox):
    """The selected task's details, with "Show all", "Engine frames" and "Remove task"."""

    def __init__(self, on_remove: Callable[[str], Any] | None = None) -> None:
        self.html = widgets.HTML("<i>Select a task to see its details.</i>")
        self.html.add_class("germinate-details")
        self.show_all_button = widgets.Button(
            description="Show all", icon="expand", tooltip="Show values, logs and tracebacks whole"
        )
        self.frames_button = widgets.ToggleButton(
            description="Engine frames", icon="list", tooltip="Show germinate_nb's own frames too"
        )
        self.remove_button = widgets.Button(
            description="Remove task",
            icon="trash",
            tooltip="Remove the selected task and its edges from the state",
        )
        self.buttons = widgets.HBox(
            [self.show_all_button, self.frames_button, self.remove_button],
            layout={"flex_flow": "row wrap", "display": "none", "flex": "0 0 auto"},
        )
        self.html.layout.flex = "0 0 auto"  # a tall text scrolls the pane; nothing shrinks
        super().__init__([self.buttons, self.html], layout={"min_width": "0", "flex": "0 0 auto"})
        self.add_class("germinate-details-pane")
        self.view: TaskView | None = None
        self.whole = False
        self._on_remove = on_remove
        self.show_all_button.on_click(self._on_show_all_button_click)
        self.frames_button.observe(self._on_frames_change, names="value")
        self.remove_button.on_click(self._on_remove_button_click)

    # -- showing -------------------------------------------------------------------------------

    def clear(self, message: str = "Select a task to see its details.") -> None:
        """Show nothing but a message."""
        self.view = None
        self.buttons.layout.display = "none"
        self.html.value = f"<i>{html.escape(message)}</i>"

    def show(self, view: TaskView, *, whole: bool | None = None) -> None:
        """Show a task (cut values unless ``whole``; a new task starts cut again)."""
        same = self.view is not None and self.view.spec.name == view.spec.name
        self.whole = (self.whole if same else False) if whole is None else whole
        if not same:
            self.frames_button.value = False
        self.view = view
        cut = _Cutter(WHOLE_CAP if self.whole else CAP, whole=self.whole)
        value = _render(view, cut, engine_frames=self.frames_button.value)
        run = view.run
        has_tb = run is not None and run.error is not None and bool(run.error.traceback)
        self.show_all_button.layout.display = "" if cut.cut and not self.whole else "none"
        self.frames_button.layout.display = "" if has_tb else "none"
        self.remove_button.disabled = bool(view.viewing)
        self.buttons.layout.display = ""
        if value != self.html.value:
            self.html.value = value

    def _on_show_all_button_click(self, _button: Any = None) -> None:
        if self.view is not None:
            self.show(self.view, whole=True)

    def _on_frames_change(self, change: dict[str, Any]) -> None:
        if self.view is not None:
            self.show(self.view)

    def _on_remove_button_click(self, _button: Any = None) -> None:
        if self.view is not None and self._on_remove is not None:
            self._on_remove(self.view.spec.name)


class _Cutter:
    """Escapes text, cutting it at ``limit`` characters and remembering that it did."""

    def __init__(self, limit: int, *, whole: bool = False) -> None:
        self.limit = limit
        self.whole = whole
        self.cut = False

    def __call__(self, text: str) -> str:
        if len(text) <= self.limit:
            return breakable(text)
        self.cut = True
        rest = len(text) - self.limit
        more = (
            "too many to show here: the run's result holds it whole" if self.whole else "(Show all)"
        )
        return (
            f"{breakable(text[: self.limit])}<span style='color:{MUTED}'> … {rest} more "
            f"characters {more}</span>"
        )


WORD_PIECE = 20
"""A longer word is shown with a line break allowed after every this many characters."""
_LONG_WORD = re.compile(r"\S{" + str(2 * WORD_PIECE) + ",}")


def breakable(text: str) -> str:
    """``text`` HTML-escaped, a ``<wbr>`` (a break the browser may take) in each long word.

    A browser wraps one long word (a base64 blob, compact JSON) at a cost that grows much
    faster than its length: "Show all" of a 200,000-character word froze JupyterLab for up to
    a minute, and 50,000 characters took 7 s. With a break allowed every ``WORD_PIECE``
    characters, 200,000 take 0.3 s. ``<wbr>`` is not text: copying the value copies it
    unchanged.

    >>> shown = breakable("a<b " + "x" * 170)
    >>> shown.count("<wbr>"), shown[:9], shown.replace("<wbr>", "")[7:] == "x" * 170
    (8, 'a&lt;b xx', True)
    """
    if len(text) < 2 * WORD_PIECE or _LONG_WORD.search(text) is None:
        return html.escape(text)
    out = []
    pos = 0
    for match in _LONG_WORD.finditer(text):
        out.append(html.escape(text[pos : match.start()]))
        word = match.group(0)
        pieces = (word[i : i + WORD_PIECE] for i in range(0, len(word), WORD_PIECE))
        out.append("<wbr>".join(html.escape(piece) for piece in pieces))
        pos = match.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _fields_table(model: type[BaseModel] | None) -> str:
    if model is None:
        return "<i>none</i>"
    if is_any_model(model):
        return "<i>any fields (the merged outputs of the parents, or the run input)</i>"
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


def _output_table(output: BaseModel, cut: _Cutter) -> str:
    """A model's fields and values (a task run's output, or its input)."""
    try:
        data = output.model_dump()
    except Exception as err:
        return f"<i>cannot show the value: {html.escape(safe_repr(err))}</i>"
    rows = "".join(
        f"<tr><td><code>{html.escape(str(k))}</code></td>"
        f"<td style='overflow-wrap:break-word'>{cut(safe_repr(v))}</td></tr>"
        for k, v in data.items()
    )
    return (
        f"<b>{html.escape(type(output).__name__)}</b><table class='germinate-output'><tbody>"
        f"{rows}</tbody></table>"
    )


def _attempts_table(run: TaskRun, cut: _Cutter) -> str:
    """Each attempt of a retried task: number, status, time, error."""
    esc = html.escape
    rows = []
    for a in run.attempts:
        took = f"{a.duration:.3f} s" if a.duration is not None else ""
        error = cut(str(a.error)) if a.error is not None else ""
        rows.append(
            f"<tr><td>{a.number}/{run.max_attempts}</td><td>{esc(a.status)}</td>"
            f"<td>{took}</td><td style='color:{ERROR}'>{error}</td></tr>"
        )
    return (
        f"<div class='germinate-task-attempts'><u>attempts</u><table>{''.join(rows)}</table></div>"
    )


def _render(view: TaskView, cut: _Cutter, *, engine_frames: bool) -> str:
    esc = html.escape
    spec, run = view.spec, view.run
    ex = spec.executor
    took = f", {run.duration * 1000:.1f} ms" if run is not None and run.duration else ""
    notes = []
    if view.viewing:
        notes.append(f"viewing {esc(view.viewing)}")
    if view.changed:
        notes.append("code changed since its last run")
    if run is not None and run.background:
        notes.append("a thread of it went on running in the background (cancelled or timed out)")
    if run is not None and run.note:
        notes.append(run.note)  # "attempt 2/4", "waiting (llm 4/4)"
    note = (
        f"<div style='color:{MUTED};font-style:italic'>{esc(' · '.join(notes))}</div>"
        if notes
        else ""
    )
    phase = f"phase {view.phase + 1}" if view.phase is not None else "(in a cycle)"
    parts = [
        f"<h4 style='margin:0;overflow-wrap:anywhere'>{esc(spec.name)}</h4>{note}<table>"
        f"<tr><td>state</td><td>{esc(view.state)}</td></tr>"
        f"<tr><td>phase</td><td>{phase}</td></tr>"
        f"<tr><td>namespace</td><td>{esc(ex.namespace if ex else '')}</td></tr>"
        f"<tr><td>executor</td><td><code>{esc(spec.registered_name or '')}</code></td></tr>"
        f"<tr><td>parents</td><td>{esc(', '.join(spec.parents) or '-')}</td></tr>"
        f"<tr><td>children</td><td>{esc(', '.join(spec.children) or '-')}</td></tr>"
        f"<tr><td>last status</td><td class='germinate-status-{esc(view.status)}'>"
        f"{esc(view.status)}{took}</td></tr></table>"
    ]
    # what the run did first (a failure, the values it saw and made), then the definition
    if run is not None and run.error is not None:
        tb = run.error.full_traceback if engine_frames else run.error.traceback
        parts.append(
            f"<div class='germinate-task-error' style='color:{ERROR}'><b>"
            f"{esc(run.error.type)}</b>: {cut(run.error.message)}"
            f"<pre style='white-space:pre-wrap;font-size:11px;overflow-wrap:break-word'>"
            f"{cut(tb or '')}</pre></div>"
        )
    if run is not None and len(run.attempts) > 1:
        parts.append(_attempts_table(run, cut))
    if run is not None and run.skipped_because:
        parts.append(f"<div>skipped because '{esc(run.skipped_because)}' failed</div>")
    if run is not None and run.input is not None:
        parts.append(
            "<div class='germinate-task-input'><u>input value</u> "
            f"{_output_table(run.input, cut)}</div>"
        )
    if run is not None and run.output is not None and run.status.is_ok:
        parts.append(
            "<div class='germinate-task-output'><u>output value</u> "
            f"{_output_table(run.output, cut)}</div>"
        )
    log = run.live_log if run is not None else ""
    if log:
        parts.append(
            "<div class='germinate-task-log'><u>log</u>"
            "<pre style='white-space:pre-wrap;font-size:11px;overflow-wrap:break-word;"
            f"max-height:300px;overflow:auto'>{cut(log)}</pre></div>"
        )
    if ex is not None:
        parts.append(f"<div><u>input</u> {_fields_table(ex.input_schema)}</div>")
        parts.append(f"<div><u>output</u> {_fields_table(ex.output_schema)}</div>")
        source = ex.source
        parts.append(
            f"<details><summary>source</summary><pre style='white-space:pre-wrap'>"
            f"{cut(source)}</pre></details>"
        )
    return "".join(parts)
