"""The germinate-nb command, run as a subprocess on notebooks written by the tests."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.resources.cells import MODELS as MODELS_CELL

MODELS = "from germinate_nb import State, explore\n" + MODELS_CELL

GOOD = [
    MODELS + "design = State('design')",
    "@design.task()\ndef tokenize(input: Query) -> Tokens:\n"
    "    return Tokens(tokens=input.text.split())",
    "%%germinate_task count --state design --after tokenize --output Counts\n"
    "Counts(n=len(input.tokens))",
    "explore(design)",
    "print('cells may print')",
]


def write(tmp_path, cells, name="nb.ipynb"):
    nb = new_notebook(cells=[new_markdown_cell("# test")] + [new_code_cell(c) for c in cells])
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def cli(*args, cwd=None, timeout=120):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, "-m", "germinate_nb.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def test_run_good_notebook_prints_table_and_progress(tmp_path):
    out = cli("run", write(tmp_path, GOOD), "--input", '{"text": "a b c"}')
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["task", "status", "time", "output", "/", "error"]
    assert lines[1].startswith("tokenize") and "succeeded" in lines[1]
    assert "Tokens(tokens=['a', 'b', 'c'])" in lines[1]
    assert lines[2].startswith("count") and "Counts(n=3)" in lines[2]
    assert lines[-1].startswith("state 'design': succeeded in ")
    assert "✓ tokenize" in out.stderr and "✓ count" in out.stderr
    assert "cells may print" not in out.stdout


def test_json_output_is_one_parsable_document(tmp_path):
    out = cli("run", write(tmp_path, GOOD), "--json", "--input", '{"text": "x y"}')
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["state"] == "design" and doc["ok"] is True and doc["status"] == "succeeded"
    assert doc["tasks"]["tokenize"]["output"] == {"tokens": ["x", "y"]}
    assert doc["tasks"]["count"] == {
        "status": "succeeded",
        "duration": doc["tasks"]["count"]["duration"],
        "output": {"n": 2},
        "error": None,
        "traceback": None,
        "skipped_because": None,
        "log": "",
        "attempts": doc["tasks"]["count"]["attempts"],
    }
    (attempt,) = doc["tasks"]["count"]["attempts"]
    assert attempt["number"] == 1 and attempt["status"] == "succeeded"
    assert attempt["error"] is None


CHATTY = """
from pydantic import BaseModel
from germinate_nb import State

class Q(BaseModel):
    text: str

class N(BaseModel):
    n: int

s = State("chatty")

@s.task()
def speak(input: Q) -> N:
    print("saying", input.text)
    import logging
    logging.getLogger("speak").warning("careful")
    return N(n=len(input.text))
"""


def test_task_logs_are_in_json_and_echoed_by_logs_never_on_stdout(tmp_path):
    nb = write(tmp_path, [CHATTY])
    out = cli("run", nb, "--json", "--input", '{"text": "hi"}')
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)  # the task's print did not break the JSON on stdout
    assert doc["tasks"]["speak"]["log"] == "saying hi\nWARNING speak: careful\n"
    assert "saying hi" not in out.stderr
    echoed = cli("run", nb, "--logs", "--input", '{"text": "hi"}')
    assert echoed.returncode == 0, echoed.stderr
    assert "    │ saying hi\n    │ WARNING speak: careful\n" in echoed.stderr
    assert "saying hi" not in echoed.stdout


def test_input_from_file(tmp_path):
    (tmp_path / "in.json").write_text('{"text": "one two three four"}')
    out = cli("run", write(tmp_path, GOOD), "--json", "--input", "@in.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tasks"]["count"]["output"] == {"n": 4}


def test_failing_task_exits_1_with_error_in_table(tmp_path):
    cells = GOOD[:3] + [
        "@design.task()\ndef explode(input: Counts) -> Counts:\n    raise RuntimeError('kaboom')",
        "@design.task()\ndef after(input: Counts) -> Counts:\n    return input",
        "design.get('count') >> explode >> after",
    ]
    out = cli("run", write(tmp_path, cells), "--input", '{"text": "a"}')
    assert out.returncode == 1
    assert re.search(r"^explode\s+failed\s+[\d.]+ ms\s+RuntimeError: kaboom$", out.stdout, re.M)
    assert re.search(r"^after\s+skipped\s+after 'explode' failed$", out.stdout, re.M)
    assert "✗ explode" in out.stderr


def test_cycle_exits_2(tmp_path):
    cells = GOOD[:3] + ["design.get('count') >> design.get('tokenize')"]
    out = cli("run", write(tmp_path, cells), "--input", '{"text": "a"}')
    assert out.returncode == 2
    assert "cycle in state 'design': count -> tokenize -> count" in out.stderr


def test_schema_gap_exits_2_and_check_reports_it(tmp_path):
    cells = GOOD[:3] + [
        "@design.task()\ndef needs_text(input: Query) -> Counts:\n    return Counts(n=1)",
        "design.get('count') >> needs_text",
    ]
    path = write(tmp_path, cells)
    out = cli("run", path, "--input", '{"text": "a"}')
    assert out.returncode == 2
    assert "task 'needs_text' in state 'design' needs input field 'text: str'" in out.stderr
    out = cli("check", path)
    assert out.returncode == 2
    assert out.stdout.startswith("✗ task 'needs_text' in state 'design' needs input field")
    assert "1 problem found" in out.stderr


def test_check_good_notebook(tmp_path):
    out = cli("check", write(tmp_path, GOOD))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "✓ state 'design' is valid (2 tasks, 2 phases)\n"


def test_cell_error_is_reported_with_cell_number_and_source(tmp_path):
    cells = GOOD[:2] + ["x = 1\ny = (\nz = 3"]
    out = cli("run", write(tmp_path, cells))
    assert out.returncode == 2
    assert "code cell 3 of" in out.stderr
    assert "raised SyntaxError (line 2: `y = (`): '(' was never closed." in out.stderr
    assert len(out.stderr.splitlines()) == 1 and "Traceback" not in out.stderr


def test_magic_usage_error_in_cell(tmp_path):
    cells = GOOD[:2] + ["%%germinate_task count --state design --after tokenise\n1"]
    out = cli("check", write(tmp_path, cells))
    assert out.returncode == 2
    assert "code cell 3" in out.stderr and "unknown parent 'tokenise'" in out.stderr


def test_missing_file_and_bad_json_and_bad_flags(tmp_path):
    out = cli("run", tmp_path / "nope.ipynb")
    assert out.returncode == 2 and "no such notebook:" in out.stderr
    out = cli("run", write(tmp_path, GOOD), "--input", "{text: 1}")
    assert (
        out.returncode == 2 and "--input is not valid JSON (Expecting property name" in out.stderr
    )
    out = cli("run", write(tmp_path, GOOD), "--input", "[1]")
    assert out.returncode == 2 and "--input must be a JSON object, got list" in out.stderr
    out = cli("run", write(tmp_path, GOOD), "--bogus")
    assert out.returncode == 2 and "unrecognized arguments: --bogus" in out.stderr
    (tmp_path / "broken.ipynb").write_text("{not json")
    out = cli("check", tmp_path / "broken.ipynb")
    assert out.returncode == 2 and "cannot read" in out.stderr


def test_missing_run_input_field_is_usage_error(tmp_path):
    out = cli("run", write(tmp_path, GOOD))
    assert out.returncode == 2
    assert "root task 'tokenize' in state 'design' needs input field 'text: str'" in out.stderr


def test_several_states_need_state_flag(tmp_path):
    cells = GOOD[:3] + [
        "other = State('other')\n@other.task(namespace='other')\n"
        "def solo(input: Query) -> Counts:\n    return Counts(n=len(input.text))"
    ]
    path = write(tmp_path, cells)
    out = cli("run", path, "--input", '{"text": "abc"}')
    assert out.returncode == 2
    assert "several states (design, other); choose one with --state" in out.stderr
    out = cli("run", path, "--state", "other", "--json", "--input", '{"text": "abc"}')
    assert out.returncode == 0 and json.loads(out.stdout)["tasks"]["solo"]["output"] == {"n": 3}
    out = cli("run", path, "--state", "othr", "--input", '{"text": "abc"}')
    assert (
        out.returncode == 2
        and "no state 'othr' in the notebook. Did you mean 'other'?" in out.stderr
    )


WORKFLOW_CELL = (
    "from germinate_nb import Workflow\nwf = Workflow('pipeline')\n"
    "a, b = State('a'), State('b')\nwf.add_state(a, initial_state=True)\nwf.add_state(b)\n"
    "@a.task(namespace='a')\ndef split(input: Query) -> Tokens:\n"
    "    return Tokens(tokens=input.text.split())\n"
    "@b.task(namespace='b')\ndef count(input: Tokens) -> Counts:\n"
    "    return Counts(n=len(input.tokens))\n"
)


def test_workflow_run(tmp_path):
    cells = [
        MODELS,
        WORKFLOW_CELL + "@a.condition()\ndef always(output) -> bool:\n    return True\n"
        "(a & always) >> b",
    ]
    out = cli(
        "run",
        write(tmp_path, cells),
        "--workflow",
        "pipeline",
        "--json",
        "--input",
        '{"text": "p q r"}',
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["path"] == ["a", "b"] and doc["output"] == {"n": 3}


@pytest.mark.parametrize("suffix", ["png", "svg", "dot", "mmd"])
def test_graph_writes_each_format(tmp_path, suffix):
    target = tmp_path / f"dag.{suffix}"
    out = cli("graph", write(tmp_path, GOOD), "-o", target)
    assert out.returncode == 0, out.stderr
    data = target.read_bytes()
    expected = {
        "png": b"\x89PNG",
        "svg": b"<?xml",
        "dot": b'digraph "design"',
        "mmd": b"flowchart LR",
    }[suffix]
    assert data.startswith(expected)


def test_graph_unknown_suffix(tmp_path):
    out = cli("graph", write(tmp_path, GOOD), "-o", tmp_path / "dag.gif")
    assert out.returncode == 2 and "cannot tell the format of" in out.stderr


def test_interrupt_exits_130(tmp_path):
    cells = GOOD[:1] + [
        "import time\n@design.task()\ndef slow(input: Query) -> Counts:\n"
        "    time.sleep(30)\n    return Counts(n=1)",
    ]
    path = write(tmp_path, cells)
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.Popen(
        [sys.executable, "-m", "germinate_nb.cli", "run", str(path), "--input", '{"text": "a"}'],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err


def test_cli_never_imports_widgets(tmp_path):
    code = (
        "import sys\nfrom germinate_nb.cli import main\n"
        f"rc = main(['check', {str(write(tmp_path, GOOD))!r}])\n"
        "print(rc, 'ipywidgets' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "0 False"


def test_workflow_run_that_stops_says_why_on_stderr(tmp_path):
    cells = [
        MODELS,
        WORKFLOW_CELL + "@a.condition()\ndef broken(output) -> bool:\n"
        "    raise RuntimeError('no route <here>')\n(a & broken) >> b",
    ]
    out = cli("run", write(tmp_path, cells), "--workflow", "pipeline", "--input", '{"text": "p"}')
    assert out.returncode == 1
    assert "workflow 'pipeline'" in out.stdout  # the steps and the path
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("germinate-nb: workflow 'pipeline': ")
    assert "broken" in lines[-1] and "no route <here>" in lines[-1]
    assert "Traceback" not in out.stderr


def test_check_builds_workflows_so_condition_tasks_are_checked(tmp_path):
    cells = [
        MODELS,
        WORKFLOW_CELL + "@a.condition()\ndef always(output) -> bool:\n    return True\n"
        "(a & always) >> b\n"
        "lost = State('lost')\n(a & always) >> lost",
    ]
    out = cli("check", write(tmp_path, cells))
    assert out.returncode == 2
    assert "leads to a state not added" in out.stdout
    assert "✓ state 'a' is valid (2 tasks, 2 phases)" in out.stdout  # split, then always
