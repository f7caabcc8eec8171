import matplotlib.colors as mcolors
import pytest
from matplotlib.collections import LineCollection, PathCollection, PolyCollection

from germinate_nb import State, TaskExecutor
from germinate_nb.render.export import export_state, format_for_path
from germinate_nb.render.layout import focus_tasks, phase_layout
from germinate_nb.render.mpl import MAX_LABELS, draw_state, draw_workflow, figure_png, figure_svg
from germinate_nb.render.text import PROBLEM_COLOR, STATUS_COLORS, to_dot, to_mermaid


def make_state(name="s", edges=(("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"))):
    s = State(name)
    names = sorted({n for e in edges for n in e})
    tasks = {
        n: s.define_task(n, TaskExecutor(f"{n}_executor", print, namespace=name)) for n in names
    }
    for u, v in edges:
        tasks[u] >> tasks[v]
    return s


def collection(fig, cls, gid):
    ax = fig.axes[0]
    found = [c for c in ax.collections if isinstance(c, cls) and c.get_gid() == gid]
    assert len(found) == 1
    return found[0]


def test_layout_puts_each_phase_in_its_column():
    s = make_state()
    layout = phase_layout(s)
    assert layout.layers == [["a"], ["b", "c"], ["d"]]
    assert {n: x for n, (x, _) in layout.positions.items()} == {"a": 0, "b": 1, "c": 1, "d": 2}
    assert layout.positions["b"][1] == 0.5 and layout.positions["c"][1] == -0.5


def test_layout_orders_children_by_parent_height():
    s = make_state(edges=(("a", "y"), ("b", "x")))
    pos = phase_layout(s).positions
    # x hangs off b (lower), y off a (upper): y must be drawn above x
    assert pos["a"][1] > pos["b"][1] and pos["y"][1] > pos["x"][1]


def test_layout_of_cyclic_state_groups_the_cycle():
    s = make_state(edges=(("a", "b"), ("b", "c"), ("c", "b")))
    layout = phase_layout(s)
    assert layout.cyclic and layout.layers == [["a"], ["b", "c"]]


def test_node_colours_follow_status():
    s = make_state()
    statuses = {"a": "succeeded", "b": "failed", "c": "running"}
    fig = draw_state(s, statuses=statuses)
    nodes = collection(fig, PathCollection, "tasks")
    order = list(phase_layout(s).positions)
    colours = [mcolors.to_hex(c) for c in nodes.get_facecolors()]
    expected = [STATUS_COLORS[statuses.get(n, "pending")] for n in order]
    assert colours == expected
    offsets = nodes.get_offsets().tolist()
    assert [x for x, _ in offsets] == [0, 1, 1, 2]


def test_edges_are_one_collection_and_problem_edges_red():
    from germinate_nb.core.validate import Problem

    s = make_state()
    problem = Problem("schema-gap", "d needs x", tasks=("d",), edges=(("b", "d"),))
    fig = draw_state(s, problems=[problem])
    lines = collection(fig, LineCollection, "edges")
    heads = collection(fig, PolyCollection, "arrowheads")
    assert len(lines.get_segments()) == 4 and len(heads.get_paths()) == 4
    colours = [mcolors.to_hex(c) for c in lines.get_colors()]
    assert colours.count(PROBLEM_COLOR) == 1
    texts = [t.get_text() for t in fig.texts]
    assert "d needs x" in texts


def test_labels_and_phase_labels_for_small_dags():
    fig = draw_state(make_state())
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert {"a", "b", "c", "d", "phase 1", "phase 2", "phase 3"} <= set(texts)


def test_big_dag_drops_labels_and_focus_shows_lineage():
    n = MAX_LABELS + 50
    edges = [(f"t{i}", f"t{i + 1}") for i in range(0, n - 1, 2)]
    s = make_state("big", edges)
    fig = draw_state(s)
    labels = [t.get_text() for t in fig.axes[0].texts if not t.get_text().startswith("phase")]
    assert labels == []
    assert "overview" in fig.axes[0].get_title(loc="left")
    fig = draw_state(s, focus="t4", selected="t4")
    nodes = collection(fig, PathCollection, "tasks")
    assert len(nodes.get_offsets()) == 2
    assert focus_tasks(s, "t4") == {"t4", "t5"}
    assert focus_tasks(make_state(), "b", hops=1) == {"a", "b", "d"}


def test_png_and_svg_outputs():
    s = make_state()
    assert figure_png(draw_state(s))[:8] == b"\x89PNG\r\n\x1a\n"
    svg1, svg2 = figure_svg(draw_state(s)), figure_svg(draw_state(s))
    assert svg1 == svg2 and "<dc:date>" not in svg1


def test_dot_and_mermaid():
    s = make_state()
    dot = to_dot(s, {"a": "failed"})
    assert '"a" [fillcolor="#cf222e"];' in dot and '"b" -> "d";' in dot
    mermaid = to_mermaid(s, {"a": "failed"})
    assert '  t0["a"]' in mermaid and '  t1["b"]' in mermaid
    assert "  t0 --> t1" in mermaid and "  class t0 failed" in mermaid


def test_export_and_format_for_path():
    s = make_state()
    assert export_state(s, "dot").startswith('digraph "s"')
    assert format_for_path("x/y.MMD") == "mermaid"
    with pytest.raises(ValueError, match="cannot tell the format of 'y.gif'"):
        format_for_path("y.gif")


def test_workflow_figure():
    from germinate_nb import Workflow

    wf = Workflow("w")
    a, b = State("a"), State("b")
    wf.add_state(a, initial_state=True)
    wf.add_state(b)

    @a.condition()
    def go(output) -> bool:
        return True

    (a & go) >> b
    fig = draw_workflow(wf, current="b")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert {"a", "b", "go"} <= set(texts)


def test_themed_timeline_svg_follows_the_theme_escapes_text_and_has_unique_ids(design):
    import re
    import threading

    from germinate_nb import run
    from germinate_nb.execution.result import RunResult, TaskRun, TaskStatus
    from germinate_nb.render.mpl import INK, THEME_INK
    from germinate_nb.render.timeline import VECTOR_BARS, timeline_svg

    holder: dict = {}
    # an inline run's lane is the calling thread's name, which any code may set
    caller = threading.Thread(
        target=lambda: holder.update(r=run(design, {"text": "a b"}, max_workers=1)),
        name="<img src=x onerror=alert(1)>",
    )
    caller.start()
    caller.join(10)
    first, second = timeline_svg(holder["r"]), timeline_svg(holder["r"])
    assert first.startswith('<svg style="max-width: 100%; height: auto" ')
    assert "<?xml" not in first and "<!DOCTYPE" not in first
    assert THEME_INK in first and INK not in first
    assert "<img" not in first and "&lt;img src=x onerror=alert(1)&gt;" in first
    ids = [set(re.findall(r'\bid="([^"]+)"', svg)) for svg in (first, second)]
    assert ids[0] and not ids[0] & ids[1]  # two timelines on one page share no clip path
    for svg, own in zip((first, second), ids, strict=True):
        refs = set(re.findall(r'(?:url\(#|href="#)([^)"]+)', svg))
        assert refs <= own  # every reference points inside its own picture

    def synthetic(n: int) -> RunResult:
        runs = {
            f"t{i}": TaskRun(
                f"t{i}", TaskStatus.SUCCEEDED, start_time=i / 1000, duration=0.002, lane=f"w{i % 8}"
            )
            for i in range(n)
        }
        return RunResult("many", runs, parents={name: () for name in runs})

    vector, raster = timeline_svg(synthetic(VECTOR_BARS)), timeline_svg(synthetic(5 * VECTOR_BARS))
    assert "<image" not in vector and vector.count("<path") > VECTOR_BARS
    assert "<image" in raster and raster.count("<path") < VECTOR_BARS  # bars are one image
    assert len(raster) < 200_000


def test_timeline_svg_survives_hostile_names_and_times():
    import math
    import warnings
    import xml.etree.ElementTree as ET

    from germinate_nb.execution.result import RunResult, TaskRun, TaskStatus
    from germinate_nb.render.timeline import ROWS_PER_LANE, timeline_rows, timeline_svg

    lanes = [
        'id="evil" url(#x) #010203 #57606a',  # markup-looking text and our colour sentinels
        "ctl\x1b[31m\x00\x07 \ud800 lone surrogate",
        "w" * 120,  # a long thread name (start_run's lane includes the state's name)
    ]
    runs = {
        f"t{i}": TaskRun(f"t{i}", TaskStatus.SUCCEEDED, start_time=i, duration=1.0, lane=lane)
        for i, lane in enumerate(lanes)
    }
    runs["nan"] = TaskRun("nan", TaskStatus.FAILED, start_time=1.0, duration=math.nan, lane="w")
    runs["inf"] = TaskRun("inf", TaskStatus.FAILED, start_time=math.inf, duration=1.0, lane="w")
    # 50 task runs overlapping on one event loop
    for i in range(50):
        runs[f"a{i}"] = TaskRun(
            f"a{i}", TaskStatus.SUCCEEDED, start_time=0.5, duration=2.0, lane="event loop"
        )
    result = RunResult("hostile", runs, parents={name: () for name in runs})
    rows = timeline_rows(result)
    assert {run.name for _, run in rows} == set(runs) - {"nan", "inf"}  # no bar without times
    loop_rows = {lane for lane, _ in rows if lane.startswith("event loop")}
    assert len(loop_rows) == ROWS_PER_LANE
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "constrained layout collapsed" warning
        svg = timeline_svg(result)
    root = ET.fromstring(svg)  # well-formed XML
    text = "".join(root.itertext())
    assert 'id="evil" url(#x) #010203 #57606a' in text  # user text is left as written
    assert "\\x1b[31m\\x00\\x07" in text and "\\ud800" in text  # drawn as escapes
    assert "w" * 26 + "…" + "w" * 13 in text and "w" * 41 not in text


def test_long_lanes_are_cut_in_the_middle_so_their_ends_still_tell_them_apart():
    from germinate_nb.render.timeline import LANE_CHARS, _lane_label

    long = "germinate-run-of-a-state-with-a-very-long-name-worker-"
    labels = [_lane_label(f"{long}{i}") for i in (11, 12)]
    assert labels[0] != labels[1]
    assert labels[0].endswith("-worker-11") and labels[0].startswith("germinate-run")
    assert all(len(label) == LANE_CHARS for label in labels)
    assert _lane_label(f"{long}12 (3)") == f"{labels[1]} (3)"  # a loop lane's row number
    assert _lane_label("short (2)") == "short (2)"
    assert _lane_label("x" * 45 + "\n" + "y" * 45 + "\nz") == "x" * 26 + "…" + "y" * 11 + " …"


def test_timeline_has_one_bar_per_task_run_and_outlines_the_critical_path():
    import time

    from germinate_nb import State, run
    from germinate_nb.render.timeline import CRITICAL_COLOR, critical_path
    from tests.resources.models import X

    s = State("gantt")

    @s.task()
    def fast(input: X) -> X:
        return input

    @s.task()
    def slow(input: X) -> X:
        time.sleep(0.05)
        return input

    @s.task()
    def after(input: X) -> X:
        return input

    @s.task()
    def lone(input: X) -> X:
        raise ValueError("no")

    [fast, slow] >> after
    result = run(s, {"x": 1})
    fig = result.timeline()
    (bars,) = [c for c in fig.axes[0].collections if c.get_gid() == "bars"]
    assert len(bars.get_paths()) == 4  # one bar per task run
    assert critical_path(result) == ["slow", "after"]
    edges = [tuple(round(v, 3) for v in c) for c in bars.get_edgecolors()]
    from matplotlib.colors import to_rgba

    assert edges.count(tuple(round(v, 3) for v in to_rgba(CRITICAL_COLOR))) == 2
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert all(label.startswith("germinate-worker-") for label in labels)


def test_a_drawing_ending_in_another_thread_does_not_undo_the_theme_colours():
    """rcParams are one dict per process; an rc_context restores all of it when it exits."""
    import threading

    import matplotlib

    from germinate_nb.render.mpl import INK, inked, literal_text, themed_svg

    inside, leave = threading.Event(), threading.Event()

    def other_drawing():  # e.g. the explorer drawing a run's timeline in the run's thread
        with literal_text():
            inside.set()
            leave.wait(5)

    other = threading.Thread(target=other_drawing)
    other.start()
    assert inside.wait(5)
    threading.Timer(0.2, leave.set).start()
    with inked():
        other.join(5)  # it ends while this drawing has (or waits for) its settings
        assert matplotlib.rcParams["text.color"] == INK
        fig = draw_workflow(_two_state_workflow())
    assert "var(--jp-ui-font-color1" in themed_svg(fig)


def _two_state_workflow():
    from germinate_nb import Workflow

    wf = Workflow("wf")
    one, two = State("one"), State("two")
    wf.add_state(one, initial_state=True)
    wf.add_state(two)
    return wf
