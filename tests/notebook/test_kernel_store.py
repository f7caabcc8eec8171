"""Results survive a real kernel restart (jupyter_client): reuse comes from the run store."""

from __future__ import annotations

import json
import os

import pytest
from jupyter_client.manager import start_new_kernel

from tests.notebook.test_kernel import execute, texts
from tests.resources.cells import MODELS as MODELS_CELL

pytestmark = pytest.mark.kernel

SETUP = (
    "from germinate_nb import State, run\n"
    + MODELS_CELL
    + """
def mark(name):
    with open({counter!r}, 'a') as f:
        f.write(name + '\\n')

design = State('design')

@design.task()
def tokenize(input: Query) -> Tokens:
    mark('tokenize')
    return Tokens(tokens=sorted(set(input.text.split())))
"""
)
COUNT = """%%germinate_task count --state design --after tokenize --output Counts
mark('count')
Counts(n=len(input.tokens))"""
RUN = """
result = run(design, {"text": "b a b c"}, reuse=True)
import json
print(json.dumps({
    "statuses": {n: tr.status.value for n, tr in result.task_runs.items()},
    "count": result.outputs["count"].n,
    "store": str(result.store.path),
    "fingerprints": {t.name: t.executor.fingerprint for t in design.tasks},
}))
"""

EXPLORE = """
from germinate_nb import explore
ex = explore(design)
options = list(ex.history.run_picker.options)
stored = [run_id for label, run_id in options if label.endswith(" · stored")]
ex.history.view(stored[0])
print(json.dumps({
    "labels": [label for label, _ in options],
    "statuses": ex.statuses,
    "count": ex.displayed_run.outputs["count"].n,
}))
"""


def session(kc, counter) -> dict:
    for code in (SETUP.format(counter=str(counter)), COUNT, RUN):
        reply, messages = execute(kc, code)
        assert reply["status"] == "ok", reply
    return json.loads(texts(messages).strip().splitlines()[-1])


def test_after_a_kernel_restart_run_all_reuses_every_task_from_the_store(tmp_path):
    counter = tmp_path / "calls.txt"
    env = {k: v for k, v in os.environ.items() if k != "GERMINATE_STORE"}
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    env["MPLBACKEND"] = "Agg"
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        first = session(kc, counter)
        assert first["statuses"] == {"tokenize": "succeeded", "count": "succeeded"}
        # the kernel's folder is the notebook's: the default store is next to it
        assert first["store"] == str(tmp_path / ".germinate" / "runs.sqlite")
        assert counter.read_text().split() == ["tokenize", "count"]

        km.restart_kernel(now=False)  # what Jupyter's "Restart Kernel" does
        kc.wait_for_ready(timeout=60)
        reply, messages = execute(kc, "print('design' in globals())")
        assert texts(messages).strip() == "False"  # a new process: nothing survived in memory

        second = session(kc, counter)  # "Run All", then Run
        assert second["statuses"] == {"tokenize": "cached", "count": "cached"}
        assert second["count"] == 3
        assert second["fingerprints"] == first["fingerprints"]
        assert counter.read_text().split() == ["tokenize", "count"]  # no body ran again

        # the explorer's history lists the run of the kernel before the restart, from the store
        reply, messages = execute(kc, EXPLORE)
        assert reply["status"] == "ok", reply
        shown = json.loads(texts(messages).strip().splitlines()[-1])
        labels = shown["labels"]
        assert labels[0] == "latest run"
        assert "2 cached" in labels[1] and "stored" not in labels[1]  # this kernel's run
        assert len(labels) == 3, labels
        assert " · succeeded · " in labels[2] and labels[2].endswith(" · stored")
        assert '2 succeeded · {"text":"b a b c"}' in labels[2]  # the run's input, in short
        assert shown["statuses"] == {"tokenize": "succeeded", "count": "succeeded"}
        assert shown["count"] == 3
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
