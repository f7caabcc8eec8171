"""Any exception of any class, anywhere in a task's life, fails that task only."""

from __future__ import annotations

import asyncio
import threading

import pytest
from pydantic import BaseModel, ConfigDict, field_serializer, field_validator

from germinate_nb import (
    Depends,
    State,
    TaskDefinition,
    TaskExecutor,
    TaskRegistry,
    TaskStatus,
    get_io_schemas,
    run,
    start_run,
)
from tests.execution.conftest import X


class Boom(BaseException):
    """A BaseException that is not an Exception."""


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("str is broken too")

    def __repr__(self):
        raise RuntimeError("repr is broken too")


def _raiser(error):
    def raise_it():
        raise error

    return raise_it


def branching_state(kind: str, error: BaseException) -> State:
    """root -> bad -> after_bad, root -> good -> after_good; `bad` raises `error`."""
    s = State(f"fault_{kind}")

    @s.task()
    def root(input: X) -> X:
        return input

    if kind == "sync":

        @s.task()
        def bad(input: X) -> X:
            raise error

    elif kind == "async":

        @s.task()
        async def bad(input: X) -> X:
            await asyncio.sleep(0)
            raise error

    else:  # a Depends factory raises
        broken = Depends(_raiser(error))

        @s.task()
        def bad(input: X, client=broken) -> X:
            return input

    @s.task()
    def after_bad(input: X) -> X:
        return input

    @s.task()
    async def good(input: X) -> X:
        await asyncio.sleep(0.05)  # still running when `bad` fails
        return X(x=input.x + 1)

    @s.task()
    def after_good(input: X) -> X:
        return X(x=input.x * 10)

    root >> [bad, good]
    bad >> after_bad
    good >> after_good
    return s


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["sync", "async", "depends"])
@pytest.mark.parametrize(
    "error",
    [SystemExit(3), KeyboardInterrupt(), GeneratorExit(), Boom("boom"), BadStr()],
    ids=["SystemExit", "KeyboardInterrupt", "GeneratorExit", "BaseException", "raising-str"],
)
def test_any_exception_fails_only_its_task(kind, error):
    result = run(branching_state(kind, error), {"x": 1})
    runs = result.task_runs
    assert runs["bad"].status is TaskStatus.FAILED
    assert runs["bad"].error.type == type(error).__name__
    assert runs["after_bad"].status is TaskStatus.SKIPPED
    assert runs["after_bad"].skipped_because == "bad"
    assert runs["good"].status is TaskStatus.SUCCEEDED
    assert result.outputs["after_good"] == X(x=20)
    assert result.status == "failed"


def test_exception_whose_str_raises_gets_a_fallback_message():
    result = run(branching_state("sync", BadStr()), {"x": 1})
    error = result.task_runs["bad"].error
    assert error.message == "<exception str() failed: RuntimeError: str is broken too>"
    assert "BadStr" in error.traceback


def test_cancelled_error_escaping_an_async_task_fails_it():
    s = State("s")

    @s.task()
    async def waits(input: X) -> X:
        future = asyncio.get_running_loop().create_future()
        future.cancel()
        await future  # raises CancelledError although nobody cancelled the run
        return input

    result = run(s, {"x": 1})
    run_ = result.task_runs["waits"]
    assert run_.status is TaskStatus.FAILED
    assert run_.error.type == "CancelledError"
    assert "escaped from the task" in run_.error.message
    assert result.status == "failed"


def test_system_exit_in_an_inline_task_is_a_task_failure():
    result = run(branching_state("sync", SystemExit(3)), {"x": 1}, max_workers=1)
    assert result.task_runs["bad"].status is TaskStatus.FAILED
    assert result.outputs["after_good"] == X(x=20)


class Picky(BaseModel):
    x: int

    @field_validator("x")
    @classmethod
    def no_sevens(cls, value):
        if value == 7:
            raise TypeError("seven is not welcome")  # pydantic does not wrap TypeError
        return value


def test_input_validator_raising_type_error_fails_the_task():
    s = State("s")

    @s.task()
    def picky(input: Picky) -> X:
        return X(x=input.x)

    @s.task()
    def sibling(input: X) -> X:
        return input

    result = run(s, {"x": 7})
    run_ = result.task_runs["picky"]
    assert run_.status is TaskStatus.FAILED
    assert run_.error.type == "TaskInputError"
    assert "a validator raised TypeError: seven is not welcome" in run_.error.message
    assert result.task_runs["sibling"].status is TaskStatus.SUCCEEDED


class Loud(BaseModel):
    x: int

    @field_serializer("x")
    def refuse(self, value):
        raise ValueError("cannot serialise x")


def test_output_serializer_that_raises_fails_the_task():
    s = State("s")

    @s.task()
    def loud(input: X) -> Loud:
        return Loud(x=input.x)

    @s.task()
    def child(input: X) -> X:
        return input

    @s.task()
    def sibling(input: X) -> X:
        return input

    loud >> child
    result = run(s, {"x": 1})
    run_ = result.task_runs["loud"]
    assert run_.status is TaskStatus.FAILED
    assert run_.error.type == "TaskOutputError"
    assert "cannot be dumped for its children and the cache" in run_.error.message
    assert result.task_runs["child"].status is TaskStatus.SKIPPED
    assert result.task_runs["sibling"].status is TaskStatus.SUCCEEDED


class Ambiguous:
    """Compares like a numpy array: == gives something whose truth value raises."""

    def __init__(self, values):
        self.values = tuple(values)

    def __eq__(self, other):
        return _Elementwise(a == b for a, b in zip(self.values, other.values, strict=True))

    __hash__ = None


class _Elementwise:
    def __init__(self, flags):
        self.flags = list(flags)

    def __bool__(self):
        raise ValueError("the truth value of an array is ambiguous")

    def all(self):
        return all(self.flags)


class Array(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    arr: Ambiguous


@pytest.mark.parametrize(("left", "right", "ok"), [((1, 2), (1, 2), True), ((1, 2), (1, 3), False)])
def test_merging_array_like_fields_compares_element_wise(left, right, ok):
    s = State("s")

    @s.task()
    def a(input: X) -> Array:
        return Array(arr=Ambiguous(left))

    @s.task()
    def b(input: X) -> Array:
        return Array(arr=Ambiguous(right))

    @s.task()
    def both(input: Array) -> X:
        return X(x=len(input.arr.values))

    [a, b] >> both
    result = run(s, {"x": 1})
    if ok:
        assert result.outputs["both"] == X(x=2)
    else:
        run_ = result.task_runs["both"]
        assert run_.status is TaskStatus.FAILED
        assert run_.error.type == "MergeConflictError"
        assert "gets key 'arr' from parents 'a'" in run_.error.message


def test_input_annotated_base_model_receives_the_merged_fields():
    s = State("s")

    @s.task()
    def tokens(input: X) -> X:
        return X(x=input.x + 1)

    @s.task()
    def anything(input: BaseModel) -> X:  # the seed's "any model"
        return X(x=input.x * 2)

    tokens >> anything
    result = run(s, {"x": 1})
    assert result.outputs["anything"] == X(x=4)
    assert result.task_runs["anything"].input.x == 2


def test_output_annotated_base_model_accepts_any_model_or_dict():
    s = State("s")

    @s.task()
    def model_out(input: X) -> BaseModel:
        return X(x=5)

    @s.task()
    def dict_out(input: X) -> BaseModel:
        return {"y": 6}

    @s.task()
    def joined(input: BaseModel) -> X:
        return X(x=input.x + input.y)

    [model_out, dict_out] >> joined
    result = run(s, {"x": 1})
    assert result.outputs["model_out"] == X(x=5)
    assert result.outputs["dict_out"].y == 6
    assert result.outputs["joined"] == X(x=11)


def test_missing_input_annotation_is_base_model_as_in_the_seed():
    def f(input) -> X:
        return X(x=1)

    assert get_io_schemas(f) == (BaseModel, X)


def test_task_declared_by_executor_name_runs_that_executor():
    s = State("s")

    @s.task()
    def a(input: X) -> X:
        return X(x=input.x + 1)

    b = s.add_task(TaskDefinition("b", executor_name="agent.a_executor"))
    a >> b
    assert s.validate() == []
    result = run(s, {"x": 1})
    assert result.outputs["b"] == X(x=3)


def test_task_with_unregistered_executor_name_is_a_validation_problem():
    s = State("s")
    s.add_task(TaskDefinition("b", executor_name="agent.nowhere_executor"))
    (problem,) = s.validate()
    assert problem.kind == "no-executor"
    assert "'agent.nowhere_executor' is not registered" in problem.message


def test_custom_executor_with_any_input_name_runs():
    s = State("s")

    def double(data: X) -> X:
        return X(x=data.x * 2)

    s.add_task(TaskDefinition("d", executor=TaskExecutor("d_executor", double, input_schema=X)))
    TaskRegistry.register("custom_tasks", "d_executor", s.get("d").executor)
    assert run(s, {"x": 4}).outputs["d"] == X(x=8)


def test_outputs_is_computed_once_per_finished_result(design):
    result = run(design, {"text": "a b"})
    assert result.outputs is result.outputs
    with pytest.raises(TypeError):
        result.outputs["count"] = None  # read-only


def test_a_failing_observer_of_any_class_never_stops_the_run(design):
    class Rude:
        def on_task_end(self, result, task_run):
            raise SystemExit("observer exits")

    result = run(design, {"text": "a b"}, observers=[Rude()])
    assert result.ok
    assert "observer Rude.on_task_end raised SystemExit: observer exits" in result.observer_errors


@pytest.mark.parametrize("workers", [None, 4, 1])
def test_an_observer_raising_keyboard_interrupt_off_the_main_thread_is_an_observer_error(
    design, workers
):
    # only the main thread gets a real Ctrl-C; on a worker thread, or on start_run's thread
    # (where max_workers=1 runs the tasks), a KeyboardInterrupt that an observer raises is an
    # error like any other (it hung the run)
    class Interrupting:
        def on_task_end(self, result, task_run):
            raise KeyboardInterrupt

    handle = start_run(design, {"text": "a b"}, observers=[Interrupting()], max_workers=workers)
    result = handle.wait(10)
    assert result is not None, "the run hung"
    assert result.ok
    assert result.observer_errors
    assert set(result.observer_errors) == {
        "observer Interrupting.on_task_end raised KeyboardInterrupt"
    }


def test_run_keeps_going_when_a_thread_task_raises_keyboard_interrupt():
    s = State("s")
    started = threading.Event()

    @s.task()
    def interrupt(input: X) -> X:
        started.set()
        raise KeyboardInterrupt

    @s.task()
    def fine(input: X) -> X:
        started.wait(5)
        return input

    result = run(s, {"x": 1}, max_workers=4)
    assert result.task_runs["interrupt"].status is TaskStatus.FAILED
    assert result.task_runs["fine"].status is TaskStatus.SUCCEEDED
