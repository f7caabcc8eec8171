from typing import Any

import pytest
from pydantic import BaseModel

from germinate_nb import DagValidationError, State, TaskDefinition
from tests.resources.schemas import Counts, Query, Tokens, TokenStr


def kinds(problems):
    return [p.kind for p in problems]


def test_sound_state_has_no_problems():
    s = State("design")

    @s.task()
    def tokenize(input: Query) -> Tokens:
        return Tokens(tokens=[])

    @s.task()
    def count(input: Tokens) -> Counts:
        return Counts(n=0)

    tokenize >> count
    assert s.validate() == []
    assert s.validate(input={"text": "a"}) == []


def test_cycle_reported_as_path_with_edges():
    s = State("design")
    ts = {}
    for name in ["tokenize", "count", "summarize"]:

        @s.task()
        def f(input: Query) -> Query:
            return input

        ts[name] = s.add_task(TaskDefinition(name, executor=f.executor))
    s.remove_task("f")
    ts["tokenize"] >> ts["count"] >> ts["summarize"] >> ts["tokenize"]
    (problem,) = s.validate()
    assert problem.kind == "cycle"
    assert problem.message.startswith("cycle in state 'design': count -> summarize -> tokenize")
    assert set(problem.edges) == {
        ("tokenize", "count"),
        ("count", "summarize"),
        ("summarize", "tokenize"),
    }


def test_schema_gap_names_field_child_and_parents():
    s = State("design")

    @s.task()
    def tokenize(input: Query) -> Query:
        return input

    @s.task()
    def count(input: Tokens) -> Counts:
        return Counts(n=0)

    tokenize >> count
    (p,) = s.validate()
    assert p.kind == "schema-gap" and p.field == "tokens"
    assert p.message == (
        "task 'count' in state 'design' needs input field 'tokens: list[str]' (Tokens), but no "
        "parent provides it ('tokenize' outputs text). Add a parent whose output has 'tokens', "
        "or give Tokens.tokens a default."
    )
    assert p.edges == (("tokenize", "count"),)


def test_optional_field_is_not_a_gap():
    s = State("s")

    class Opt(BaseModel):
        tokens: list[str] = []

    @s.task()
    def a(input: Query) -> Query:
        return input

    @s.task()
    def b(input: Opt) -> Counts:
        return Counts(n=0)

    a >> b
    assert s.validate() == []


def test_type_mismatch_follows_style_message():
    s = State("design")

    @s.task()
    def tokenize(input: Query) -> TokenStr:
        return TokenStr(tokens="")

    @s.task()
    def count(input: Tokens) -> Counts:
        return Counts(n=0)

    tokenize >> count
    (p,) = s.validate()
    assert p.kind == "type-mismatch"
    assert p.message.startswith(
        "task 'count' in state 'design' expects input field 'tokens: list[str]', but parent "
        "'tokenize' outputs 'tokens: str'."
    )


def test_two_parents_with_conflicting_types():
    s = State("s")

    class A(BaseModel):
        x: int

    class B(BaseModel):
        x: str

    class C(BaseModel):
        x: Any

    @s.task()
    def a(input: Query) -> A:
        return A(x=1)

    @s.task()
    def b(input: Query) -> B:
        return B(x="")

    @s.task()
    def c(input: C) -> Counts:
        return Counts(n=0)

    [a, b] >> c
    (p,) = s.validate()
    assert p.kind == "type-conflict"
    assert "gets field 'x' from parents 'a' (int) and 'b' (str)" in p.message
    assert set(p.edges) == {("a", "c"), ("b", "c")}


def test_foreign_parent_and_missing_executor():
    s, other = State("s"), State("other")

    @other.task(namespace="other")
    def far(input: Query) -> Query:
        return input

    @s.task()
    def near(input: Query) -> Query:
        return input

    ghost = s.add_task(TaskDefinition("ghost", executor_name="agent.ghost_executor"))
    far >> near
    problems = s.validate()
    assert kinds(problems) == ["foreign-parent", "no-executor"]
    assert "task 'near' in state 's' has parent 'far' from state 'other'" in problems[0].message
    assert problems[1].message.startswith(
        "task 'ghost' in state 's' has no executor: 'agent.ghost_executor' is not registered."
    )
    assert ghost.name in problems[1].tasks


def test_root_gap_against_run_input():
    s = State("s")

    @s.task()
    def tokenize(input: Query) -> Tokens:
        return Tokens(tokens=[])

    (p,) = s.validate(input={"txt": "hi"})
    assert "root task 'tokenize' in state 's' needs input field 'text: str'" in p.message
    assert "input keys: txt" in p.message


def test_all_problems_at_once_and_raise_on_error():
    s = State("s")

    @s.task()
    def a(input: Query) -> Query:
        return input

    @s.task()
    def b(input: Tokens) -> Counts:
        return Counts(n=0)

    @s.task()
    def c(input: Counts) -> TokenStr:
        return TokenStr(tokens="")

    @s.task()
    def d(input: Tokens) -> Counts:
        return Counts(n=0)

    a >> b
    c >> d
    problems = s.validate()
    assert kinds(problems) == ["schema-gap", "type-mismatch"]
    with pytest.raises(DagValidationError, match=r"state 's' has 2 problems:\n- task 'b'") as info:
        s.validate(raise_on_error=True)
    assert len(info.value.problems) == 2


def test_cycle_and_gap_together():
    s = State("s")

    @s.task()
    def a(input: Tokens) -> Query:
        return Query(text="")

    @s.task()
    def b(input: Query) -> Query:
        return input

    a >> b >> a
    assert sorted(kinds(s.validate())) == ["cycle", "schema-gap"]
