"""The explorer in a real JupyterLab and Chromium: clicks, and runs with a live explorer.

Run: python benchmarks/bench_canvas.py   (needs Debian's /usr/bin/chromium; starts JupyterLab)

1. Click-to-details at 200 and 2,000 tasks: from the click on a node (pointerup) to the details
   pane showing that task, measured in the page (performance.now()), median of 7 clicks
   (target < 0.3 s at 2,000), beside the time the page takes to draw the selection ring.
2. notebooks/large_dag.ipynb's 320 async tasks in a real kernel: makespan / critical path with
   the explorer on screen following each run (target <= 1.05), beside the same kernel-side runs
   with no explorer displayed, median of 5 runs each.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.lab import ARGS, CHROMIUM, start_lab, write_notebook  # noqa: E402

LAYERED = """
from pydantic import BaseModel
from germinate_nb import State, TaskExecutor, explore

class X(BaseModel):
    x: int = 1

def noop(input: X) -> X:
    return input

s = State("bench")
tasks = [s.define_task(f"t{{i}}", TaskExecutor(f"t{{i}}_executor", noop, input_schema=X,
                                               output_schema=X)) for i in range({n})]
for i in range({width}, {n}):
    above = (i // {width} - 1) * {width}
    tasks[i].add_parents([tasks[i - {width}], tasks[above + (i - above + 1) % {width}]])
ex = explore(s)
ex
"""

PROBE = """
() => {
  window.__gc = {};
  document.addEventListener('pointerup', () => { window.__gc.t0 = performance.now(); }, true);
  const details = document.querySelector('.germinate-explorer .germinate-details');
  new MutationObserver(() => {
    const h = details.querySelector('h4');
    if (h && h.textContent === window.__gc.want && window.__gc.t1 === undefined)
      window.__gc.t1 = performance.now();
  }).observe(details, {childList: true, subtree: true, characterData: true});
}
"""

TIMED = """
import statistics as _st
ratios = []
for _ in range(5):
    result = run(big, {"x": 0})
    if "explorer" in globals():
        explorer.wait(60)  # the explorer on screen shows the run's end
    ratios.append(result.duration / critical)
print("RATIOS", json.dumps(ratios))
"""


def open_and_run_all(page, lab, name: str) -> None:
    page.goto(lab.url(f"lab/workspaces/bench{time.time_ns()}/tree/{name}"))
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    deadline = time.time() + 60
    while not any(k.get("execution_state") == "idle" for k in lab.api("kernels")):
        if time.time() > deadline:
            raise RuntimeError("the kernel never became idle")
        time.sleep(0.2)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def click_latency(browser, lab, n: int, width: int, clicks: int = 7) -> tuple[float, float]:
    name = write_notebook(lab.root, f"click{n}.ipynb", [LAYERED.format(n=n, width=width)])
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    open_and_run_all(page, lab, name)
    page.wait_for_function(
        "n => { const v = document.querySelector('.germinate-explorer .germinate-canvas');"
        " return v && v.gcNodeXY && v.gcNodeXY('t' + (n - 1)); }",
        arg=n,
        timeout=120_000,
    )
    page.wait_for_timeout(1000)
    page.evaluate(PROBE)
    canvas = page.locator(".germinate-explorer .germinate-canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    details, rings = [], []
    step = max(1, n // (clicks + 3))
    for i in range(clicks):
        target = f"t{(i + 1) * step}"
        xy = page.evaluate(
            "t => document.querySelector('.germinate-explorer .germinate-canvas').gcNodeXY(t)",
            target,
        )
        if not (0 < xy[0] < 1 and 0 < xy[1] < 1):
            continue
        page.evaluate("t => { window.__gc.want = t; delete window.__gc.t1; }", target)
        page.mouse.click(box["x"] + xy[0] * box["width"], box["y"] + xy[1] * box["height"])
        page.wait_for_function("() => window.__gc.t1 !== undefined", timeout=30_000)
        gc = page.evaluate("() => window.__gc")
        details.append((gc["t1"] - gc["t0"]) / 1000)
        ring = page.evaluate(
            "t => { const v = document.querySelector('.germinate-explorer .germinate-canvas');"
            " return v.dataset.selected === t; }",
            target,
        )
        rings.append(ring)
        page.wait_for_timeout(200)
    page.close()
    lab.shutdown_kernels()
    assert all(rings), "the page did not draw the selection"
    return statistics.median(details), len(details)


def large_dag_ratios(browser, lab, with_explorer: bool) -> list[float]:
    source = nbformat.read(REPO / "notebooks" / "large_dag.ipynb", as_version=4)
    code = [c.source for c in source.cells if c.cell_type == "code"]
    setup, explorer_cell, first_run, makespan = code[:4]  # the makespan cell defines `critical`
    cells = [
        "import json\n" + setup,
        explorer_cell if with_explorer else "pass",
        first_run,
        makespan,
        TIMED,
    ]
    name = write_notebook(lab.root, f"large_{with_explorer}.ipynb", cells)
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    open_and_run_all(page, lab, name)
    deadline = time.time() + 300
    last = page.locator(".jp-Notebook .jp-Cell").nth(4)
    while time.time() < deadline:
        text = "\n".join(last.locator(".jp-OutputArea-output").all_inner_texts())
        found = re.search(r"RATIOS (\[.*\])", text)
        if "Error" in text and "Traceback" in text:
            raise RuntimeError(f"the timed runs failed:\n{text[-2000:]}")
        if found:
            page.close()
            lab.shutdown_kernels()
            return json.loads(found.group(1))
        page.wait_for_timeout(500)
    raise RuntimeError("the timed runs never printed their ratios")


def main() -> None:
    from playwright.sync_api import sync_playwright

    parts = set(sys.argv[1:]) or {"click", "large"}  # e.g. `bench_canvas.py click`

    with tempfile.TemporaryDirectory() as base:
        lab = start_lab(Path(base))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                print("1. click -> details pane shows the task (in the page, median)")
                for n, width in ((200, 10), (2000, 40)) if "click" in parts else ():
                    latency, count = click_latency(browser, lab, n, width)
                    print(
                        f"  {n:>5} tasks: {latency * 1000:6.1f} ms over {count} clicks "
                        "(target < 300 ms at 2,000)"
                    )
                if "large" not in parts:
                    return
                print("\n2. large_dag (320 async tasks): makespan / critical path, median of 5")
                ours = large_dag_ratios(browser, lab, with_explorer=True)
                base_ = large_dag_ratios(browser, lab, with_explorer=False)
                print(
                    f"  with the explorer on screen x{statistics.median(ours):.3f} "
                    f"(runs {', '.join(f'{r:.3f}' for r in ours)}); target <= 1.05"
                )
                print(
                    f"  no explorer displayed      x{statistics.median(base_):.3f} "
                    f"(runs {', '.join(f'{r:.3f}' for r in base_)})"
                )
                browser.close()
        finally:
            lab.stop()


if __name__ == "__main__":
    main()
