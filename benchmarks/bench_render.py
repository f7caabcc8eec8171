"""Time to draw the DAG PNG for 50, 500 and 2,000 tasks, and the explorer's redraw rate in a run.

Run: python benchmarks/bench_render.py [--save PATH]
Targets: 500 tasks < 0.5 s, 2,000 tasks < 2 s. Printed beside matplotlib's own cost of saving an
empty figure of the same size (the floor any drawing pays), measured in the same run.
--save writes the explorer's picture after a run of the 50-task DAG (a screenshot of the graph).
"""

from __future__ import annotations

import argparse
import os
import random
import time

os.environ.setdefault("MPLBACKEND", "Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from germinate_nb import State, TaskExecutor, use_registry  # noqa: E402
from germinate_nb.render.mpl import draw_state, figure_png  # noqa: E402


class P(BaseModel):
    x: int = 0


SLEEP = {"seconds": 0.0}


def sleepy(input: P) -> P:
    time.sleep(SLEEP["seconds"])
    return input


def layered(name: str, n: int, seed: int = 0) -> State:
    rng = random.Random(seed)
    width = max(1, int(n**0.5))
    state = State(name)
    tasks = [
        state.define_task(
            f"t{i}",
            TaskExecutor(f"t{i}_executor", sleepy, input_schema=P, output_schema=P, namespace=name),
        )
        for i in range(n)
    ]
    for i in range(width, n):
        start = (i // width - 1) * width
        tasks[i].add_parents([tasks[p] for p in rng.sample(range(start, start + width), 2)])
    return state


def best(fn, repeat=3):
    out = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--save", default=None, help="write the explorer picture here")
    args = parser.parse_args()
    print(f"{'tasks':>6} {'draw+png s':>11} {'empty fig png s':>16} {'ratio':>6}")
    for n in (50, 500, 2000):
        with use_registry():
            state = layered(f"r{n}", n)
            statuses = {
                f"t{i}": random.choice(["succeeded", "failed", "pending"]) for i in range(n)
            }
            fig = draw_state(state, statuses=statuses)
            size = fig.get_size_inches()

            def empty(size=size):
                f = Figure(figsize=size)
                FigureCanvasAgg(f)
                figure_png(f)

            t_draw = best(
                lambda state=state, statuses=statuses: figure_png(
                    draw_state(state, statuses=statuses)
                )
            )
            t_empty = best(empty)
        print(f"{n:>6} {t_draw:>11.3f} {t_empty:>16.3f} {t_draw / t_empty:>6.1f}")

    from germinate_nb.notebook.explorer import DagExplorer

    print("\nexplorer during a run (200 tasks of 40 ms, 8 threads):")
    SLEEP["seconds"] = 0.04
    with use_registry():
        state = layered("live", 200)
        explorer = DagExplorer(state, reuse=False, max_workers=8)
        before = explorer.redraws
        t0 = time.perf_counter()
        explorer.run_button.click()
        result = explorer.wait(120)
        wall = time.perf_counter() - t0
        redraws = explorer.redraws - before
        assert result is not None and result.ok
        print(
            f"  run {wall:.2f} s, {redraws} redraws, {redraws / wall:.1f} redraws/s "
            f"(throttled to <= {1 / 0.3:.1f}/s plus the final one)"
        )
    if args.save:
        with use_registry():
            state = layered("shot", 50)
            explorer = DagExplorer(state, reuse=False)
            explorer.run_button.click()
            explorer.wait(60)
            explorer.select("t20")
            with open(args.save, "wb") as fh:
                fh.write(explorer.graph.value)
        print(f"\nwrote {args.save}")


if __name__ == "__main__":
    main()
