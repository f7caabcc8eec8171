"""Per-task overhead on a 2-worker LocalCluster: germinate_nb's DaskExecutor vs raw Dask.

Run: python benchmarks/bench_dask.py [--tasks 1000] [--repeat 3]
Target: within 1.5x of Dask's own client.get on the equivalent raw graph (same layered DAG,
a no-op function that merges its parents' outputs), measured in the same run on the same cluster.
"""

from __future__ import annotations

import argparse
import random
import time

from pydantic import BaseModel


class Payload(BaseModel):
    x: int = 0


def noop(input: Payload) -> Payload:
    return Payload(x=input.x)


def raw_task(*parents: Payload) -> Payload:
    data: dict = {}
    for p in parents:
        data.update(p.model_dump())
    return noop(Payload.model_validate(data or {"x": 0}))


def layered(n: int, seed: int = 1) -> list[list[int]]:
    rng = random.Random(seed)
    width = max(1, int(n**0.5))
    parents: list[list[int]] = [[] for _ in range(n)]
    for i in range(width, n):
        start = (i // width - 1) * width
        parents[i] = rng.sample(range(start, start + width), k=rng.randint(1, 3))
    return parents


def main() -> None:
    from distributed import Client, LocalCluster

    from germinate_nb import DaskExecutor, State, TaskExecutor, run, use_registry

    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    parents = layered(args.tasks)
    with (
        LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            silence_logs=50,
        ) as cluster,
        Client(cluster) as client,
    ):
        raw_graph = {f"t{i}": (raw_task, *[f"t{p}" for p in ps]) for i, ps in enumerate(parents)}
        keys = list(raw_graph)
        with use_registry():
            state = State("bench")
            tasks = [
                state.define_task(
                    f"t{i}",
                    TaskExecutor(
                        f"t{i}_executor",
                        noop,
                        input_schema=Payload,
                        output_schema=Payload,
                        namespace="bench",
                    ),
                )
                for i in range(args.tasks)
            ]
            for i, ps in enumerate(parents):
                if ps:
                    tasks[i].add_parents([tasks[p] for p in ps])
            executor = DaskExecutor(client)
            assert run(state, {"x": 0}, executor=executor).ok  # warm up both paths
            client.get(raw_graph, keys)
            ours, raw = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                result = run(state, {"x": 0}, executor=executor)
                ours.append(time.perf_counter() - t0)
                assert result.ok
                t0 = time.perf_counter()
                client.get(raw_graph, keys)
                raw.append(time.perf_counter() - t0)
    n = args.tasks
    best_ours, best_raw = min(ours), min(raw)
    print(f"{n} no-op tasks on a 2-worker LocalCluster (best of {args.repeat}):")
    print(f"  germinate_nb DaskExecutor: {best_ours:.3f} s  ({best_ours / n * 1e6:.0f} us/task)")
    print(f"  raw client.get:            {best_raw:.3f} s  ({best_raw / n * 1e6:.0f} us/task)")
    print(f"  ratio: {best_ours / best_raw:.2f}")


if __name__ == "__main__":
    main()
