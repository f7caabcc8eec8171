"""Chaos: random DAGs of faulty, slow, sync and async tasks, with random cancels."""

from __future__ import annotations

import asyncio
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from germinate_nb import Depends, State, TaskExecutor, start_run, use_registry

FAULTS = ("exception", "base", "system-exit", "keyboard", "bad-str", "depends")
BEHAVIOURS = ("ok", "sleep", *FAULTS)


class Chaos(BaseException):
    pass


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("no str")


def _raise(kind: str):
    if kind == "exception":
        raise ValueError("planned failure")
    if kind == "base":
        raise Chaos("planned BaseException")
    if kind == "system-exit":
        raise SystemExit(4)
    if kind == "keyboard":
        raise KeyboardInterrupt
    raise BadStr


def _broken_factory():
    raise Chaos("the factory is broken")


def _task(i: int, behaviour: str, is_async: bool) -> TaskExecutor:
    name = f"t{i}"

    def value(input: BaseModel) -> dict:
        total = sum(v for v in input.model_dump().values() if isinstance(v, int))
        return {name: total + i}

    if behaviour == "depends":

        def fn(input: BaseModel, dep=Depends(_broken_factory)) -> BaseModel:
            return value(input)

    elif is_async:

        async def fn(input: BaseModel) -> BaseModel:
            await asyncio.sleep(0.002 if behaviour == "sleep" else 0)
            if behaviour in FAULTS:
                _raise(behaviour)
            return value(input)

    else:

        def fn(input: BaseModel) -> BaseModel:
            if behaviour == "sleep":
                time.sleep(0.002)
            if behaviour in FAULTS:
                _raise(behaviour)
            return value(input)

    return TaskExecutor(f"{name}_executor", fn, input_schema=BaseModel, output_schema=BaseModel)


@st.composite
def chaos_dags(draw):
    n = draw(st.integers(1, 60))
    parents = [[]]
    for i in range(1, n):
        parents.append(sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))))
    behaviours = [draw(st.sampled_from(BEHAVIOURS)) for _ in range(n)]
    kinds = [draw(st.booleans()) for _ in range(n)]
    cancel_after = draw(st.none() | st.floats(0.0, 0.03))
    workers = draw(st.sampled_from([None, 1, 3]))
    return parents, behaviours, kinds, cancel_after, workers


def _oracle(parents: list[list[int]], seed: int) -> dict[str, int]:
    values: dict[str, int] = {}
    for i, ps in enumerate(parents):
        total = seed if not ps else sum(values[f"t{p}"] for p in ps)
        values[f"t{i}"] = total + i
    return values


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(chaos_dags())
def test_every_run_ends_and_every_fault_free_task_has_its_true_output(dag):
    parents, behaviours, kinds, cancel_after, workers = dag
    expected = _oracle(parents, seed=5)
    with use_registry():
        s = State("chaos")
        for i, ps in enumerate(parents):
            s.define_task(f"t{i}", _task(i, behaviours[i], kinds[i]), parents=[f"t{p}" for p in ps])
        handle = start_run(s, {"seed": 5}, max_workers=workers)
        if cancel_after is not None:
            time.sleep(cancel_after)
            handle.cancel()
        result = handle.wait(20)
        assert result is not None, "the run did not end within 20 s"
    faulty: set[str] = set()
    for i, ps in enumerate(parents):
        if behaviours[i] in FAULTS or any(f"t{p}" in faulty for p in ps):
            faulty.add(f"t{i}")
    cancelled = result.status == "cancelled"
    for name, run_ in result.task_runs.items():
        assert run_.status.is_final, f"{name} ended {run_.status}"
        if run_.status.is_ok:
            assert name not in faulty
            assert run_.output.model_dump()[name] == expected[name]
        elif name not in faulty:
            assert cancelled and run_.status.value == "cancelled", f"{name}: {run_!r}"
        elif not cancelled:
            i = int(name[1:])
            upstream_fault = any(f"t{p}" in faulty for p in parents[i])
            assert run_.status.value == ("skipped" if upstream_fault else "failed"), f"{name}"
    assert result.ok == (not faulty and not cancelled)
