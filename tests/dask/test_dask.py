"""The same DAGs on a real distributed.LocalCluster with worker processes."""

import asyncio
import os
import signal
import sys
import threading
import time
import types

import pytest
from pydantic import BaseModel

from germinate_nb import DaskExecutor, Depends, State, TaskStatus, run, start_run

pytestmark = pytest.mark.dask


class X(BaseModel):
    x: int


class Both(BaseModel):
    x: int


class P(BaseModel):
    pid: int


def build_diamond(name="diamond", fail=False):
    s = State(name)

    @s.task(namespace=name)
    def source(input: X) -> X:
        return X(x=input.x + 1)

    @s.task(namespace=name)
    def left(input: X) -> X:
        if fail:
            raise RuntimeError(f"left broke on {input.x}")
        return X(x=input.x * 2)

    @s.task(namespace=name)
    async def right(input: X) -> X:
        await asyncio.sleep(0.01)
        return X(x=input.x * 3)

    @s.task(namespace=name)
    def join(input: Both) -> X:
        return X(x=input.x)

    @s.task(namespace=name)
    def after_left(input: X) -> X:
        return input

    source >> [left, right]
    left >> after_left
    return s


def comparable(result):
    return {
        n: (
            r.status.value,
            r.output,
            r.error.type if r.error else None,
            r.error.message if r.error else None,
            r.skipped_because,
            r.input,
        )
        for n, r in result.task_runs.items()
    }


def test_results_equal_the_local_engine(client):
    s = build_diamond()
    local = run(s, {"x": 1})
    remote = run(s, {"x": 1}, executor=DaskExecutor(client))
    assert remote.ok and comparable(remote) == comparable(local)
    assert remote.outputs["right"] == X(x=6)


def test_executor_dask_uses_current_client(client):
    s = build_diamond("current")
    assert run(s, {"x": 2}, executor="dask").outputs["left"] == X(x=6)


def test_failure_and_merge_conflict_texts_match_local(client):
    s = build_diamond("failing", fail=True)
    s.get("right") >> s.get("join")
    s.get("source") >> s.get("join")
    local = run(s, {"x": 1})
    remote = run(s, {"x": 1}, executor=DaskExecutor(client))
    assert comparable(remote) == comparable(local)
    assert remote.task_runs["left"].status is TaskStatus.FAILED
    assert remote.task_runs["after_left"].skipped_because == "left"
    assert remote.task_runs["join"].error.type == "MergeConflictError"
    assert "RuntimeError: left broke on 2" in remote.task_runs["left"].traceback


def test_tasks_from_a_dynamic_main_like_module(client):
    module = types.ModuleType("notebook_cells_xyz")
    sys.modules[module.__name__] = module
    try:
        exec(
            "from pydantic import BaseModel\n"
            "from germinate_nb import State, Depends\n"
            "class Words(BaseModel):\n    words: list[str]\n"
            "class Total(BaseModel):\n    total: int\n    pid: int\n"
            "def weight():\n    import os\n    return 10\n"
            "s = State('dynamic')\n"
            "@s.task(namespace='dynamic')\n"
            "def split(input: Words) -> Words:\n"
            "    return Words(words=[w.upper() for w in input.words])\n"
            "@s.task(namespace='dynamic')\n"
            "def total(input: Words, w: int = Depends(weight)) -> Total:\n"
            "    import os\n    return Total(total=w * len(input.words), pid=os.getpid())\n"
            "split >> total\n",
            module.__dict__,
        )
        result = run(module.s, {"words": ["a", "b"]}, executor=DaskExecutor(client))
    finally:
        del sys.modules[module.__name__]
    assert result.ok, result
    out = result.outputs["total"]
    assert out.total == 20 and out.pid != os.getpid()  # ran in a worker process


def test_magic_defined_task_runs_on_workers(client):
    from IPython.testing import globalipapp

    globalipapp.start_ipython()
    ip = globalipapp.get_ipython()
    ip.extension_manager.load_extension("germinate_nb")
    ip.run_cell(
        "from pydantic import BaseModel\nfrom germinate_nb import State\n"
        "class Num(BaseModel):\n    n: int\ncells = State('cells')\n"
    )
    ip.run_cell_magic(
        "germinate_task",
        "double --state cells --input Num --output Num",
        "import os\nNum(n=input.n * 2 + (0 if os.getpid() else 1))",
    )
    from germinate_nb import TaskRegistry

    state = TaskRegistry.default().states["cells"]
    result = run(state, {"n": 21}, executor=DaskExecutor(client))
    assert result.ok and result.outputs["double"].n == 42


def test_unpicklable_task_fails_naming_task_and_object(client):
    s = State("unpicklable")
    lock = threading.Lock()

    @s.task(namespace="unpicklable")
    def holds_lock(input: X) -> X:
        with lock:
            return input

    @s.task(namespace="unpicklable")
    def after(input: X) -> X:
        return input

    @s.task(namespace="unpicklable")
    def fine(input: X) -> X:
        return input

    holds_lock >> after
    result = run(s, {"x": 1}, executor=DaskExecutor(client))
    err = result.task_runs["holds_lock"].error
    assert result.task_runs["holds_lock"].status is TaskStatus.FAILED
    assert err.message.startswith(
        "task 'holds_lock' in state 'unpicklable' cannot be sent to the Dask workers: "
    )
    assert "TypeError: cannot pickle '_thread.lock' object" in err.message
    assert result.task_runs["after"].status is TaskStatus.SKIPPED
    assert result.task_runs["fine"].status is TaskStatus.SUCCEEDED


def test_descendants_of_unpicklable_task_declared_before_it_are_skipped(client):
    s = State("unpicklable_order")
    lock = threading.Lock()

    @s.task(namespace="unpicklable_order")
    def grandchild(input: X) -> X:
        return input

    @s.task(namespace="unpicklable_order")
    def child(input: X) -> X:
        return input

    @s.task(namespace="unpicklable_order")
    def root(input: X) -> X:
        with lock:
            return input

    root >> child >> grandchild
    result = run(s, {"x": 1}, executor=DaskExecutor(client))
    assert result.task_runs["root"].error.message.startswith(
        "task 'root' in state 'unpicklable_order' cannot be sent to the Dask workers: "
    )
    assert result.task_runs["child"].skipped_because == "root"
    assert result.task_runs["grandchild"].status is TaskStatus.SKIPPED


def test_progress_events_stream_while_running(client):
    s = State("streaming")

    @s.task(namespace="streaming")
    def quick(input: X) -> X:
        return input

    @s.task(namespace="streaming")
    def slow(input: X) -> X:
        import time as _t

        _t.sleep(1.5)
        return input

    seen = []
    handle = start_run(
        s,
        {"x": 1},
        executor=DaskExecutor(client),
        observers=[lambda ev, res, tr: seen.append((ev, tr and tr.name))],
    )
    deadline = time.time() + 10
    while ("task_end", "quick") not in seen and time.time() < deadline:
        time.sleep(0.05)
    assert ("task_end", "quick") in seen and not handle.done
    assert handle.wait(30).ok


def test_cancel_cancels_futures(client):
    s = State("cancelme")

    @s.task(namespace="cancelme")
    def slow(input: X) -> X:
        import time as _t

        _t.sleep(20)
        return input

    @s.task(namespace="cancelme")
    def after(input: X) -> X:
        return input

    slow >> after
    handle = start_run(s, {"x": 1}, executor=DaskExecutor(client))
    time.sleep(1.0)
    t0 = time.perf_counter()
    handle.cancel()
    result = handle.wait(10)
    assert result is not None and time.perf_counter() - t0 < 5
    assert result.status == "cancelled"
    assert {r.status for r in result.task_runs.values()} == {TaskStatus.CANCELLED}


def test_reuse_works_on_the_cluster(client):
    s = build_diamond("reused")
    first = run(s, {"x": 1}, executor=DaskExecutor(client), reuse=True)
    second = run(s, {"x": 1}, executor=DaskExecutor(client), reuse=True)
    assert first.ok and set(second.counts()) == {"cached"}
    assert second.outputs == first.outputs


def test_killed_worker_is_retried_or_reported_never_hangs(client, tmp_path):
    s = State("killed")
    marker = tmp_path / "pid"

    @s.task(namespace="killed")
    def victim(input: X) -> X:
        import os as _os
        import time as _t

        if not marker.exists():
            marker.write_text(str(_os.getpid()))
            _t.sleep(30)
        return X(x=input.x + 1)

    handle = start_run(s, {"x": 1}, executor=DaskExecutor(client))
    deadline = time.time() + 20
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.1)
    os.kill(int(marker.read_text()), signal.SIGKILL)
    result = handle.wait(120)
    assert result is not None, "the run hung after a worker died"
    victim_run = result.task_runs["victim"]
    if result.ok:
        assert victim_run.output == X(x=2)  # Dask moved the task to another worker
    else:
        assert victim_run.status is TaskStatus.FAILED and "Killed" in victim_run.error.type
    client.wait_for_workers(2, timeout=60)


def test_no_client_is_a_clear_error(monkeypatch):
    import distributed

    def none():
        raise ValueError("No clients found")

    monkeypatch.setattr(distributed, "get_client", none)
    from germinate_nb.execution.dask import NoDaskClientError

    with pytest.raises(NoDaskClientError, match=r"backend='dask' found no Dask client. Start one"):
        DaskExecutor()


def test_without_dask_installed_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'germinate_nb\[dask\]'"):
        DaskExecutor()
    s = build_diamond("nodask")
    with pytest.raises(ImportError, match=r"pip install 'germinate_nb\[dask\]'"):
        run(s, {"x": 1}, executor="dask")


def test_depends_runs_on_the_worker(client):
    s = State("deps")

    def where():
        import os as _os

        return _os.getpid()

    @s.task(namespace="deps")
    def a(input: X, pid: int = Depends(where)) -> P:
        return P(pid=pid)

    result = run(s, {"x": 1}, executor=DaskExecutor(client))
    assert result.outputs["a"].pid != os.getpid()


def test_explorer_offers_the_cluster_and_shows_its_run_live(client):
    from germinate_nb import explore

    s = build_diamond("explored")
    ex = explore(s)
    toolbar = ex.children[0].children
    assert ex.executor_selector in toolbar
    ex.executor_selector.value = "dask"
    ex.input_form.set(x=1)
    ex.run_button.click()
    result = ex.wait(60)
    assert result.ok and result.outputs["right"] == X(x=6)
    join = ex.phase_strip.buttons["join"]
    classes = [c for c in join._dom_classes if c.startswith("germinate-status-")]
    assert classes == ["germinate-status-succeeded"]
