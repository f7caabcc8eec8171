"""The explorer's run history: view an earlier run, compare a task's outputs in two runs."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from germinate_nb.execution.result import RunResult
from germinate_nb.notebook.details import safe_repr

__all__ = ["HistoryView", "compare_outputs", "run_label"]

LATEST = "latest"
MISSING = object()


def run_label(result: RunResult) -> str:
    """``12:03:04 · failed · 1.20 s · 7 succeeded, 1 failed``."""
    started = result.started_at.strftime("%H:%M:%S") if result.started_at is not None else "?"
    took = f"{result.duration:.2f} s" if result.duration is not None else "running"
    counts = ", ".join(f"{n} {s}" for s, n in sorted(result.counts().items()))
    return f"{started} · {result.status} · {took} · {counts}"


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

    ``on_view(result_or_None)`` is called with the chosen run (None: the latest, live).
    """

    def __init__(self, on_view: Callable[[RunResult | None], Any]) -> None:
        self.run_picker = widgets.Dropdown(
            options=[("latest run", LATEST)], description="View", layout={"width": "100%"}
        )
        self.compare_picker = widgets.Dropdown(
            options=[("(none)", "")], description="Compare with", layout={"width": "100%"}
        )
        self.comparison = widgets.HTML("<i>Select a task, then pick a run to compare with.</i>")
        super().__init__([self.run_picker, self.compare_picker, self.comparison])
        self.add_class("germinate-history")
        self._on_view = on_view
        self._runs: dict[str, RunResult] = {}
        self.task = ""
        self.run_picker.observe(self._on_run_picker_change, names="value")
        self.compare_picker.observe(self._on_compare_change, names="value")

    def refresh(self, runs: Sequence[RunResult]) -> None:
        """Offer these runs (oldest first), newest at the top."""
        self._runs = {r.run_id: r for r in runs}
        newest_first = list(reversed(runs))
        options = [("latest run", LATEST)] + [(run_label(r), r.run_id) for r in newest_first]
        if list(self.run_picker.options) != options:
            keep = self.run_picker.value if self.run_picker.value in self._runs else LATEST
            self.run_picker.options = options
            self.run_picker.value = keep
        compare = [("(none)", "")] + [(run_label(r), r.run_id) for r in newest_first]
        if list(self.compare_picker.options) != compare:
            keep = self.compare_picker.value if self.compare_picker.value in self._runs else ""
            self.compare_picker.options = compare
            self.compare_picker.value = keep
        self._update_comparison()

    @property
    def viewing(self) -> RunResult | None:
        """The earlier run on display, or None for the latest."""
        return self._runs.get(self.run_picker.value)

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
        other = self._runs.get(self.compare_picker.value)
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
