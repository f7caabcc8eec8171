"""The explorer's kernel-side costs, each beside a baseline measured in the same run.

Run: python benchmarks/bench_explorer.py [--sizes 10000,50000]

1. explore() of N tasks: wall time and extra RSS (targets: 10,000 < 1.5 s and < 100 MB;
   50,000 < 6 s), beside the cost of the state's snapshot and validation alone.
2. Redrawing the picture of 2,000 tasks (the canvas geometry and matplotlib's edge SVG;
   target < 1 s), beside the 0.1 explorer's full matplotlib picture and PNG of the same DAG.
3. An explorer on screen must not slow a run: a 5-task run with an explorer following it vs
   without (target <= 1.2), and a 10,000-task run (median of interleaved runs).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, os.path.dirname(__file__))

from bench_engine import layered_edges, make_state  # noqa: E402

from germinate_nb import run, set_default_store, use_registry  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def explore_cost(sizes: list[int]) -> None:
    from germinate_nb.notebook.explorer import DagExplorer

    print("1. explore() of N tasks (fresh state each time)")
    for n in sizes:
        parents, _ = layered_edges(n)
        with use_registry():
            state = make_state(f"ex{n}", parents)
            t0 = time.perf_counter()
            state.validate()
            base = time.perf_counter() - t0
        with use_registry():
            state = make_state(f"ex{n}", parents)
            gc.collect()
            before = rss_mb()
            t0 = time.perf_counter()
            ex = DagExplorer(state)
            took = time.perf_counter() - t0
            extra = rss_mb() - before
            ex.close()
        print(
            f"  {n:>6} tasks: explore() {took:.3f} s, +{extra:.0f} MB RSS; snapshot+validate "
            f"alone {base:.3f} s (explore/validate x{took / base:.1f})"
        )


def redraw_cost(n: int = 2000, repeat: int = 3) -> None:
    from germinate_nb.notebook.canvas import DagCanvas
    from germinate_nb.render.canvas import canvas_geometry
    from germinate_nb.render.mpl import draw_state, figure_png

    parents, _ = layered_edges(n)
    with use_registry():
        state = make_state("redraw", parents)
        snap = state.snapshot()
        canvas = DagCanvas()
        ours, old = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            canvas.set_geometry(canvas_geometry(snap))
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            figure_png(draw_state(state))
            old.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        canvas.set_statuses({f"t{i}": "succeeded" for i in range(50)})
        patch = time.perf_counter() - t0
    print(
        f"\n2. picture of {n} tasks: canvas geometry + edge SVG {min(ours):.3f} s (target < 1), "
        f"0.1's matplotlib PNG {min(old):.3f} s; a status patch of 50 tasks {patch * 1000:.2f} ms"
    )


SETTLE = 0.02
"""Seconds between two timed runs (each arm alike): one run's UI update never overlaps the next."""


def run_with_explorer(n: int, repeat: int) -> tuple[float, float]:
    """Median run time with the explorer following runs, and with it not subscribed."""
    from germinate_nb.notebook.explorer import DagExplorer

    parents, _ = layered_edges(n)
    with use_registry() as registry:
        state = make_state(f"live{n}", parents)
        ex = DagExplorer(state)
        run(state, {"x": 0})
        ex.wait(30)
        with_ex, without = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            run(state, {"x": 0})
            with_ex.append(time.perf_counter() - t0)
            ex.wait(30)  # the explorer shows the run's end (outside the timing)
            time.sleep(SETTLE)  # its thread is idle again: the next run does not share it
            registry.run_observers.remove(ex.follower)
            t0 = time.perf_counter()
            run(state, {"x": 0})
            without.append(time.perf_counter() - t0)
            time.sleep(SETTLE)  # the same pause before each run
            registry.run_observers.append(ex.follower)
        ex.close()
    return statistics.median(with_ex), statistics.median(without)


def live_cost(repeat: int) -> None:
    print("\n3. a run with an explorer following it vs without (median of interleaved runs)")
    for n in (5, 10_000):
        a, b = run_with_explorer(n, repeat if n < 1000 else 3)
        print(f"  {n:>6} tasks: {a * 1000:8.2f} ms with, {b * 1000:8.2f} ms without, x{a / b:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    set_default_store("off")  # the explorer's costs, not the run store's (bench_engine has it)
    explore_cost([int(s) for s in args.sizes.split(",")])
    redraw_cost()
    live_cost(args.repeat)


if __name__ == "__main__":
    main()
