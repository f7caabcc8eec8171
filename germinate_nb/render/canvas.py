"""The interactive picture's geometry: node coordinates, edges, and matplotlib's edge SVG.

Coordinates are SVG user units (1 unit = 1 CSS px at zoom 1), origin at the top-left, y down:
the browser draws the nodes, labels and highlights at exactly these numbers, over a transparent
SVG that matplotlib draws once per DAG structure: straight edges with arrowheads, the back edges
of a cycle as red curves, problem edges in red. Each kind is one compound ``<path>``, so a big
DAG stays a handful of DOM nodes; past ``SVG_EDGE_LIMIT`` edges the page draws the edges itself
(only those in view), which keeps the page light at 50,000 tasks.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch
from matplotlib.path import Path

from germinate_nb.core.snapshot import DagSnapshot
from germinate_nb.core.validate import Problem
from germinate_nb.render.layout import Layout, snapshot_layout

__all__ = [
    "DX",
    "DY",
    "MARGIN_TOP",
    "MARGIN_X",
    "SVG_EDGE_LIMIT",
    "Geometry",
    "background_svg",
    "canvas_geometry",
    "cyclic_layout",
]

DX = 96.0
"""Units between two phases."""
DY = 28.0
"""Units between two rows of a phase."""
MARGIN_X = 48.0
MARGIN_TOP = 40.0
MARGIN_BOTTOM = 28.0
RADIUS = 7.0
BEND = 0.35  # a back edge's control point: BEND * its length + 2 rows off the straight line
EDGE_COLOR = "#8c959f"
BACK_EDGE_COLOR = "#d1242f"
PROBLEM_COLOR = "#d1242f"
SVG_EDGE_LIMIT = 12_000
"""Above this many edges the SVG carries none (the page draws the visible ones)."""


@dataclass
class Geometry:
    """Where everything goes, in SVG user units."""

    names: list[str]
    xy: np.ndarray  # (n, 2) float
    edges: np.ndarray  # (m, 2) int: parent index, child index
    back: np.ndarray  # (m,) bool: the edge closes a cycle
    problem: np.ndarray  # (m,) bool: the edge is part of a validation problem
    width: float
    height: float
    phases: int

    @property
    def index(self) -> dict[str, int]:
        """Name to node index."""
        return {k: i for i, k in enumerate(self.names)}

    @property
    def phase_x(self) -> list[float]:
        """The x of each phase column."""
        return [MARGIN_X + p * DX for p in range(self.phases)]


def canvas_geometry(snap: DagSnapshot, problems: Iterable[Problem] = ()) -> Geometry:
    """The geometry of a state's DAG: phase-layered, a cycle laid out with curved back edges.

    Phases are the state's global phases (a focus view dims the rest instead of re-laying out).
    """
    edges = [(p, n) for n, ps in snap.parents.items() for p in ps]
    bad = {e for p in problems for e in p.edges}
    if snap.has_cycle:
        positions, back, phases, rows = cyclic_layout(list(snap.names), edges)
        return _geometry(positions, edges, phases=phases, rows=rows, back_edges=back, bad=bad)
    layout: Layout = snapshot_layout(snap)
    return _geometry(layout.positions, edges, phases=layout.width, rows=layout.height, bad=bad)


def _geometry(
    positions: Mapping[str, tuple[float, float]],
    edges: Sequence[tuple[str, str]],
    *,
    phases: int,
    rows: int,
    back_edges: set[tuple[str, str]] | None = None,
    bad: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
) -> Geometry:
    names = list(positions)
    index = {k: i for i, k in enumerate(names)}
    raw = np.array([positions[k] for k in names], dtype=float).reshape(-1, 2)
    xy = np.empty_like(raw)
    xy[:, 0] = MARGIN_X + raw[:, 0] * DX
    xy[:, 1] = MARGIN_TOP + ((rows - 1) / 2 - raw[:, 1]) * DY
    kept = [(a, b) for a, b in edges if a in index and b in index]
    pairs = np.array([(index[a], index[b]) for a, b in kept], dtype=np.int32).reshape(-1, 2)
    if back_edges is not None:
        back = np.array([e in back_edges for e in kept], dtype=bool)
    else:
        back = np.zeros(len(kept), dtype=bool)
    problem = np.array([e in bad for e in kept], dtype=bool)
    width = 2 * MARGIN_X + max(phases - 1, 0) * DX
    height = MARGIN_TOP + MARGIN_BOTTOM + max(rows - 1, 0) * DY
    if back.any():  # room for the curves (a quadratic bulges half its control offset)
        d = xy[pairs[back, 1]] - xy[pairs[back, 0]]
        bulge = 0.5 * (BEND * np.hypot(d[:, 0], d[:, 1]) + 2 * DY)
        height += float(bulge.max()) + 8
    return Geometry(names, xy, pairs, back, problem, width, height, phases)


def _arrow_paths(
    start: np.ndarray, end: np.ndarray, r: float, head: float = 6.0, half: float = 3.0
) -> tuple[Path, Path]:
    """Segments shortened by ``r`` at both ends, and their arrowheads, as two compound paths."""
    d = end - start
    length = np.hypot(d[:, 0], d[:, 1])
    length[length == 0] = 1.0
    u = d / length[:, None]
    a = start + u * r
    b = end - u * r
    m = len(a)
    verts = np.empty((2 * m, 2))
    verts[0::2] = a
    verts[1::2] = b - u * head * 0.5
    codes = np.tile(np.array([int(Path.MOVETO), int(Path.LINETO)], dtype=Path.code_type), m)
    base = b - u * head
    normal = np.c_[-u[:, 1], u[:, 0]] * half
    tri = np.empty((4 * m, 2))
    tri[0::4] = b
    tri[1::4] = base + normal
    tri[2::4] = base - normal
    tri[3::4] = b
    steps = [int(Path.MOVETO), int(Path.LINETO), int(Path.LINETO), int(Path.CLOSEPOLY)]
    tcodes = np.tile(np.array(steps, dtype=Path.code_type), m)
    return Path(verts, codes), Path(tri, tcodes)


def _back_paths(start: np.ndarray, end: np.ndarray, r: float) -> tuple[Path, Path]:
    """Back edges as quadratic curves bulging to the side, with arrowheads."""
    verts: list[tuple[float, float]] = []
    codes: list[int] = []
    tri: list[tuple[float, float]] = []
    tcodes: list[int] = []
    for (x1, y1), (x2, y2) in zip(start.tolist(), end.tolist(), strict=True):
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        dx, dy = x2 - x1, y2 - y1
        length = float(np.hypot(dx, dy)) or 1.0
        bend = BEND * length + 2 * DY
        cx, cy = mx + dy / length * bend, my - dx / length * bend
        if length < 1.0:  # a task wired to itself
            cx, cy = x1 + 2 * r, y1 - 3 * r
        t1 = np.array([cx - x1, cy - y1])
        t1 /= np.hypot(*t1) or 1.0
        t2 = np.array([x2 - cx, y2 - cy])
        t2 /= np.hypot(*t2) or 1.0
        a = (x1 + t1[0] * r, y1 + t1[1] * r)
        b = (x2 - t2[0] * r, y2 - t2[1] * r)
        verts += [a, (cx, cy), (b[0] - t2[0] * 3, b[1] - t2[1] * 3)]
        codes += [int(Path.MOVETO), int(Path.CURVE3), int(Path.CURVE3)]
        base = (b[0] - t2[0] * 7, b[1] - t2[1] * 7)
        n = (-t2[1] * 3.5, t2[0] * 3.5)
        tri += [b, (base[0] + n[0], base[1] + n[1]), (base[0] - n[0], base[1] - n[1]), b]
        tcodes += [int(Path.MOVETO), int(Path.LINETO), int(Path.LINETO), int(Path.CLOSEPOLY)]
    return Path(np.array(verts), codes), Path(np.array(tri), tcodes)


def background_svg(geo: Geometry) -> str:
    """The transparent SVG of the edges (``viewBox 0 0 width height``); no text at all.

    Edges are left out past :data:`SVG_EDGE_LIMIT` (the page draws the visible ones), except
    back edges and problem edges, which are few and must always show.
    """
    from germinate_nb.render.mpl import locked_rc

    fig = Figure(figsize=(geo.width / 72, geo.height / 72), dpi=72)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, geo.width)
    ax.set_ylim(geo.height, 0)

    def add(path: Path, **style: object) -> None:
        # add_artist, not add_patch: add_patch walks every segment in Python to update the
        # data limits (2.6 s of 2.9 s at 2,000 tasks); the limits are fixed above anyway
        ax.add_artist(PathPatch(path, transform=ax.transData, **style))

    if len(geo.edges):
        plain = ~geo.back & ~geo.problem
        groups = [(~geo.back & geo.problem, PROBLEM_COLOR, 2.0, "problem-edges")]
        if plain.sum() <= SVG_EDGE_LIMIT:
            groups.insert(0, (plain, EDGE_COLOR, 0.8, "edges"))
        for mask, color, lw, gid in groups:
            if mask.any():
                e = geo.edges[mask]
                lines, heads = _arrow_paths(geo.xy[e[:, 0]], geo.xy[e[:, 1]], RADIUS + 1)
                add(lines, facecolor="none", edgecolor=color, lw=lw, gid=gid)
                add(heads, facecolor=color, edgecolor="none", gid=gid + "-heads")
        if geo.back.any():
            e = geo.edges[geo.back]
            curves, heads = _back_paths(geo.xy[e[:, 0]], geo.xy[e[:, 1]], RADIUS + 1)
            add(curves, facecolor="none", edgecolor=BACK_EDGE_COLOR, lw=1.6, gid="back-edges")
            add(heads, facecolor=BACK_EDGE_COLOR, edgecolor="none", gid="back-edges-heads")
    buf = io.StringIO()
    rc: dict[str, Any] = {
        "svg.hashsalt": "germinate_nb",
        "svg.fonttype": "none",
        "path.simplify": False,
    }
    with locked_rc(rc):  # rcParams are the process's: see render.mpl._RC_LOCK
        fig.savefig(buf, format="svg", transparent=True, metadata={"Date": None})
    return buf.getvalue()


def svg_has_edges(geo: Geometry) -> bool:
    """Does :func:`background_svg` draw the plain edges (else the page must)?"""
    return int((~geo.back & ~geo.problem).sum()) <= SVG_EDGE_LIMIT


def cyclic_layout(
    nodes: list[str], edges: list[tuple[str, str]]
) -> tuple[dict[str, tuple[float, float]], set[tuple[str, str]], int, int]:
    """Layers for a graph with cycles: a depth-first search marks the edges closing a cycle.

    The other edges are layered like :func:`phase_layout` does. Returns positions (x = layer,
    y centred on 0, up), the back edges, the layer count and the most nodes in one layer.
    """
    children: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        children[a].append(b)
    seen = dict.fromkeys(nodes, 0)  # 0 new, 1 on the stack, 2 done
    back: set[tuple[str, str]] = set()
    for root in nodes:
        if seen[root]:
            continue
        seen[root] = 1
        stack = [(root, iter(children[root]))]
        while stack:
            node, it = stack[-1]
            following = next(it, None)
            if following is None:
                seen[node] = 2
                stack.pop()
            elif seen[following] == 1:
                back.add((node, following))
            elif seen[following] == 0:
                seen[following] = 1
                stack.append((following, iter(children[following])))
    parents: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        if (a, b) not in back and a != b:
            parents[b].append(a)
    depth: dict[str, int] = {}
    for k in _topological(nodes, parents):
        depth[k] = max((depth[p] + 1 for p in parents[k]), default=0)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for k in nodes:
        layers[depth[k]].append(k)
    positions: dict[str, tuple[float, float]] = {}
    for x, layer in enumerate(layers):
        if x:
            layer.sort(
                key=lambda k: (
                    -(sum(positions[p][1] for p in parents[k]) / len(parents[k]))
                    if parents[k]
                    else 0.0
                )
            )
        n = len(layer)
        for i, k in enumerate(layer):
            positions[k] = (float(x), (n - 1) / 2 - i)
    return positions, back, len(layers), max((len(layer) for layer in layers), default=0)


def _topological(nodes: list[str], parents: dict[str, list[str]]) -> list[str]:
    pending = {k: len(set(parents[k])) for k in nodes}
    kids: dict[str, list[str]] = {k: [] for k in nodes}
    for k in nodes:
        for p in set(parents[k]):
            kids[p].append(k)
    ready = [k for k in nodes if pending[k] == 0]
    order = []
    while ready:
        k = ready.pop()
        order.append(k)
        for c in kids[k]:
            pending[c] -= 1
            if pending[c] == 0:
                ready.append(c)
    return order
