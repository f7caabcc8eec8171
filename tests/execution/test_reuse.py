from germinate_nb import State, TaskStatus, clear_cache, run
from tests.execution.conftest import X

CALLS = []


def build():
    s = State("s")

    @s.task()
    def a(input: X) -> X:
        CALLS.append("a")
        return X(x=input.x + 1)

    @s.task()
    def b(input: X) -> X:
        CALLS.append("b")
        return X(x=input.x * 10)

    @s.task()
    def c(input: X) -> X:
        CALLS.append("c")
        return input

    @s.task()
    def side(input: X) -> X:
        CALLS.append("side")
        return input

    a >> b >> c
    a >> side
    return s


def statuses(result):
    return {n: r.status.value for n, r in result.task_runs.items()}


def test_unchanged_tasks_are_cached():
    CALLS.clear()
    s = build()
    run(s, {"x": 1}, reuse=True)
    assert sorted(CALLS) == ["a", "b", "c", "side"]
    CALLS.clear()
    result = run(s, {"x": 1}, reuse=True)
    assert CALLS == []
    assert set(statuses(result).values()) == {"cached"}
    assert result.ok and result.outputs["c"] == X(x=20)


def test_changed_input_reruns_everything_downstream():
    CALLS.clear()
    s = build()
    run(s, {"x": 1}, reuse=True)
    CALLS.clear()
    run(s, {"x": 2}, reuse=True)
    assert sorted(CALLS) == ["a", "b", "c", "side"]


def test_editing_one_task_reruns_it_and_its_descendants_only():
    CALLS.clear()
    s = build()
    run(s, {"x": 1}, reuse=True)
    CALLS.clear()

    @s.task()
    def b(input: X) -> X:
        CALLS.append("b2")
        return X(x=input.x * 100)

    result = run(s, {"x": 1}, reuse=True)
    assert sorted(CALLS) == ["b2", "c"]
    assert statuses(result) == {"a": "cached", "b": "succeeded", "c": "succeeded", "side": "cached"}
    assert result.outputs["c"] == X(x=200)


def test_reuse_false_runs_everything():
    CALLS.clear()
    s = build()
    run(s, {"x": 1})
    CALLS.clear()
    run(s, {"x": 1})
    assert len(CALLS) == 4


def test_run_without_reuse_still_fills_cache():
    CALLS.clear()
    s = build()
    run(s, {"x": 1})
    CALLS.clear()
    run(s, {"x": 1}, reuse=True)
    assert CALLS == []


def test_clear_cache_forgets(fresh_registry):
    CALLS.clear()
    s = build()
    run(s, {"x": 1}, reuse=True)
    assert clear_cache(s) == 4
    assert fresh_registry.cache == {}
    CALLS.clear()
    run(s, {"x": 1}, reuse=True)
    assert len(CALLS) == 4


def test_failed_task_is_not_cached():
    s = State("f")
    attempts = []

    @s.task()
    def flaky(input: X) -> X:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first time")
        return input

    assert run(s, {"x": 1}, reuse=True).task_runs["flaky"].status is TaskStatus.FAILED
    assert run(s, {"x": 1}, reuse=True).task_runs["flaky"].status is TaskStatus.SUCCEEDED
    assert run(s, {"x": 1}, reuse=True).task_runs["flaky"].status is TaskStatus.CACHED
    assert len(attempts) == 2


def test_cache_holds_one_entry_per_task(fresh_registry):
    s = build()
    for x in range(5):
        run(s, {"x": x}, reuse=True)
    assert len(fresh_registry.cache) == 4
