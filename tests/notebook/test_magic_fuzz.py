from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from germinate_nb import TaskRegistry
from tests.render.hostile import check_html, identifiers

pieces = st.sampled_from(
    [
        "t",
        "x1",
        "--state",
        "--after",
        "--input",
        "--output",
        "--namespace",
        "main",
        "Query",
        "Counts",
        "a,b",
        "'",
        '"',
        "é",
        "名前",
        "--",
        "-x",
        "=",
        ",",
        " ",
        "\\",
        "'q r'",
        "\t",
    ]
)
lines = st.one_of(st.text(max_size=40), st.lists(pieces, max_size=8).map(" ".join))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(line=lines)
def test_magic_line_either_declares_or_is_usage_error(ip, line):
    TaskRegistry.default().clear()
    try:
        ip.run_cell_magic("germinate_task", line, "Counts(n=1)")
    except UsageError as err:
        assert str(err)
    else:
        states = TaskRegistry.default().states
        assert sum(len(s) for s in states.values()) == 1


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=identifiers)
def test_magic_declares_any_identifier_and_confirms_it_literally(ip, monkeypatch, name):
    from germinate_nb.notebook import magics

    TaskRegistry.default().clear()
    shown = []
    monkeypatch.setattr(magics, "display", shown.append)
    ip.run_cell_magic("germinate_task", f"{name} --output Counts", "Counts(n=1)")
    (line,) = shown
    expected = f"✓ task '{name}' in state 'main' (parents: none; phase 1 of 1)"
    assert repr(line) == expected
    assert check_html(line._repr_html_()) == expected
