"""Hostile paths and input through ``%germinate``: one-line UsageErrors, never a traceback."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from tests.notebook.conftest import g


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/nonexistent/x.png", r"directory /nonexistent does not exist\. Create it first"),
        ("{tmp}/file.txt/x.svg", r"file\.txt is a file, not a directory\. Choose a path inside"),
        ("/proc/x.png", r"directory /proc does not accept new files"),
        ("{tmp}", r"it is a directory\. Give a file name, e\.g\."),
    ],
)
def test_export_to_a_bad_path_is_one_line_usage_error(chain, tmp_path, target, message):
    (tmp_path / "file.txt").write_text("a file")
    target = target.format(tmp=tmp_path)
    with pytest.raises(UsageError, match=message) as info:
        g(chain, f"export --format png -o {target}")
    assert "\n" not in str(info.value) and str(info.value).startswith(f"cannot write {target}")


def test_export_checks_the_path_before_drawing(chain, monkeypatch):
    from germinate_nb.render import export

    def fail(*args, **kwargs):
        raise AssertionError("drew the DAG for a path that cannot be written")

    monkeypatch.setattr(export, "export_state", fail)
    with pytest.raises(UsageError, match="does not exist"):
        g(chain, "export --format svg -o /nonexistent/x.svg")


def germinate_magic(ip, line):
    """Call %germinate without IPython's `{var}` expansion of the line.

    IPython's expansion is quadratic in the line's length (minutes for 100,000 characters):
    that is IPython's cost, not the magic's, so the biggest inputs bypass it.
    """
    return ip.magics_manager.registry["GerminateMagics"].germinate(line)


@pytest.mark.parametrize("sub", ["run", "validate"])
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            "[" * 100_000,
            r"--input is JSON nested too deeply to read: '\[\[\[.*… \(100000 characters\)",
        ),
        ("{" * 100_000, r"--input is JSON nested too deeply to read|--input is not valid JSON"),
        ('{"text": ' + "9" * 5000 + "}", r"--input cannot be read as JSON \(Exceeds the limit"),
    ],
    ids=["arrays nested 100,000 deep", "objects nested 100,000 deep", "5,000-digit number"],
)
def test_hostile_json_input_is_one_line_usage_error(chain, sub, payload, message):
    with pytest.raises(UsageError, match=message) as info:
        germinate_magic(chain, f"{sub} --input '{payload}'")
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_deep_json_through_the_line_magic_is_usage_error(chain):
    deeper_than_the_recursion_limit = "[" * 5_000
    with pytest.raises(UsageError, match=r"--input is JSON nested too deeply to read"):
        g(chain, f"run --input '{deeper_than_the_recursion_limit}'")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ("--retries 2 --retries 3", r"--retries is given twice .*; give it once"),
        ("--limit a --limit=b", r"--limit is given twice"),
        ("--retry-on ''", r"--retry-on must be .* E\.g\. --retry-on TimeoutError,ConnectionError"),
        ("--retry-on KeyboardInterrupt", r"--retry-on KeyboardInterrupt would never retry"),
        ("--retry-on asyncio.Nope", r"no exception class 'asyncio\.Nope'"),
    ],
)
def test_task_option_mistakes_on_the_magic_line(ip, options, match):
    ip.run_cell("import asyncio")
    with pytest.raises(UsageError, match=match) as info:
        ip.run_cell_magic("germinate_task", f"opt_task --output Counts {options}", "Counts(n=1)")
    assert "\n" not in str(info.value)


def test_a_dotted_retry_on_name_is_looked_up(ip):
    import asyncio

    from germinate_nb import TaskRegistry

    ip.run_cell("import asyncio")
    ip.run_cell_magic(
        "germinate_task", "dotted --output Counts --retry-on asyncio.TimeoutError", "Counts(n=1)"
    )
    task = TaskRegistry.default().states["main"].get("dotted")
    assert task.options.retry_on == (asyncio.TimeoutError,)
