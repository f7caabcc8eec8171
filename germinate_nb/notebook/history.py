"""The explorer's run history: view an earlier run, compare a task's outputs in two runs."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from germinate_nb.execution.result import RunResult
from germinate_nb.execution.store_rows import RunRow
from germinate_nb.notebook.details import safe_repr

__all__ = ["HistoryView", "compare_outputs", "row_label", "run_label"]

LATEST = "latest"
MISSING = object()


INPUT_CHARS = 40
"""A run's input is shown in its label up to this many characters."""


def _short(text: str, limit: int = INPUT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_input_text(result: RunResult) -> str:
    """The run's input as short JSON (what its first root task received), or ``""``."""
    for name, parents in result.parents.items():
        run = result.task_runs.get(name)
        if not parents and run is not None and run.input is not None:
            try:
                return _short(run.input.model_dump_json())
            except Exception:  # an input that is not JSON: the label goes without it
                return ""
    return ""


def run_label(result: RunResult) -> str:
    """``12:03:04 · failed · 1.20 s · 7 succeeded, 1 failed · {"text": "a b"}``."""
    started = result.started_at.strftime("%H:%M:%S") if result.started_at is not None else "?"
    took = f"{result.duration:.2f} s" if result.duration is not None else "running"
    counts = ", ".join(f"{n} {s}" for s, n in sorted(result.counts().items()))
    given = run_input_text(result)
    return f"{started} · {result.status} · {took} · {counts}" + (f" · {given}" if given else "")


def row_label(row: RunRow) -> str:
    """A stored run: ``Nov 27 12:03:04 · failed · 1.20 s · 7 succeeded, 1 failed · stored``."""
    started = (
        time.strftime("%b %d %H:%M:%S", time.localtime(row.started))
        if row.started is not None
        else "?"
    )
    took = (
        f"{row.ended - row.started:.2f} s"
        if row.started is not None and row.ended is not None
        else "never ended"
    )
    counts = ", ".join(f"{n} {s}" for s, n in sorted(row.counts.items()))
    given = f" · {_short(row.input_json)}" if row.input_json else ""
    return f"{started} · {row.status} · {took} · {counts}{given} · stored"


def compare_outputs(task: str, first: RunResult, second: RunResult) -> str:
    """An HTML table of a task's output fields in two runs, differing rows marked."""
    a, b = first.task_runs.get(task), second.task_runs.get(task)
    dump_a = _dump(a.output if a is not None else None)
    dump_b = _dump(b.output if b is not None else None)
    if dump_a is None and dump_b is None:
        return f"<i>task '{html.escape(task)}' has no output in either run.</i>"
    keys = list(dict.fromkeys([*(dump_a or {}), *(dump_b or {})]))
    rows = []
    differ = 0
    for key in keys:
        va = (dump_a or {}).get(key, MISSING)
        vb = (dump_b or {}).get(key, MISSING)
        same = _same(va, vb)
        differ += not same
        style = "" if same else " style='background:var(--jp-warn-color3, #fff8c5)'"
        rows.append(
            f"<tr{style}><td><code>{html.escape(str(key))}</code></td>"
            f"<td>{_shown(va)}</td><td>{_shown(vb)}</td><td>{'' if same else 'changed'}</td></tr>"
        )
    head = (
        f"<b>{html.escape(task)}</b>: {differ} of {len(keys)} field{'s' if len(keys) != 1 else ''}"
        " differ"
    )
    return (
        f"<div class='germinate-compare'>{head}<table><thead><tr><th>field</th>"
        f"<th>{html.escape(run_label(first))}</th><th>{html.escape(run_label(second))}</th>"
        f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _dump(output: Any) -> dict[str, Any] | None:
    if output is None:
        return None
    try:
        dump: dict[str, Any] = output.model_dump()
    except Exception:
        return {"(output)": output}
    return dump


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b


def _shown(value: Any, limit: int = 300) -> str:
    if value is MISSING:
        return "<i>(none)</i>"
    text = safe_repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"<code style='overflow-wrap:anywhere'>{html.escape(text)}</code>"


class HistoryView(widgets.VBox):
    """The last runs of the state on display; choosing one shows it in the explorer.

    ``on_view(result_or_None)`` is called with the chosen run (None: the latest, live). Runs
    of earlier kernels come from the run store: listed by their row, loaded with
    ``load(run_id)`` when first chosen.
    """

    def __init__(
        self,
        on_view: Callable[[RunResult | None], Any],
        load: Callable[[str], RunResult | None] | None = None,
    ) -> None:
        self.run_picker = widgets.Dropdown(
            options=[("latest run", LATEST)], description="View", layout={"width": "100%"}
        )
        self.compare_picker = widgets.Dropdown(
            options=[("(none)", "")],
            description="Compare with",
            layout={"width": "100%"},
            style={"description_width": "initial"},
        )
        self.comparison = widgets.HTML("<i>Select a task, then pick a run to compare with.</i>")
        super().__init__([self.run_picker, self.compare_picker, self.comparison])
        self.add_class("germinate-history")
        self._on_view = on_view
        self._runs: dict[str, RunResult] = {}
        self._stored: dict[str, RunRow] = {}  # runs of earlier kernels, by id
        self._loaded: dict[str, RunResult] = {}  # those of them loaded so far
        self._load = load
        self.task = ""
        self.run_picker.observe(self._on_run_picker_change, names="value")
        self.compare_picker.observe(self._on_compare_change, names="value")

    def refresh(self, runs: Sequence[RunResult], stored: Sequence[RunRow] = ()) -> None:
        """Offer these runs (oldest first), newest at the top, then the stored ones.

        ``stored`` are rows of the run store (newest first); those this kernel also has in
        ``runs`` are listed once.
        """
        self._runs = {r.run_id: r for r in runs}
        self._stored = {row.run_id: row for row in stored if row.run_id not in self._runs}
        self._loaded = {k: v for k, v in self._loaded.items() if k in self._stored}
        newest_first = [(run_label(r), r.run_id) for r in reversed(runs)]
        newest_first += [(row_label(row), run_id) for run_id, row in self._stored.items()]
        known = {run_id for _, run_id in newest_first}
        options = [("latest run", LATEST), *newest_first]
        if list(self.run_picker.options) != options:
            keep = self.run_picker.value if self.run_picker.value in known else LATEST
            self.run_picker.options = options
            self.run_picker.value = keep
        compare = [("(none)", ""), *newest_first]
        if list(self.compare_picker.options) != compare:
            keep = self.compare_picker.value if self.compare_picker.value in known else ""
            self.compare_picker.options = compare
            self.compare_picker.value = keep
        self._update_comparison()

    def _get(self, run_id: str) -> RunResult | None:
        """A run by id: this kernel's, or a stored one (loaded once, when first asked for)."""
        found = self._runs.get(run_id) or self._loaded.get(run_id)
        if found is not None or run_id not in self._stored or self._load is None:
            return found
        loaded = self._load(run_id)
        if loaded is not None:
            self._loaded[run_id] = loaded
        return loaded

    @property
    def viewing(self) -> RunResult | None:
        """The earlier run on display, or None for the latest."""
        return self._get(self.run_picker.value)

    def view(self, run_id: str) -> None:
        """Show the run with this id (``"latest"`` for the latest)."""
        self.run_picker.value = run_id

    def compare_with(self, run_id: str) -> None:
        """Compare the selected task's output in the run on display and this run."""
        self.compare_picker.value = run_id

    def select_task(self, name: str) -> None:
        """The task whose outputs are compared."""
        self.task = name
        self._update_comparison()

    def _on_run_picker_change(self, change: dict[str, Any]) -> None:
        self._on_view(self.viewing)
        self._update_comparison()

    def _on_compare_change(self, change: dict[str, Any]) -> None:
        self._update_comparison()

    def _update_comparison(self) -> None:
        other = self._get(self.compare_picker.value)
        if other is None or not self.task:
            self.comparison.value = "<i>Select a task, then pick a run to compare with.</i>"
            return
        base = self.viewing or self._latest()
        if base is None:
            self.comparison.value = "<i>No run to compare.</i>"
            return
        self.comparison.value = compare_outputs(self.task, base, other)

    def _latest(self) -> RunResult | None:
        if not self._runs:
            return None
        return list(self._runs.values())[-1]
