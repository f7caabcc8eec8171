import pytest
from IPython.core.error import UsageError

from germinate_nb import RunResult, TaskRegistry
from tests.notebook.conftest import g


def declare(ip, line, body):
    ip.run_cell_magic("germinate_task", line, body)


def test_list_shows_states_tasks_and_phases(chain):
    table = g(chain, "list")
    assert repr(table).splitlines() == [
        "germinate_nb states",
        "state           tasks  phases",
        "main (default)  2      tokenize | count",
    ]


def test_phases(chain):
    assert "phase 2  count" in repr(g(chain, "phases"))
    assert "phase 1  tokenize" in repr(g(chain, "phases main"))


def test_validate_ok_and_problems(chain):
    assert repr(g(chain, "validate")) == "✓ state 'main' is valid (2 tasks)."
    declare(chain, "bad --after tokenize --input Counts --output Counts", "input")
    text = repr(g(chain, "validate"))
    assert text.startswith("✗ task 'bad' in state 'main' needs input field 'n: int' (Counts)")
    text = repr(g(chain, """validate --input '{"txt": 1}'"""))
    assert "root task 'tokenize' in state 'main' needs input field 'text: str'" in text


def test_run_returns_run_result(chain):
    result = g(chain, """run --input '{"text": "a b"}'""")
    assert isinstance(result, RunResult) and result.outputs["count"].n == 2


def test_run_with_reuse_caches(chain):
    g(chain, """run --input '{"text": "a b"}'""")
    result = g(chain, """run main --reuse --input '{"text": "a b"}'""")
    assert result.counts() == {"cached": 2}


def test_run_bad_json_is_usage_error(chain):
    with pytest.raises(UsageError, match=r"--input is not valid JSON .*Quote it"):
        g(chain, "run --input '{text: 1}'")
    with pytest.raises(UsageError, match=r"--input must be a JSON object, got list"):
        g(chain, "run --input '[1]'")


def test_run_validation_problem_is_usage_error(chain):
    with pytest.raises(
        UsageError, match=r"(?s)state 'main' cannot run.*needs input field 'text: str'"
    ):
        g(chain, "run")


def test_export_formats(chain, tmp_path):
    assert 't0["tokenize"]' in g(chain, "export --format mermaid").data
    assert '"tokenize" -> "count";' in g(chain, "export main --format dot").data
    png = g(chain, "export --format png")
    assert png.data[:8] == b"\x89PNG\r\n\x1a\n"
    target = tmp_path / "dag.svg"
    line = g(chain, f"export --format svg -o {target}")
    assert repr(line) == f"✓ wrote svg of state 'main' to {target}"
    assert target.read_text().lstrip().startswith("<?xml")


def test_export_unknown_format(chain):
    with pytest.raises(UsageError, match=r"argument --format: invalid choice: 'gif'") as info:
        g(chain, "export --format gif")
    assert ". Usage: %germinate export " in str(info.value)
    assert str(info.value).lower().count("usage:") == 1  # not "Usage: usage: ..."


def test_unknown_subcommand_lists_valid_ones(chain):
    with pytest.raises(
        UsageError,
        match=r"unknown subcommand 'lsit' of %germinate\. Did you mean 'list'\? Subcommands: list, "
        r"show, phases, validate, run, export, use, rm, store, reset\.",
    ):
        g(chain, "lsit")
    with pytest.raises(UsageError, match="%germinate needs a subcommand"):
        g(chain, "")


def test_unknown_state(chain):
    with pytest.raises(
        UsageError,
        match=r"unknown state 'mian'\. Did you mean 'main'\? States: .*Create it with "
        r"`mian = State\('mian'\)`\.",
    ):
        g(chain, "phases mian")
    with pytest.raises(UsageError) as info:  # a name no State can have: no code to paste
        g(chain, "use '<b>'")
    assert str(info.value).startswith("unknown state '<b>'.")
    assert str(info.value).endswith(
        "A state's name is a Python identifier (letters, digits and _)."
    )


def test_reset_needs_force(chain):
    with pytest.raises(UsageError, match=r"Run `%germinate reset -f` to confirm"):
        g(chain, "reset")
    assert "main" in TaskRegistry.default().states
    assert repr(g(chain, "reset -f")) == "✓ registry reset (1 state removed)"
    assert TaskRegistry.default().states == {}


def test_show_displays_phases_and_picture(chain):
    out = g(chain, "show")
    assert out is not None


def test_export_timeline_writes_the_last_runs_gantt_chart(ip, tmp_path):
    from IPython.core.error import UsageError

    ip.run_cell(
        "s = State('timed')\n"
        "@s.task()\ndef a(input: Query) -> Tokens:\n    return Tokens(tokens=[])\n"
    )
    with pytest.raises(UsageError, match=r"state 'timed' has not run in this kernel yet"):
        ip.run_line_magic("germinate", "export timed --timeline")
    ip.run_cell("run(s, {'text': 'x'})")
    target = tmp_path / "timeline.png"
    line = ip.run_line_magic("germinate", f"export timed --timeline -o {target}")
    assert repr(line) == f"✓ wrote the timeline of state 'timed' (png) to {target}"
    assert target.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(UsageError, match="--timeline draws png or svg, not dot"):
        ip.run_line_magic("germinate", "export timed --timeline --format dot")
    with pytest.raises(UsageError, match="needs --format png|svg|dot|mermaid, or --timeline"):
        ip.run_line_magic("germinate", "export timed")
