"""Where germinate_nb keeps a deliberate difference from germinate-ai (README's table)."""

import pytest
from pydantic import BaseModel

from germinate_nb import (
    DagCycleError,
    DagValidationError,
    DeclarationError,
    Depends,
    RegistryCollisionError,
    State,
    Workflow,
    run,
    run_workflow,
)


class N(BaseModel):
    n: int


class M(BaseModel):
    m: int


def test_state_name_returns_the_existing_state():
    # seed: State("design") made a second, empty state; a re-run notebook cell made twins
    first = State("design")
    assert State("design") is first


def test_same_registered_name_in_two_states_is_an_error():
    # seed: TaskRegistry.register overwrote silently ("# TODO check if overwrites")
    a, b = State("a"), State("b")

    @a.task()
    def work(input: N) -> N:
        return input

    with pytest.raises(RegistryCollisionError, match="already taken by a task in state 'a'"):

        @b.task()
        def work(input: N) -> N:  # noqa: F811
            return input


def test_same_condition_name_in_two_states_is_an_error_naming_the_fix():
    a, b = State("a"), State("b")

    @a.condition()
    def done(input) -> bool:
        return True

    with pytest.raises(
        RegistryCollisionError,
        match=r"condition 'done' of state 'b': its registered name "
        r"'transition_conditions.done_executor' is already taken by state 'a'.*"
        r"@b.condition\(namespace='transition_conditions.b'\)",
    ):

        @b.condition()
        def done(input) -> bool:  # noqa: F811
            return True

    @b.condition(namespace="transition_conditions.b")
    def done(input) -> bool:  # noqa: F811
        return True

    assert done.registered_name == "transition_conditions.b.done_executor"


def test_depends_is_resolved_once_per_run_not_once_per_process():
    # seed: Depends._cache kept the first value of a factory forever (whatever its arguments)
    calls = []

    def client():
        calls.append(1)
        return object()

    s = State("s")

    @s.task()
    def one(input: N, c=Depends(client)) -> N:
        return input

    @s.task()
    def two(input: N, c=Depends(client)) -> N:
        return input

    one >> two
    run(s, {"n": 1})
    run(s, {"n": 1})
    assert calls == [1, 1]


def test_validate_returns_problems_and_raises_only_when_asked():
    # seed: validate() raised InvalidTasksDagException("Invalid Tasks DAG") and returned None
    s = State("s")

    @s.task()
    def a(input: N) -> N:
        return input

    @s.task()
    def b(input: N) -> N:
        return input

    a >> b >> a
    (problem,) = s.validate()
    assert problem.kind == "cycle" and "a -> b -> a" in problem.message
    with pytest.raises(DagValidationError, match="a -> b -> a"):
        s.validate(raise_on_error=True)
    with pytest.raises(DagCycleError):
        s.sorted_tasks_dag()


def test_several_sink_tasks_feed_the_conditions_their_merged_output():
    # seed: State.build() raised NotImplementedError("... more than one end task in DAG")
    wf = Workflow("w")
    s, t = State("s"), State("t")
    wf.add_state(s, initial_state=True)
    wf.add_state(t)

    @s.task()
    def left(input: N) -> N:
        return input

    @s.task()
    def right(input: N) -> M:
        return M(m=input.n * 10)

    @t.task(namespace="t")
    def total(input: M) -> N:
        return N(n=input.m + 1)

    @s.condition()
    def big(input) -> bool:
        return input.n + input.m > 10

    (s & big) >> t
    result = run_workflow(wf, {"n": 2})
    assert result.steps[0].conditions == {"big": True}
    assert result.path == ["s", "t"] and result.output == {"n": 21}


def test_condition_of_another_state_cannot_guard_a_transition():
    # seed: accepted, and the condition was never evaluated in the source state
    a, b = State("a"), State("b")

    @b.condition()
    def ready(input) -> bool:
        return True

    with pytest.raises(DeclarationError, match="that condition belongs to state 'b'"):
        a & ready
