"""Run store costs, each beside a baseline measured in the same run.

Run: python benchmarks/bench_store.py [--rows 100000] [--repeat 5]
On a shared machine the wall times swing with the load. The store's overhead on the engine's
1,000-task run (store on vs off) is section 5 of bench_engine.py.

(a) record() on the caller's thread vs a plain deque.append, and the cost of building the
    TaskRecord (what the engine pays per task: hashing and JSON are the writer's);
(b) writer throughput, rows/s from the first record() to flush() (hashing the inputs, JSON of
    the outputs, SQLite), vs a bare executemany of the same rows already made;
(c) store growth in bytes per 1,000 task runs, from real runs of bench_engine's 1,000-task
    state (file size after a checkpoint), beside the bytes of their output JSON;
(d) store-level reuse after a restart: in a fresh process, open the store (20 past runs of
    1,000 tasks), lookup_many for 1,000 tasks and validate every output into the model, vs
    1,000 single lookup() calls; and 1,000 lookups that miss (a fresh run);
(e) the engine after a restart: in a fresh process, declare bench_engine's 1,000-task state and
    run(reuse=True) against a store holding its earlier runs: every task cached from the store
    (target: run() < 0.5 s), vs the same run with the store off in a fresh process (every task
    runs), vs the reuse run from the in-memory cache (warm, same process).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from germinate_nb.execution import store_rows
from germinate_nb.execution.store import RunStore, TaskRecord

ROOT = Path(__file__).resolve().parents[1]


class Payload(BaseModel):
    x: int = 0


def records(n: int, run_id: str = "r1", prefix: str = "t") -> list[TaskRecord]:
    """What the engine records per task: the input's reuse key and the output's dump."""
    return [
        TaskRecord(
            run_id,
            "bench",
            f"{prefix}{i}",
            "f" * 16,
            {"x": i},
            "succeeded",
            {"x": i},
            Payload,
            "",
            "",
            1_700_000_000.0 + i,
            0.001,
        )  # fmt: skip
        for i in range(n)
    ]


def record_cost(folder: Path, n: int, repeat: int) -> None:
    recs = records(n)
    ours, base, build = [], [], []
    for k in range(repeat):
        with RunStore.open(folder / f"a{k}.sqlite") as store:
            store.begin_run("r1", "bench", None, 0.0)
            t0 = time.perf_counter()
            for r in recs:
                store.record(r)
            ours.append(time.perf_counter() - t0)
            assert store.flush(60)
        dq: collections.deque[TaskRecord] = collections.deque()
        t0 = time.perf_counter()
        for r in recs:
            dq.append(r)
        base.append(time.perf_counter() - t0)
        values = [tuple(r) for r in recs]  # the engine's objects exist already: time the record
        new = tuple.__new__
        t0 = time.perf_counter()
        for v in values:
            new(TaskRecord, v)
        build.append(time.perf_counter() - t0)
    us = 1e6 / n
    print(f"(a) record() per call, {n:,} calls, median of {repeat}, writer running alongside")
    print(f"    record()                      {statistics.median(ours) * us:7.3f} us")
    print(f"    deque.append (baseline)       {statistics.median(base) * us:7.3f} us")
    print(f"    building the TaskRecord       {statistics.median(build) * us:7.3f} us  (engine)")


def throughput(folder: Path, n: int, repeat: int) -> None:
    recs = records(n)
    ours, base = [], []
    for k in range(repeat):
        with RunStore.open(folder / f"b{k}.sqlite") as store:
            t0 = time.perf_counter()
            store.begin_run("r1", "bench", None, 0.0)
            for r in recs:
                store.record(r)
            assert store.flush(120)
            ours.append(time.perf_counter() - t0)
        rows = [store_rows.task_row(r) for r in recs]  # the writer's Python work, left out here
        with RunStore.open(folder / f"c{k}.sqlite"):
            pass  # the same schema, indexes and pragmas
        conn = sqlite3.connect(folder / f"c{k}.sqlite", isolation_level=None)
        conn.execute("PRAGMA synchronous = NORMAL")
        insert = store_rows.insert_tasks_sql(1)
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, rows[i : i + 1000])
            conn.execute("COMMIT")
        base.append(time.perf_counter() - t0)
        conn.close()
    print(f"(b) writer throughput, {n:,} task runs, median of {repeat}")
    print(f"    RunStore record()..flush()    {n / statistics.median(ours):>10,.0f} rows/s")
    print(f"    bare executemany (baseline)   {n / statistics.median(base):>10,.0f} rows/s")


def growth(folder: Path, runs: int = 10) -> None:
    from bench_engine import layered_edges, make_state

    from germinate_nb import run, use_registry

    path = folder / "growth.sqlite"
    with RunStore.open(path):
        pass
    empty = path.stat().st_size
    with use_registry(), RunStore.open(path) as store:
        state = make_state("growth", layered_edges(1000)[0])
        for _ in range(runs):
            result = run(state, {"x": 0}, store=store)
        payload = sum(len(out.model_dump_json()) for out in result.outputs.values())
    # close() checkpoints the WAL into the file
    grown = path.stat().st_size - empty
    print(
        f"(c) store growth, {runs} real runs of bench_engine's 1,000-task state (output {{'x': 0}})"
    )
    print(f"    file growth                   {grown / runs:>10,.0f} bytes per 1,000 task runs")
    print(f"    output JSON alone (baseline)  {payload:>10,.0f} bytes per 1,000 task runs")


RESTART = r"""
import sys, time
t0 = time.perf_counter()
from pydantic import BaseModel
from germinate_nb.execution.store import RunStore, input_hash
class Payload(BaseModel):
    x: int = 0
keys = [(f"t{i}", "f" * 16, input_hash({"x": i})) for i in range(1000)]
t1 = time.perf_counter()
store = RunStore.open(sys.argv[1])
found = store.lookup_many("bench", keys)
outputs = {task: Payload.model_validate_json(text) for task, text in found.items()}
t2 = time.perf_counter()
single = {k[0]: store.lookup("bench", *k) for k in keys}
t3 = time.perf_counter()
misses = [store.lookup("bench", f"t{i}", "f" * 16, input_hash({"x": -i - 1})) for i in range(1000)]
t4 = time.perf_counter()
assert len(outputs) == 1000 and all(v is not None for v in single.values())
assert misses == [None] * 1000
store.close()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""


def reuse_after_restart(folder: Path, repeat: int) -> None:
    path = folder / "restart.sqlite"
    with RunStore.open(path) as store:
        for k in range(20):
            store.begin_run(f"r{k}", "bench", {"x": 0}, float(k))
            for r in records(1000, run_id=f"r{k}"):
                store.record(r)
            store.end_run(f"r{k}", float(k) + 1, "succeeded")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", RESTART, str(path)], env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        times.append([float(v) for v in out.stdout.split()])
    imports, many, single, misses = (statistics.median(t[i] for t in times) for i in range(4))
    print(
        f"(d) reuse after a restart (fresh process; store of 20 runs x 1,000), median of {repeat}"
    )
    print(f"    open + lookup_many + validate {many * 1e3:8.1f} ms for 1,000 tasks (target < 500)")
    print(f"    1,000 single lookup() calls   {single * 1e3:8.1f} ms (baseline)")
    print(f"    1,000 single lookup() misses  {misses * 1e3:8.1f} ms (input hash computed too)")
    print(f"    (interpreter imports before, not counted: {imports * 1e3:.0f} ms)")


ENGINE_RESTART = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[3])
from bench_engine import layered_edges, make_state
from germinate_nb import run
state = make_state("restart", layered_edges(1000)[0])
t1 = time.perf_counter()
result = run(state, {"x": 0}, reuse=True, store=sys.argv[1], max_workers=int(sys.argv[2]) or None)
t2 = time.perf_counter()
again = run(state, {"x": 0}, reuse=True, store=sys.argv[1], max_workers=int(sys.argv[2]) or None)
t3 = time.perf_counter()
print(json.dumps({"declare": t1 - t0, "run": t2 - t1, "memory": t3 - t2,
                  "counts": result.counts(), "again": again.counts()}))
"""


def engine_restart(folder: Path, repeat: int) -> None:
    path = folder / "engine-restart.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GERMINATE_STORE", None)

    def fresh(store: str, workers: int) -> dict[str, float]:
        out = subprocess.run(
            [sys.executable, "-c", ENGINE_RESTART, store, str(workers), str(ROOT / "benchmarks")],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        doc: dict[str, Any] = json.loads(out.stdout)
        return doc

    first = fresh(str(path), 0)  # fills the store (and exits: the rows are written at exit)
    assert first["counts"] == {"succeeded": 1000}, first
    print(
        f"(e) the engine after a restart: 1,000-task state, fresh process each, median of {repeat}"
    )
    print("    run(reuse=True) in ms          from the store   store off: all run   from memory")
    for workers, label in ((0, "threaded (explorer)"), (1, "serial")):
        stored, off, memory = [], [], []
        for _ in range(repeat):
            doc = fresh(str(path), workers)
            assert doc["counts"] == {"cached": 1000}, doc
            stored.append(doc["run"])
            memory.append(doc["memory"])
            doc = fresh("off", workers)
            assert doc["counts"] == {"succeeded": 1000}, doc
            off.append(doc["run"])
        s_ms, o_ms, m_ms = (statistics.median(x) * 1e3 for x in (stored, off, memory))
        print(f"    {label:<28} {s_ms:10.1f}   {o_ms:14.1f}   {m_ms:11.1f}")
    with RunStore.open(path) as store:
        info = store.info()
    print(
        f"    (target: < 500 ms from the store; the store then held {info.task_runs:,} task runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        record_cost(folder, args.rows, args.repeat)
        throughput(folder, args.rows, max(1, args.repeat // 2))
        growth(folder)
        reuse_after_restart(folder, args.repeat)
        engine_restart(folder, args.repeat)


if __name__ == "__main__":
    main()
