"""Reuse is never wrong: the fingerprint of the code that ran, outputs isolated from mutation."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, create_model, field_validator

from germinate_nb import State, TaskExecutor, TaskStatus, run, start_run
from tests.execution.conftest import T, X


def test_redeclaring_a_task_while_it_runs_never_caches_the_old_output_as_new():
    s = State("s")
    release = threading.Event()
    started = threading.Event()

    @s.task()
    def slow(input: X) -> X:
        started.set()
        release.wait(5)
        return X(x=1)  # the OLD code's output

    handle = start_run(s, {"x": 0}, reuse=True)
    assert started.wait(5)

    @s.task()
    def slow(input: X) -> X:  # noqa: F811 - the cell is edited while the old code runs
        return X(x=2)

    release.set()
    assert handle.wait(5).outputs["slow"] == X(x=1)
    again = run(s, {"x": 0}, reuse=True)
    assert again.task_runs["slow"].status is TaskStatus.SUCCEEDED  # not cached
    assert again.outputs["slow"] == X(x=2)
    third = run(s, {"x": 0}, reuse=True)
    assert third.task_runs["slow"].status is TaskStatus.CACHED
    assert third.outputs["slow"] == X(x=2)


def test_mutating_a_result_does_not_change_what_reuse_hands_downstream():
    s = State("s")

    @s.task()
    def tok(input: X) -> T:
        return T(tokens=["a", "b"])

    @s.task()
    def count(input: T) -> X:
        return X(x=len(input.tokens))

    tok >> count
    first = run(s, {"x": 0}, reuse=True)
    first.outputs["tok"].tokens.append("MUTATED")
    first.task_runs["count"].input.tokens.append("MUTATED")
    again = run(s, {"x": 0}, reuse=True)
    assert again.task_runs["tok"].status is TaskStatus.CACHED
    assert again.outputs["tok"] == T(tokens=["a", "b"])
    assert again.task_runs["count"].status is TaskStatus.CACHED
    assert again.outputs["count"] == X(x=2)
    again.outputs["tok"].tokens.clear()  # a cached output is a fresh copy each time
    assert run(s, {"x": 0}, reuse=True).outputs["tok"] == T(tokens=["a", "b"])


def test_mutating_the_run_input_after_a_run_does_not_change_reuse():
    s = State("s")
    calls = []

    class Tags(BaseModel):
        tags: list[str]

    @s.task()
    def first(input: Tags) -> X:
        calls.append(list(input.tags))
        return X(x=len(input.tags))

    data = {"tags": ["a"]}
    run(s, data, reuse=True)
    data["tags"].append("b")  # the caller's object changes after the run
    result = run(s, data, reuse=True)
    assert result.task_runs["first"].status is TaskStatus.SUCCEEDED
    assert result.outputs["first"] == X(x=2) and calls == [["a"], ["a", "b"]]


class Lowered(BaseModel):
    text: str

    @field_validator("text")
    @classmethod
    def lower(cls, value):
        return value.lower()


def test_inputs_with_validators_are_compared_after_validation():
    s = State("s")
    calls = []

    @s.task()
    def echo(input: Lowered) -> Lowered:
        calls.append(input.text)
        return input

    run(s, {"text": "ABC"}, reuse=True)
    result = run(s, {"text": "abc"}, reuse=True)  # other data, same validated input
    assert result.task_runs["echo"].status is TaskStatus.CACHED
    assert calls == ["abc"]


# -- a property: random edits and runs with reuse give exactly the outputs without reuse -------

VARIANTS = [1, 2, 3]


def _make(name: str, variant: int, schema_variant: int) -> TaskExecutor:
    """Task ``name``: its output is ``{name: 10 * (sum of its int inputs) + variant}``."""
    out = create_model(f"Out_{name}", **{name: (int, ...)}) if schema_variant else BaseModel

    def fn(input: BaseModel) -> BaseModel:
        total = sum(v for v in input.model_dump().values() if isinstance(v, int))
        return {name: total * 10 + variant}

    # the task's code text differs per variant, as an edited cell would
    source = f"{name}: 10 * sum(inputs) + {variant}"
    return TaskExecutor(
        f"{name}_executor", fn, input_schema=BaseModel, output_schema=out, source=source
    )


EDGES = {"b": ["a"], "c": ["a"], "d": ["b", "c"]}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d", "run"]),
            st.sampled_from(VARIANTS),
            st.integers(0, 1),
            st.integers(0, 2),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_edits_and_reuse_runs_match_runs_without_reuse(steps):
    from germinate_nb import use_registry

    with use_registry():
        s = State("prop")
        for name in "abcd":
            s.define_task(name, _make(name, 1, 0), parents=EDGES.get(name, []))
        for target, variant, schema, run_input in steps:
            if target != "run":
                s.define_task(target, _make(target, variant, schema))
                continue
            reused = run(s, {"x": run_input}, reuse=True)
            fresh = run(s, {"x": run_input}, reuse=False)
            assert reused.ok and fresh.ok
            assert _values(reused) == _values(fresh)
        final_reused = run(s, {"x": 0}, reuse=True)
        assert _values(final_reused) == _values(run(s, {"x": 0}))


def _values(result):
    return {name: out.model_dump() for name, out in result.outputs.items()}
