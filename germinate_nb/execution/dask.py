"""DaskExecutor: run a state's DAG on a Dask distributed cluster (the only importer of dask).

Each task becomes one key of a Dask graph whose dependencies are its parents' keys, so the
cluster schedules by dependencies. Task code and models travel by value (cloudpickle); the work
done on the worker (merge, validation, the call, reuse) is the local engine's own functions, so
statuses and error texts are the same.
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from germinate_nb.core.executor import DependencyCache, TaskExecutor
from germinate_nb.errors import GerminateError
from germinate_nb.execution.cache import CacheEntry
from germinate_nb.execution.dataflow import build_input, merge_outputs
from germinate_nb.execution.local import call_async, call_sync, task_error
from germinate_nb.execution.result import TaskError, TaskStatus

if TYPE_CHECKING:
    from germinate_nb.execution.runner import _Run

__all__ = ["DaskExecutor", "NoDaskClientError"]

INSTALL_HINT = "pip install 'germinate_nb[dask]'"


class NoDaskClientError(GerminateError, ValueError):
    """``executor="dask"`` without a running ``distributed.Client``."""


@dataclass
class RemoteTask:
    """What a worker needs to run one task: the same fields the local engine reads."""

    name: str
    state: str
    executor: TaskExecutor
    parents: tuple[str, ...]
    run_input: dict[str, Any] | None
    cached: CacheEntry | None
    run_id: str


# outcome: (kind, value, seconds, input model, dumped output); kind is ok|cached|error|skipped
Outcome = tuple[str, Any, float, Any, Any]

_RUN_DEPS: OrderedDict[str, DependencyCache] = OrderedDict()
_RUN_DEPS_LOCK = threading.Lock()


def _deps_for(run_id: str) -> DependencyCache:
    """Return the Depends values of one run on this worker (a few recent runs are kept)."""
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


def run_remote(name: str, specs: dict[str, RemoteTask], *parent_outcomes: Outcome) -> Outcome:
    """Run one task on a worker; never raises (the outcome carries any error)."""
    spec = specs[name]
    for parent, outcome in zip(spec.parents, parent_outcomes, strict=True):
        if outcome[0] not in ("ok", "cached"):
            return ("skipped", parent, 0.0, None, None)
    try:
        if spec.parents:
            dumps = [(p, o[4]) for p, o in zip(spec.parents, parent_outcomes, strict=True)]
            data = merge_outputs(spec.name, spec.state, dumps)
        else:
            data = spec.run_input or {}
        model = build_input(spec, spec.state, data, list(spec.parents))  # type: ignore[arg-type]
    except GerminateError as err:
        return ("error", task_error(err, with_traceback=False), 0.0, None, None)
    executor = spec.executor
    if spec.cached is not None and spec.cached.matches(executor.fingerprint, model):
        output = spec.cached.output
        return ("cached", output, 0.0, model, output.model_dump())
    deps = _deps_for(spec.run_id)
    if executor.is_async():
        kind, value, seconds = asyncio.run(call_async(spec, spec.state, model, deps))  # type: ignore[arg-type]
    else:
        kind, value, seconds = call_sync(spec, spec.state, model, deps)  # type: ignore[arg-type]
    dump = value.model_dump() if kind == "ok" else None
    return (kind, value, seconds, model, dump)


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


class DaskExecutor:
    """Runs tasks on a Dask distributed cluster: ``run(state, input, executor=DaskExecutor(c))``.

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
                    "executor='dask' found no Dask client. Start one first, e.g. "
                    "`from distributed import Client; client = Client()` (a local cluster) or "
                    "`Client('tcp://scheduler:8786')`, or pass DaskExecutor(client)."
                )
                raise NoDaskClientError(msg) from None
        self.client = client
        self._cloudpickle = cloudpickle

    def __repr__(self) -> str:
        return f"<DaskExecutor {self.client!r}>"

    # -- the driver, called by the run in its scheduling thread -----------------------------

    def drive(self, run: _Run) -> None:
        """Submit the run's graph, then turn completions into statuses and events."""
        cloudpickle = self._cloudpickle
        run_id = uuid.uuid4().hex[:12]
        names = [t.name for t in run.tasks]
        keys = {name: f"germinate-{run.name}-{name}-{run_id}" for name in names}
        specs_key = f"germinate-{run.name}-specs-{run_id}"
        graph: dict[str, Any] = {}
        specs: dict[str, RemoteTask] = {}
        for task in run.tasks:
            executor = task.executor
            assert executor is not None
            for obj in (executor.callable, executor.input_schema, executor.output_schema):
                if obj is not None:
                    _by_value(obj, cloudpickle)
            entry = None
            if run.reuse:
                from germinate_nb.execution import cache as reuse_cache

                entry = reuse_cache.lookup(run.state.registry, run.name, task.name)
            specs[task.name] = RemoteTask(
                name=task.name,
                state=run.name,
                executor=executor,
                parents=tuple(run.parents[task.name]),
                run_input=run.input_data if not run.parents[task.name] else None,
                cached=entry,
                run_id=run_id,
            )
        payload, unsent = self._pickle_specs(specs, run.name)
        if specs:
            graph[specs_key] = (load_specs, payload)
        for name, spec in specs.items():
            graph[keys[name]] = (run_remote, name, specs_key, *(keys[p] for p in spec.parents))
        # every descendant of an unsent task stays out of the graph (declaration order is not
        # topological, so walk the children rather than the task list)
        stack = [c for name in unsent for c in run.children[name]]
        while stack:
            name = stack.pop()
            if graph.pop(keys[name], None) is not None:
                stack.extend(run.children[name])
        sent = [n for n in names if keys[n] in graph]
        done: queue.SimpleQueue[Any] = run.queue
        futures = self.client.get(graph, [keys[n] for n in sent], sync=False) if sent else []
        for name, fut in zip(sent, futures, strict=True):
            run.futures[name] = fut
            fut.add_done_callback(lambda f, name=name: done.put((name, f)))
        try:
            _Driver(run, unsent).loop()
        finally:
            if run.cancel_requested:
                self.client.cancel(list(run.futures.values()))
            run.futures.clear()  # release the results held on the cluster
            del futures

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


class _Driver:
    """Applies outcomes in dependency order with the local engine's status logic."""

    def __init__(self, run: _Run, unsent: dict[str, TaskError]) -> None:
        self.run = run
        self.unsent = unsent
        self.outcomes: dict[str, Outcome] = {}

    def _start(self, name: str) -> None:
        tr = self.run.result.task_runs[name]
        if tr.status is not TaskStatus.PENDING:
            return
        tr.status = TaskStatus.RUNNING
        tr.start_time = time.time()
        self.run.started[name] = time.perf_counter()
        self.run.dispatcher.emit("on_task_start", tr)
        if name in self.unsent:
            self.run._complete(name, ("error", self.unsent[name], 0.0))

    def _drain_ready(self) -> None:
        run = self.run
        progressed = True
        while progressed:
            progressed = False
            while run.ready:
                self._start(run.ready.popleft())
                progressed = True
            for name in list(self.outcomes):
                if run.result.task_runs[name].status is TaskStatus.RUNNING:
                    self._apply(name, self.outcomes.pop(name))
                    progressed = True
                elif run.result.task_runs[name].status.is_final:
                    del self.outcomes[name]

    def _apply(self, name: str, outcome: Outcome) -> None:
        run = self.run
        kind, value, seconds, model, _dump = outcome
        tr = run.result.task_runs[name]
        tr.input = model
        if kind == "cached":
            tr.status = TaskStatus.CACHED
            tr.output = value
            tr.duration = 0.0
            run.dispatcher.emit("on_task_end", tr)
            run._released(name, value)
        elif kind in ("ok", "error"):
            run._complete(name, (kind, value, seconds))
        elif tr.status is TaskStatus.RUNNING:  # "skipped" where this side saw the parent succeed
            msg = f"task '{name}' was not run on the cluster: its parent '{value}' did not succeed"
            run._complete(name, ("error", TaskError("RuntimeError", msg, ""), 0.0))
        # otherwise "skipped" needs nothing: the failed parent already skipped this task

    def loop(self) -> None:
        from germinate_nb.execution.runner import WAKE

        run = self.run
        for name, n in run.waiting.items():
            if n == 0:
                run._make_ready(name)
        self._drain_ready()
        while run.remaining > 0:
            if run.cancel_requested:
                run._cancel_all()
                return
            item = run.queue.get()
            if item is not WAKE:
                name, fut = item
                try:
                    outcome: Outcome = fut.result()
                except BaseException as err:  # the cluster's error: a killed worker, a cancel
                    if run.cancel_requested:
                        continue
                    outcome = ("error", task_error(err), 0.0, None, None)
                self.outcomes[name] = outcome
            self._drain_ready()
