"""The DAG as a matplotlib Figure (the only module that imports matplotlib).

Every text this module draws is shown literally: no mathtext (``$x$``), no TeX, whatever the
user's rcParams say, and characters that cannot be drawn (controls, lone surrogates) are shown
as escapes.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
import textwrap
import threading
import unicodedata
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from germinate_nb.core.state import State
from germinate_nb.core.validate import Problem
from germinate_nb.render.layout import Layout, focus_tasks, phase_layout
from germinate_nb.render.text import MUTED, PROBLEM_COLOR, STATUS_COLORS

if TYPE_CHECKING:
    from germinate_nb.core.workflow import Workflow

__all__ = [
    "INK",
    "MAX_LABELS",
    "THEME_INK",
    "THEME_MUTED",
    "draw_state",
    "draw_workflow",
    "figure_png",
    "figure_svg",
    "inked",
    "locked_rc",
    "themed_svg",
]

MAX_LABELS = 150
"""Above this many tasks, names give way to an overview (select a task to focus on it)."""

EDGE_COLOR = "#8c959f"
LABEL_CHARS = 60
"""Longer task, state and condition names are cut (with an ellipsis) in pictures."""

_LITERAL: dict[str, Any] = {"parse_math": False, "usetex": False}
"""Keyword arguments of every text artist: the text is drawn as written."""

_RC: dict[Any, Any] = {"text.usetex": False, "text.parse_math": False}

_RC_LOCK = threading.RLock()
"""Held by every ``rc_context`` of this module, for the whole drawing or saving inside it.

matplotlib's rcParams are one dict for the process, and an ``rc_context`` restores all of it
when it exits: a drawing ending in another thread (the explorer draws a run's timeline in the
run's thread) would undo this thread's settings mid-drawing, and text meant for the theme's
colour came out in matplotlib's default black."""


@contextlib.contextmanager
def locked_rc(settings: dict[Any, Any]) -> Iterator[None]:
    """``matplotlib.rc_context(settings)`` holding :data:`_RC_LOCK` (every drawing's settings)."""
    with _RC_LOCK, matplotlib.rc_context(settings):
        yield


@contextlib.contextmanager
def literal_text() -> Iterator[None]:
    """Our figures are drawn as written, whatever the user's rcParams (usetex, mathtext) say.

    A name in a script the font lacks is drawn as boxes, which the user cannot fix from here,
    so matplotlib's warnings about it are ignored. The filters are (re)installed, not scoped:
    ``filterwarnings`` replaces its own earlier entry, while a ``catch_warnings()`` block per
    drawing would restore stale filters when the explorer draws from several threads.
    """
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
    warnings.filterwarnings("ignore", message=r"Matplotlib currently does not support")
    with locked_rc(_RC):
        yield


def _literal(text: str) -> str:
    r"""The text with characters no font can draw (and XML cannot hold) shown as escapes.

    >>> _literal("a\x1b[31mb\tc\nd")
    'a\\x1b[31mb\\tc\nd'
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\n" or ch.isprintable() or unicodedata.category(ch) in ("Cf", "Zs"):
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)


def _label(text: str, limit: int = LABEL_CHARS, *, tail: int = 0) -> str:
    r"""``text`` as drawn: literal, at most two lines and ``limit`` characters.

    A longer text is cut at its end ("…"), or in its middle when it keeps its last ``tail``
    characters (names that differ at their end stay apart).

    >>> _label("a" * 100, 10), _label("one\ntwo\nthree"), _label("worker-" * 3 + "12", 12, tail=3)
    ('aaaaaaaaa…', 'one\ntwo …', 'worker-w…-12')
    """
    text = _literal(text)
    lines = text.splitlines()
    if len(lines) > 2:
        text = "\n".join(lines[:2]) + " …"
    if len(text) > limit:
        text = text[: limit - 1 - tail] + "…" + (text[-tail:] if tail else "")
    return text


@literal_text()
def draw_state(
    state: State,
    *,
    statuses: Mapping[str, str] | None = None,
    problems: Iterable[Problem] = (),
    selected: str | None = None,
    focus: str | None = None,
    hops: int | None = None,
    title: str | None = None,
) -> Figure:
    """Draw a state's DAG: layered by phase, nodes coloured by status, problem edges in red.

    Parameters
    ----------
    state
        The state to draw.
    statuses
        Task name to status value (``"succeeded"``...); missing tasks are ``pending``.
    problems
        Validation problems: their edges are red, their tasks outlined red, messages below.
    selected
        A task to outline.
    focus, hops
        Draw only ``focus`` with its ancestors and descendants (or what lies within ``hops``).
    title
        Figure title (default: the state's name and size).
    """
    statuses = statuses or {}
    problems = list(problems)
    names = focus_tasks(state, focus, hops) if focus is not None and focus in state else None
    layout = phase_layout(state, names)
    pos = layout.positions
    n = len(pos)
    labels = n <= MAX_LABELS
    width = min(18.0, max(4.0, 1.7 * layout.width + 1.0))
    height = min(14.0, max(2.6, (0.42 if labels else 0.12) * layout.height + 1.6))
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    bottom = (0.45 + (0.12 * min(len(problems), 4) if problems else 0.0)) / height
    ax = fig.add_axes((0.01, bottom, 0.98, 1.0 - bottom - 0.3 / height))
    ax.set_axis_off()
    bad_edges = {edge for p in problems for edge in p.edges}
    bad_tasks = {t for p in problems for t in p.tasks}
    _draw_edges(ax, state, pos, bad_edges, labels)
    if n:
        order = list(pos)
        xs = [pos[k][0] for k in order]
        ys = [pos[k][1] for k in order]
        colors = [
            STATUS_COLORS.get(statuses.get(k, "pending"), STATUS_COLORS["pending"]) for k in order
        ]
        edges = [PROBLEM_COLOR if k in bad_tasks else MUTED for k in order]
        widths = [2.5 if k in bad_tasks or k == selected else 0.8 for k in order]
        size = 260 if labels else max(12.0, 260.0 * (MAX_LABELS / n) ** 0.5)
        ax.scatter(
            xs, ys, s=size, c=colors, edgecolors=edges, linewidths=widths, zorder=3, gid="tasks"
        )
        if selected in pos:
            sx, sy = pos[selected]
            ax.scatter(
                [sx],
                [sy],
                s=size * 2.2,
                facecolors="none",
                edgecolors="#0969da",
                linewidths=2.0,
                zorder=4,
                gid="selected",
            )
        if labels:
            for k in order:
                x, y = pos[k]
                ax.text(
                    x,
                    y - 0.22,
                    _label(k),
                    ha="center",
                    va="top",
                    fontsize=8,
                    zorder=5,
                    clip_on=False,
                    **_LITERAL,
                )
    _phase_labels(ax, layout)
    ax.set_xlim(-0.6, max(layout.width - 0.4, 0.6))
    half = max(layout.height / 2, 1.0)
    ax.set_ylim(-half - 0.3, half + 0.2)
    if title is None:
        title = f"{state.name}: {len(state)} tasks, {layout.width} phases"
        if names is not None:
            title += f" (focus: {focus}, {n} shown)"
        elif not labels:
            title += " (overview: select a task to focus)"
        if layout.cyclic:
            title += " (has a cycle)"
    ax.set_title(_label(title, 160), fontsize=10, loc="left", **_LITERAL)
    present = sorted({statuses.get(k, "pending") for k in pos}, key=list(STATUS_COLORS).index)
    handles = [Patch(facecolor=STATUS_COLORS[s], edgecolor=MUTED, label=s) for s in present]
    if bad_edges:
        handles.append(Patch(facecolor="white", edgecolor=PROBLEM_COLOR, label="problem"))
    if handles:
        legend = fig.legend(
            handles=handles, loc="lower left", ncols=len(handles), fontsize=8, frameon=False
        )
        for text in legend.get_texts():
            text.set_usetex(False)
            text.set_parse_math(False)
    if problems:
        shown = [_literal(textwrap.shorten(p.message, 160)) for p in problems[:3]]
        if len(problems) > 3:
            shown.append(f"... and {len(problems) - 3} more problems")
        fig.text(
            0.01,
            0.32 / height,
            "\n".join(shown),
            color=PROBLEM_COLOR,
            fontsize=7,
            va="bottom",
            gid="problems",
            **_LITERAL,
        )
    return fig


def _draw_edges(
    ax: Any,
    state: State,
    pos: Mapping[str, tuple[float, float]],
    bad: set[tuple[str, str]],
    labels: bool,
) -> None:
    r = 0.09 if labels else 0.04
    segments, colors, heads, head_colors = [], [], [], []
    parents = state.snapshot().parents
    for name in pos:
        x2, y2 = pos[name]
        for parent in parents[name]:
            if parent not in pos:
                continue
            x1, y1 = pos[parent]
            dx, dy = x2 - x1, y2 - y1
            length = (dx * dx + dy * dy) ** 0.5 or 1.0
            ux, uy = dx / length, dy / length
            start = (x1 + ux * r, y1 + uy * r)
            end = (x2 - ux * r, y2 - uy * r)
            color = PROBLEM_COLOR if (parent, name) in bad else EDGE_COLOR
            segments.append((start, end))
            colors.append(color)
            h, w = (0.07, 0.035) if labels else (0.035, 0.018)
            bx, by = end[0] - ux * h, end[1] - uy * h
            heads.append([end, (bx - uy * w, by + ux * w), (bx + uy * w, by - ux * w)])
            head_colors.append(color)
    if segments:
        widths = [2.0 if c == PROBLEM_COLOR else 0.8 for c in colors]
        ax.add_collection(
            LineCollection(segments, colors=colors, linewidths=widths, zorder=1, gid="edges")
        )
        ax.add_collection(
            PolyCollection(
                heads, facecolors=head_colors, edgecolors="none", zorder=2, gid="arrowheads"
            )
        )


def _phase_labels(ax: Any, layout: Layout) -> None:
    step = max(1, -(-layout.width // 16))
    top = max(layout.height / 2, 1.0)
    for x in range(0, layout.width, step):
        ax.text(
            x,
            top + 0.05,
            f"phase {x + 1}",
            ha="center",
            va="bottom",
            fontsize=8,
            color=MUTED,
            **_LITERAL,
        )


@literal_text()
def draw_workflow(workflow: Workflow, *, current: str | None = None) -> Figure:
    """Draw a workflow's state machine: states as boxes, transitions labelled by condition."""
    states = workflow.states
    fig = Figure(figsize=(min(16.0, 2.6 * max(len(states), 1) + 1), 2.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    pos = {s.name: (float(i), 0.0) for i, s in enumerate(states)}
    for name, (x, y) in pos.items():
        face = "#ddf4ff" if name == current else "#f6f8fa"
        edge = (
            "#0969da" if workflow.initial_state and name == workflow.initial_state.name else MUTED
        )
        ax.text(
            x,
            y,
            _label(name),
            ha="center",
            va="center",
            fontsize=10,
            zorder=3,
            color="#1f2328",  # dark on the light box, on a light or dark page alike
            bbox={"boxstyle": "round,pad=0.5", "facecolor": face, "edgecolor": edge},
            **_LITERAL,
        )
    for i, t in enumerate(workflow.transitions):
        if t.source.name not in pos or t.target.name not in pos:
            continue
        (x1, _), (x2, _) = pos[t.source.name], pos[t.target.name]
        bend = 0.35 if x2 > x1 else -0.35
        if x1 == x2:
            bend = 0.6
        ax.annotate(
            "",
            xy=(x2, 0.12 if bend > 0 else -0.12),
            xytext=(x1, 0.12 if bend > 0 else -0.12),
            arrowprops={
                "arrowstyle": "->",
                "connectionstyle": f"arc3,rad={-bend}",
                "color": MUTED,
            },
        )
        ax.text(
            (x1 + x2) / 2,
            0.45 * (1 if bend > 0 else -1) + 0.05 * (i % 2),
            _label(t.condition.name),
            ha="center",
            fontsize=8,
            color=MUTED,
            **_LITERAL,
        )
    ax.set_xlim(-0.8, max(len(states) - 0.2, 0.8))
    ax.set_ylim(-1.0, 1.0)
    ax.set_title(
        _label(f"workflow {workflow.name} v{workflow.version}", 120),
        fontsize=10,
        loc="left",
        **_LITERAL,
    )
    return fig


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure."""
    buf = io.BytesIO()
    with literal_text():
        fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure_svg(fig: Figure) -> str:
    """SVG text of a figure, without dates or random ids (stable across runs)."""
    buf = io.StringIO()
    with (
        literal_text(),
        locked_rc({"svg.hashsalt": "germinate_nb", "svg.fonttype": "none"}),
    ):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


INK = "#010203"
"""The colour a figure meant for :func:`themed_svg` draws its text and axes in (see :func:`inked`);
it becomes the notebook theme's font colour."""

THEME_INK = "var(--jp-ui-font-color1, #1f2328)"
"""What :data:`INK` becomes: JupyterLab's font colour, or a dark grey outside JupyterLab."""

THEME_MUTED = f"var(--jp-ui-font-color2, {MUTED})"
"""What :data:`~germinate_nb.render.text.MUTED` becomes: JupyterLab's secondary font colour."""

_IDS = itertools.count(1)
_ID_REF = re.compile(r'(\bid="|url\(#|href="#)')
_TAG = re.compile(r"<[^>]*>")  # matplotlib's SVG escapes < and > in text: a tag is all markup


@contextlib.contextmanager
def inked() -> Iterator[None]:
    """Draw text, axes, ticks and legends in :data:`INK`, on no background, while inside."""
    with locked_rc(
        {
            "text.color": INK,
            "axes.labelcolor": INK,
            "axes.titlecolor": INK,
            "axes.edgecolor": INK,
            "xtick.color": INK,
            "ytick.color": INK,
            "legend.labelcolor": INK,
            "axes.facecolor": "none",
            "figure.facecolor": "none",
            "savefig.facecolor": "none",
        }
    ):
        yield


def themed_svg(fig: Figure) -> str:
    """Inline-HTML SVG of a figure drawn :func:`inked`, in the notebook theme's colours.

    :data:`INK` becomes :data:`THEME_INK` and the muted grey :data:`THEME_MUTED`, so the
    picture reads on light and dark themes alike; the XML prolog is dropped and every element
    id gets a prefix of its own, so two pictures on one page never share a clip path. The SVG
    keeps its size, shrunk to its container's width when wider. Text is escaped by
    matplotlib's SVG writer.
    """
    svg = figure_svg(fig)
    svg = svg[svg.index("<svg") :]
    prefix = f"germinate{next(_IDS)}-"

    def retag(tag: re.Match[str]) -> str:  # markup only: text between tags is the user's
        markup = _ID_REF.sub(lambda m: m.group(1) + prefix, tag.group(0))
        return markup.replace(INK, THEME_INK).replace(MUTED, THEME_MUTED)

    svg = _TAG.sub(retag, svg)
    return svg.replace("<svg ", '<svg style="max-width: 100%; height: auto" ', 1)
