"""Reuse keys survive a restart: fingerprints and input hashes are the same in every process.

Each check runs in separate interpreters with different ``PYTHONHASHSEED`` values, which change
the iteration order of sets and of dicts built from them, and object addresses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TASKS = """
import enum
from typing import Literal
from pydantic import BaseModel
from germinate_nb import State, TaskExecutor

class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"

class Inner(BaseModel):
    tags: frozenset[str] = frozenset({"u", "v", "w", "x", "y"})
    label: str = "inner"

class Rich(BaseModel):
    words: set[str] = {"alpha", "beta", "gamma", "delta", "epsilon"}
    weights: dict[str, int] = {"z": 1, "a": 2}
    mode: Literal["fast", "slow"] = "fast"
    color: Color = Color.RED
    inner: Inner = Inner(tags=frozenset())  # see test_a_nested_default_holding_a_set

s = State("stable")

@s.task()
def from_module(input: Rich) -> Rich:
    keep = {"alpha", "beta", "gamma"}
    return Rich(words={w for w in input.words if w in keep})

generated = {}
exec(compile(
    "def no_source(input):\\n"
    "    return Rich(words={w for w in input.words if w in {'a', 'b', 'c', 'd', 'e'}})\\n",
    "<generated>", "exec"), globals(), generated)  # no source text: the bytecode path
s.define_task("no_source", TaskExecutor(
    "no_source_executor", generated["no_source"], input_schema=Rich, output_schema=Rich,
    namespace="agent"))
s.define_task("from_cell", TaskExecutor(
    "from_cell_executor", lambda input: input, input_schema=Rich, output_schema=Rich,
    namespace="agent", source="Rich(words=input.words | {'x', 'y'})"))
"""

PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import stable_tasks as m
from germinate_nb.execution.invoke import _prepare
from germinate_nb.execution.backend import Job
from germinate_nb.execution.store import input_hash
import threading
from germinate_nb.core.executor import DependencyCache

fingerprints = {t.name: t.executor.fingerprint for t in m.s.tasks}
data = {"words": {f"w{i}" for i in range(40)}, "weights": {f"k{i}": i for i in range(40)}}
hashes = {}
for t in m.s.tasks:
    job = Job(t.name, "stable", t.executor, (), None, data, None, "r", threading.Event(),
              DependencyCache())
    model, key = _prepare(job)  # the reuse key the engine records and looks up
    hashes[t.name] = input_hash(key)
hashes["dump"] = input_hash(m.Rich(**data).model_dump())
print(json.dumps({"fingerprints": fingerprints, "hashes": hashes}))
"""


def probe(folder: Path, seed: str, code: str = PROBE) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_fingerprints_and_input_hashes_are_the_same_in_every_process(tmp_path):
    (tmp_path / "stable_tasks.py").write_text(TASKS)
    found = [probe(tmp_path, seed) for seed in ("1", "2", "12345")]
    first = found[0]
    assert set(first["fingerprints"]) == {"from_module", "no_source", "from_cell"}
    for value in [*first["fingerprints"].values(), *first["hashes"].values()]:
        assert value and not value.startswith("unfingerprintable")
    assert len(set(first["fingerprints"].values())) == 3
    for other in found[1:]:
        assert other == first


NESTED = """
import json, sys
from pydantic import BaseModel
from germinate_nb import State

class Inner(BaseModel):
    tags: frozenset[str] = frozenset({"u", "v", "w", "x", "y"})

class Outer(BaseModel):
    inner: Inner = Inner()  # a default whose JSON-schema text lists a set in hash order

s = State("nested")

@s.task()
def echo(input: Outer) -> Outer:
    return input

print(json.dumps({"fingerprint": s.get("echo").executor.fingerprint}))
"""


def test_a_nested_default_holding_a_set_keeps_its_fingerprint_across_processes(tmp_path):
    found = {seed: probe(tmp_path, seed, NESTED)["fingerprint"] for seed in ("1", "2", "3")}
    assert len(set(found.values())) == 1, found
