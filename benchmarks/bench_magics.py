"""Median time to declare a task through %%germinate_task in a 200-task notebook.

Run: python benchmarks/bench_magics.py [--tasks 200]
Target: < 5 ms per cell. Printed beside a plain cell defining a function, in the same shell.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time

from IPython.core.interactiveshell import InteractiveShell


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("germinate_nb")
    shell.run_cell(
        "from pydantic import BaseModel\nclass Counts(BaseModel):\n    n: int\n",
        store_history=False,
    )
    magic, plain = [], []
    for i in range(args.tasks):
        after = f" --after t{i - 1}" if i else ""
        cell = f"%%germinate_task t{i}{after} --output Counts\nCounts(n=len(str(input)) + {i})\n"
        with contextlib.redirect_stdout(io.StringIO()):  # the one-line confirmations
            t0 = time.perf_counter()
            result = shell.run_cell(cell, store_history=False, silent=True)
            magic.append(time.perf_counter() - t0)
        assert result.success, result.error_in_exec or result.error_before_exec
        t0 = time.perf_counter()
        shell.run_cell(f"def f{i}(input):\n    return len(str(input)) + {i}\n", silent=True)
        plain.append(time.perf_counter() - t0)
    from germinate_nb import TaskRegistry

    n = len(TaskRegistry.default().states["main"])
    assert n == args.tasks, n
    med, p90 = statistics.median(magic), sorted(magic)[int(0.9 * len(magic))]
    base = statistics.median(plain)
    print(f"tasks declared: {n}")
    print(
        f"%%germinate_task cell: median {med * 1000:.2f} ms, p90 {p90 * 1000:.2f} ms, "
        f"last 20 median {statistics.median(magic[-20:]) * 1000:.2f} ms"
    )
    print(f"plain def cell:       median {base * 1000:.2f} ms (ratio {med / base:.2f})")


if __name__ == "__main__":
    main()
