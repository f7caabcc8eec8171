"""Build + validate + phases for layered random DAGs, beside networkx's topological_generations.

Run: python benchmarks/bench_graph.py [--sizes 1000,10000,100000]
Target: validate+phases for 10,000 tasks < 1 s and within 3x of the bare networkx call.
"""

from __future__ import annotations

import argparse
import random
import time

import networkx as nx
from pydantic import BaseModel

from germinate_nb import State, TaskExecutor, use_registry


class Payload(BaseModel):
    x: int = 0


def identity(input: Payload) -> Payload:
    return input


def layered_state(n: int, seed: int = 0) -> State:
    rng = random.Random(seed)
    width = max(1, int(n**0.5))
    state = State(f"bench{n}")
    tasks = []
    for i in range(n):
        ex = TaskExecutor(
            f"t{i}_executor",
            identity,
            input_schema=Payload,
            output_schema=Payload,
            namespace="bench",
        )
        tasks.append(state.define_task(f"t{i}", ex))
    for i in range(width, n):
        layer_start = (i // width - 1) * width
        parents = rng.sample(range(layer_start, layer_start + width), k=rng.randint(1, 3))
        tasks[i].add_parents([tasks[p] for p in parents])
    return state


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    header = ("tasks", "build s", "validate+phases s", "nx.topo_gen s", "ratio")
    print("{:>8} {:>9} {:>18} {:>14} {:>6}".format(*header))
    for n in (int(s) for s in args.sizes.split(",")):
        repeat = 5 if n <= 10_000 else 2
        with use_registry():
            t0 = time.perf_counter()
            state = layered_state(n)
            g = state.dag
            build = time.perf_counter() - t0

            def ours(state=state, n=n):
                state.version += 1  # drop caches: measure a cold validate + phases
                problems = state.validate()
                phases = state.phases
                assert not problems and sum(map(len, phases)) == n

            def bare(g=g):
                list(nx.topological_generations(g))

            t_ours = best_of(ours, repeat)
            t_nx = best_of(bare, repeat)
        print(f"{n:>8} {build:>9.3f} {t_ours:>18.4f} {t_nx:>14.4f} {t_ours / t_nx:>6.2f}")


if __name__ == "__main__":
    main()
