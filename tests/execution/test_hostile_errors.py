"""Hostile exceptions raised by tasks (found by the hostile-input work of issue 16).

The engine (``germinate_nb/execution``) is being rebuilt, so these bugs are recorded here, as
strict xfails, for that work to fix: each test turns into a failure (XPASS) once it is fixed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

EVIL_STR = textwrap.dedent(
    """
    from pydantic import BaseModel
    from germinate_nb import State, run

    class X(BaseModel):
        x: int = 0

    class Evil(Exception):
        def __str__(self):
            raise RuntimeError("no str for you")

    s = State("s")

    @s.task()
    def evil(input: X) -> X:
        raise Evil()

    @s.task()
    def fine(input: X) -> X:
        return input

    result = run(s, {"x": 1})
    print(result.task_runs["evil"].status.value, result.task_runs["fine"].status.value)
    print(result.task_runs["evil"].error.type)
    """
)


@pytest.mark.xfail(
    strict=True,
    reason="execution/local.py task_error() calls str(err) unguarded: the worker thread dies "
    "and run() waits forever (engine files are not ours to edit in issue 16)",
)
def test_task_raising_an_exception_whose_str_raises_fails_only_its_task(tmp_path):
    err_file = tmp_path / "stderr"
    with err_file.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", EVIL_STR], stdout=subprocess.PIPE, stderr=err, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None:
                # a dead worker thread means run() will wait forever: no need to wait for it
                if "Exception in thread" in err_file.read_text():
                    pytest.fail("a worker thread died and the run hung:\n" + err_file.read_text())
                if time.monotonic() > deadline:
                    pytest.fail("run() never returned")
                time.sleep(0.1)
            out = proc.stdout.read()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err_file.read_text()
    assert out.splitlines() == ["failed succeeded", "Evil"]
