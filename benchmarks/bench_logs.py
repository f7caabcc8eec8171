"""Cost of per-task log capture, each figure beside a baseline measured in the same run.

Run: python benchmarks/bench_logs.py [--n 200000] [--repeat 5]

1. Per task: entering + leaving capture() vs a bare ContextVar.set/reset pair (and the same
   capture written as a @contextlib.contextmanager generator, for comparison), plus TaskLog().
2. Per print: a captured print() vs a print() to a plain StringIO; also the pass-through cost of
   the installed proxy outside any capture, and a captured print with echo.
3. Per logging record: uninstalled vs installed-but-not-captured vs captured.
Best of --repeat runs, each of --n operations.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import io
import logging
import sys
import time
from collections.abc import Callable, Iterator

from germinate_nb.execution import logs
from germinate_nb.execution.logs import TaskLog, capture, install, uninstall


def best_ns(fn: Callable[[int], None], n: int, repeat: int) -> float:
    """Best time per operation in ns."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn(n)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


VAR: contextvars.ContextVar[object] = contextvars.ContextVar("bench", default=None)


def bare_pair(n: int) -> None:
    value = object()
    for _ in range(n):
        token = VAR.set(value)
        VAR.reset(token)


def capture_pair(n: int) -> None:
    log = TaskLog()
    for _ in range(n):
        with capture(log):
            pass


@contextlib.contextmanager
def generator_capture(log: TaskLog) -> Iterator[TaskLog]:
    token = logs._ROUTE.set(logs._Capture(log, False))
    try:
        yield log
    finally:
        logs._ROUTE.reset(token)


def generator_pair(n: int) -> None:
    log = TaskLog()
    for _ in range(n):
        with generator_capture(log):
            pass


def new_logs(n: int) -> None:
    for _ in range(n):
        TaskLog()


LINE = "a line of task output"


def prints(n: int) -> None:
    for _ in range(n):
        print(LINE)


def captured_prints(n: int, echo: bool = False, limit: int = 10**9) -> None:
    with capture(TaskLog(limit=limit), echo=echo):
        prints(n)


def records(n: int) -> None:
    lg = logging.getLogger("bench")
    for _ in range(n):
        lg.info("record %d", 1)


def captured_records(n: int) -> None:
    with capture(TaskLog(limit=10**9)):
        records(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n, r = args.n, args.repeat

    real_stdout = sys.stdout
    lg = logging.getLogger("bench")
    lg.setLevel(logging.INFO)
    lg.addHandler(logging.NullHandler())
    lg.propagate = False
    results: list[tuple[str, float]] = []
    try:
        install()
        results.append(("ContextVar set+reset pair (baseline)", best_ns(bare_pair, n, r)))
        results.append(("capture() enter+exit", best_ns(capture_pair, n, r)))
        results.append(("  same as a @contextmanager generator", best_ns(generator_pair, n, r)))
        results.append(("TaskLog() creation", best_ns(new_logs, n, r)))
        uninstall()

        sys.stdout = io.StringIO()
        results.append(("print() to a StringIO (baseline)", best_ns(prints, n, r)))
        install()  # wraps that StringIO
        results.append(("print() through the proxy, not captured", best_ns(prints, n, r)))
        results.append(("print() captured to a TaskLog", best_ns(captured_prints, n, r)))
        results.append(
            ("print() captured with echo", best_ns(lambda k: captured_prints(k, True), n, r))
        )
        results.append(
            (
                "print() captured, DEFAULT_LIMIT (truncating)",
                best_ns(lambda k: captured_prints(k, limit=logs.DEFAULT_LIMIT), n, r),
            )
        )
        uninstall()
        sys.stdout = real_stdout

        results.append(("logging record, not installed (baseline)", best_ns(records, n, r)))
        install()
        results.append(("logging record, installed, not captured", best_ns(records, n, r)))
        results.append(("logging record, captured", best_ns(captured_records, n, r)))
    finally:
        uninstall()
        sys.stdout = real_stdout
        lg.propagate = True
    print(f"Python {sys.version.split()[0]}, n={n}, best of {r}")
    for label, ns in results:
        print(f"{label:<45} {ns / 1000:8.3f} µs")


if __name__ == "__main__":
    main()
