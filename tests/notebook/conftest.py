from __future__ import annotations

import pytest
from IPython.testing import globalipapp


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
