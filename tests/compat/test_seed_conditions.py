"""Conditions and transitions as germinate-ai documents them (issue 12).

Each test quotes the seed behaviour it checks: ``germinate_ai/core/states/{states,conditions,
transitions}.py`` and ``core/workflows.py``, and the seed's example workflow
(``workflows/metagpt/main.py``).
"""

import asyncio

import pytest
from pydantic import BaseModel

from germinate_nb import (
    Condition,
    ConditionResult,
    DagValidationError,
    Depends,
    State,
    TaskRegistry,
    Transition,
    Workflow,
    run_workflow,
)


class Text(BaseModel):
    text: str


class Score(BaseModel):
    score: int


def two_states(name="wf"):
    wf = Workflow(name)
    a, b, c = State("a"), State("b"), State("c")
    for s in (a, b, c):
        wf.add_state(s, initial_state=s is a)

    @a.task(namespace="a")
    def write(input: Text) -> Text:
        return Text(text=input.text + "!")

    @b.task(namespace="b")
    def left(input: Text) -> Text:
        return input

    @c.task(namespace="c")
    def right(input: Text) -> Text:
        return input

    return wf, a, b, c


# -- async conditions ---------------------------------------------------------------------------
# seed (conditions.py): "if asyncio.iscoroutinefunction(func): ... result = await func(...)"


def test_async_condition_is_awaited_and_a_false_one_is_not_taken():
    wf, a, b, c = two_states()

    @a.condition()
    async def never(input) -> bool:
        await asyncio.sleep(0)
        return False

    @a.condition()
    async def always(input) -> bool:
        await asyncio.sleep(0)
        return True

    (a & never) >> b
    (a & always) >> c
    result = run_workflow(wf, {"text": "x"})
    assert result.ok, result.error
    assert result.path == ["a", "c"]
    assert result.steps[0].conditions == {"never": False, "always": True}


def test_calling_an_async_condition_directly_returns_its_bool():
    s = State("s")

    @s.condition()
    async def short(input: Text) -> bool:
        await asyncio.sleep(0)
        return len(input.text) < 3

    assert short({"text": "ab"}) is True
    assert short(Text(text="abcd")) is False

    async def inside_a_running_loop():
        return short({"text": "ab"}), await short.acall({"text": "abcdef"})

    assert asyncio.run(inside_a_running_loop()) == (True, False)


# -- Depends in conditions ----------------------------------------------------------------------
# seed (conditions.py): "bound = resolve_dependencies(func, *args, **kwargs)"


def test_condition_depends_are_resolved_not_passed_raw():
    wf, a, b, c = two_states()
    seen = []

    def threshold_factory(n):
        return n

    @a.condition()
    def long_enough(input: Text, threshold=Depends(threshold_factory, 2)) -> bool:
        seen.append(threshold)
        return len(input.text) >= threshold

    (a & long_enough) >> b
    result = run_workflow(wf, {"text": "x"})
    assert result.path == ["a", "b"] and seen == [2]
    assert long_enough({"text": "x"}) is False and seen == [2, 2]


# -- Transition objects -------------------------------------------------------------------------
# seed (states.py): "__and__ ... returning a new transition corresponding to `State & Condition`"
# seed (transitions.py): "__rshift__ ... self._target = other ... return self";
# "is_valid: has valid source, target and condition"; "self._condition.transition = self"


def test_state_and_condition_is_a_transition_completed_by_rshift():
    wf, a, b, c = two_states()

    @a.condition()
    def go(input) -> bool:
        return True

    pending = a & go
    assert isinstance(pending, Transition)
    assert (pending.source, pending.condition, pending.target) == (a, go, None)
    assert not pending.is_valid()
    done = pending >> b
    assert done is pending and done.is_valid()
    assert done.target is b and go.transition is done
    assert a.transitions == [done] and wf.transitions == [done]


def test_transition_made_directly_links_its_condition():
    a, b = State("a"), State("b")

    @a.condition()
    def go(input) -> bool:
        return True

    t = Transition(source=a, condition=go, target=b)
    assert go.transition is t and a.transitions == [t]


# -- state._conditions and state.conditions -----------------------------------------------------
# seed (states.py): "_conditions: typ.Sequence[Condition]";
# "def conditions(self): return self._conditions"


def test_conditions_are_a_list_in_definition_order():
    s = State("s")

    @s.condition()
    def zeta(input) -> bool:
        return True

    @s.condition()
    def alpha(input) -> bool:
        return True

    assert s._conditions == [zeta, alpha]
    assert list(s.conditions) == [zeta, alpha]
    assert all(isinstance(c, Condition) for c in s.conditions)


# -- build(): condition tasks in the last phase -------------------------------------------------
# seed (conditions.py): namespace "transition_conditions", executor "<func>_executor",
#   "Compose executor in a task definition so we can add it to the end of a state's tasks DAG"
# seed (states.py build): "Add transition condition evaluation tasks to the DAG at the end"
# seed (workflows.py build): "for state in self._states: state.build()"


def test_build_places_each_condition_as_a_registered_task_in_the_last_phase():
    wf, a, b, c = two_states()

    @a.task(namespace="a")
    def polish(input: Text) -> Text:
        return input

    write = a.get("write")
    write >> polish

    @a.condition()
    def good(input: Text) -> bool:
        return True

    @a.condition()
    def bad(input) -> bool:
        return False

    (a & good) >> b
    (a & bad) >> c
    assert a.sorted_tasks_dag() == [["write"], ["polish"]]  # placed by build, as in the seed
    assert wf.build() == []
    assert a.sorted_tasks_dag() == [["write"], ["polish"], ["bad", "good"]]
    assert a.get("good") is good.task and good.task.parents == [polish]
    assert TaskRegistry.get_executor("transition_conditions.good_executor") is good.executor
    assert good.executor.output_schema is ConditionResult
    wf.build()  # idempotent
    assert len(a) == 4


def test_every_condition_is_evaluated_and_the_first_that_holds_wins():
    wf, a, b, c = two_states()
    evaluated = []

    @a.condition()
    def first(input) -> bool:
        evaluated.append("first")
        return True

    @a.condition()
    def second(input) -> bool:
        evaluated.append("second")
        return True

    (a & second) >> c  # wired first, but declared second
    (a & first) >> b
    result = run_workflow(wf, {"text": "x"})
    assert sorted(evaluated[:2]) == ["first", "second"]
    assert result.path == ["a", "b"] and result.steps[0].transition == "first"
    assert result.steps[0].conditions == {"first": True, "second": True}
    assert result.steps[0].result.outputs["second"] == ConditionResult(holds=True)


def test_state_build_raises_on_problems_or_returns_them():
    s = State("s")

    @s.task()
    def w(input: Text) -> Text:
        return input

    @s.condition()
    def scored(input: Score) -> bool:
        return input.score > 1

    with pytest.raises(DagValidationError, match="needs input field 'score: int'"):
        s.build()
    (problem,) = s.build(raise_on_error=False)
    assert problem.tasks == ("scored",)


# -- a later state that cannot start ------------------------------------------------------------


def test_later_state_that_cannot_start_keeps_the_partial_result():
    wf = Workflow("w")
    draft, review = State("draft"), State("review")
    wf.add_state(draft, initial_state=True)
    wf.add_state(review)

    @draft.task(namespace="draft")
    def write(input: Text) -> Text:
        return Text(text=input.text.upper())

    @review.task(namespace="review")
    def grade(input: Score) -> Score:
        return input

    @draft.condition()
    def needs_review(input) -> bool:
        return True

    (draft & needs_review) >> review
    result = run_workflow(wf, {"text": "hi"})
    assert not result.ok and result.path == ["draft"]
    assert result.output == {"text": "HI"}
    assert result.steps[0].result.outputs["write"] == Text(text="HI")
    assert result.error == (
        "state 'review' cannot start: root task 'grade' needs input field 'score', which the "
        "output of state 'draft' (through transition draft -[needs_review]-> review) does not "
        "have (its output keys: text). Make a sink task of 'draft' output 'score', or give the "
        "field a default."
    )
    assert [p.field for p in result.problems] == ["score"]
