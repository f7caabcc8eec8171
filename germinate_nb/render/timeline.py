"""The timeline of a run: a Gantt chart, one lane per thread or loop, the critical path outlined."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from germinate_nb.execution.result import RunResult, TaskRun
from germinate_nb.render.mpl import _label, inked, literal_text, themed_svg
from germinate_nb.render.text import MUTED, STATUS_COLORS

__all__ = ["critical_path", "draw_timeline", "timeline_rows", "timeline_svg"]

CRITICAL_COLOR = "#0969da"
LABELLED_BARS = 60
"""Above this many bars, task names are left out (the tooltip-less picture would be a smear)."""
ROWS_PER_LANE = 12
"""Rows one lane (the event loop) may take for overlapping task runs."""
LANE_CHARS = 40
"""Longer lane names (a thread's name) are cut in the picture."""
VECTOR_BARS = 500
"""Above this many bars, the bars of an SVG timeline are one embedded image (text stays text)."""


def timeline_rows(result: RunResult) -> list[tuple[str, TaskRun]]:
    """(lane, task run) for every task run that started, ordered by start time.

    A lane is a thread (one task at a time) or the event loop, whose concurrent tasks are
    packed into as many rows as overlap at once (``event loop (2)``...), at most
    ``ROWS_PER_LANE``: beyond, a bar shares the row that frees up first. A task run without a
    finite start and duration did not start (or its times are unknown): it has no bar.
    """
    runs = sorted(
        (
            run
            for run in result.task_runs.values()
            if run.start_time is not None
            and run.duration is not None
            and math.isfinite(run.start_time)
            and math.isfinite(run.duration)
        ),
        key=lambda r: (r.start_time or 0.0, r.name),
    )
    ends: dict[str, list[float]] = {}  # lane -> end time of each of its rows
    rows = []
    for run in runs:
        lane = run.lane or "(unknown)"
        start = run.start_time or 0.0
        slots = ends.setdefault(lane, [])
        row = next((i for i, end in enumerate(slots) if end <= start), len(slots))
        if row == len(slots):
            if len(slots) < ROWS_PER_LANE:
                slots.append(0.0)
            else:
                row = min(range(len(slots)), key=slots.__getitem__)
        slots[row] = max(slots[row], start + max(run.duration or 0.0, 0.0))
        rows.append((lane if row == 0 else f"{lane} ({row + 1})", run))
    return rows


def critical_path(result: RunResult) -> list[str]:
    """The chain of tasks that decided when the run ended, first to last.

    From the task that ended last, go back each time to the parent that ended last: that
    parent is what the task waited for.

    Examples
    --------
    >>> from germinate_nb.execution.result import RunResult, TaskRun, TaskStatus
    >>> runs = {n: TaskRun(n, TaskStatus.SUCCEEDED, start_time=s, duration=d)
    ...         for n, s, d in [("a", 0, 1), ("b", 0, 3), ("c", 3, 1)]}
    >>> critical_path(RunResult("s", runs, parents={"a": (), "b": (), "c": ("a", "b")}))
    ['b', 'c']
    """
    ends = {
        name: run.start_time + run.duration
        for name, run in result.task_runs.items()
        if run.start_time is not None and run.duration is not None
    }
    if not ends:
        return []
    parents: Mapping[str, Sequence[str]] = result.parents
    name: str | None = max(ends, key=lambda n: (ends[n], n))
    path = []
    while name is not None:
        path.append(name)
        timed = [p for p in parents.get(name, ()) if p in ends]
        name = max(timed, key=lambda n: (ends[n], n)) if timed else None
    return path[::-1]


def draw_timeline(result: RunResult, *, width: float = 10.0) -> Figure:
    """Draw a run as a Gantt chart.

    One lane per thread (``germinate-worker-N``, the calling thread for inline runs) or event
    loop, bars from each task's start to its end coloured by status, the critical path outlined
    in blue; seconds from the run's first start on the x axis.
    """
    rows = timeline_rows(result)
    lanes = sorted(dict.fromkeys(lane for lane, _ in rows), key=_lane_order)
    height = min(12.0, max(2.2, 0.45 * len(lanes) + 1.4))
    with literal_text():
        fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        _draw(ax, result, rows, lanes)
    return fig


def timeline_svg(result: RunResult, *, width: float = 6.5) -> str:
    """The timeline as inline SVG in the notebook theme's colours (the explorer's Timeline).

    Text and axes follow the theme's font colour and there is no background, so it reads on
    light and dark themes alike. ``width`` (inches) fits the explorer's column beside the
    details; the picture shrinks to a narrower container.
    """
    with inked():
        fig = draw_timeline(result, width=width)
    return themed_svg(fig)


def _lane_label(lane: str) -> str:
    """A lane as drawn: literal, cut in its middle to ``LANE_CHARS``, its row number kept.

    Thread names tell apart by their ends (``...-worker-11``, ``...-worker-12``), so a long
    one keeps its last third:

    >>> _lane_label("run-of-a-state-with-a-long-name-worker-12 (2)")
    'run-of-a-state-with-a-long…ame-worker-12 (2)'
    """
    tail = (LANE_CHARS - 1) // 3
    head, sep, row = lane.rpartition(" (")
    if sep and row.endswith(")") and row[:-1].isdigit():
        return f"{_label(head, LANE_CHARS, tail=tail)} ({row}"
    return _label(lane, LANE_CHARS, tail=tail)


def _lane_order(lane: str) -> tuple[str, int]:
    """Lanes sorted by name, numbered rows (``worker-10``, ``loop (2)``) in number order."""
    head = lane.rstrip("0123456789) ")
    tail = lane[len(head) :].strip(" ()")
    return (head, int(tail) if tail.isdigit() else 0)


def _draw(ax: Any, result: RunResult, rows: list[tuple[str, TaskRun]], lanes: list[str]) -> None:
    title = _label(f"timeline of {result.state} ({result.status})", 120)
    ax.set_title(title, fontsize=10, loc="left", parse_math=False)
    if not rows:
        ax.text(0.5, 0.5, "no task ran", ha="center", va="center", parse_math=False)
        ax.set_axis_off()
        return
    t0 = min(run.start_time or 0.0 for _, run in rows)
    lane_of = {lane: i for i, lane in enumerate(lanes)}
    critical = set(critical_path(result))
    boxes, colors, outline, widths = [], [], [], []
    for lane, run in rows:
        y = lane_of[lane]
        x0 = (run.start_time or t0) - t0
        x1 = x0 + max(run.duration or 0.0, 0.0)
        boxes.append([(x0, y - 0.35), (x1, y - 0.35), (x1, y + 0.35), (x0, y + 0.35)])
        colors.append(STATUS_COLORS.get(run.status.value, STATUS_COLORS["pending"]))
        on_path = run.name in critical
        outline.append(CRITICAL_COLOR if on_path else MUTED)
        widths.append(2.0 if on_path else 0.4)
    ax.add_collection(
        PolyCollection(
            boxes,
            facecolors=colors,
            edgecolors=outline,
            linewidths=widths,
            gid="bars",
            rasterized=len(boxes) > VECTOR_BARS,
        )
    )
    if len(rows) <= LABELLED_BARS:
        for (lane, run), box in zip(rows, boxes, strict=True):
            (x0, _), (x1, _) = box[0], box[1]
            ax.text(
                (x0 + x1) / 2,
                lane_of[lane],
                _label(run.name, 24),
                ha="center",
                va="center",
                fontsize=7,
                clip_on=True,
                parse_math=False,
            )
    end = max(b[1][0] for b in boxes)
    ax.set_xlim(0, end * 1.02 or 1.0)
    ax.set_ylim(len(lanes) - 0.5, -0.5)
    ax.set_yticks(range(len(lanes)), labels=[_lane_label(lane) for lane in lanes], fontsize=8)
    ax.set_xlabel("seconds since the first task started", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    present = sorted({run.status.value for _, run in rows}, key=list(STATUS_COLORS).index)
    handles = [Patch(facecolor=STATUS_COLORS[s], edgecolor=MUTED, label=s) for s in present]
    handles.append(Patch(facecolor="none", edgecolor=CRITICAL_COLOR, lw=2, label="critical path"))
    ax.figure.legend(
        handles=handles, loc="outside lower right", fontsize=7, ncols=len(handles), frameon=False
    )
