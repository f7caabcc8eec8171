"""Limits, retries and timeouts on a real distributed.LocalCluster (worker processes)."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import BaseModel

from germinate_nb import DaskBackend, State, TaskStatus, run
from tests.execution.limits_helpers import limited_state, most_in_flight

pytestmark = pytest.mark.dask


class N(BaseModel):
    n: int


@pytest.mark.parametrize("kind", ["sync", "mixed"])
def test_a_limit_of_two_holds_across_the_cluster(client, kind):
    s = limited_state(f"dlim_{kind}", kind=kind)
    result = run(s, {"seconds": 0.05}, backend=DaskBackend(client), limits={"api": 2}, echo=False)
    assert result.ok, result
    spans = list(result.outputs.values())
    assert len(spans) == 20
    assert most_in_flight(spans) == 2  # perf_counter is the machine's monotonic clock


def test_retries_and_timeouts_on_dask(client):
    s = State("dretry")

    @s.task(namespace="dretry", retries=2, retry_delay=0.01)
    def flaky(input: N) -> N:
        # each attempt runs on some worker: fail unless this is (at least) the 2nd attempt
        from germinate_nb import current_task

        if current_task().attempt < 2:
            raise ConnectionError("flaky network")
        return N(n=input.n + 1)

    @s.task(namespace="dretry", timeout=0.3)
    async def hangs(input: N) -> N:
        await asyncio.sleep(10)
        return input

    flaky >> hangs
    t0 = time.perf_counter()
    result = run(s, {"n": 1}, backend=DaskBackend(client), echo=False)
    assert time.perf_counter() - t0 < 5
    tr = result.task_runs["flaky"]
    assert tr.status is TaskStatus.SUCCEEDED and result.outputs["flaky"] == N(n=2)
    assert [a.status for a in tr.attempts] == ["failed", "succeeded"]
    hung = result.task_runs["hangs"]
    assert hung.status is TaskStatus.FAILED and hung.error.type == "TaskTimeoutError"
    assert "task 'hangs' in state 'dretry' timed out" in hung.error.message
