"""A corpus of hostile notebooks and inputs through ``germinate-nb run|check|graph``.

Each case runs in a subprocess and must end with its exit status (2 for usage and input errors,
1 for a failed task, 130 when interrupted) and, on failure, one line on stderr without a
traceback. The notebooks live in tests/cli/hostile/; the big ones (JSON nested 100,000 deep)
and the binary input are written by the tests.

The cases run concurrently (each is a fresh interpreter that spends ~2 s importing IPython).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HOSTILE = Path(__file__).resolve().parent / "hostile"
TIMEOUT = 120


@dataclass
class Case:
    """``germinate-nb ARGS``: the exit status, and a piece of stderr's (single) line."""

    args: list[str]
    status: int
    stderr: str = ""
    one_line: bool = True  # stderr is one line (the error), not progress lines
    env: dict[str, str] = field(default_factory=dict)


def cli(args, *, env=None, timeout=TIMEOUT):
    command = [sys.executable, "-m", "germinate_nb.cli", *map(str, args)]
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            errors="backslashreplace",
            env=dict(os.environ, MPLBACKEND="Agg", **(env or {})),
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:  # killed: report it as this case's failure
        return subprocess.CompletedProcess(command, None, "", f"timed out after {timeout} s")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs too big or too binary to keep in the repository, and places to write to."""
    tmp = tmp_path_factory.mktemp("hostile")
    deep = "[" * 100_000 + "]" * 100_000
    (tmp / "deep.ipynb").write_text(deep)
    (tmp / "deep_object.ipynb").write_text('{"cells": ' + deep + ', "nbformat": 4}')
    (tmp / "deep.json").write_text('{"text": ' + deep + "}")
    (tmp / "binary.json").write_bytes(bytes(range(256)) * 4)
    (tmp / "a_file").write_text("not a directory")
    (tmp / "folder.png").mkdir()
    return tmp


def cases(tmp: Path) -> dict[str, Case]:
    marker = {"GERMINATE_MARKER": str(tmp / "marker")}
    good = HOSTILE / "good.ipynb"
    return {
        "no cells key": Case(["check", HOSTILE / "no_cells.ipynb"], 2, 'no "cells" key'),
        "source is [1, 2]": Case(
            ["run", HOSTILE / "source_not_text.ipynb"],
            2,
            "the source of code cell 1 (cell 2) is [1, 2]; it must be a string",
        ),
        'nbformat is "4"': Case(
            ["check", HOSTILE / "nbformat_string.ipynb"],
            2,
            '"nbformat" is "4", it must be the whole number 4',
        ),
        "notebook nested 100,000 deep": Case(
            ["check", tmp / "deep.ipynb"], 2, "is JSON nested too deeply to read"
        ),
        "cells nested 100,000 deep": Case(
            ["run", tmp / "deep_object.ipynb"], 2, "is JSON nested too deeply to read"
        ),
        "--input @file nested 100,000 deep": Case(
            ["run", good, "--input", f"@{tmp / 'deep.json'}"],
            2,
            "deep.json is JSON nested too deeply to read",
        ),
        "--input nested 100,000 deep": Case(
            ["run", good, "--input", "[" * 100_000], 2, "--input is JSON nested too deeply"
        ),
        "binary --input @file": Case(
            ["run", good, "--input", f"@{tmp / 'binary.json'}"],
            2,
            "binary.json is not UTF-8 text (byte 0x80 at position 128)",
        ),
        "--input with a 5,000-digit number": Case(
            ["run", good, "--input", '{"text": ' + "9" * 5000 + "}"],
            2,
            "--input cannot be read as JSON: Exceeds the limit",
        ),
        "--input @directory": Case(
            ["run", good, "--input", f"@{tmp}"], 2, "cannot read --input file"
        ),
        "notebook is a directory": Case(["check", tmp], 2, "Is a directory"),
        "cell calls sys.exit(3)": Case(
            ["check", HOSTILE / "sys_exit.ipynb"],
            2,
            "code cell 3 of ",
        ),
        "cell calls exit()": Case(
            ["check", HOSTILE / "exit_call.ipynb"],
            2,
            "called exit() or quit (line 1: `exit()`): a notebook run by germinate-nb must not "
            "exit. Remove the call",
        ),
        "cell names quit": Case(
            ["check", HOSTILE / "quit_call.ipynb"],
            2,
            "called exit() or quit (line 1: `quit`): a notebook run by germinate-nb must not exit",
        ),
        "--json with a 5,001-digit output": Case(
            ["run", HOSTILE / "huge_int.ipynb", "--json", "--input", '{"text": "abc"}'],
            0,
            one_line=False,
        ),
        "cell raises a message with a newline and an escape": Case(
            ["check", HOSTILE / "cell_raises.ipynb"],
            2,
            "raised ValueError (line 1: `raise ValueError('first line\\nsecond line "
            "\\x1b[2J with a terminal escape')`): first line second line \\x1b[2J with",
        ),
        "graph -o into a missing directory": Case(
            ["graph", HOSTILE / "loop_forever.ipynb", "-o", tmp / "missing" / "dag.png"],
            2,
            f"directory {tmp / 'missing'} does not exist. Create it first",
            env=marker,
        ),
        "graph -o under a regular file": Case(
            ["graph", HOSTILE / "loop_forever.ipynb", "-o", tmp / "a_file" / "dag.svg"],
            2,
            f"{tmp / 'a_file'} is a file, not a directory",
            env=marker,
        ),
        "graph -o under /proc": Case(
            ["graph", HOSTILE / "loop_forever.ipynb", "-o", "/proc/dag.mmd"],
            2,
            "cannot write /proc/dag.mmd: directory /proc does not accept new files",
            env=marker,
        ),
        "graph -o a directory": Case(
            ["graph", HOSTILE / "loop_forever.ipynb", "-o", tmp / "folder.png"],
            2,
            "it is a directory",
            env=marker,
        ),
        "a task's output repr raises (--json)": Case(
            ["run", HOSTILE / "repr_raises.ipynb", "--json", "--input", '{"text": "abc"}'],
            0,
            one_line=False,
        ),
        "a task's output repr raises (table)": Case(
            ["run", HOSTILE / "repr_raises.ipynb", "--input", '{"text": "abc"}'],
            0,
            one_line=False,
        ),
        "a task raises an empty message": Case(
            ["run", HOSTILE / "empty_error.ipynb", "--input", '{"text": "abc"}'],
            1,
            "✗ fails",
            one_line=False,
        ),
        "a cell prints binary garbage (check)": Case(
            ["check", HOSTILE / "binary_garbage.ipynb"], 0, one_line=False
        ),
        "a cell prints binary garbage (run --json)": Case(
            ["run", HOSTILE / "binary_garbage.ipynb", "--json", "--input", '{"text": "ab"}'],
            0,
            one_line=False,
        ),
        "reserved and mathtext names (check)": Case(
            ["check", HOSTILE / "hostile_names.ipynb"], 2, "1 problem found"
        ),
        **{
            f"reserved and mathtext names (graph .{suffix})": Case(
                ["graph", HOSTILE / "hostile_names.ipynb", "-o", tmp / f"names.{suffix}"],
                0,
                f"wrote {fmt} of state 'design' to ",
            )
            for suffix, fmt in (("svg", "svg"), ("mmd", "mermaid"))
        },
    }


@pytest.fixture(scope="module")
def outcomes(files):
    """Run every case (three at a time); name -> CompletedProcess."""
    table = cases(files)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(cli, case.args, env=case.env) for name, case in table.items()}
        return {name: future.result() for name, future in futures.items()}


CASE_NAMES = list(cases(Path("/tmp")))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_case_ends_with_status_and_one_line(name, files, outcomes):
    case = cases(files)[name]
    out = outcomes[name]
    assert out.returncode == case.status, out.stderr
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    if case.one_line:
        assert len(out.stderr.splitlines()) == 1, out.stderr
        if case.status == 2 and "problem" not in case.stderr:
            assert out.stderr.startswith("germinate-nb: error: "), out.stderr
    assert case.stderr in out.stderr


def test_sys_exit_names_the_cell_and_the_fix(files, outcomes):
    err = outcomes["cell calls sys.exit(3)"].stderr
    assert err == (
        f"germinate-nb: error: code cell 3 of {HOSTILE / 'sys_exit.ipynb'} called sys.exit(3) "
        "(line 3: `sys.exit(3)`): a notebook run by germinate-nb must not exit. Remove the call, "
        "or raise an exception to report a problem.\n"
    )


def test_output_paths_are_checked_before_the_notebook_runs(files, outcomes):
    """loop_forever.ipynb would write the marker, then never end: the path error comes first."""
    assert not (files / "marker").exists()
    for name in CASE_NAMES:
        if name.startswith("graph -o"):
            assert outcomes[name].returncode == 2


def test_json_survives_an_output_whose_repr_raises(outcomes):
    doc = json.loads(outcomes["a task's output repr raises (--json)"].stdout)
    output = doc["tasks"]["opaque"]["output"]
    assert doc["ok"] is True
    assert "repr failed: ValueError: no repr for you" in output
    table = outcomes["a task's output repr raises (table)"].stdout
    assert "opaque" in table and "succeeded" in table


def test_json_writes_an_output_integer_whole_however_long(outcomes):
    out = outcomes["--json with a 5,001-digit output"]
    assert out.stderr.startswith("✓ count"), out.stderr
    doc = json.loads(out.stdout, parse_int=str)  # Python's own limit is the reader's here
    assert doc["tasks"]["count"]["output"] == {"n": "1" + "0" * 4997 + "003"}


def test_binary_garbage_from_a_cell_stays_out_of_stdout(outcomes):
    out = outcomes["a cell prints binary garbage (check)"]
    assert out.stdout == "✓ state 'design' is valid (1 tasks, 1 phases)\n"
    assert out.stderr == ""
    doc = json.loads(outcomes["a cell prints binary garbage (run --json)"].stdout)
    assert doc["tasks"]["count"]["output"] == {"n": 2}


def test_reserved_names_and_mathtext_export_to_svg_and_mermaid(files, outcomes):
    problem = outcomes["reserved and mathtext names (check)"].stdout
    assert "Literal['$\\\\alpha$', '<b>\"x\"</b>', 'a\\\\b']" in problem
    svg = (files / "names.svg").read_text(encoding="utf-8")
    text = "".join(ET.fromstring(svg).itertext())
    for name in ("end", "graph", "style", "subgraph", "classDef", "default", "אבג"):
        assert name in text
    assert "$\\\\alpha$" in text  # the problem message, drawn as written
    mermaid = (files / "names.mmd").read_text(encoding="utf-8")
    assert '  t0["end"]' in mermaid and "end -->" not in mermaid


def test_ctrl_c_in_a_looping_cell_exits_130(tmp_path):
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [sys.executable, "-m", "germinate_nb.cli", "run", str(HOSTILE / "loop_forever.ipynb")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, MPLBACKEND="Agg", GERMINATE_MARKER=str(marker)),
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the notebook never reached its loop"
            time.sleep(0.05)
        time.sleep(0.2)  # from the marker cell into the `while True` cell
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert err == "germinate-nb: interrupted\n"
    assert out == ""
