"""Runs on a real LocalCluster are recorded in the run store, and reused locally after it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from germinate_nb import DaskBackend, State, TaskRegistry, run
from germinate_nb.execution import store as store_module

pytestmark = pytest.mark.dask


class X(BaseModel):
    x: int


def build() -> State:
    s = State("clustered")

    @s.task(namespace="clustered")
    def double(input: X) -> X:
        return X(x=input.x * 2)

    @s.task(namespace="clustered")
    def inc(input: X) -> X:
        return X(x=input.x + 1)

    double >> inc
    return s


@pytest.fixture(autouse=True)
def isolated_stores():
    before = set(store_module._REGISTRY)
    yield
    for key in set(store_module._REGISTRY) - before:
        store_module._REGISTRY.pop(key).close(warn=False)


def test_a_dask_run_is_recorded_and_reused_by_a_local_run_after_a_restart(client, tmp_path):
    path = tmp_path / "runs.sqlite"
    state = build()
    result = run(state, {"x": 3}, backend=DaskBackend(client), store=path)
    assert result.ok and result.outputs["inc"] == X(x=7)
    rows = {r.task: r for r in result.store.task_runs(result.run_id)}
    assert {t: r.status for t, r in rows.items()} == {"double": "succeeded", "inc": "succeeded"}
    assert rows["inc"].output_json == '{"x":7}' and rows["inc"].reusable
    # the fingerprint recorded is the client's, whatever the worker could read of the source
    assert rows["double"].fingerprint == state.get("double").executor.fingerprint
    TaskRegistry.set_default(TaskRegistry())  # a restart
    again = run(build(), {"x": 3}, reuse=True, store=path)
    assert again.counts() == {"cached": 2} and again.outputs["inc"] == X(x=7)
