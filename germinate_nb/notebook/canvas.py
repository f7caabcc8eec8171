"""DagCanvas: the explorer's interactive DAG picture (an anywidget front end, no build step).

matplotlib draws what a run does not change (edges, arrowheads, red curved back edges) as one
transparent SVG (``render/canvas.py``); the page draws the nodes, labels, selection, search and
focus highlights on a ``<canvas>`` from coordinates, and handles click, hover, zoom, pan and
double-click itself. The kernel hears back only the selected name, a ``focus`` message and the
current view (so :meth:`DagCanvas.node_xy` can say where a node is on screen). During a run the
kernel sends status patches of a few hundred bytes: no drawing in the kernel.

Why this and not ipympl or mouse events on today's PNG: measured in JupyterLab at 2,000 tasks,
click-to-details 67 ms (ipympl 137 ms, ipyevents 78 ms) with the selection drawn in 34 ms
(0.7-1.1 s for the others, which redraw a PNG per selection), and a status update costs the
kernel 0.3 ms instead of a 0.4-1.8 s matplotlib render (see the issue's closing note).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

from germinate_nb.render.canvas import Geometry, background_svg, svg_has_edges
from germinate_nb.render.text import STATUS_COLORS

__all__ = ["PALETTE", "DagCanvas"]

STATIC = Path(__file__).parent / "static"

PALETTE = {**STATUS_COLORS, "not run": "#eaeef2"}
"""Node colours by status; ``not run``: outside the run on display (a "Run selected")."""


class DagCanvas(anywidget.AnyWidget):
    """The interactive picture of a DAG.

    The element the user sees carries the CSS class ``germinate-canvas``.
    """

    _esm = STATIC / "canvas.js"
    _css = STATIC / "canvas.css"

    background = t.Bytes(b"", help="The edges as a utf-8 SVG (sent as a binary buffer).").tag(
        sync=True
    )
    svg_edges = t.Bool(True, help="Does the SVG draw the plain edges (else the page does)?").tag(
        sync=True
    )
    names = t.Unicode("", help="Task names, one per line (node i is line i).").tag(sync=True)
    conditions = t.List(t.Unicode(), help="Names of the condition tasks (drawn as diamonds).").tag(
        sync=True
    )
    xy = t.Bytes(b"", help="float32 x, y per node, in SVG user units.").tag(sync=True)
    edges = t.Bytes(b"", help="int32 parent, child node indices per edge.").tag(sync=True)
    size = t.List([1.0, 1.0], help="[width, height] of the picture in user units.").tag(sync=True)
    phase_x = t.List(t.Float(), help="x of each phase column (user units).").tag(sync=True)
    palette = t.Dict(PALETTE, help="Status to CSS colour.").tag(sync=True)
    selected = t.Unicode("", help="Name of the selected task (set by a click too).").tag(sync=True)
    search = t.Unicode("", help="The search text on display.").tag(sync=True)
    matches = t.List(t.Unicode(), help="Names matching the search (highlighted).").tag(sync=True)
    focus_names = t.List(t.Unicode(), help="Names in focus; the others are dimmed.").tag(sync=True)
    view = t.Dict({}, help="{k, tx, ty, vw, vh}: the page's view (screen = t + k * user).").tag(
        sync=True
    )
    max_height = t.Int(560, help="Height limit of the picture in CSS px.").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("germinate-graph")
        self._lock = threading.Lock()
        self._statuses: dict[str, str] = {}
        self._notes: dict[str, dict[str, str]] = {}
        self._marks: dict[str, str] = {}
        self._geo: Geometry | None = None
        self._index: dict[str, int] = {}
        self._focus_callbacks: list[Callable[[str], Any]] = []
        self.on_msg(self._on_page_msg)

    # -- the picture ---------------------------------------------------------------------------

    def set_geometry(self, geo: Geometry, conditions: Iterable[str] = ()) -> None:
        """Replace the picture (the DAG's structure changed); ``conditions`` are diamonds."""
        self._geo = geo
        self._index = geo.index
        svg = background_svg(geo)
        with self.hold_sync():
            self.size = [float(geo.width), float(geo.height)]
            self.phase_x = geo.phase_x
            self.names = "\n".join(geo.names)
            self.conditions = [n for n in conditions if n in self._index]
            self.xy = geo.xy.astype("<f4").tobytes()
            self.edges = geo.edges.astype("<i4").tobytes()
            self.svg_edges = svg_has_edges(geo)
            self.background = svg.encode()
            if self.selected and self.selected not in self._index:
                self.selected = ""
            self.focus_names = [k for k in self.focus_names if k in self._index]

    # -- statuses ------------------------------------------------------------------------------

    def set_statuses(
        self,
        changes: Mapping[str, str],
        notes: Mapping[str, Mapping[str, str]] | None = None,
        marks: Mapping[str, str] | None = None,
    ) -> None:
        """Recolour some tasks: sends only what changed (a few hundred bytes for 50 tasks).

        ``notes`` adds tooltip lines per task (``{"duration": "0.4 s", "error": "..."}``);
        ``marks`` flags tasks (``"changed"``: code changed since the last run; ``""`` clears).
        """
        with self._lock:
            changes = {k: v for k, v in changes.items() if self._statuses.get(k) != v}
            fresh = {k: dict(v) for k, v in (notes or {}).items()}
            fresh = {k: v for k, v in fresh.items() if self._notes.get(k) != v}
            marks = {k: v for k, v in (marks or {}).items() if self._marks.get(k, "") != v}
            if not changes and not fresh and not marks:
                return
            self._statuses.update(changes)
            self._notes.update(fresh)
            for k, v in marks.items():
                if v:
                    self._marks[k] = v
                else:
                    self._marks.pop(k, None)
        self.send({"type": "patch", "statuses": changes, "notes": fresh, "marks": marks})

    def reset_statuses(
        self,
        statuses: Mapping[str, str],
        notes: Mapping[str, Mapping[str, str]] | None = None,
        marks: Mapping[str, str] | None = None,
    ) -> None:
        """Replace every status at once (another run on display, another state)."""
        with self._lock:
            self._statuses = dict(statuses)
            self._notes = {k: dict(v) for k, v in (notes or {}).items()}
            self._marks = {k: v for k, v in (marks or {}).items() if v}
        self._send_snapshot()

    @property
    def statuses(self) -> dict[str, str]:
        """The statuses on display (a task without one is pending)."""
        with self._lock:
            return dict(self._statuses)

    @property
    def marks(self) -> dict[str, str]:
        """The flags on display (``{"t": "changed"}``)."""
        with self._lock:
            return dict(self._marks)

    def _send_snapshot(self) -> None:
        with self._lock:
            msg = {
                "type": "patch",
                "reset": True,
                "statuses": dict(self._statuses),
                "notes": dict(self._notes),
                "marks": dict(self._marks),
            }
        self.send(msg)

    # -- view ----------------------------------------------------------------------------------

    def fit(self) -> None:
        """Show the whole picture."""
        self.send({"type": "fit"})

    def center(self, name: str) -> None:
        """Pan so that ``name`` is in the middle."""
        self.send({"type": "center", "name": name})

    def focus_on(self, names: Iterable[str]) -> None:
        """Dim everything but ``names`` and zoom to them (empty: show everything)."""
        self.focus_names = sorted(n for n in names if n in self._index)

    def on_focus(self, callback: Callable[[str], Any]) -> None:
        """Call ``callback(name)`` when a task is double-clicked."""
        self._focus_callbacks.append(callback)

    def node_xy(self, name: str) -> tuple[float, float]:
        """The task's centre as fractions (0-1) of the picture's width and height, in view.

        From the top-left corner of the element with class ``germinate-canvas``, in the current
        view (values outside 0-1: the task is scrolled out of view).

        Raises
        ------
        KeyError
            When the task is not in the picture.
        RuntimeError
            When the picture has not been displayed yet (no view to measure).
        """
        if self._geo is None or name not in self._index:
            msg = f"task '{name}' is not in the picture."
            raise KeyError(msg)
        view = self.view
        if not view or not view.get("vw") or not view.get("vh"):
            msg = "the picture has not been displayed yet: display the explorer first."
            raise RuntimeError(msg)
        x, y = self._geo.xy[self._index[name]].tolist()
        return (
            (view["tx"] + view["k"] * x) / view["vw"],
            (view["ty"] + view["k"] * y) / view["vh"],
        )

    def label_px(self) -> float | None:
        """The labels' size on screen in the current view (None: labels hidden)."""
        view = self.view
        return view.get("label_px") if view else None

    # -- page messages -------------------------------------------------------------------------

    def _on_page_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "hello":  # a view (re)started: it needs every status
            self._send_snapshot()
        elif kind == "focus":
            name = content.get("name", "")
            if name in self._index:
                for callback in list(self._focus_callbacks):
                    callback(name)
