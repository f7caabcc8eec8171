import asyncio
import threading
import time

import pytest
from pydantic import BaseModel

from germinate_nb import (
    DagValidationError,
    RunFailedError,
    State,
    TaskStatus,
    arun,
    run,
)
from tests.execution.conftest import C, Q, T, X


def test_run_returns_outputs_and_statuses(design):
    result = run(design, {"text": "a b c"})
    assert result.ok and result.status == "succeeded"
    assert result.outputs == {"tokenize": T(tokens=["a", "b", "c"]), "count": C(n=3)}
    runs = result.task_runs
    assert runs["count"].status is TaskStatus.SUCCEEDED
    assert runs["count"].input == T(tokens=["a", "b", "c"])
    assert runs["tokenize"].started_at is not None and runs["tokenize"].duration >= 0


def test_model_input_is_accepted(design):
    assert run(design, Q(text="x y")).outputs["count"] == C(n=2)


def test_missing_root_field_is_refused_before_running(design):
    with pytest.raises(
        DagValidationError,
        match=r"(?s)state 'design' cannot run.*root task 'tokenize' in state 'design' needs input "
        r"field 'text: str'.*input keys: none",
    ):
        run(design)


def test_bad_run_input_type():
    s = State("s")
    with pytest.raises(TypeError, match="run input must be a dict or a pydantic model, got int"):
        run(s, 3)


def test_root_input_validation_error_names_task_and_field(design):
    result = run(design, {"text": 5})
    run_ = result.task_runs["tokenize"]
    assert run_.status is TaskStatus.FAILED
    assert run_.error.type == "TaskInputError"
    assert run_.error.message.startswith(
        "input of task 'tokenize' in state 'design' does not fit Q (from the run input): "
        "text: Input should be a valid string (got 5)"
    )
    assert result.task_runs["count"].status is TaskStatus.SKIPPED


def test_child_input_validation_error_names_parent():
    s = State("s")

    class Loose(BaseModel):
        n: object

    @s.task()
    def a(input: Q) -> Loose:
        return Loose(n="many")

    @s.task()
    def b(input: C) -> C:
        return input

    a >> b
    err = run(s, {"text": ""}).task_runs["b"].error
    assert (
        "input of task 'b' in state 's' does not fit C (from parent 'a'): n: Input should be"
        in (err.message)
    )


def test_merge_conflict_fails_child_naming_key_and_parents():
    s = State("s")

    @s.task()
    def left(input: Q) -> X:
        return X(x=1)

    @s.task()
    def right(input: Q) -> X:
        return X(x=2)

    @s.task()
    def join(input: X) -> X:
        return input

    [left, right] >> join
    result = run(s, {"text": ""})
    err = result.task_runs["join"].error
    assert err.type == "MergeConflictError"
    assert err.message.startswith(
        "task 'join' in state 's' gets key 'x' from parents 'left' (1) and 'right' (2) with "
        "different values."
    )


def test_merge_of_equal_values_is_fine():
    s = State("s")

    @s.task()
    def left(input: Q) -> X:
        return X(x=1)

    @s.task()
    def right(input: Q) -> X:
        return {"x": 1}

    @s.task()
    def join(input: X) -> X:
        return X(x=input.x + 1)

    [left, right] >> join
    assert run(s, {"text": ""}).outputs["join"] == X(x=2)


def test_output_dict_and_other_model_are_validated():
    s = State("s")

    class Other(BaseModel):
        n: int

    @s.task()
    def a(input: Q) -> C:
        return {"n": "7"}

    @s.task()
    def b(input: Q) -> C:
        return Other(n=3)

    out = run(s, {"text": ""}).outputs
    assert out == {"a": C(n=7), "b": C(n=3)}


def test_output_of_wrong_type_is_a_failure_with_fix():
    s = State("s")

    @s.task()
    def a(input: Q) -> C:
        return 5

    @s.task()
    def b(input: Q) -> C:
        return {"m": 1}

    runs = run(s, {"text": ""}).task_runs
    assert runs["a"].error.message == (
        "output of task 'a' in state 's' is int 5, not C. Return a C instance or a dict of its "
        "fields."
    )
    assert runs["b"].error.message.startswith(
        "output of task 'b' in state 's' does not fit C: n: Field required."
    )


def test_failure_skips_descendants_and_independent_branch_finishes():
    s = State("s")
    calls = []

    def make(name, fail=False):
        def f(input: X) -> X:
            calls.append(name)
            if fail:
                raise RuntimeError(f"{name} broke")
            return input

        f.__name__ = name
        return s.task()(f)

    a, b, c, d, e = make("a"), make("b", fail=True), make("c"), make("d"), make("e")
    a >> [b, c]
    [b, c] >> d
    c >> e
    result = run(s, {"x": 1})
    st = {n: r.status.value for n, r in result.task_runs.items()}
    assert st == {
        "a": "succeeded",
        "b": "failed",
        "c": "succeeded",
        "d": "skipped",
        "e": "succeeded",
    }
    assert result.task_runs["d"].skipped_because == "b"
    assert "d" not in calls
    assert result.task_runs["b"].error.message == "b broke"
    assert "RuntimeError: b broke" in result.task_runs["b"].traceback
    assert not result.ok and result.status == "failed"
    with pytest.raises(
        RunFailedError, match=r"run of state 's' failed .*\n- b: RuntimeError: b broke"
    ):
        result.raise_for_status()


def test_raise_for_status_returns_self_when_ok(design):
    result = run(design, {"text": "a"})
    assert result.raise_for_status() is result


def sleepy_state(n, seconds, kind):
    s = State(f"sleepy_{kind}")
    for i in range(n):
        if kind == "async":

            async def f(input: X) -> X:
                await asyncio.sleep(seconds)
                return input

        else:

            def f(input: X) -> X:
                time.sleep(seconds)
                return input

        f.__name__ = f"t{i}"
        s.task()(f)
    return s


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_independent_tasks_run_concurrently(kind):
    s = sleepy_state(6, 0.3, kind)
    t0 = time.perf_counter()
    result = run(s, {"x": 1})
    wall = time.perf_counter() - t0
    assert result.ok
    assert wall < 0.9, wall  # serial would be 1.8 s


def test_max_workers_one_runs_sync_tasks_one_by_one():
    s = sleepy_state(4, 0.1, "sync")
    t0 = time.perf_counter()
    run(s, {"x": 1}, max_workers=1)
    assert time.perf_counter() - t0 >= 0.4


def test_sync_tasks_run_off_the_calling_thread_by_default():
    s = State("s")
    seen = []

    @s.task()
    def a(input: X) -> X:
        seen.append(threading.current_thread().name)
        return input

    run(s, {"x": 1})
    run(s, {"x": 1}, max_workers=1)
    assert seen[0].startswith("germinate-worker-") and seen[1] == threading.current_thread().name


def test_dependencies_strategy_starts_child_before_phase_ends():
    s = State("s")

    @s.task()
    def fast(input: X) -> X:
        time.sleep(0.05)
        return input

    @s.task()
    def slow(input: X) -> C:
        time.sleep(0.5)
        return C(n=1)

    @s.task()
    def after_fast(input: X) -> X:
        return input

    fast >> after_fast
    starts = {}

    def record(event, result, task_run):
        if event == "task_start":
            starts[task_run.name] = time.perf_counter()

    run(s, {"x": 1}, observers=[record])
    assert starts["after_fast"] - starts["slow"] < 0.3
    starts.clear()
    run(s, {"x": 1}, observers=[record], strategy="phases")
    assert starts["after_fast"] - starts["slow"] >= 0.45


def test_run_inside_a_running_event_loop(design):
    async def main():
        return run(design, {"text": "x y z"})

    assert asyncio.run(main()).outputs["count"] == C(n=3)


def test_arun_runs_async_tasks_on_the_callers_loop():
    s = State("s")
    loops = []

    @s.task()
    async def a(input: X) -> X:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0.01)
        return input

    async def main():
        result = await arun(s, {"x": 2})
        return result, asyncio.get_running_loop()

    result, loop = asyncio.run(main())
    assert result.outputs["a"] == X(x=2)
    assert loops == [loop]


def test_async_tasks_share_one_loop_in_blocking_run():
    s = State("s")
    loops = []
    for i in range(3):

        async def f(input: X) -> X:
            loops.append(asyncio.get_running_loop())
            return input

        f.__name__ = f"t{i}"
        s.task()(f)
    run(s, {"x": 1})
    assert len(set(map(id, loops))) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"strategy": "fast"}, "strategy must be 'dependencies' or 'phases', got 'fast'"),
        ({"max_workers": 0}, "max_workers must be a positive int or None, got 0"),
        ({"executor": "spark"}, "executor='spark' is not known"),
    ],
)
def test_bad_options_are_refused(design, options, message):
    with pytest.raises(ValueError, match=message):
        run(design, {"text": ""}, **options)


def test_run_refuses_workflow_with_hint():
    from germinate_nb import Workflow

    with pytest.raises(TypeError, match="run\\(\\) takes a State, got Workflow. Use run_workflow"):
        run(Workflow("w"))


def test_cycle_is_refused_before_running():
    s = State("s")

    @s.task()
    def a(input: X) -> X:
        return input

    @s.task()
    def b(input: X) -> X:
        return input

    a >> b >> a
    with pytest.raises(DagValidationError, match="cycle in state 's': a -> b -> a"):
        run(s, {"x": 1})


def test_targets_run_selected_task_and_its_upstream_only():
    s = State("s")
    ran = []
    for name in ["a", "b", "c", "d"]:

        def f(input: X, _name=name) -> X:
            ran.append(_name)
            return input

        f.__name__ = name
        s.task()(f)
    a, b, c, d = (s.get(n) for n in "abcd")
    a >> b >> c
    a >> d
    result = run(s, {"x": 1}, targets=["b"])
    assert sorted(ran) == ["a", "b"]
    assert sorted(result.task_runs) == ["a", "b"]


def test_task_without_input_parameter():
    s = State("s")

    @s.task()
    def source() -> X:
        return X(x=4)

    @s.task()
    def double(input: X) -> X:
        return X(x=input.x * 2)

    source >> double
    assert run(s).outputs["double"] == X(x=8)


def test_last_result_is_recorded(design, fresh_registry):
    result = run(design, {"text": "a"})
    assert fresh_registry.last_results["design"] is result


def test_gc_threshold_is_raised_during_a_run_and_restored_soon_after(design, monkeypatch):
    import gc

    from germinate_nb.execution import gc_tuning

    monkeypatch.setattr(gc_tuning, "RESTORE_DELAY", 0.2)
    monkeypatch.setattr(gc_tuning.restore, "__defaults__", (0.2,))
    before = gc.get_threshold()
    seen = []
    run(design, {"text": "a"}, observers=[lambda ev, res, tr: seen.append(gc.get_threshold()[0])])
    assert set(seen) == {max(before[0], 50_000)}
    run(design, {"text": "a"})  # a run right after keeps the raised threshold
    assert gc.get_threshold()[0] == max(before[0], 50_000)
    deadline = time.monotonic() + 5
    while gc.get_threshold() != before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gc.get_threshold() == before
