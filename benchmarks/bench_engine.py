"""Engine overhead and makespan, each beside a baseline measured in the same run.

Run: python benchmarks/bench_engine.py [--sizes 1000,10000] [--repeat 3]

1. Per-task overhead on layered random DAGs of no-op tasks with small pydantic models:
   (a) run(max_workers=1) vs a graphlib.TopologicalSorter serial loop doing the same input merge
       and model validation (target ratio <= 1.3);
   (b) run() threaded vs a ~40-line ThreadPoolExecutor dependency-driven scheduler (target <= 1.5);
   dask.threaded.get on the raw graph, for reference.
   (c) async no-op tasks: run() vs a ~30-line asyncio dependency-driven loop doing the same
       merge and validation (target: <= 20 us/task at 1,000 tasks).
   (d) what isolating the reuse cache from user mutation costs: one output dump per task
       (children need it anyway), and one model_validate per cache hit.
2. Makespan / critical path for 200 IO tasks (20 ms sleeps) in 10 layers (target <= 1.05),
   beside the same DAG run by the thread-pool and asyncio baselines above (sleeping instead of
   returning at once): what the machine allows (its sleeps end late, its threads wake late).
3. Skewed durations (5-50 ms): dependency-driven vs strategy="phases", with analytic limits.
4. First run of a freshly declared 10,000-task state vs the warm run after it (target <= 1.5).
5. Run store overhead on the 1,000-task serial run of section 1 (target <= 10 %), store on vs
   off side by side, interleaved (ABBA): (a) until run() returns, the store's writer idle when
   the run starts (it writes after the run), and for the serial run the calling thread's CPU
   time, which other processes' load disturbs less; (b) until flush() returns too: the
   writer's whole cost. The threaded run is shown for reference. `--store-only` runs this
   section alone.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import graphlib
import queue
import random
import statistics
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from germinate_nb import State, TaskExecutor, run, set_default_store, use_registry
from germinate_nb.execution.gc_tuning import gc_relaxed as _gc_relaxed
from germinate_nb.execution.store import resolve_store


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


def run_task(
    i: int, parents: list[list[int]], outputs: dict[int, Payload], run_input: dict, fn=noop
):
    """What every baseline does per task: merge parents' dumps, validate, call, validate."""
    if parents[i]:
        data: dict = {}
        for p in parents[i]:
            data.update(outputs[p].model_dump())
    else:
        data = run_input
    out = fn(Payload.model_validate(data))
    return out if type(out) is Payload else Payload.model_validate(out)


def serial_baseline(parents: list[list[int]]) -> dict[int, Payload]:
    sorter = graphlib.TopologicalSorter({i: ps for i, ps in enumerate(parents)})
    outputs: dict[int, Payload] = {}
    for i in sorter.static_order():
        outputs[i] = run_task(i, parents, outputs, {"x": 0})
    return outputs


def threaded_baseline(
    parents: list[list[int]],
    workers: int = 32,
    fn=noop,
    pool: concurrent.futures.ThreadPoolExecutor | None = None,
) -> dict[int, Payload]:
    """A dependency-driven thread-pool scheduler; ``pool``: an already started one to use."""
    n = len(parents)
    children: list[list[int]] = [[] for _ in range(n)]
    for i, ps in enumerate(parents):
        for p in ps:
            children[p].append(i)
    waiting = [len(ps) for ps in parents]
    outputs: dict[int, Payload] = {}
    done: queue.SimpleQueue = queue.SimpleQueue()
    in_flight = 0
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(workers))

        def submit(i: int) -> None:
            fut = pool.submit(run_task, i, parents, outputs, {"x": 0}, fn)
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


async def anoop(input: Payload) -> Payload:
    return Payload(x=input.x)


def asyncio_baseline(parents: list[list[int]], afn=anoop) -> dict[int, Payload]:
    """A dependency-driven asyncio loop doing the same per-task work as run() does."""
    n = len(parents)
    children: list[list[int]] = [[] for _ in range(n)]
    for i, ps in enumerate(parents):
        for p in ps:
            children[p].append(i)
    waiting = [len(ps) for ps in parents]
    outputs: dict[int, Payload] = {}

    async def main() -> None:
        done = asyncio.Event()
        left = [n]

        async def one(i: int) -> None:
            if parents[i]:
                data: dict = {}
                for p in parents[i]:
                    data.update(outputs[p].model_dump())
            else:
                data = {"x": 0}
            out = await afn(Payload.model_validate(data))
            outputs[i] = out if type(out) is Payload else Payload.model_validate(out)
            for c in children[i]:
                waiting[c] -= 1
                if waiting[c] == 0:
                    asyncio.get_running_loop().create_task(one(c))
            left[0] -= 1
            if not left[0]:
                done.set()

        for i in range(n):
            if not waiting[i]:
                asyncio.get_running_loop().create_task(one(i))
        await done.wait()

    asyncio.run(main())
    return outputs


def async_overhead(n: int, repeat: int) -> None:
    parents, _ = layered_edges(n)
    with use_registry():
        state = make_state(f"async{n}", parents, fn=anoop)
        assert run(state, {"x": 0}).ok
        ours, base = interleaved(
            lambda: run(state, {"x": 0}), lambda: asyncio_baseline(parents), repeat
        )
    us = 1e6 / n
    print(
        f"  async no-op, {n} tasks: {ours * us:.1f} us/task (target <= 20), asyncio loop "
        f"{base * us:.1f} us/task, ratio {ours / base:.2f}"
    )


def isolation_cost(repeat: int) -> None:
    """Per task: the output dump the cache keeps, and the rebuild a cache hit does."""
    out = Payload(x=3)
    dump = out.model_dump()
    n = 100_000

    def per(fn) -> float:
        best_t = min(timeit_once(fn, n) for _ in range(repeat))
        return best_t / n * 1e6

    dump_us = per(lambda: out.__pydantic_serializer__.to_python(out))
    hit_us = per(lambda: Payload.model_validate(dump))
    print(
        f"  cache isolation (copies, not freezing): output dump {dump_us:.2f} us/task "
        f"(shared with the children's merge), rebuild on a hit {hit_us:.2f} us/hit; inputs of "
        "plain-data models are keyed by their data (no dump)"
    )


def timeit_once(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0


def first_vs_warm(n: int, repeat: int) -> None:
    parents, _ = layered_edges(n)
    firsts, warms, declares = [], [], []
    for k in range(repeat):
        with use_registry():
            t0 = time.perf_counter()
            state = make_state(f"fresh{k}", parents)  # declared now: nothing computed yet
            declares.append(time.perf_counter() - t0)
            with _gc_relaxed():
                t0 = time.perf_counter()
                run(state, {"x": 0})
                firsts.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                run(state, {"x": 0})
                warms.append(time.perf_counter() - t0)
    first, warm = statistics.median(firsts), statistics.median(warms)
    print(
        f"\n4. first run of a freshly declared {n}-task state {first:.3f} s, warm run "
        f"{warm:.3f} s, ratio {first / warm:.2f} (target <= 1.5); declaring it took "
        f"{statistics.median(declares):.3f} s"
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


def sleep_20ms(input: Payload) -> Payload:
    time.sleep(0.02)
    return input


async def asleep_20ms(input: Payload) -> Payload:
    await asyncio.sleep(0.02)
    return input


def makespan() -> None:
    print("\n2. makespan / critical path, 200 IO tasks (20 ms sleeps) in 10 layers (target 1.05)")
    print("   beside the same DAG on a bare scheduler doing the same per-task work (the floor)")
    parents = layered(200, 10, seed=2)
    durations = [0.02] * 200
    cp = critical_path(durations, parents)
    with concurrent.futures.ThreadPoolExecutor(32) as pool:  # started, as run()'s pool is
        threaded_baseline(parents, fn=sleep_20ms, pool=pool)
        floors = {
            "sync": lambda: threaded_baseline(parents, fn=sleep_20ms, pool=pool),
            "async": lambda: asyncio_baseline(parents, afn=asleep_20ms),
        }
        for kind, floor in floors.items():
            ours, bare = [], []
            with use_registry():
                state = io_state(f"io_{kind}", durations, parents, kind)
                run(state, {"x": 0})
                for _ in range(5):  # alternately: machine noise hits both alike
                    ours.append(timeit_once(lambda state=state: run(state, {"x": 0}), 1) / cp)
                    bare.append(timeit_once(floor, 1) / cp)
            name = "thread pool" if kind == "sync" else "asyncio.run"
            print(
                f"  {kind:>5}: ratio best {min(ours):.3f}, median {statistics.median(ours):.3f} "
                f"(critical path {cp * 1000:.0f} ms); a bare {name} scheduler: best "
                f"{min(bare):.3f}, median {statistics.median(bare):.3f}"
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


def store_overhead(n: int, repeat: int) -> None:
    """Section 5: the same run with the run store off and on, alternately."""
    parents, _ = layered_edges(n)
    print(f"\n5. run store overhead, {n} no-op tasks ({repeat} interleaved runs each)")
    print("   ms until run() returns (store off, on), and until the writer's flush() returns")
    with tempfile.TemporaryDirectory() as tmp, use_registry():
        path = str(Path(tmp) / "runs.sqlite")  # resolved by each run, as store=None would be
        state = make_state(f"store{n}", parents)
        store = resolve_store(path)
        assert store is not None
        for workers, label in ((1, "serial"), (None, "threaded")):
            run(state, {"x": 0}, max_workers=workers, store="off")  # warm up both paths
            run(state, {"x": 0}, max_workers=workers, store=path)
            off, on, flushed, cpu_off, cpu_on = [], [], [], [], []
            for i in range(repeat):
                # off then on, then on then off: neither always follows the writer's flush
                for store_on in (False, True) if i % 2 else (True, False):
                    assert store.flush(60)  # every run starts with an idle writer
                    t0, c0 = time.perf_counter(), time.thread_time()
                    run(state, {"x": 0}, max_workers=workers, store=path if store_on else "off")
                    wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
                    (on if store_on else off).append(wall)
                    (cpu_on if store_on else cpu_off).append(cpu)
                    if store_on:
                        assert store.flush(60)
                        flushed.append(time.perf_counter() - t0)
            for pick, how in ((statistics.median, "median"), (min, "best")):
                base, r, f = pick(off), pick(on), pick(flushed)
                r_pct, f_pct = (r / base - 1) * 100, (f / base - 1) * 100
                print(
                    f"   {label if how == 'median' else '':<9}{how:<7} off {base * 1e3:5.1f}"
                    f"   on {r * 1e3:5.1f} ({r_pct:+5.1f} %)   on + flush {f * 1e3:5.1f}"
                    f" ({f_pct:+6.1f} %)"
                )
            if workers == 1:  # every task runs in the calling thread: its CPU time is the run's
                base, r = statistics.median(cpu_off), statistics.median(cpu_on)
                print(
                    f"   {'':<9}{'CPU':<7} off {base * 1e3:5.1f}   on {r * 1e3:5.1f}"
                    f" ({(r / base - 1) * 100:+5.1f} %)   (the calling thread's, median)"
                )
        info = store.info()
    print(
        f"   ({info.task_runs:,} task runs written; target: <= 10 % on the serial run(); the"
        " writer gathers rows\n   for 100 ms and waits for the run to end, so its work is all in"
        " the last column)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--store-only", action="store_true", help="section 5 alone")
    args = parser.parse_args()
    if args.store_only:
        store_overhead(1000, args.repeat)
        return
    # sections 1-4 measure the engine: no run store (section 5 measures the store's cost, and
    # passes its store explicitly); this also keeps the benchmark from writing .germinate/ here
    set_default_store("off")
    overhead([int(s) for s in args.sizes.split(",")], args.repeat)
    async_overhead(1000, args.repeat)
    isolation_cost(3)
    makespan()
    first_vs_warm(10_000, 3)
    store_overhead(1000, args.repeat)


if __name__ == "__main__":
    main()
