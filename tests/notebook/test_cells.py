"""A cell owns the tasks it declares; %germinate rm removes tasks."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

DECLARE = """
s = State("design")

@s.task()
def tokenize(input: Query) -> Tokens:
    return Tokens(tokens=input.text.split())
"""

RENAMED = DECLARE.replace("def tokenize", "def tokenize_v2")

WIRE = """
@s.task()
def count(input: Tokens) -> Counts:
    return Counts(n=len(input.tokens))

s.get("tokenize") >> count
"""


def outputs(ip, code, cell_id):
    from IPython.utils.capture import capture_output

    with capture_output() as cap:
        result = ip.run_cell(code, cell_id=cell_id)
    assert result.success, result.error_in_exec
    return "\n".join(o.data.get("text/plain", "") for o in cap.outputs)


def test_renaming_a_task_in_its_cell_replaces_it_and_moves_its_edges(ip, fresh_registry):
    outputs(ip, DECLARE, "cell-1")
    outputs(ip, WIRE, "cell-2")
    note = outputs(ip, RENAMED, "cell-1")  # the same cell, now declaring another name
    s = fresh_registry.states["design"]
    assert [t.name for t in s.tasks] == ["count", "tokenize_v2"]
    assert [p.name for p in s.get("count").parents] == ["tokenize_v2"]
    assert s.validate() == []
    assert note == (
        "✓ task 'tokenize_v2' replaces 'tokenize' in state 'design' (this cell declared "
        "'tokenize' before); its edges moved (parents: none; children: count)"
    )


def test_a_cell_that_no_longer_declares_a_task_removes_it(ip, fresh_registry):
    outputs(ip, DECLARE + WIRE, "cell-1")
    note = outputs(ip, DECLARE, "cell-1")  # count is gone from the cell
    s = fresh_registry.states["design"]
    assert [t.name for t in s.tasks] == ["tokenize"]
    assert note == (
        "✓ removed task 'count' and its 1 edge from state 'design': this cell no longer declares it"
    )


def test_a_failing_cell_removes_nothing(ip, fresh_registry):
    outputs(ip, DECLARE + WIRE, "cell-1")
    result = ip.run_cell(DECLARE + "\nraise RuntimeError('half way')", cell_id="cell-1")
    assert not result.success
    assert [t.name for t in fresh_registry.states["design"].tasks] == ["tokenize", "count"]


def test_a_task_moved_to_another_cell_stays(ip, fresh_registry):
    outputs(ip, DECLARE + WIRE, "cell-1")
    outputs(ip, WIRE, "cell-2")  # count now comes from cell-2
    outputs(ip, DECLARE, "cell-1")
    assert [t.name for t in fresh_registry.states["design"].tasks] == ["tokenize", "count"]


def test_cells_without_an_id_are_left_alone(ip, fresh_registry):
    outputs(ip, DECLARE + WIRE, None)
    outputs(ip, DECLARE, None)
    assert [t.name for t in fresh_registry.states["design"].tasks] == ["tokenize", "count"]


def test_germinate_rm_removes_a_task_and_its_edges(ip, fresh_registry):
    outputs(ip, DECLARE + WIRE, None)
    line = ip.run_line_magic("germinate", "rm count --state design")
    assert repr(line) == "✓ removed task 'count' from state 'design' with its 1 edge"
    assert [t.name for t in fresh_registry.states["design"].tasks] == ["tokenize"]
    assert fresh_registry.states["design"].get("tokenize").children == []


def test_germinate_rm_of_an_unknown_task_is_one_line(ip, fresh_registry):
    outputs(ip, DECLARE, None)
    with pytest.raises(
        UsageError,
        match=r"no task 'tokenise' in state 'design'. Did you mean "
        r"'tokenize'\? Run `%germinate list` to see the tasks.",
    ):
        ip.run_line_magic("germinate", "rm tokenise")


def test_magic_accepts_a_dotted_namespace(ip, fresh_registry):
    ip.run_cell("loud = State('loud')")
    ip.run_cell_magic(
        "germinate_task",
        "shout --state loud --output Counts --namespace agents.voice",
        "Counts(n=1)",
    )
    assert (
        fresh_registry.states["loud"].get("shout").registered_name == "agents.voice.shout_executor"
    )


def test_a_task_tracebacks_names_its_cell_as_ipython_does(ip, fresh_registry):
    """A kernel compiles each cell into a temporary file: the traceback says Cell In[n]."""
    ip.run_cell(
        "traced = State('traced')\n"
        "@traced.task()\n"
        "def t(input: Query) -> Query:\n"
        "    raise ValueError('boom')\n",
        store_history=True,
    )
    number = ip.execution_count - 1
    ip.run_cell("result = run(traced, {'text': 'x'}, store='off', echo=False)")
    tb = ip.user_ns["result"].task_runs["t"].error.traceback
    assert f'  File "Cell In[{number}]", line 4, in t\n' in tb
    assert "    raise ValueError('boom')\n" in tb
    assert "ipython-input" not in tb and "ipykernel_" not in tb
