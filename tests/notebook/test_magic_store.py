"""``%germinate store``: choose, report on, turn off and prune the kernel's run store."""

from __future__ import annotations

import re

import pytest
from IPython.core.error import UsageError

from germinate_nb import TaskRegistry
from germinate_nb.execution import store as store_module
from germinate_nb.execution.store import default_store_choice, set_default_store
from tests.notebook.conftest import g


@pytest.fixture(autouse=True)
def isolated_stores():
    before = set(store_module._REGISTRY)
    yield
    set_default_store(None)
    for key in set(store_module._REGISTRY) - before:
        store_module._REGISTRY.pop(key).close(warn=False)


def test_store_info_when_the_environment_turns_it_off(chain):
    # the test session runs with GERMINATE_STORE=off
    for line in ("store", "store info"):
        assert repr(g(chain, line)) == (
            "the run store is off (GERMINATE_STORE=off): runs keep results in memory only. "
            "Choose one with `%germinate store .germinate/runs.sqlite`."
        )


def test_store_path_records_the_kernels_later_runs_and_reuses_after_a_restart(chain, tmp_path):
    path = tmp_path / "kernel.sqlite"
    text = repr(g(chain, f"store {path}"))
    assert text.startswith(f"✓ this kernel's runs are recorded in run store {path}: ")
    assert text.endswith("0 runs, 0 task runs, schema v1, WAL journal; usable")
    assert default_store_choice() == str(path)
    first = g(chain, """run --input '{"text": "a b"}'""")
    assert first.store.path == path
    info = repr(g(chain, "store info"))
    assert re.search(r": .* 1 runs, 2 task runs, schema v1, WAL journal; usable; this ", info)
    assert info.endswith("this kernel's runs are recorded there")
    TaskRegistry.default().cache.clear()  # as after a restart: nothing in memory
    again = g(chain, """run --reuse --input '{"text": "a b"}'""")
    assert again.counts() == {"cached": 2}


def test_store_relative_path_is_made_absolute(chain, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    g(chain, "store sub/runs.sqlite")
    assert default_store_choice() == str(tmp_path / "sub" / "runs.sqlite")


def test_store_off_keeps_runs_in_memory(chain, tmp_path, monkeypatch):
    monkeypatch.setenv("GERMINATE_STORE", str(tmp_path / "env.sqlite"))
    assert repr(g(chain, "store off")) == (
        "✓ run store off: this kernel's runs keep their results in memory only"
    )
    assert g(chain, """run --input '{"text": "a"}'""").store is None
    assert repr(g(chain, "store")).startswith("the run store is off (`%germinate store off`)")
    with pytest.raises(UsageError, match=r"^nothing to prune: the run store is off"):
        g(chain, "store prune --keep 1")


def test_store_prune_keeps_the_newest_runs_and_reports_the_size(chain, tmp_path):
    g(chain, f"store {tmp_path / 'runs.sqlite'}")
    for text in ("a", "b", "c"):
        g(chain, f"""run --input '{{"text": "{text}"}}'""")
    text = repr(g(chain, "store prune --keep 1 --vacuum"))
    assert text.startswith("✓ pruned 2 runs (the newest 1 of each state kept); run store ")
    assert "1 runs, 2 task runs" in text
    assert repr(g(chain, "store prune --keep 1")).startswith("✓ pruned 0 runs")


def test_store_mistakes_are_one_line_usage_errors(chain, tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database " * 100)
    cases = {
        f"store {bad}": (
            f"run store {bad} cannot be opened: file is not a database. Delete the file"
        ),
        "store prune": "%germinate store prune needs --keep N, the runs of each state to keep",
        "store prune --keep -1": r"0 or more \(got -1\)",
        f"store {tmp_path / 'x.sqlite'} --keep 3": "--keep and --vacuum go with prune, not",
        "store info --vacuum": "--keep and --vacuum go with prune, not 'info'",
        "store a b": "unrecognized arguments: b",
        "store prune --keep x": "argument --keep: invalid int value: 'x'",
    }
    for line, message in cases.items():
        with pytest.raises(UsageError) as info:
            g(chain, line)
        assert re.search(message, str(info.value)), (line, str(info.value))
        assert "\n" not in str(info.value)
    assert default_store_choice() is None  # a failed choice keeps the kernel's store
