"""Engine overhead and makespan, each beside a baseline measured in the same run.

Run: python benchmarks/bench_engine.py [--sizes 1000,10000] [--repeat 3]

1. Per-task overhead on layered random DAGs of no-op tasks with small pydantic models:
   (a) run(max_workers=1) vs a graphlib.TopologicalSorter serial loop doing the same input merge
       and model validation (target ratio <= 2.0);
   (b) run() threaded vs a ~40-line ThreadPoolExecutor dependency-driven scheduler (target <= 1.5);
   dask.threaded.get on the raw graph, for reference.
2. Makespan / critical path for 200 IO tasks (20 ms sleeps) in 10 layers (target <= 1.15).
3. Skewed durations (5-50 ms): dependency-driven vs strategy="phases", with analytic limits.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import graphlib
import queue
import random
import statistics
import time

from pydantic import BaseModel

from germinate_nb import State, TaskExecutor, run, use_registry
from germinate_nb.execution.gc_tuning import gc_relaxed as _gc_relaxed


class Payload(BaseModel):
    x: int = 0


def noop(input: Payload) -> Payload:
    return Payload(x=input.x)


def layered_edges(n: int, seed: int = 1) -> tuple[list[list[int]], int]:
    """parents[i] for a layered DAG with ~sqrt(n) tasks per layer, 1-3 parents each."""
    rng = random.Random(seed)
    width = max(1, int(n**0.5))
    parents: list[list[int]] = [[] for _ in range(n)]
    for i in range(width, n):
        start = (i // width - 1) * width
        parents[i] = rng.sample(range(start, start + width), k=rng.randint(1, 3))
    return parents, width


def make_state(name: str, parents: list[list[int]], fn=noop) -> State:
    state = State(name)
    tasks = []
    for i in range(len(parents)):
        ex = TaskExecutor(
            f"t{i}_executor", fn, input_schema=Payload, output_schema=Payload, namespace=name
        )
        tasks.append(state.define_task(f"t{i}", ex))
    for i, ps in enumerate(parents):
        if ps:
            tasks[i].add_parents([tasks[p] for p in ps])
    return state


def run_task(i: int, parents: list[list[int]], outputs: dict[int, Payload], run_input: dict):
    """What every baseline does per task: merge parents' dumps, validate, call, validate."""
    if parents[i]:
        data: dict = {}
        for p in parents[i]:
            data.update(outputs[p].model_dump())
    else:
        data = run_input
    out = noop(Payload.model_validate(data))
    return out if type(out) is Payload else Payload.model_validate(out)


def serial_baseline(parents: list[list[int]]) -> dict[int, Payload]:
    sorter = graphlib.TopologicalSorter({i: ps for i, ps in enumerate(parents)})
    outputs: dict[int, Payload] = {}
    for i in sorter.static_order():
        outputs[i] = run_task(i, parents, outputs, {"x": 0})
    return outputs


def threaded_baseline(parents: list[list[int]], workers: int = 32) -> dict[int, Payload]:
    n = len(parents)
    children: list[list[int]] = [[] for _ in range(n)]
    for i, ps in enumerate(parents):
        for p in ps:
            children[p].append(i)
    waiting = [len(ps) for ps in parents]
    outputs: dict[int, Payload] = {}
    done: queue.SimpleQueue = queue.SimpleQueue()
    in_flight = 0
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:

        def submit(i: int) -> None:
            fut = pool.submit(run_task, i, parents, outputs, {"x": 0})
            fut.add_done_callback(lambda f, i=i: done.put((i, f.result())))

        for i in range(n):
            if waiting[i] == 0:
                submit(i)
                in_flight += 1
        while in_flight:
            i, out = done.get()
            in_flight -= 1
            outputs[i] = out
            for c in children[i]:
                waiting[c] -= 1
                if waiting[c] == 0:
                    submit(c)
                    in_flight += 1
    return outputs


def dask_reference(parents: list[list[int]]) -> float | None:
    try:
        import dask.threaded
    except ImportError:
        return None

    def task(*parent_outputs: Payload) -> Payload:
        data: dict = {}
        for out in parent_outputs:
            data.update(out.model_dump())
        return noop(Payload.model_validate(data or {"x": 0}))

    graph = {f"t{i}": (task, *[f"t{p}" for p in ps]) for i, ps in enumerate(parents)}
    t0 = time.perf_counter()
    dask.threaded.get(graph, [f"t{i}" for i in range(len(parents))])
    return time.perf_counter() - t0


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def interleaved(ours, base, repeat: int) -> tuple[float, float]:
    """Median wall times of two functions run alternately (machine noise hits both alike).

    The baseline runs under the same garbage-collector setting that run() uses (a raised first
    threshold), so the ratio measures the engine, not the collector.
    """
    a, b = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ours()
        a.append(time.perf_counter() - t0)
        with _gc_relaxed():
            t0 = time.perf_counter()
            base()
            b.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b)


def overhead(sizes: list[int], repeat: int) -> None:
    print(f"1. per-task overhead, no-op tasks (median of {repeat} interleaved runs; us/task)")
    print(
        f"{'tasks':>7} {'serial':>8} {'graphlib':>9} {'ratio':>6} {'threaded':>9} "
        f"{'tp-sched':>9} {'ratio':>6} {'dask.threaded':>14}"
    )
    for n in sizes:
        parents, _ = layered_edges(n)
        with use_registry():
            state = make_state(f"ov{n}", parents)
            result = run(state, {"x": 0}, max_workers=1)
            assert result.ok, result.counts()
            ours_serial, base_serial = interleaved(
                lambda state=state: run(state, {"x": 0}, max_workers=1),
                lambda parents=parents: serial_baseline(parents),
                repeat,
            )
            ours_threaded, base_threaded = interleaved(
                lambda state=state: run(state, {"x": 0}),
                lambda parents=parents: threaded_baseline(parents),
                repeat,
            )
        dask_t = min((dask_reference(parents) or float("nan")) for _ in range(repeat))
        us = 1e6 / n
        print(
            f"{n:>7} {ours_serial * us:>8.1f} {base_serial * us:>9.1f} "
            f"{ours_serial / base_serial:>6.2f} {ours_threaded * us:>9.1f} "
            f"{base_threaded * us:>9.1f} {ours_threaded / base_threaded:>6.2f} "
            f"{dask_t * us:>14.1f}"
        )


def io_state(name: str, durations: list[float], parents: list[list[int]], kind: str) -> State:
    state = State(name)
    tasks = []
    for i, seconds in enumerate(durations):
        if kind == "async":

            async def fn(input: Payload, seconds: float = seconds) -> Payload:
                await asyncio.sleep(seconds)
                return input

        else:

            def fn(input: Payload, seconds: float = seconds) -> Payload:
                time.sleep(seconds)
                return input

        ex = TaskExecutor(
            f"t{i}_executor", fn, input_schema=Payload, output_schema=Payload, namespace=name
        )
        tasks.append(state.define_task(f"t{i}", ex))
    for i, ps in enumerate(parents):
        if ps:
            tasks[i].add_parents([tasks[p] for p in ps])
    return state


def layered(n: int, layers: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    width = n // layers
    parents: list[list[int]] = [[] for _ in range(n)]
    for i in range(width, n):
        start = (i // width - 1) * width
        parents[i] = rng.sample(range(start, start + width), k=rng.randint(1, 3))
    return parents


def critical_path(durations: list[float], parents: list[list[int]]) -> float:
    finish = [0.0] * len(durations)
    for i, ps in enumerate(parents):  # parents always have lower indices
        finish[i] = durations[i] + max((finish[p] for p in ps), default=0.0)
    return max(finish)


def phase_limit(durations: list[float], parents: list[list[int]]) -> float:
    depth = [0] * len(durations)
    for i, ps in enumerate(parents):
        depth[i] = 1 + max((depth[p] for p in ps), default=-1)
    longest: dict[int, float] = {}
    for i, d in enumerate(depth):
        longest[d] = max(longest.get(d, 0.0), durations[i])
    return sum(longest.values())


def makespan() -> None:
    print("\n2. makespan / critical path, 200 IO tasks (20 ms sleeps) in 10 layers")
    parents = layered(200, 10, seed=2)
    durations = [0.02] * 200
    cp = critical_path(durations, parents)
    for kind in ("sync", "async"):
        with use_registry():
            state = io_state(f"io_{kind}", durations, parents, kind)
            wall = best(lambda state=state: run(state, {"x": 0}), 3)
        print(
            f"  {kind:>5}: makespan {wall * 1000:7.1f} ms, critical path {cp * 1000:6.1f} ms, "
            f"ratio {wall / cp:.3f}"
        )

    print("\n3. skewed durations (5-50 ms, seed 3): dependencies vs phases")
    rng = random.Random(3)
    durations = [rng.uniform(0.005, 0.05) for _ in range(200)]
    cp = critical_path(durations, parents)
    pl = phase_limit(durations, parents)
    print(
        f"  analytic limits: critical path {cp * 1000:.1f} ms, sum of phase maxima "
        f"{pl * 1000:.1f} ms"
    )
    for kind in ("sync", "async"):
        with use_registry():
            state = io_state(f"skew_{kind}", durations, parents, kind)
            dep = best(lambda state=state: run(state, {"x": 0}), 3)
            ph = best(lambda state=state: run(state, {"x": 0}, strategy="phases"), 3)
        print(
            f"  {kind:>5}: dependencies {dep * 1000:7.1f} ms (x{dep / cp:.3f} of critical path)"
            f", phases {ph * 1000:7.1f} ms (x{ph / pl:.3f} of its limit), "
            f"dependencies/phases {dep / ph:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    overhead([int(s) for s in args.sizes.split(",")], args.repeat)
    makespan()


if __name__ == "__main__":
    main()
