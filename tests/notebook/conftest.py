from __future__ import annotations

import os

import pytest
from IPython.testing import globalipapp
from jupyter_client.manager import start_new_kernel


@pytest.fixture
def ip(fresh_registry):
    """The in-process IPython shell with germinate_nb loaded and models in its namespace."""
    globalipapp.start_ipython()
    shell = globalipapp.get_ipython()
    shell.extension_manager.load_extension("germinate_nb")
    shell.run_cell(
        "from pydantic import BaseModel\n"
        "from germinate_nb import State, run\n"
        "class Query(BaseModel):\n    text: str\n"
        "class Tokens(BaseModel):\n    tokens: list[str]\n"
        "class Counts(BaseModel):\n    n: int\n"
        "NOT_A_MODEL = 3\n"
    )
    yield shell
    for name in ("design", "other", "result"):
        shell.user_ns.pop(name, None)


@pytest.fixture
def chain(ip):
    """The shell with state 'main' holding tokenize -> count, declared by the magic."""
    ip.run_cell_magic(
        "germinate_task",
        "tokenize --input Query --output Tokens",
        "Tokens(tokens=input.text.split())",
    )
    ip.run_cell_magic(
        "germinate_task", "count --after tokenize --output Counts", "Counts(n=len(input.tokens))"
    )
    return ip


def g(ip, line):
    """``%germinate LINE`` in the shell."""
    return ip.run_line_magic("germinate", line)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A real IPython kernel (jupyter_client) for the tests of one module."""
    env = dict(os.environ)
    env["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))
    env["MPLBACKEND"] = "Agg"
    km, kc = start_new_kernel(kernel_name="python3", env=env, startup_timeout=60)
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)
