"""DaskBackend: run a state's DAG on a Dask distributed cluster (the only importer of dask).

An eager backend: every task of the run is submitted at once as a future whose dependencies
are its parents' futures, so the cluster schedules by dependencies and data moves from worker
to worker. Task code and models travel by value (cloudpickle); the work on the worker is the
local engine's own task life (:mod:`germinate_nb.execution.invoke`), so statuses and error
texts are the same.

A run with retries, timeouts or concurrency limits submits each task when it becomes ready
instead (its parents' futures are already here, so data still moves from worker to worker):
the run's own schedule enforces limits across the whole cluster, resends a failed attempt
after its delay, and cancels a future past its timeout (a timeout counts from the task's
submission; a task already executing on a worker runs on there, its result ignored).
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from germinate_nb.core.executor import DependencyCache, TaskExecutor
from germinate_nb.errors import GerminateError
from germinate_nb.execution import logs
from germinate_nb.execution.backend import Job, Outcome, RunControl
from germinate_nb.execution.cache import CacheEntry
from germinate_nb.execution.invoke import aexecute, describe_error, execute
from germinate_nb.execution.result import TaskError

__all__ = ["DaskBackend", "DaskExecutor", "NoDaskClientError"]

INSTALL_HINT = "pip install 'germinate_nb[dask]'"


class NoDaskClientError(GerminateError, ValueError):
    """``backend="dask"`` without a running ``distributed.Client``."""


@dataclass
class RemoteTask:
    """What a worker needs to run one task (a Job without its run-local parts)."""

    name: str
    state: str
    executor: TaskExecutor
    parents: tuple[str, ...]
    run_input: Mapping[str, Any] | None
    cached: CacheEntry | None
    run_id: str
    attempt: int = 1
    retry_on: tuple[type[BaseException], ...] | None = None


_RUN_DEPS: OrderedDict[str, DependencyCache] = OrderedDict()
_RUN_DEPS_LOCK = threading.Lock()


def _deps_for(run_id: str) -> DependencyCache:
    """The Depends values of one run on this worker (a few recent runs are kept)."""
    with _RUN_DEPS_LOCK:
        cache = _RUN_DEPS.get(run_id)
        if cache is None:
            cache = _RUN_DEPS[run_id] = DependencyCache()
            while len(_RUN_DEPS) > 8:
                _RUN_DEPS.popitem(last=False)
        return cache


def load_specs(payload: bytes) -> dict[str, RemoteTask]:
    """Unpickle a run's task specs: one Dask task, so each worker unpickles them once."""
    import cloudpickle

    specs: dict[str, RemoteTask] = cloudpickle.loads(payload)
    return specs


def run_remote(name: str, specs: dict[str, RemoteTask], *parents: Outcome) -> Outcome:
    """Run one task on a worker; never raises (the outcome carries any error)."""
    spec = specs[name]
    if not logs.is_installed():  # a worker process: route what tasks print to their logs
        logs.install()
    for parent, outcome in zip(spec.parents, parents, strict=True):
        if outcome.kind not in ("ok", "cached"):
            return Outcome(name, "skipped", skipped_because=parent)
    job = Job(
        name,
        spec.state,
        spec.executor,
        spec.parents,
        {p: o.dump or {} for p, o in zip(spec.parents, parents, strict=True)},
        spec.run_input,
        spec.cached,
        spec.run_id,
        threading.Event(),
        _deps_for(spec.run_id),
        spec.attempt,
        retry_on=spec.retry_on,
    )
    lane = f"dask {threading.current_thread().name}"
    if spec.executor.is_async():
        outcome = asyncio.run(aexecute(job, lane))
    else:
        outcome = execute(job)
        outcome.lane = lane
    return outcome


def unsendable(name: str, error: TaskError) -> Outcome:
    """The outcome of a task whose code could not be pickled (it fails; its children skip)."""
    return Outcome(name, "error", error=error)


def _by_value(obj: Any, cloudpickle: Any) -> None:
    """Make cloudpickle ship the module of ``obj`` by value when workers cannot import it."""
    module_name = getattr(obj, "__module__", None)
    if not module_name or module_name == "__main__":
        return
    module = sys.modules.get(module_name)
    if module is None or getattr(module, "__file__", None):
        return  # an importable module: workers import it themselves
    try:
        cloudpickle.register_pickle_by_value(module)
    except ValueError:
        pass


class DaskBackend:
    """Runs tasks on a Dask distributed cluster: ``run(state, input, backend=DaskBackend(c))``.

    Parameters
    ----------
    client
        A ``distributed.Client``; by default the current one (``distributed.get_client()``).

    Raises
    ------
    ImportError
        When ``distributed`` or ``cloudpickle`` is not installed.
    NoDaskClientError
        When no client is given and none is running.
    """

    eager = True

    def __init__(self, client: Any = None) -> None:
        try:
            import cloudpickle
            import distributed
        except ImportError as err:
            msg = f"running on Dask needs the dask extra: {INSTALL_HINT} ({err})."
            raise ImportError(msg) from None
        if client is None:
            try:
                client = distributed.get_client()
            except ValueError:
                msg = (
                    "backend='dask' found no Dask client. Start one first, e.g. "
                    "`from distributed import Client; client = Client()` (a local cluster) or "
                    "`Client('tcp://scheduler:8786')`, or pass DaskBackend(client)."
                )
                raise NoDaskClientError(msg) from None
        self.client = client
        self._cloudpickle = cloudpickle
        self._run: RunControl | None = None
        self._futures: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._batches = 0

    def __repr__(self) -> str:
        return f"<DaskBackend {self.client!r}>"

    # -- the protocol -------------------------------------------------------------------------

    def open(self, run: RunControl) -> None:
        """Serve ``run``."""
        self._run = run
        self._futures = {}

    def submit(self, jobs: Sequence[Job]) -> None:
        """Submit every job at once, each depending on its parents' futures."""
        run = self._run
        assert run is not None
        specs: dict[str, RemoteTask] = {}
        for job in jobs:
            executor = job.executor
            # computed here, it travels with the executor: a worker that cannot read the
            # source of a notebook function would fingerprint its bytecode instead, and the
            # outputs it returns would never be reused here (in memory or from the run store)
            executor.fingerprint  # noqa: B018
            for obj in (executor.callable, executor.input_schema, executor.output_schema):
                if obj is not None:
                    _by_value(obj, self._cloudpickle)
            specs[job.name] = RemoteTask(
                job.name,
                job.state,
                executor,
                job.parents,
                job.run_input,
                job.cached,
                run.run_id,
                job.attempt,
                job.retry_on,
            )
        payload, unsent = self._pickle_specs(specs, run.name)
        client = self.client
        with self._lock:
            self._batches += 1
            batch = self._batches
        suffix = "" if batch == 1 else f"-{batch}"  # a run sending tasks as they become ready
        specs_future = client.submit(
            load_specs, payload, key=f"germinate-{run.name}-specs-{run.run_id}{suffix}", pure=False
        )
        futures = self._futures
        for job in jobs:
            again = "" if job.attempt == 1 else f"-attempt{job.attempt}"
            key = f"germinate-{run.name}-{job.name}-{run.run_id}{again}"
            if job.name in unsent:
                fut = client.submit(unsendable, job.name, unsent[job.name], key=key, pure=False)
            else:
                parents = [futures[p] for p in job.parents]
                fut = client.submit(run_remote, job.name, specs_future, *parents, key=key)
            with self._lock:
                futures[job.name] = fut
            fut.add_done_callback(functools.partial(self._done, job.name, job.attempt))

    def cancel(self, names: Collection[str]) -> set[str]:
        """Cancel futures: all the run's once it is cancelled, else those of ``names``.

        A task already executing on a worker ends there unseen.
        """
        run = self._run
        with self._lock:
            if run is None or run.cancel_event.is_set():
                futures = list(self._futures.values())
            else:
                futures = [self._futures[n] for n in names if n in self._futures]
        if futures:
            self.client.cancel(futures)
        return set()

    def settle(self, timeout: float) -> None:
        """Nothing to wait for: cancelled futures are dropped by the scheduler."""

    def join(self, finished: threading.Event) -> None:
        """Wait for the run's end (Ctrl-C interrupts)."""
        finished.wait()

    def wake(self) -> None:
        """Nothing to wake: ``join`` waits on the run's event."""

    def close(self) -> None:
        """Release the results held on the cluster."""
        with self._lock:
            self._futures = {}

    # -- inside -------------------------------------------------------------------------------

    def _done(self, name: str, attempt: int, fut: Any) -> None:
        run = self._run
        if run is None:
            return
        try:
            outcome: Outcome = fut.result()
        except BaseException as err:  # noqa: BLE001 - the cluster's error: a killed worker...
            if run.cancel_event.is_set():
                return
            outcome = Outcome(name, "error", error=describe_error(err), attempt=attempt)
        run.deliver(outcome)

    def _pickle_specs(
        self, specs: dict[str, RemoteTask], state: str
    ) -> tuple[bytes, dict[str, TaskError]]:
        """Pickle all specs at once; on failure find the tasks that cannot travel, drop them."""
        cloudpickle = self._cloudpickle
        unsent: dict[str, TaskError] = {}
        try:
            return cloudpickle.dumps(specs), unsent
        except Exception:
            pass
        for name, spec in list(specs.items()):
            try:
                cloudpickle.dumps(spec)
            except Exception as err:
                msg = (
                    f"task '{name}' in state '{state}' cannot be sent to the Dask workers: "
                    f"{type(err).__name__}: {err}. Keep objects such as locks, open files and "
                    "clients out of the task's globals and defaults (make them in a Depends "
                    "factory, which runs on the worker)."
                )
                unsent[name] = TaskError("PicklingError", msg, "")
                del specs[name]
        return cloudpickle.dumps(specs), unsent

    # the explorer asks whether a cluster is at hand without importing dask itself
    @staticmethod
    def available() -> bool:
        """Is there a current Dask client (without importing dask when it is not loaded)?"""
        if "distributed" not in sys.modules:
            return False
        try:
            sys.modules["distributed"].get_client()
        except Exception:
            return False
        return True


DaskExecutor = DaskBackend
"""The older name of :class:`DaskBackend`."""
