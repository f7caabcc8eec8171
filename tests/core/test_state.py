import asyncio

import pytest
from pydantic import BaseModel

from germinate_nb import DeclarationError, Depends, State, TaskDefinition, UnknownTaskError
from tests.resources.schemas import Counts, Query, Tokens


def test_state_with_same_name_is_the_same_object():
    assert State("design") is State("design")


def test_task_decorator_records_schemas_and_namespace():
    s = State("design")

    @s.task()
    def tokenize(input: Query) -> Tokens:
        return Tokens(tokens=input.text.split())

    assert isinstance(tokenize, TaskDefinition)
    ex = tokenize.executor
    assert (ex.namespace, ex.name) == ("agent", "tokenize_executor")
    assert ex.input_schema is Query and ex.output_schema is Tokens
    assert s.tasks == [tokenize] and tokenize.state is s


def test_bare_decorator_without_parentheses():
    s = State("s")

    @s.task
    def t(input: Query) -> Tokens:
        return Tokens(tokens=[])

    assert s.get("t") is t


def test_async_task():
    s = State("s")

    @s.task()
    async def t(input: Query) -> Tokens:
        await asyncio.sleep(0)
        return Tokens(tokens=[])

    assert t.executor.is_async()


def test_missing_return_annotation_is_refused_naming_task():
    s = State("s")
    with pytest.raises(DeclarationError, match=r"task 'tokenize' has no return annotation"):

        @s.task()
        def tokenize(input: Query):
            return Tokens(tokens=[])

    assert "tokenize" not in s


def test_non_model_return_is_refused():
    s = State("s")
    with pytest.raises(DeclarationError, match=r"task 'f' returns int, not a pydantic model"):

        @s.task()
        def f(input: Query) -> int:
            return 1


def test_non_model_input_is_refused():
    s = State("s")
    with pytest.raises(DeclarationError, match=r"task 'f' takes 'input: str', not a pydantic"):

        @s.task()
        def f(input: str) -> Counts:
            return Counts(n=1)


def test_unannotated_input_means_any_model_as_in_the_seed():
    from pydantic import BaseModel

    from germinate_nb import get_io_schemas, run

    def f(input) -> Counts:
        return Counts(n=len(input.text))

    assert get_io_schemas(f) == (BaseModel, Counts)
    s = State("s")
    s.task()(f)
    result = run(s, {"text": "abc"})
    assert result.outputs["f"] == Counts(n=3)


def test_unresolvable_annotation_is_refused():
    s = State("s")
    with pytest.raises(DeclarationError, match=r"cannot resolve the annotations of task 'f'"):

        @s.task()
        def f(input: "Missing") -> Counts:  # noqa: F821
            return Counts(n=1)


def test_task_without_input_parameter_takes_no_input():
    s = State("s")

    @s.task()
    def source() -> Counts:
        return Counts(n=1)

    assert source.executor.input_schema is None


def test_depends_parameter_is_not_the_input():
    s = State("s")

    @s.task()
    def t(db=Depends(dict), input: Query = None) -> Counts:
        return Counts(n=1)

    assert t.executor.input_schema is Query
    assert t.executor.input_param == "input"


def test_namespace_given_twice_is_refused():
    s = State("s")
    with pytest.raises(DeclarationError, match=r"gives the namespace twice"):
        s.task("ns", namespace="other")


def test_redefinition_replaces_in_place_and_keeps_edges():
    s = State("s")

    @s.task()
    def a(input: Query) -> Tokens:
        return Tokens(tokens=[])

    @s.task()
    def b(input: Tokens) -> Counts:
        return Counts(n=len(input.tokens))

    @s.task()
    def c(input: Counts) -> Counts:
        return input

    a >> b >> c
    old_b, old_executor = b, b.executor

    @s.task()
    def b(input: Tokens) -> Counts:  # noqa: F811
        return Counts(n=2 * len(input.tokens))

    assert b is old_b
    assert b.executor is not old_executor
    assert [t.name for t in s.tasks] == ["a", "b", "c"]
    assert [t.name for t in b.parents] == ["a"] and [t.name for t in b.children] == ["c"]
    assert b(Tokens(tokens=["x"])) == Counts(n=2)


def test_redefinition_after_removed_neighbour_keeps_only_existing_edges():
    s = State("s")

    @s.task()
    def a(input: Query) -> Tokens:
        return Tokens(tokens=[])

    @s.task()
    def b(input: Tokens) -> Counts:
        return Counts(n=0)

    a >> b
    s.remove_task("a")

    @s.task()
    def b(input: Tokens) -> Counts:  # noqa: F811
        return Counts(n=1)

    assert b.parents == [] and [t.name for t in s.tasks] == ["b"]


def test_redefinition_with_new_namespace_unregisters_old_name(fresh_registry):
    s = State("s")

    @s.task()
    def a(input: Query) -> Tokens:
        return Tokens(tokens=[])

    @s.task(namespace="other")
    def a(input: Query) -> Tokens:  # noqa: F811
        return Tokens(tokens=[])

    assert list(fresh_registry.executors()) == ["other.a_executor"]


def test_add_task_replaces_same_name_in_place():
    s = State("s")
    first = s.add_task(TaskDefinition("x"))
    y = TaskDefinition("y")
    second = TaskDefinition("x")
    second >> y
    kept = s.add_task(second)
    assert kept is first
    assert [t.name for t in first.children] == ["y"]
    assert second.children == []


def test_define_task_with_parents_sets_them_exactly():
    s = State("s")

    @s.task()
    def a(input: Query) -> Tokens:
        return Tokens(tokens=[])

    @s.task()
    def b(input: Query) -> Tokens:
        return Tokens(tokens=[])

    c = s.define_task("c", a.executor.__class__("c_executor", lambda input: input), parents=["a"])
    assert [t.name for t in c.parents] == ["a"]
    s.define_task("c", c.executor, parents=["b"])
    assert [t.name for t in c.parents] == ["b"] and a.children == []


def test_get_unknown_task_suggests():
    s = State("s")

    @s.task()
    def tokenize(input: Query) -> Tokens:
        return Tokens(tokens=[])

    with pytest.raises(UnknownTaskError, match=r"no task 'tokenise' in state 's'. Did you mean"):
        s.get("tokenise")


def test_state_name_must_be_identifier():
    with pytest.raises(DeclarationError, match=r"state name 'my state' is not a Python identifier"):
        State("my state")


def test_phases_are_sorted_generations_and_track_changes():
    s = State("s")

    class M(BaseModel):
        x: int = 0

    tasks = {}
    for name in ["d", "b", "a", "c"]:
        tasks[name] = s.define_task(
            name, __import__("germinate_nb").TaskExecutor(f"{name}_executor", lambda input: input)
        )
    assert s.phases == [["a", "b", "c", "d"]]
    tasks["a"] >> [tasks["c"], tasks["b"]]
    assert s.phases == [["a", "d"], ["b", "c"]]
    tasks["c"] >> tasks["d"]
    assert s.phases == [["a"], ["b", "c"], ["d"]]


def test_clear_removes_tasks(fresh_registry):
    s = State("s")

    @s.task()
    def a(input: Query) -> Tokens:
        return Tokens(tokens=[])

    s.clear()
    assert len(s) == 0 and fresh_registry.executors() == {}


def test_string_annotations_resolve_in_the_declaring_scope():
    from tests.resources.future_annotations import build

    state, local = build()
    ex = state.get("t").executor
    assert ex.input_schema is local and ex.output_schema is local
