import pytest

from germinate_nb import Condition, DeclarationError, State, Transition, Workflow
from germinate_nb.errors import UnknownTaskError
from tests.resources.schemas import Counts


def test_condition_decorator_and_transition():
    wf = Workflow("wf", "1.0")
    draft, done = State("draft"), State("done")
    wf.add_state(draft, initial_state=True)
    wf.add_state(done)

    @draft.condition()
    def big(output: Counts) -> bool:
        return output.n > 3

    assert isinstance(big, Condition)
    made = (draft & big) >> done
    (t,) = wf.transitions
    assert made is t and big.transition is t
    assert isinstance(t, Transition)
    assert (t.source, t.condition, t.target) == (draft, big, done)
    assert wf.initial_state is draft
    assert big({"n": 5}) is True and big({"n": 1}) is False


def test_condition_without_annotation_gets_raw_output():
    s = State("s")

    @s.condition()
    def always(output) -> bool:
        return output == {"a": 1}

    assert always({"a": 1})


def test_redeclaring_transition_replaces_it():
    a, b, c = State("a"), State("b"), State("c")

    @a.condition()
    def go(output) -> bool:
        return True

    (a & go) >> b
    (a & go) >> c
    assert [t.target.name for t in a.transitions] == ["c"]


def test_and_needs_condition():
    with pytest.raises(DeclarationError, match="must be a condition made with @s.condition"):
        State("s") & (lambda out: True)


def test_rshift_needs_state():
    s = State("s")

    @s.condition()
    def go(output) -> bool:
        return True

    with pytest.raises(DeclarationError, match=r"needs a State on the right, got int"):
        (s & go) >> 3


def test_check_reports_missing_initial_and_unknown_target():
    wf = Workflow("wf")
    a, b = State("a"), State("b")
    wf.add_state(a)

    @a.condition()
    def go(output) -> bool:
        return True

    (a & go) >> b
    problems = wf.check()
    assert "has no initial state" in problems[0]
    assert "leads to a state not added to it: call add_state(b)" in problems[1]


def test_get_state_unknown():
    wf = Workflow("wf")
    with pytest.raises(UnknownTaskError, match="workflow 'wf' has no state 'x'"):
        wf.get_state("x")


def test_add_state_needs_state():
    with pytest.raises(DeclarationError, match="takes a State, got str"):
        Workflow("wf").add_state("a")
