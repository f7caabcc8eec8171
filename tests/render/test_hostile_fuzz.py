"""Fuzz: hostile names and texts through every HTML view and every export format.

Names come from Mermaid/DOT reserved words, right-to-left scripts and 10,000-character
identifiers; texts (condition names, Literal values, docstrings, field values, error messages)
from an alphabet of HTML, quotes, newlines, ``$``, backslashes, right-to-left marks and control
characters. Each output must be well-formed (HTML balanced and script-free, SVG valid XML, DOT
parsed by pydot, Mermaid lines of the expected shapes) and show the text literally. The Mermaid
output of hostile states is also parsed by Mermaid itself in test_export_consumers.py.
"""

from __future__ import annotations

import re
import textwrap

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, create_model

from germinate_nb import State, TaskExecutor, TaskRegistry, run
from germinate_nb.core.schema import type_name
from germinate_nb.execution.result import RunResult, TaskError, TaskRun, TaskStatus
from germinate_nb.render.export import export_state
from germinate_nb.render.mpl import _label, _literal, draw_state, draw_workflow, figure_svg
from germinate_nb.render.text import to_dot, to_mermaid
from tests.render.hostile import (
    Plain,
    check_dot,
    check_html,
    check_svg,
    hostile_state,
    hostile_workflow,
    identifiers,
    literal_model,
    texts,
)

STATUSES = ["pending", "running", "succeeded", "failed", "skipped", "cached", "cancelled"]
FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
names_lists = st.lists(identifiers, min_size=1, max_size=4, unique=True)
MERMAID_LINE = re.compile(
    r'  t\d+\["[^"\n]*"\]|  t\d+ --> t\d+|  classDef \w+ fill:#\w+,stroke:#\w+'
    r"|  class t\d+(,t\d+)* \w+|  linkStyle \d+(,\d+)* stroke:#\w+,stroke-width:2px"
)


def fresh():
    TaskRegistry.default().clear()


def mermaid_labels(text: str) -> dict[str, str]:
    """Node id -> label text, entity codes decoded as Mermaid does."""
    labels = {}
    for node_id, label in re.findall(r'^  (t\d+)\["([^"]*)"\]$', text, re.M):
        labels[node_id] = re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), label)
    return labels


@FUZZ
@given(names=names_lists, values=st.lists(texts, min_size=1, max_size=3), data=st.data())
def test_exports_are_well_formed_and_literal(names, values, data):
    fresh()
    s = hostile_state(names, literal_values=values)
    statuses = {n: data.draw(st.sampled_from(STATUSES)) for n in names}
    problems = s.validate()
    if len(names) > 1:  # the last task needs a Literal field no parent provides
        assert any(repr(values[0]) in p.message for p in problems)

    _, nodes, edges = check_dot(to_dot(s, statuses, problems))
    assert nodes == set(names)
    assert edges == set(zip(names, names[1:], strict=False))

    mermaid = to_mermaid(s, statuses, problems)
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart LR"
    for line in lines[1:]:
        assert MERMAID_LINE.fullmatch(line), line
    assert sorted(mermaid_labels(mermaid).values()) == sorted(names)

    fig = draw_state(s, statuses=statuses, problems=problems)
    drawn = [*fig.texts, *fig.axes[0].texts, fig.axes[0].title, fig.axes[0]._left_title]
    assert all(not t.get_parse_math() and not t.get_usetex() for t in drawn)
    if problems:
        (problem_text,) = [t.get_text() for t in fig.texts if t.get_gid() == "problems"]
        assert problem_text.startswith(_literal(textwrap.shorten(problems[0].message, 160)))

    svg_text = check_svg(figure_svg(fig))
    for name in names:
        assert _label(name) in svg_text  # names longer than 60 characters end with "…"
    assert export_state(s, "png")[:8] == b"\x89PNG\r\n\x1a\n"


@FUZZ
@given(condition=texts, workflow=texts, version=texts)
def test_workflow_picture_shows_any_condition_name(condition, workflow, version):
    fresh()
    wf = hostile_workflow(hostile_state(["end"]), condition, name=workflow, version=version)
    text = check_svg(figure_svg(draw_workflow(wf, current="hostile")))
    for line in _label(condition).splitlines():
        assert line in text


@FUZZ
@given(
    names=st.lists(identifiers, min_size=3, max_size=3, unique=True),
    value=texts,
    message=texts,
    skipped=texts,
)
def test_run_result_html_is_well_formed_and_literal(names, value, message, skipped):
    class Out(BaseModel):
        text: str

    ok, bad, later = names
    result = RunResult(
        state="hostile",
        status="failed",
        task_runs={
            ok: TaskRun(ok, TaskStatus.SUCCEEDED, output=Out(text=value), duration=0.001),
            bad: TaskRun(bad, TaskStatus.FAILED, error=TaskError("ValueError", message, message)),
            later: TaskRun(later, TaskStatus.SKIPPED, skipped_because=skipped),
        },
    )
    text = check_html(result._repr_html_())
    for name in names:
        assert name in text
    assert f"ValueError: {message}" in text
    assert f"'{skipped}' failed" in text
    assert "Out(text=" in text


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    names=st.lists(identifiers, min_size=2, max_size=2, unique=True),
    value=texts,
    message=texts,
    literal_values=st.lists(texts, min_size=1, max_size=2),
    docstring=texts,
)
def test_explorer_details_are_well_formed_and_literal(
    names, value, message, literal_values, docstring
):
    from germinate_nb.notebook.explorer import DagExplorer

    fresh()
    good, boom = names
    choice = literal_model(literal_values).model_fields["choice"].annotation
    Out = create_model("Out", text=(str, ...), choice=(choice | None, None))

    def produce(input: Plain) -> BaseModel:
        return Out(text=value)

    def explode(input: Plain) -> Plain:
        raise ValueError(message)

    s = State("hostile")
    source = f'def {good}(input):\n    """{docstring}"""\n'
    s.define_task(
        good,
        TaskExecutor(
            f"{good}_executor", produce, input_schema=Plain, output_schema=Out, source=source
        ),
    )
    s.define_task(
        boom,
        TaskExecutor(f"{boom}_executor", explode, input_schema=Plain, output_schema=Plain),
    )
    result = run(s, {"x": 1})
    assert result.task_runs[boom].status is TaskStatus.FAILED
    check_html(result._repr_html_())

    ex = DagExplorer(s)
    try:
        ex.select(good)
        text = check_html(ex.details.html.value)
        assert good in text and source in text
        assert repr(value) in text  # the output field, whole (long ones fold into <details>)
        assert type_name(choice | None) in text  # the Literal values, in the fields table
        ex.select(boom)
        text = check_html(ex.details.html.value)
        assert message in text and boom in text
        check_html(ex.message.value)
    finally:
        ex.close()


@FUZZ
@given(text=texts)
def test_magic_confirmation_line_is_escaped(text):
    from germinate_nb.notebook.magics import Line

    line = Line(text)
    assert repr(line) == text
    assert check_html(line._repr_html_()) == text
