"""Runs started from inside tasks: another state runs; a run that could never end is refused."""

from __future__ import annotations

import threading

import pytest
from pydantic import BaseModel

from germinate_nb import NestedRunError, State, arun, run, start_run, use_registry
from germinate_nb.execution.runner import MAX_NESTING, Run


class Q(BaseModel):
    text: str


class Out(BaseModel):
    out: str


def outcome(result, name: str) -> str:
    tr = result.task_runs[name]
    return tr.output.out if tr.output is not None else f"FAILED: {tr.error.message}"


SELF = (
    "run() of state 's' was called from inside its own task 't': that run would start 't' "
    "again, which would call run() again, without end. From a task, run another state, or "
    "call the code that does the work directly."
)


@pytest.mark.parametrize("how", ["run", "start_run", "Run", "arun in an async task"])
def test_a_task_running_its_own_state_fails_with_a_clear_message(how):
    before = threading.active_count()
    with use_registry():
        s = State("s")
        if how == "arun in an async task":

            @s.task()
            async def t(input: Q) -> Out:
                inner = await arun(s, {"text": "inner"}, store="off")
                return Out(out=str(inner.status))

        else:

            @s.task()
            def t(input: Q) -> Out:
                if how == "run":
                    inner = run(s, {"text": "inner"}, store="off", echo=False)
                elif how == "start_run":
                    inner = start_run(s, {"text": "inner"}, store="off").wait(10)
                else:
                    Run(s, {"text": "inner"}, store="off")
                return Out(out=str(inner.status))

        result = run(s, {"text": "x"}, store="off")
    assert result.status == "failed"
    err = result.task_runs["t"].error
    assert (err.type, err.message) == (NestedRunError.__name__, SELF)
    assert threading.active_count() < before + 40  # no thread per level of a recursion


def test_a_task_runs_another_state_and_its_tasks_know_how_deep_they_are():
    seen = []
    with use_registry():
        outer, inner = State("outer"), State("inner")

        @inner.task()
        def leaf(input: Q) -> Out:
            from germinate_nb.execution.logs import _ROUTE

            seen.append(_ROUTE.get().job.nesting)
            return Out(out=input.text.upper())

        @outer.task()
        def branch(input: Q) -> Out:
            return Out(out=outcome(run(inner, input, store="off", echo=False), "leaf"))

        result = run(outer, {"text": "deep"}, store="off")
    assert result.status == "succeeded" and outcome(result, "branch") == "DEEP"
    assert seen == [1]


def test_states_whose_tasks_run_each_other_stop_at_the_nesting_limit():
    with use_registry():
        a, b = State("a"), State("b")

        @a.task()
        def ta(input: Q) -> Out:
            return Out(out="a>" + outcome(run(b, input, store="off", echo=False), "tb"))

        @b.task()
        def tb(input: Q) -> Out:
            return Out(out="b>" + outcome(run(a, input, store="off", echo=False), "ta"))

        result = run(a, {"text": "x"}, store="off")
    chain = outcome(result, "ta")
    assert chain.startswith("a>b>" * (MAX_NESTING // 2))
    assert chain.endswith(
        f"FAILED: run() of state 'b' from task 'ta' of state 'a' would be nested "
        f"{MAX_NESTING + 1} runs deep (at most {MAX_NESTING}): states whose tasks run each "
        "other never end. Break the cycle of states that run one another."
    )
