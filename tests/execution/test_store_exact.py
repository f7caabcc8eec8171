"""The run store reuses an output only when JSON gives back exactly that output, for exactly
that input: values JSON has no type for (datetimes, sets, tuples, bytes, non-text keys) in
untyped fields neither come back changed nor make two inputs look alike."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import to_json

from germinate_nb import State, run, use_registry
from germinate_nb.execution.store import RunStore, TaskRecord, input_hash
from germinate_nb.execution.store_rows import round_trips

ROOT = Path(__file__).resolve().parents[2]


class Loose(BaseModel):
    data: Any = None


class Kind(BaseModel):
    kind: str


class Typed(BaseModel):
    when: datetime.datetime
    pair: tuple[int, int]
    tags: set[str]
    amount: decimal.Decimal


def test_input_hash_tells_apart_what_json_would_make_alike():
    alike = [
        (datetime.datetime(2020, 1, 1), "2020-01-01T00:00:00"),
        ((1, 2), [1, 2]),
        ({1, 2}, [1, 2]),
        ({1: "a"}, {"1": "a"}),
        (b"abc", "abc"),
        (decimal.Decimal("1.10"), "1.10"),
    ]
    for one, other in alike:
        assert input_hash({"data": one}) != input_hash({"data": other}), (one, other)
    # what == calls equal still hashes equal, whatever order it was built in
    assert input_hash({"a": {3, 1, 2}, "b": {2: "x", 1: "y"}}) == input_hash(
        {"b": {1: "y", 2: "x"}, "a": {2, 3, 1}}
    )
    # plain JSON data hashes as it always did: stored rows stay reusable
    flat = {"text": "x", "n": 1}
    nested = {"text": "x", "items": [{"k": 1}], "meta": {"z": None, "a": True}}
    for data in (flat, nested):
        expected = hashlib.sha256(to_json(_sorted_keys(data))).hexdigest()[:32]
        assert input_hash(data) == expected


def _sorted_keys(value):
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def test_inputs_that_json_would_make_alike_are_never_served_each_others_output(tmp_path):
    store = str(tmp_path / "runs.sqlite")
    with use_registry():
        s = State("s")

        @s.task()
        def t(input: Loose) -> Kind:
            return Kind(kind=type(input.data).__name__)

        seen = []
        for data in (datetime.datetime(2020, 1, 1), "2020-01-01T00:00:00", (1, 2), [1, 2],
                     {1, 2}, {1: "a"}, {"1": "a"}):  # fmt: skip
            tr = run(s, {"data": data}, store=store, echo=False, reuse=True).task_runs["t"]
            seen.append((tr.status.value, tr.output.kind))
        again = run(s, {"data": (1, 2)}, store=store, echo=False, reuse=True).task_runs["t"]
    assert seen == [
        ("succeeded", "datetime"), ("succeeded", "str"), ("succeeded", "tuple"),
        ("succeeded", "list"), ("succeeded", "set"), ("succeeded", "dict"),
        ("succeeded", "dict"),
    ]  # fmt: skip
    assert (again.status.value, again.output.kind) == ("cached", "tuple")


def test_round_trips_is_true_for_typed_fields_and_false_for_untyped_ones():
    typed = Typed(when=datetime.datetime(2020, 1, 1), pair=(1, 2), tags={"a"}, amount="1.10")
    dump = typed.model_dump()
    assert round_trips(dump, typed.model_dump_json(), Typed)  # validation rebuilds them all
    assert round_trips(typed, typed.model_dump_json(), Typed)
    assert not round_trips(dump, typed.model_dump_json(), "tests.Typed")  # no model to ask
    for value in (datetime.datetime(2020, 1, 1), {1, 2}, (1, 2), {1: "a"}, b"abc",
                  decimal.Decimal("1.10"), float("nan")):  # fmt: skip
        loose = Loose(data=value)
        text = loose.model_dump_json()
        assert not round_trips(loose.model_dump(), text, Loose), value
    assert round_trips({"data": [1, {"k": "v"}]}, '{"data":[1,{"k":"v"}]}', Loose)


def test_a_row_whose_output_json_would_change_is_recorded_not_reusable(tmp_path):
    with RunStore.open(tmp_path / "runs.sqlite") as store:
        store.begin_run("r1", "s", None, 1.0)
        for task, value in (("loose", datetime.datetime(2020, 1, 1)), ("plain", "text")):
            out = Loose(data=value)
            ih = input_hash({"text": task})
            store.record(
                TaskRecord(
                    "r1",
                    "s",
                    task,
                    "fp",
                    ih,
                    "succeeded",
                    out.model_dump(),
                    Loose,
                    "",
                    "",
                    1.0,
                    0.1,
                )  # fmt: skip
            )
        store.end_run("r1", 2.0, "succeeded")
        assert store.flush()
        rows = {r.task: r for r in store.task_runs("r1")}
        assert rows["plain"].reusable and rows["plain"].note == ""
        loose = rows["loose"]
        assert not loose.reusable and loose.output_json == '{"data":"2020-01-01T00:00:00"}'
        assert loose.note.startswith("output changes on its way through JSON")
        assert store.lookup("s", "loose", "fp", input_hash({"text": "loose"})) is None


RESTART = r"""
import datetime, sys
from typing import Any
from pydantic import BaseModel
from germinate_nb import State, run

class Q(BaseModel):
    text: str

class O(BaseModel):
    out: Any = None
    when: datetime.datetime

s = State("s")

@s.task()
def t(input: Q) -> O:
    return O(out={"when": datetime.datetime(2020, 1, 1), "set": {1, 2}, 1: "int key"},
             when=datetime.datetime(2021, 1, 1))

@s.task()
def typed(input: Q) -> O:
    return O(when=datetime.datetime(2021, 1, 1))

r = run(s, {"text": "x"}, store=sys.argv[1], echo=False, reuse=True)
for name in ("t", "typed"):
    tr = r.task_runs[name]
    print(name, tr.status.value, repr(tr.output.out), repr(tr.output.when))
"""


def test_after_a_restart_an_output_is_reused_only_when_it_comes_back_the_same(tmp_path):
    store = str(tmp_path / "runs.sqlite")

    def once() -> list[str]:
        proc = subprocess.run(
            [sys.executable, "-c", RESTART, store], capture_output=True, text=True,
            timeout=120, cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.splitlines()

    first, second = once(), once()
    value = (
        "{'when': datetime.datetime(2020, 1, 1, 0, 0), 'set': {1, 2}, 1: 'int key'} "
        "datetime.datetime(2021, 1, 1, 0, 0)"
    )
    assert first == [
        f"t succeeded {value}",
        "typed succeeded None datetime.datetime(2021, 1, 1, 0, 0)",
    ]
    assert second == [
        f"t succeeded {value}",
        "typed cached None datetime.datetime(2021, 1, 1, 0, 0)",
    ]


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_numbers_never_hash_like_null(value):
    assert input_hash({"x": value}) != input_hash({"x": None})
