"""A huge output never makes the notebook file grow by megabytes."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

CELLS = [
    "from pydantic import BaseModel\n"
    "from germinate_nb import State, explore, run\n"
    "class X(BaseModel):\n    x: int = 1\n"
    "class Big(BaseModel):\n    blob: str\n"
    "s = State('big')\n"
    "@s.task()\ndef make(input: X) -> Big:\n"
    "    print('z' * {size})\n"
    "    return Big(blob='y' * {size})\n"
    "@s.task()\ndef fail(input: X) -> X:\n    raise ValueError('e' * {size})\n",
    "ex = explore(s)\nex",
    "result = run(s, {{'x': 1}}, echo=False)\nex.wait(30)\nex.select('make')\nresult",
    "ex.select('fail')",
]


def executed_size(tmp_path, size: int) -> int:
    nb = new_notebook(cells=[new_code_cell(c.format(size=size)) for c in CELLS])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()  # widget state kept
    path = tmp_path / f"nb_{size}.ipynb"
    nbformat.write(nb, path)
    return path.stat().st_size


@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_a_50_mb_output_log_and_error_leave_the_notebook_under_1_mb_larger(tmp_path):
    small = executed_size(tmp_path, 10)
    big = executed_size(tmp_path, 50_000_000)
    assert big - small < 1_000_000, (small, big)
