"""The run store from the command line, in real processes: run --reuse, history, failures."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.resources.cells import MODELS as MODELS_CELL

ROOT = Path(__file__).resolve().parents[2]

SETUP = (
    "from germinate_nb import State\n"
    + MODELS_CELL
    + """
def mark(name):  # a side effect outside the process: which task bodies ran
    with open('calls.txt', 'a') as f:
        f.write(name + '\\n')

design = State('design')
"""
)
TOKENIZE = """@design.task()
def tokenize(input: Query) -> Tokens:
    mark('tokenize')
    return Tokens(tokens=sorted({w for w in input.text.split()}))
"""
COUNT = """%%germinate_task count --state design --after tokenize --output Counts
mark('count')
Counts(n=len(input.tokens))"""
REPORT = """%%germinate_task report --state design --after count --output Counts
mark('report')
Counts(n=input.n * 10)"""
SIDE = """@design.task()
def side(input: Tokens) -> Tokens:
    mark('side')
    return Tokens(tokens=[t.upper() for t in input.tokens])

design.get('tokenize') >> side
"""
CELLS = [SETUP, TOKENIZE, COUNT, REPORT, SIDE]
INPUT = '{"text": "b a c a"}'


def write(folder: Path, cells=CELLS, name="nb.ipynb") -> Path:
    path = folder / name
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), path)
    return path


def cli(*args, seed="0", store_env=None, cwd=None):
    """germinate-nb in a new process; the session's GERMINATE_STORE=off is lifted."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "PYTHONHASHSEED": seed}
    env.pop("GERMINATE_STORE")
    if store_env is not None:
        env["GERMINATE_STORE"] = store_env
    return subprocess.run(
        [sys.executable, "-m", "germinate_nb.cli", *map(str, args)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=180,
    )  # fmt: skip


def calls(folder: Path) -> list[str]:
    file = folder / "calls.txt"
    return file.read_text().split() if file.exists() else []


def statuses(out) -> dict[str, str]:
    assert out.returncode == 0, out.stderr
    return {name: t["status"] for name, t in json.loads(out.stdout)["tasks"].items()}


def test_run_reuse_in_a_new_process_reuses_everything_from_the_store(tmp_path):
    nb = write(tmp_path)
    first = cli("run", nb, "--reuse", "--json", "--input", INPUT, seed="1")
    assert set(statuses(first).values()) == {"succeeded"}
    assert sorted(calls(tmp_path)) == ["count", "report", "side", "tokenize"]
    assert (tmp_path / ".germinate" / "runs.sqlite").is_file()  # next to the notebook
    # a new process, another hash seed (set and dict orders differ): nothing runs again
    second = cli("run", nb, "--reuse", "--json", "--input", INPUT, seed="2")
    assert set(statuses(second).values()) == {"cached"}
    assert sorted(calls(tmp_path)) == ["count", "report", "side", "tokenize"]
    doc = json.loads(second.stdout)
    assert doc["tasks"]["report"]["output"] == {"n": 30}
    assert doc["tasks"]["side"]["output"] == {"tokens": ["A", "B", "C"]}


def test_editing_one_task_reruns_only_it_and_its_descendants(tmp_path):
    nb = write(tmp_path)
    assert cli("run", nb, "--reuse", "--input", INPUT).returncode == 0
    (tmp_path / "calls.txt").unlink()
    edited = COUNT.replace("Counts(n=len(input.tokens))", "Counts(n=len(input.tokens) + 1)")
    write(tmp_path, [SETUP, TOKENIZE, edited, REPORT, SIDE])
    out = cli("run", nb, "--reuse", "--json", "--input", INPUT, seed="3")
    assert statuses(out) == {
        "tokenize": "cached", "count": "succeeded", "report": "succeeded", "side": "cached",
    }  # fmt: skip
    assert sorted(calls(tmp_path)) == ["count", "report"]
    assert json.loads(out.stdout)["tasks"]["report"]["output"] == {"n": 40}


def test_without_reuse_tasks_run_and_runs_are_still_recorded(tmp_path):
    nb = write(tmp_path)
    assert cli("run", nb, "--input", INPUT).returncode == 0
    out = cli("run", nb, "--no-cache", "--json", "--input", INPUT)
    assert set(statuses(out).values()) == {"succeeded"}
    assert len(calls(tmp_path)) == 8
    history = cli("history", nb, "--json")
    assert [r["counts"] for r in json.loads(history.stdout)] == [{"succeeded": 4}] * 2
    both = cli("run", nb, "--reuse", "--no-cache")
    assert both.returncode == 2
    assert "argument --no-cache: not allowed with argument --reuse" in both.stderr


def test_a_corrupt_store_is_one_warning_line_and_the_run_succeeds(tmp_path):
    nb = write(tmp_path)
    (tmp_path / ".germinate").mkdir()
    store = tmp_path / ".germinate" / "runs.sqlite"
    store.write_bytes(b"garbage, not SQLite " * 200)
    out = cli("run", nb, "--reuse", "--input", INPUT)
    assert out.returncode == 0, out.stderr
    warning_lines = [line for line in out.stderr.splitlines() if "warning" in line]
    assert warning_lines == [
        f"germinate-nb: warning: run store {store} is not usable (file is not a database); "
        "runs go on in memory. Delete the file (it holds only run history and reusable "
        "outputs) or set GERMINATE_STORE=off."
    ]
    assert "state 'design': succeeded" in out.stdout
    assert sorted(calls(tmp_path)) == ["count", "report", "side", "tokenize"]
    history = cli("history", nb)
    assert history.returncode == 2
    assert history.stderr.startswith(f"germinate-nb: error: run store {store} cannot be opened")
    assert len(history.stderr.splitlines()) == 1


def test_an_output_that_is_not_json_reruns_alone_in_the_next_process(tmp_path):
    raw = (
        "from pydantic import ConfigDict\n"
        "class Blob:\n    def __init__(self, n):\n        self.n = n\n"
        "class Raw(BaseModel):\n    model_config = ConfigDict(arbitrary_types_allowed=True)\n"
        "    blob: Blob\n"
        "@design.task()\ndef pack(input: Counts) -> Raw:\n    mark('pack')\n"
        "    return Raw(blob=Blob(input.n))\n"
        "design.get('report') >> pack\n"
    )
    nb = write(tmp_path, [*CELLS, raw])
    first = cli("run", nb, "--reuse", "--input", INPUT)
    assert first.returncode == 0, first.stderr
    assert "warning" not in first.stderr.lower()
    (tmp_path / "calls.txt").unlink()
    second = cli("run", nb, "--reuse", "--json", "--input", INPUT)
    assert statuses(second) == {
        "tokenize": "cached", "count": "cached", "report": "cached", "side": "cached",
        "pack": "succeeded",
    }  # fmt: skip
    assert calls(tmp_path) == ["pack"]
    run_id = json.loads(cli("history", nb, "--json", "--limit", "1").stdout)[0]["run_id"]
    detail = json.loads(cli("history", nb, run_id, "--json").stdout)
    [pack] = [t for t in detail["tasks"] if t["task"] == "pack"]
    assert pack["reusable"] is False and pack["output"] is None
    assert pack["note"].startswith("output is not JSON-serialisable: PydanticSerializationError")


def test_run_reuse_with_a_store_path_and_the_environment(tmp_path):
    nb = write(tmp_path)
    elsewhere = tmp_path / "elsewhere" / "runs.sqlite"
    assert cli("run", nb, "--reuse", "--store", elsewhere, "--input", INPUT).returncode == 0
    assert elsewhere.is_file() and not (tmp_path / ".germinate").exists()
    out = cli("run", nb, "--reuse", "--json", "--input", INPUT, store_env=str(elsewhere))
    assert set(statuses(out).values()) == {"cached"}
    off = cli("run", nb, "--reuse", "--json", "--input", INPUT, store_env="off")
    assert set(statuses(off).values()) == {"succeeded"}
    assert not (tmp_path / ".germinate").exists()


# -- history ----------------------------------------------------------------------------


def test_history_lists_runs_newest_first_without_running_the_notebook(tmp_path):
    nb = write(tmp_path, [*CELLS, "mark('cells ran')"])
    cli("run", nb, "--input", INPUT)
    failing = '{"wrong": 1}'
    assert cli("run", nb, "--reuse", "--input", INPUT).returncode == 0
    assert cli("run", nb, "--input", failing).returncode == 2  # refused before running
    (tmp_path / "calls.txt").unlink()
    out = cli("history", nb)
    assert out.returncode == 0, out.stderr
    assert calls(tmp_path) == []  # no cell ran
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["run", "state", "status", "started", "took", "tasks"]
    assert len(lines) == 3
    assert lines[1].split()[1:3] == ["design", "succeeded"]
    assert lines[1].endswith("4 cached") and lines[2].endswith("4 succeeded")
    doc = json.loads(cli("history", nb, "--json").stdout)
    assert [r["counts"] for r in doc] == [{"cached": 4}, {"succeeded": 4}]
    newest = doc[0]
    assert newest["state"] == "design" and newest["status"] == "succeeded"
    assert newest["input"] == {"text": "b a c a"}
    assert newest["origin"] == "germinate-nb run nb.ipynb"
    assert newest["duration"] == pytest.approx(newest["ended"] - newest["started"])
    assert len(json.loads(cli("history", nb, "--json", "--limit", "1").stdout)) == 1
    assert json.loads(cli("history", nb, "--json", "--state", "other").stdout) == []


def test_history_of_one_run_shows_its_task_runs(tmp_path):
    nb = write(tmp_path)
    cli("run", nb, "--input", INPUT)
    run_id = json.loads(cli("history", nb, "--json").stdout)[0]["run_id"]
    out = cli("history", nb, run_id[:6])  # a prefix will do
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"{run_id}  design  succeeded")
    assert lines[1].split() == ["task", "status", "try", "time", "output", "/", "error"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {"tokenize", "count", "report", "side"}
    assert rows["report"].split()[1:3] == ["succeeded", "1"] and rows["report"].endswith('{"n":30}')
    doc = json.loads(cli("history", nb, run_id, "--json").stdout)
    assert doc["run_id"] == run_id
    tok = {t["task"]: t for t in doc["tasks"]}["tokenize"]
    assert tok["output"] == {"tokens": ["a", "b", "c"]} and tok["reusable"] is True
    assert len(tok["fingerprint"]) == 16 and len(tok["input_hash"]) == 32


def test_history_of_a_failed_run_shows_the_error(tmp_path):
    broken = COUNT.replace("mark('count')", "mark('count')\nraise ValueError('no counting')")
    nb = write(tmp_path, [SETUP, TOKENIZE, broken, REPORT, SIDE])
    assert cli("run", nb, "--input", INPUT).returncode == 1
    out = cli("history", nb)
    assert "failed" in out.stdout.splitlines()[1]
    run_id = out.stdout.splitlines()[1].split()[0]
    detail = cli("history", nb, run_id).stdout
    rows = {line.split()[0]: line for line in detail.splitlines()[2:]}
    assert rows["count"].endswith("ValueError: no counting")
    assert rows["report"].split()[1] == "skipped" and rows["report"].endswith("'count' failed")
    doc = json.loads(cli("history", nb, run_id, "--json").stdout)
    error = {t["task"]: t for t in doc["tasks"]}["count"]["error"]
    assert error.startswith("ValueError: no counting\n\nTraceback")


def test_history_usage_errors_are_one_line_with_exit_status_2(tmp_path):
    nb = write(tmp_path)
    out = cli("history", nb)
    assert out.returncode == 0 and out.stdout == ""
    assert out.stderr == (
        f"germinate-nb: no runs recorded yet: no run store at {tmp_path / '.germinate'}"
        "/runs.sqlite (runs of nb.ipynb are recorded there)\n"
    )
    assert not (tmp_path / ".germinate").exists()  # history never creates a store
    assert cli("history", nb, "--json").stdout == "[]\n"
    cli("run", nb, "--input", INPUT)
    cases = {
        ("history", tmp_path / "nope.ipynb"): f"no such notebook: {tmp_path / 'nope.ipynb'}",
        ("history", nb, "--limit", "0"): "--limit must be at least 1, got 0.",
        ("history", nb, "zzz"): "no run 'zzz' in run store",
        ("history", nb, "--store", "off"): "the run store is off (--store off)",
    }
    for args, message in cases.items():
        out = cli(*args)
        assert out.returncode == 2, args
        assert out.stderr.startswith(f"germinate-nb: error: {message}"), out.stderr
        assert len(out.stderr.splitlines()) == 1
    off = cli("history", nb, store_env="off")
    assert off.returncode == 2 and "(GERMINATE_STORE=off)" in off.stderr


def test_history_run_id_prefix_shared_by_several_runs_is_ambiguous(tmp_path):
    nb = write(tmp_path)
    cli("run", nb, "--input", INPUT)
    cli("run", nb, "--input", INPUT)
    store = tmp_path / ".germinate" / "runs.sqlite"
    with sqlite3.connect(store) as conn:  # ids are random: give both the same start
        old_ids = [r[0] for r in conn.execute("SELECT run_id FROM runs")]
        for new, old in zip(("abc111", "abc222"), old_ids, strict=True):
            conn.execute("UPDATE runs SET run_id = ? WHERE run_id = ?", (new, old))
            conn.execute("UPDATE task_runs SET run_id = ? WHERE run_id = ?", (new, old))
    out = cli("history", nb, "abc")
    assert out.returncode == 2
    assert "run id 'abc' is ambiguous" in out.stderr and "Give more of it." in out.stderr
    assert cli("history", nb, "abc2").returncode == 0


def test_a_store_locked_past_the_run_shows_its_warning_before_the_command_exits(tmp_path):
    nb = write(tmp_path)
    assert cli("run", nb, "--input", INPUT).returncode == 0  # the store exists
    store = tmp_path / ".germinate" / "runs.sqlite"
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process's lock, held past the run's end
    try:
        out = cli("run", nb, "--input", INPUT)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert out.returncode == 0, out.stderr
    warning_lines = [line for line in out.stderr.splitlines() if "warning" in line]
    assert warning_lines == [
        f"germinate-nb: warning: run store {store} stopped working (database is locked), "
        "4 task runs not saved; runs go on in memory. Another process holds it locked; retry "
        "later, or set GERMINATE_STORE=PATH to use another store."
    ]
    assert "Traceback" not in out.stderr


def test_history_shows_a_run_whose_times_are_not_numbers(tmp_path):
    nb = write(tmp_path)
    assert cli("run", nb, "--input", INPUT).returncode == 0
    conn = sqlite3.connect(tmp_path / ".germinate" / "runs.sqlite")
    with conn:
        conn.execute("UPDATE runs SET started = 'yesterday'")
    conn.close()
    out = cli("history", nb)
    assert out.returncode == 0, out.stderr
    [row] = [line for line in out.stdout.splitlines() if "design" in line]
    assert "? ('yesterday')" in row and "succeeded" in row
