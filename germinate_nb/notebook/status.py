"""The explorer's status line: what the run on display is doing; a bar with a segment per status."""

from __future__ import annotations

import html
from collections.abc import Mapping

import ipywidgets as widgets

from germinate_nb.execution.result import RunResult, RunStatus, TaskStatus
from germinate_nb.render.text import STATUS_COLORS

__all__ = ["StatusLine", "describe_run"]

SEGMENTS = ("succeeded", "cached", "failed", "skipped", "cancelled", "running", "pending")
SHOWN_NAMES = 3


def _names(names: list[str], limit: int = SHOWN_NAMES) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _first_line(text: str, limit: int = 160) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe_run(result: RunResult | None, statuses: Mapping[str, str], total: int) -> str:
    """The status line's words (plain text), e.g. ``Running · 3/8 done · plan running``."""
    if result is None:
        return f"Not run yet · {total} task{'s' if total != 1 else ''}"
    counts = _counts(statuses, result)
    done = sum(n for s, n in counts.items() if s not in ("running", "pending"))
    size = len(result.task_runs)
    if not RunStatus(result.status).is_final:
        running = [n for n, s in statuses.items() if s == "running" and n in result.task_runs]
        text = f"Running · {done}/{size} done"
        if running:
            text += f" · {_names(sorted(running))} running"
        runs = result.task_runs
        retrying = [f"{n} {runs[n].note}" for n in sorted(running) if runs[n].attempt > 1]
        if retrying:  # "fetch attempt 2/4"
            text += f" · {_names(retrying)}"
        waiting = [tr for tr in runs.values() if tr.waiting_for_limit]
        if waiting:  # "3 waiting (llm 4/4)"
            text += f" · {len(waiting)} {waiting[0].note}"
        return text
    took = f" in {result.duration:.2f} s" if result.duration is not None else ""
    failed = [r for r in result.task_runs.values() if r.status is TaskStatus.FAILED]
    parts = ", ".join(
        f"{counts[s]} {s}" for s in SEGMENTS if counts.get(s) and not (failed and s == "failed")
    )
    text = f"Run {result.status}{took}" + (f" · {parts}" if parts else "")
    if failed:  # named: "1 failed: fact_check — ValueError: moon is not a planet"
        first = failed[0]
        error = _first_line(str(first.error)) if first.error is not None else ""
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        text += f" · {len(failed)} failed: {first.name} — {error}{more}"
    if result.background:
        text += f" · {result.background_note}"
    if result.targets is not None:
        text += f" · ran {_names(list(result.targets))} and upstream only"
    return text


def _counts(statuses: Mapping[str, str], result: RunResult) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in result.task_runs:
        status = statuses.get(name, "pending")
        counts[status] = counts.get(status, 0) + 1
    return counts


class StatusLine(widgets.HTML):
    """A segmented progress bar (one colour per status, counts on hover) and a line of words.

    ``done``/``total`` count the tasks of the run on display; ``counts`` maps status to tasks.
    """

    def __init__(self) -> None:
        super().__init__("")
        self.add_class("germinate-status-line")
        self.done = 0
        self.total = 0
        self.counts: dict[str, int] = {}
        self.text = ""
        self._shown = ""

    def show(
        self,
        result: RunResult | None,
        statuses: Mapping[str, str],
        total: int,
        viewing: str = "",
    ) -> None:
        """Show the run on display (None: no run yet) with these live statuses.

        ``viewing`` labels an earlier run chosen in the history (the line says so first).
        """
        self.text = describe_run(result, statuses, total)
        if viewing:
            self.text = f"Viewing an earlier run ({viewing}) · {self.text}"
        if result is None:
            self.counts, self.done, self.total = {}, 0, total
        else:
            self.counts = _counts(statuses, result)
            self.total = len(result.task_runs)
            self.done = sum(n for s, n in self.counts.items() if s not in ("running", "pending"))
        bar = "".join(
            f"<span class='germinate-segment germinate-segment-{s}' "
            f"title='{self.counts[s]} {s}' style='flex:{self.counts[s]};"
            f"background:{STATUS_COLORS[s]}'></span>"
            for s in SEGMENTS
            if self.counts.get(s)
        )
        failed = result is not None and RunStatus(result.status) is RunStatus.FAILED
        colour = "var(--jp-error-color1, #cf222e)" if failed else "var(--jp-ui-font-color1)"
        value: str = (
            "<div style='display:flex;align-items:center;gap:8px;flex-wrap:wrap'>"
            f"<span class='germinate-bar' title='{self.done}/{self.total} tasks done' "
            "style='display:inline-flex;width:220px;height:10px;border-radius:5px;"
            "overflow:hidden;background:var(--jp-layout-color3, #eaeef2)'>"
            f"{bar}</span><span class='germinate-count'>{self.done}/{self.total} tasks</span>"
            f"<span class='germinate-status-text' style='color:{colour};"
            f"overflow-wrap:anywhere'>{html.escape(self.text)}</span></div>"
        )
        if value != self._shown:
            self._shown = value
            self.value = value
