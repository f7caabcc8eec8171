import pytest
from pydantic import BaseModel

from germinate_nb import DagValidationError, State, Workflow, WorkflowLimitError, run_workflow
from germinate_nb.errors import DeclarationError
from germinate_nb.execution.result import TaskError


class Draft(BaseModel):
    text: str
    rounds: int = 0


class Score(BaseModel):
    score: int


def build(limit_score=3):
    wf = Workflow("writer", "1.0")
    write, review, publish = State("write"), State("review"), State("publish")
    wf.add_state(write, initial_state=True)
    wf.add_state(review)
    wf.add_state(publish)

    @write.task(namespace="write")
    def draft(input: Draft) -> Draft:
        return Draft(text=input.text + "!", rounds=input.rounds + 1)

    @review.task(namespace="review")
    def grade(input: Draft) -> Draft:
        return input

    @review.task(namespace="review")
    def score(input: Draft) -> Score:
        return Score(score=input.rounds)

    @publish.task(namespace="publish")
    def done(input: Draft) -> Draft:
        return Draft(text=input.text.upper(), rounds=input.rounds)

    @write.condition()
    def always(output) -> bool:
        return True

    @review.condition()
    def good_enough(output: Score) -> bool:
        return output.score >= limit_score

    @review.condition()
    def again(output) -> bool:
        return True

    (write & always) >> review
    (review & good_enough) >> publish
    (review & again) >> write
    return wf


def test_workflow_loops_until_condition_then_stops():
    result = run_workflow(build(3), {"text": "hi"})
    assert result.ok
    assert result.path == ["write", "review", "write", "review", "write", "review", "publish"]
    assert result.output == {"text": "HI!!!", "rounds": 3}
    assert result.steps[-2].result.outputs["score"].score == 3
    assert result.steps[1].transition == "again" and result.steps[-2].transition == "good_enough"
    assert repr(result).startswith("<WorkflowResult writer: ok, write -> review -> write")


def test_sink_outputs_are_merged_for_conditions():
    result = run_workflow(build(1), {"text": "x"})
    review_step = result.steps[1]
    assert review_step.state == "review" and review_step.transition == "good_enough"


def test_limit_is_an_error_naming_looping_states():
    with pytest.raises(
        WorkflowLimitError,
        match=r"workflow 'writer' reached max_transitions=4 without finishing; it kept looping "
        r"through .*review -> write",
    ) as info:
        run_workflow(build(100), {"text": "x"}, max_transitions=4)
    assert info.value.states == ("review", "write")
    assert len(info.value.result.steps) == 5


def test_failing_state_stops_workflow():
    wf = Workflow("w")
    s = State("only")
    wf.add_state(s, initial_state=True)

    @s.task()
    def boom(input: Draft) -> Draft:
        raise RuntimeError("bad")

    result = run_workflow(wf, {"text": ""})
    assert not result.ok and result.error == "state 'only' failed"


def test_condition_error_is_reported():
    wf = Workflow("w")
    a, b = State("a"), State("b")
    wf.add_state(a, initial_state=True)
    wf.add_state(b)

    @a.task()
    def t(input: Draft) -> Draft:
        return input

    @a.condition()
    def broken(output) -> bool:
        raise KeyError("nope")

    (a & broken) >> b
    result = run_workflow(wf, {"text": ""})
    assert not result.ok
    assert result.error == "condition 'broken' of state 'a' raised KeyError: 'nope'"


def test_workflow_without_initial_state():
    with pytest.raises(DeclarationError, match="workflow 'w' has no initial state"):
        run_workflow(Workflow("w"))


def test_condition_that_raises_is_named_even_when_another_holds():
    wf = Workflow("w")
    a, b = State("a"), State("b")
    wf.add_state(a, initial_state=True)
    wf.add_state(b)

    @a.task()
    def t(input: Draft) -> Draft:
        return input

    @a.condition()
    def fine(output) -> bool:
        return True

    @a.condition()
    def broken(output) -> bool:
        raise ValueError("bad judge")

    (a & fine) >> b
    (a & broken) >> b
    result = run_workflow(wf, {"text": ""})
    assert result.error == "condition 'broken' of state 'a' raised ValueError: bad judge"
    step = result.steps[0]
    assert step.conditions["fine"] is True
    assert isinstance(step.conditions["broken"], TaskError)
    assert step.transition is None and result.path == ["a"]


def test_failed_task_leaves_conditions_unevaluated():
    wf = Workflow("w")
    a, b = State("a"), State("b")
    wf.add_state(a, initial_state=True)
    wf.add_state(b)

    @a.task()
    def boom(input: Draft) -> Draft:
        raise RuntimeError("bad")

    @a.condition()
    def go(output) -> bool:
        return True

    (a & go) >> b
    result = run_workflow(wf, {"text": ""})
    assert result.error == "state 'a' failed"
    assert result.steps[0].conditions == {"go": None}
    assert result.steps[0].result.task_runs["go"].status == "skipped"


def test_initial_state_that_cannot_start_raises_as_run_does():
    wf = build(3)
    with pytest.raises(DagValidationError, match=r"root task 'draft' in state 'write' needs"):
        run_workflow(wf, {"nothing": 1})


def test_state_reached_but_not_added_is_built_and_run():
    wf = Workflow("w")
    a, b = State("a"), State("b")
    wf.add_state(a, initial_state=True)

    @a.task(namespace="a")
    def t(input: Draft) -> Draft:
        return input

    @b.task(namespace="b")
    def u(input: Draft) -> Score:
        return Score(score=len(input.text))

    @a.condition()
    def go(output) -> bool:
        return True

    @b.condition()
    def never(output: Score) -> bool:
        return output.score > 100

    (a & go) >> b
    (b & never) >> a
    result = run_workflow(wf, {"text": "abc"})
    assert result.path == ["a", "b"] and result.output == {"score": 3}
    assert result.steps[1].conditions == {"never": False}
    assert b.phases == [["u"], ["never"]]


def test_condition_results_are_not_part_of_the_state_output():
    result = run_workflow(build(1), {"text": "x"})
    review = result.steps[1]
    assert set(review.result.outputs) == {"grade", "score", "good_enough", "again"}
    assert result.steps[0].conditions == {"always": True}
    assert result.output == {"text": "X!", "rounds": 1}
    assert review.next_state == "publish"
