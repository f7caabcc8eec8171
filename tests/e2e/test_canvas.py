"""End-to-end: the explorer's interactive canvas in JupyterLab, in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import open_notebook, run_all
from tests.e2e.lab import write_notebook

pytestmark = pytest.mark.e2e

SHOTS = os.environ.get("GERMINATE_SHOTS")  # a folder to keep the screenshots in, for a look

LAYERED = """
from pydantic import BaseModel
from germinate_nb import State, TaskExecutor, explore, run

class X(BaseModel):
    x: int = 1

def noop(input: X) -> X:
    return input

def boom(input: X) -> X:
    raise ValueError("the <b>sky</b> fell")

s = State("{name}")
tasks = [
    s.define_task(
        f"task_{{i:02d}}",
        TaskExecutor(f"task_{{i:02d}}_executor", boom if i == {failing} else noop,
                     input_schema=X, output_schema=X),
    )
    for i in range({n})
]
for i in range({width}, {n}):
    above = (i // {width} - 1) * {width}
    tasks[i].add_parents([tasks[i - {width}], tasks[above + (i - above + 1) % {width}]])
"""


def shot(locator, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    locator.screenshot(path=path)
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        (Path(SHOTS) / name).write_bytes(path.read_bytes())
    return path


def cell_output(page, index: int, pattern: str, timeout: float = 30) -> str:
    """The text output of the notebook's cell ``index`` once it matches ``pattern``."""
    deadline = time.time() + timeout
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    while time.time() < deadline:
        text = cell.locator(".jp-OutputArea-output").all_inner_texts()
        joined = "\n".join(text)
        if re.search(pattern, joined):
            return joined
        page.wait_for_timeout(100)
    raise AssertionError(f"cell {index} never printed {pattern!r}")


def run_cell(page, index: int, source: str) -> None:
    """Replace cell ``index``'s source and run it (Shift+Enter)."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(source)
    page.keyboard.press("Shift+Enter")


def node_xy(page, cell: int, name: str) -> tuple[float, float]:
    """The kernel's DagExplorer.node_xy(name), printed by a cell."""
    run_cell(page, cell, f"print('XY', *ex.node_xy({name!r}))")
    out = cell_output(page, cell, r"XY [-\d.e]+ [-\d.e]+")
    _, fx, fy = re.search(r"XY ([-\d.e]+) ([-\d.e]+)", out).group(0).split()
    return float(fx), float(fy)


def click_at(page, fx: float, fy: float) -> None:
    canvas = page.locator(".germinate-explorer .germinate-canvas").first
    canvas.scroll_into_view_if_needed()  # as a user would; a click off screen hits nothing
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])


def wait_details(page, text: str, timeout: float = 20) -> float:
    """Seconds until the details pane shows ``text``."""
    t0 = time.perf_counter()
    details = page.locator(".germinate-explorer .germinate-details").first
    details.locator(f"h4:text-is('{text}')").wait_for(timeout=timeout * 1000)
    return time.perf_counter() - t0


def canvas_ready(page, n: int) -> None:
    page.wait_for_function(
        "n => { const v = document.querySelector('.germinate-explorer .germinate-canvas');"
        " return v && v.gcNodeXY && v.gcNodeXY('task_' + String(n - 1).padStart(2, '0')); }",
        arg=n,
        timeout=60_000,
    )


def test_click_hover_search_and_zoom_on_a_12_task_dag(page, lab, tmp_path):
    name = write_notebook(
        lab.root,
        "canvas12.ipynb",
        [
            LAYERED.format(name="twelve", n=12, width=4, failing=9),
            "ex = explore(s)\nex",
            "run(s, {'x': 1}).status",
            "print('placeholder')",
        ],
    )
    open_notebook(page, lab, name)
    run_all(page)
    canvas_ready(page, 12)
    cell_output(page, 2, "failed")
    canvas = page.locator(".germinate-explorer .germinate-canvas").first
    assert canvas.is_visible()
    # click a node where the kernel says it is: its details show
    fx, fy = node_xy(page, 3, "task_05")
    assert 0 < fx < 1 and 0 < fy < 1
    click_at(page, fx, fy)
    assert wait_details(page, "task_05") < 5
    assert canvas.get_attribute("data-selected") == "task_05"
    # hover: a tooltip with the name, the status and the first line of the error
    fx, fy = node_xy(page, 3, "task_09")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    tip = canvas.locator(".gc-tip")
    tip.wait_for(state="visible", timeout=5000)
    text = tip.inner_text()
    assert "task_09" in text and "failed" in text and "ValueError: the <b>sky</b> fell" in text
    shot(page.locator(".germinate-explorer").first, tmp_path, "canvas12-light.png")
    # search: the field filters, Enter selects the first match
    search = page.locator(".germinate-explorer .germinate-search input").first
    search.fill("task_1")
    page.wait_for_function(
        "() => document.querySelector('.germinate-explorer .germinate-canvas')"
        ".dataset.matches === '2'",
        timeout=10_000,
    )
    search.press("Enter")
    wait_details(page, "task_10")
    search.fill("")
    # zoom in (a click into the picture, then the wheel), then click a node where it now is
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + 5, box["y"] + box["height"] - 5)
    zoom_before = float(canvas.get_attribute("data-zoom"))
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -600)
    page.wait_for_timeout(400)  # the view reaches the kernel after a 60 ms debounce
    assert float(canvas.get_attribute("data-zoom")) > zoom_before * 1.5
    fx, fy = node_xy(page, 3, "task_06")
    assert 0 < fx < 1 and 0 < fy < 1
    click_at(page, fx, fy)
    wait_details(page, "task_06")
    shot(page.locator(".germinate-explorer").first, tmp_path, "canvas12-zoomed.png")


def test_a_1000_task_dag_stays_responsive(page, lab, tmp_path):
    name = write_notebook(
        lab.root,
        "canvas1000.ipynb",
        [
            LAYERED.format(name="thousand", n=1000, width=40, failing=-1),
            "ex = explore(s)\nex",
            "print('placeholder')",
        ],
    )
    open_notebook(page, lab, name)
    run_all(page)
    canvas_ready(page, 1000)
    canvas = page.locator(".germinate-explorer .germinate-canvas").first
    latencies = []
    for task in ("task_500", "task_999"):
        target = task.replace("task_", "task_")
        xy = page.evaluate(
            "n => document.querySelector('.germinate-explorer .germinate-canvas').gcNodeXY(n)",
            target,
        )
        if not (0 < xy[0] < 1 and 0 < xy[1] < 1):  # scrolled out: search brings it into view
            search = page.locator(".germinate-explorer .germinate-search input").first
            search.fill(target)
            search.press("Enter")
            wait_details(page, target)
            search.fill("")
            page.wait_for_timeout(300)
            xy = page.evaluate(
                "n => document.querySelector('.germinate-explorer .germinate-canvas').gcNodeXY(n)",
                target,
            )
        click_at(page, *xy)
        latencies.append(wait_details(page, target))
    assert max(latencies) < 3, latencies  # benchmarks/bench_canvas.py measures the real figure
    shot(canvas, tmp_path, "canvas1000.png")
    strip_buttons = page.locator(".germinate-explorer .germinate-task").count()
    assert strip_buttons <= 40  # a compact strip: no toggle per task


def switch_to_dark(page) -> None:
    page.get_by_role("menuitem", name="Settings", exact=True).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^JupyterLab Dark$")).click()
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=20_000)


def test_the_picture_follows_the_dark_theme(page, lab, tmp_path):
    from matplotlib.image import imread

    name = write_notebook(
        lab.root,
        "dark.ipynb",
        [LAYERED.format(name="dark", n=12, width=4, failing=-1), "ex = explore(s)\nex"],
    )
    open_notebook(page, lab, name)
    run_all(page)
    canvas_ready(page, 12)
    switch_to_dark(page)
    page.wait_for_timeout(3000)  # the style sheets swapped, every redraw done
    size = page.evaluate(
        "() => { const c = document.querySelector('.germinate-explorer .germinate-canvas');"
        " const k = c.querySelector('canvas'); return [k.width, k.height, c.clientWidth]; }"
    )
    assert size[0] >= size[2] > 100 and size[1] > 50, size
    path = shot(page.locator(".germinate-explorer .germinate-canvas").first, tmp_path, "dark.png")
    pixels = imread(path)
    corner = pixels[5:30, 5:30, :3].mean(axis=(0, 1))
    assert corner.max() < 0.5, f"the picture's background is not dark: {corner}"
    # the nodes are still drawn after the switch (the page once shrank its canvas to 1 px
    # while the style sheets were swapped, leaving only the edges until something redrew)
    fx, fy = page.evaluate(
        "() => document.querySelector('.germinate-explorer .germinate-canvas').gcNodeXY('task_00')"
    )
    h, w = pixels.shape[:2]
    node = pixels[int(fy * h) - 2 : int(fy * h) + 3, int(fx * w) - 2 : int(fx * w) + 3, :3]
    assert node.mean() > 0.5, f"node task_00 is not drawn after the theme switch: {node.mean()}"
    shot(page.locator(".germinate-explorer").first, tmp_path, "explorer-dark.png")
    labels = json.loads(
        page.evaluate(
            "() => JSON.stringify(getComputedStyle(document.querySelector("
            "'.germinate-explorer .germinate-canvas')).getPropertyValue('--jp-ui-font-color1'))"
        )
    )
    assert labels.strip()  # the page draws labels in the theme's font colour
