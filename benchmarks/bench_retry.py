"""Retries, timeouts and limits: what the machinery costs unused, and a limit's makespan.

Run: python benchmarks/bench_retry.py [--repeat 7] [--compare-tree /path/to/other/checkout]

(a) The 1,000-task serial run of bench_engine.py section 1 (no-op tasks, max_workers=1), as a
    ratio to the same graphlib serial loop, interleaved. Unused (no option anywhere) the
    machinery is bypassed: Schedule checks limits only when a task has one with a count, the
    run arms timers only for tasks with retries or a timeout. The same ratio with every task
    declaring ``retries=1`` and ``limit`` (armed, never firing) is shown for reference. With
    ``--compare-tree`` the unused ratio is also measured with another checkout's code (e.g. the
    main branch, before this feature) in a subprocess: the target is <= 5 % above it.
(b) 20 tasks x 50 ms tagged ``limit="api"`` with ``limits={"api": 4}``: makespan vs the ideal
    5 x 50 ms (target <= 1.1x), for sync and async tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import Payload, interleaved, layered_edges, make_state, serial_baseline  # noqa: E402

from germinate_nb import State, run, use_registry  # noqa: E402


def serial_ratio(n: int, repeat: int, *, armed: bool = False) -> tuple[float, float]:
    """(us/task of run(max_workers=1), its ratio to the graphlib loop), median of ``repeat``."""
    parents, _ = layered_edges(n)
    with use_registry():
        state = make_state("bench_retry", parents)
        if armed:
            from germinate_nb import TaskOptions

            for task in state.tasks:
                task.options = TaskOptions(retries=1, retry_delay=0.0, limit="api")
            state._touch(None, "options")
        kwargs = {"limits": {"api": 1000}} if armed else {}
        run(state, {"x": 0}, max_workers=1, echo=False, store="off", **kwargs)  # warm up
        ratios, times = [], []
        for _ in range(repeat):
            ours, base = interleaved(
                lambda: run(state, {"x": 0}, max_workers=1, echo=False, store="off", **kwargs),
                lambda: serial_baseline(parents),
                3,
            )
            ratios.append(ours / base)
            times.append(ours)
    return statistics.median(times) / n * 1e6, statistics.median(ratios)


def limit_makespan(kind: str, n: int = 20, seconds: float = 0.05, cap: int = 4) -> float:
    with use_registry():
        s = State(f"makespan_{kind}")
        for i in range(n):
            if kind == "async":

                async def body(input: Payload) -> Payload:
                    await asyncio.sleep(seconds)
                    return input
            else:

                def body(input: Payload) -> Payload:
                    time.sleep(seconds)
                    return input

            body.__name__ = f"t{i}"
            s.task(namespace=f"makespan_{kind}", limit="api")(body)
        run(s, {"x": 0}, echo=False, store="off", limits={"api": cap})  # warm up
        best = []
        for _ in range(5):
            t0 = time.perf_counter()
            result = run(s, {"x": 0}, echo=False, store="off", limits={"api": cap})
            best.append(time.perf_counter() - t0)
            assert result.ok
    return statistics.median(best)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--compare-tree", default=None)
    parser.add_argument("--ratio-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ratio_only:
        print(json.dumps(serial_ratio(args.tasks, args.repeat)))
        return
    n = args.tasks
    print(f"(a) {n:,}-task serial run (max_workers=1), ratio to a graphlib loop")
    us, ratio = serial_ratio(n, args.repeat)
    print(f"    machinery unused:            {us:6.1f} us/task   ratio {ratio:.2f}")
    us_a, ratio_a = serial_ratio(n, args.repeat, armed=True)
    print(f"    armed (retries=1 + limit):   {us_a:6.1f} us/task   ratio {ratio_a:.2f}")
    if args.compare_tree:
        env = dict(os.environ, PYTHONPATH=args.compare_tree)
        out = subprocess.run(
            [sys.executable, __file__, "--ratio-only", "--tasks", str(n), "--repeat",
             str(args.repeat)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        other_us, other_ratio = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"    other tree ({args.compare_tree}): {other_us:6.1f} us/task   ratio "
            f"{other_ratio:.2f}\n    unused overhead vs other tree: "
            f"{(ratio / other_ratio - 1) * 100:+.1f} % (target <= +5 %)"
        )
    print("(b) 20 tasks x 50 ms, limits={'api': 4}: makespan vs the ideal 5 x 50 ms = 250 ms")
    for kind in ("sync", "async"):
        took = limit_makespan(kind)
        print(f"    {kind:5}: {took * 1000:6.1f} ms = {took / 0.25:.3f}x ideal (target <= 1.1x)")


if __name__ == "__main__":
    main()
