import asyncio

import pytest
from IPython.core.error import UsageError

from germinate_nb import TaskRegistry, TaskStatus, run


def declare(ip, line, body):
    return ip.run_cell_magic("germinate_task", line, body)


def test_magic_declares_task_in_default_state(ip, capsys):
    declare(ip, "tokenize --input Query --output Tokens", "Tokens(tokens=input.text.split())")
    state = TaskRegistry.default().states["main"]
    task = state.get("tokenize")
    assert task.executor.input_schema.__name__ == "Query"
    assert task.executor.output_schema.__name__ == "Tokens"
    assert task.registered_name == "agent.tokenize_executor"
    assert task.executor.source == "Tokens(tokens=input.text.split())"
    out = capsys.readouterr().out
    assert "✓ task 'tokenize' in state 'main' (parents: none; phase 1 of 1)" in out


def test_magic_runs_nothing(ip):
    declare(ip, "boom --output Counts", "raise RuntimeError('ran')")
    assert "boom" in TaskRegistry.default().states["main"]


def test_magic_chain_runs_with_parents_and_merged_input(ip):
    declare(ip, "tokenize --input Query --output Tokens", "Tokens(tokens=input.text.split())")
    declare(ip, "count --after tokenize --output Counts", "Counts(n=len(input.tokens))")
    state = TaskRegistry.default().states["main"]
    assert [p.name for p in state.get("count").parents] == ["tokenize"]
    result = run(state, {"text": "a b c"})
    assert result.outputs["count"].n == 3


def test_output_variable_wins_over_last_expression(ip):
    declare(ip, "t --input Query --output Counts", "output = Counts(n=1)\nCounts(n=2)")
    result = run(TaskRegistry.default().states["main"], {"text": ""})
    assert result.outputs["t"].n == 1


def test_last_expression_is_output_and_body_sees_user_namespace(ip):
    ip.run_cell("FACTOR = 10")
    declare(ip, "t --input Query --output Counts", "n = len(input.text)\nCounts(n=n * FACTOR)")
    assert run(TaskRegistry.default().states["main"], {"text": "abc"}).outputs["t"].n == 30


def test_body_locals_do_not_leak_into_namespace(ip):
    declare(ip, "t --input Query --output Counts", "secret_local = 1\nCounts(n=secret_local)")
    run(TaskRegistry.default().states["main"], {"text": ""})
    assert "secret_local" not in ip.user_ns


def test_await_makes_async_task(ip):
    declare(
        ip,
        "t --input Query --output Counts",
        "import asyncio\nawait asyncio.sleep(0.01)\nCounts(n=len(input.text))",
    )
    task = TaskRegistry.default().states["main"].get("t")
    assert task.executor.is_async()
    assert asyncio.iscoroutinefunction(task.executor.callable)
    assert run(task.state, {"text": "ab"}).outputs["t"].n == 2


def test_without_output_model_a_dict_is_accepted(ip):
    declare(ip, "a --input Query", "{'words': input.text.split()}")
    declare(ip, "b --after a", "{'n': len(input.words)}")
    result = run(TaskRegistry.default().states["main"], {"text": "x y"})
    assert result.outputs["b"].n == 2


def test_redefinition_keeps_edges(ip):
    declare(ip, "a --input Query --output Counts", "Counts(n=1)")
    declare(ip, "b --after a --output Counts", "Counts(n=input.n + 1)")
    declare(ip, "c --after b --output Counts", "Counts(n=input.n + 1)")
    state = TaskRegistry.default().states["main"]
    b = state.get("b")
    declare(ip, "b --after a --output Counts", "Counts(n=input.n + 100)")
    assert state.get("b") is b
    assert [t.name for t in b.children] == ["c"] and [t.name for t in b.parents] == ["a"]
    assert run(state, {"text": ""}).outputs["c"].n == 102


def test_redefinition_with_new_after_replaces_parents(ip):
    declare(ip, "a --input Query --output Counts", "Counts(n=1)")
    declare(ip, "z --input Query --output Counts", "Counts(n=2)")
    declare(ip, "b --after a --output Counts", "input")
    declare(ip, "b --after z --output Counts", "input")
    state = TaskRegistry.default().states["main"]
    assert [t.name for t in state.get("b").parents] == ["z"]
    assert state.get("a").children == []


def test_state_option_and_namespace(ip):
    ip.run_cell("design = State('design')")
    declare(ip, "t --state design --namespace nlp --input Query --output Counts", "Counts(n=0)")
    task = ip.user_ns["design"].get("t")
    assert task.registered_name == "nlp.t_executor"


def test_single_existing_state_is_the_default(ip):
    ip.run_cell("design = State('design')")
    declare(ip, "t --input Query --output Counts", "Counts(n=0)")
    assert "t" in ip.user_ns["design"]


def test_several_states_without_default_is_usage_error(ip):
    ip.run_cell("design = State('design'); other = State('other')")
    with pytest.raises(UsageError, match=r"several states \(design, other\) and no default"):
        declare(ip, "t --output Counts", "Counts(n=0)")
    ip.run_line_magic("germinate", "use other")
    declare(ip, "t --output Counts", "Counts(n=0)")
    assert "t" in ip.user_ns["other"]


@pytest.mark.parametrize(
    ("line", "body", "message"),
    [
        ("t --bogus 1", "1", r"%%germinate_task: unrecognized arguments: --bogus 1"),
        ("", "1", r"%%germinate_task: the following arguments are required: name"),
        ("2fast --output Counts", "Counts(n=0)", r"task name '2fast' in %%germinate_task is not a"),
        (
            "t --after tokenise",
            "1",
            r"unknown parent 'tokenise' in --after of %%germinate_task t\.",
        ),
        (
            "t --output Tokns",
            "1",
            r"unknown model 'Tokns' in --output of %%germinate_task t\. "
            r"Did you mean 'Tokens'\?",
        ),
        (
            "t --input NOT_A_MODEL",
            "1",
            r"--input NOT_A_MODEL of %%germinate_task t is a int, not a "
            r"pydantic model",
        ),
        (
            "t --output Counts",
            "x = = 1",
            r"syntax error in %%germinate_task t, cell line 2: "
            r"invalid syntax",
        ),
        ("t --output Counts", "a = 1\nb = (", r"syntax error in %%germinate_task t, cell line 3"),
        ("t --output Counts", "   \n", r"the body of %%germinate_task t is empty"),
        (
            "t --output Counts",
            "# just a comment\n  # and another",
            r"the body of %%germinate_task t has only comments\. Write the task below",
        ),
        ("t --output Counts", "x = 1", r"the body of %%germinate_task t has no output: end it"),
        ("t --state nowhere", "1", r"unknown state 'nowhere'"),
        ("t --namespace 'a b'", "1", r"--namespace 'a b' of %%germinate_task t is not"),
        ("t 'unclosed", "1", r"cannot read the options"),
    ],
)
def test_magic_errors_are_one_line_usage_errors(ip, line, body, message):
    with pytest.raises(UsageError, match=message) as info:
        declare(ip, line, body)
    assert "\n" not in str(info.value)


def test_unknown_parent_suggests_close_name(ip):
    declare(ip, "tokenize --input Query --output Tokens", "Tokens(tokens=[])")
    with pytest.raises(
        UsageError,
        match=r"unknown parent 'tokenise' in --after of %%germinate_task count\. Did you mean "
        r"'tokenize'\? Run `%germinate list` to see the tasks of state 'main'\.",
    ):
        declare(ip, "count --after tokenise", "1")


def test_unknown_parent_in_other_state_hints_state_option(ip):
    ip.run_cell("design = State('design'); other = State('other')")
    declare(ip, "tokenize --state design --input Query --output Tokens", "Tokens(tokens=[])")
    with pytest.raises(
        UsageError, match=r"Task 'tokenize' is in state 'design': add --state design"
    ):
        declare(ip, "count --state other --after tokenize", "1")


def test_wiring_that_closes_a_cycle_is_refused_with_path(ip):
    declare(ip, "a --input Query --output Counts", "Counts(n=0)")
    declare(ip, "b --after a --output Counts", "input")
    declare(ip, "c --after b --output Counts", "input")
    with pytest.raises(
        UsageError, match=r"would close a cycle in state 'main': a -> b -> c -> a\. Remove 'c'"
    ):
        declare(ip, "a --after c --output Counts", "input")
    state = TaskRegistry.default().states["main"]
    assert state.phases == [["a"], ["b"], ["c"]]


def test_collision_is_usage_error(ip):
    ip.run_cell("design = State('design'); other = State('other')")
    declare(ip, "t --state design --output Counts", "Counts(n=0)")
    with pytest.raises(
        UsageError,
        match=r"'agent.t_executor' .* already taken by a task in state "
        r"'design'",
    ):
        declare(ip, "t --state other --output Counts", "Counts(n=0)")


def test_runtime_error_in_body_is_task_failure_with_cell_traceback(ip):
    declare(ip, "t --input Query --output Counts", "x = 1\nraise ValueError('bad ' + input.text)")
    result = run(TaskRegistry.default().states["main"], {"text": "day"})
    tr = result.task_runs["t"]
    assert tr.status is TaskStatus.FAILED and tr.error.message == "bad day"
    assert "<germinate_task t>" in tr.traceback and "raise ValueError" in tr.traceback


def test_load_ext_is_idempotent_and_unload_removes(ip):
    ip.extension_manager.load_extension("germinate_nb")
    ip.run_line_magic("load_ext", "germinate_nb")
    assert "germinate_task" in ip.magics_manager.magics["cell"]
    ip.run_line_magic("unload_ext", "germinate_nb")
    assert "germinate_task" not in ip.magics_manager.magics["cell"]
    assert "germinate" not in ip.magics_manager.magics["line"]
    ip.run_line_magic("load_ext", "germinate_nb")
    assert "germinate" in ip.magics_manager.magics["line"]
