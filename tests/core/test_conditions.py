import asyncio

import pytest
from pydantic import BaseModel

from germinate_nb import ConditionResult, DeclarationError, State, TaskRegistry, Transition, run
from germinate_nb.errors import UnknownTaskError


class N(BaseModel):
    n: int


def chain_state(name="s"):
    s = State(name)

    @s.task()
    def first(input: N) -> N:
        return N(n=input.n + 1)

    @s.task()
    def second(input: N) -> N:
        return N(n=input.n * 2)

    first >> second
    return s, first, second


def test_conditions_are_placed_only_by_build():
    s, first, second = chain_state()

    @s.condition()
    def big(input: N) -> bool:
        return input.n > 3

    assert s.phases == [["first"], ["second"]] and "big" not in s
    assert run(s, {"n": 1}).outputs.keys() == {"first", "second"}
    s.build()
    assert s.phases == [["first"], ["second"], ["big"]]
    result = run(s, {"n": 1})
    assert result.outputs["big"] == ConditionResult(holds=True)
    assert result.outputs["big"].condition_evaluation is True


def test_built_state_keeps_its_condition_phase_last_after_edits():
    s, first, second = chain_state()

    @s.condition()
    def big(input: N) -> bool:
        return input.n > 3

    s.build()

    @s.task()
    def third(input: N) -> N:
        return input

    assert s.phases == [["first", "third"], ["second"], ["big"]]
    second >> third
    assert s.phases == [["first"], ["second"], ["third"], ["big"]]
    assert big.task.parents == [third]
    assert [t.name for t in s.sink_tasks()] == ["third"]
    s.remove_task("third")
    assert big.task.parents == [second]


def test_condition_declared_after_build_is_placed_at_once():
    s, first, second = chain_state()
    s.build()

    @s.condition()
    def late(input) -> bool:
        return True

    assert s.phases[-1] == ["late"] and late.task.parents == [second]


def test_redefined_condition_keeps_its_object_transition_and_place():
    s, other = State("s"), State("other")

    @s.condition()
    def go(input) -> bool:
        return False

    @s.condition()
    def stay(input) -> bool:
        return False

    first = go
    t = (s & go) >> other
    s.build()

    @s.condition()
    def go(input) -> bool:  # noqa: F811
        return True

    assert go is first and go.transition is t and s.transitions == [t]
    assert s.conditions == [go, stay]
    assert go({"n": 1}) is True
    assert s.get("go").executor is go.executor
    assert TaskRegistry.get_executor("transition_conditions.go_executor") is go.executor


def test_condition_and_task_cannot_share_a_name():
    s, first, second = chain_state()
    with pytest.raises(DeclarationError, match=r"condition 'first' of state 's' has the name of"):

        @s.condition()
        def first(input) -> bool:  # noqa: F811
            return True

    @s.condition()
    def ready(input) -> bool:
        return True

    with pytest.raises(
        DeclarationError, match=r"task 'ready' in state 's' has the name of the task"
    ):

        @s.task()
        def ready(input: N) -> N:  # noqa: F811
            return input


def test_condition_with_any_name_gets_an_identifier_task():
    s, first, second = chain_state()
    odd = s.condition(lambda input: True, name='$x$ < "1"')
    s.build()
    assert odd.name == '$x$ < "1"' and odd.task.name == "_x_____1_"
    assert run(s, {"n": 1}).outputs["_x_____1_"].holds is True


def test_removing_a_condition_task_removes_the_condition_and_its_transition():
    s, first, second = chain_state()
    other = State("other")

    @s.condition()
    def go(input) -> bool:
        return True

    (s & go) >> other
    s.build()
    s.remove_task("go")
    assert s.conditions == [] and s.transitions == [] and "go" not in s
    with pytest.raises(UnknownTaskError, match="no condition 'go' in state 's'"):
        s.get_condition("go")
    with pytest.raises(KeyError):
        TaskRegistry.get_executor("transition_conditions.go_executor")


def test_clear_forgets_conditions():
    s, first, second = chain_state()

    @s.condition()
    def go(input) -> bool:
        return True

    s.build()
    s.clear()
    assert len(s) == 0 and s.conditions == []


def test_sync_condition_returning_a_coroutine_fails_with_the_fix():
    s, first, second = chain_state()

    async def later():
        return True

    def sneaky(input) -> bool:
        return later()

    s.condition(sneaky)
    s.build()
    result = run(s, {"n": 1})
    error = result.task_runs["sneaky"].error
    assert error is not None and "returned an awaitable instead of a bool" in error.message
    assert "async def sneaky" in error.message


def test_async_callable_object_condition_is_awaited():
    s, first, second = chain_state()

    class Judge:
        async def __call__(self, input: N) -> bool:
            await asyncio.sleep(0)
            return input.n == 4

    cond = s.condition(Judge(), name="judge")
    assert cond.is_async()
    s.build()
    assert run(s, {"n": 1}).outputs["judge"].holds is True


def test_mapping_annotated_condition_gets_a_dict():
    s, first, second = chain_state()

    @s.condition()
    def has_n(input: dict) -> bool:
        return isinstance(input, dict) and "n" in input

    s.build()
    assert run(s, {"n": 1}).outputs["has_n"].holds is True
    assert has_n(N(n=1)) is True


def test_condition_without_input():
    s, first, second = chain_state()

    @s.condition()
    def always() -> bool:
        return True

    s.build()
    assert always() is True
    assert run(s, {"n": 1}).outputs["always"].holds is True


def test_add_transition_takes_a_complete_transition_of_this_state():
    a, b = State("a"), State("b")

    @a.condition()
    def go(input) -> bool:
        return True

    with pytest.raises(DeclarationError, match="takes a complete Transition"):
        a.add_transition(a & go)
    with pytest.raises(DeclarationError, match="does not leave state 'b'"):
        b.add_transition(Transition(a, go, b))
    t = a.add_transition(Transition(a, go, b))
    assert a.transitions == [t]


def test_incomplete_transition_repr_and_validity():
    a = State("a")

    @a.condition()
    def go(input) -> bool:
        return True

    pending = a & go
    assert repr(pending) == "<Transition: a -[go]-> ?>" and not pending.is_valid()
    assert go.transition is None  # linked only once it has a target


def test_condition_parents_follow_the_sinks_through_any_edits():
    import random

    from germinate_nb import TaskDefinition, TaskExecutor

    rng = random.Random(12)
    s = State("s")

    @s.condition()
    def one(input) -> bool:
        return True

    @s.condition()
    def two(input) -> bool:
        return True

    s.build()
    for step in range(300):
        names = [t.name for t in s.tasks if t.kind == "task"]
        action = rng.choice(["add", "add", "wire", "wire", "remove", "readd"])
        if action == "add" or len(names) < 2:
            name = f"t{step}"
            s.define_task(name, TaskExecutor(f"{name}_executor", lambda input: input))
        elif action == "wire":
            a, b = rng.sample(names, 2)
            if s.get(b) not in s.get(a).children and s.get(a) not in s.get(b).children:
                s.get(a) >> s.get(b)
        elif action == "remove":
            s.remove_task(rng.choice(names))
        else:  # replace a task by a new definition object, keeping its edges
            name = rng.choice(names)
            s.add_task(TaskDefinition(name, executor=TaskExecutor(f"{name}_executor", print)))
        sinks = set(s.sink_tasks())
        assert set(one.task.parents) == sinks == set(two.task.parents), step
