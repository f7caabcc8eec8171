import time
from typing import Literal

import pytest
from pydantic import BaseModel

from germinate_nb import DagExplorer, GerminateError, State, TaskRegistry, Workflow, explore
from tests.resources.models import C, T, X


def status_classes(button):
    return [c for c in button._dom_classes if c.startswith("germinate-status-")]


def buttons(explorer):
    return explorer.phase_strip.buttons


def details(explorer):
    return explorer.details.html.value


def test_explore_builds_the_parts(design):
    ex = explore(design)
    assert isinstance(ex, DagExplorer)
    assert "germinate-explorer" in ex._dom_classes
    assert ex.state_selector.value == "design"
    assert [
        b.description
        for b in (ex.run_button, ex.stop_button, ex.run_selected_button, ex.clear_cache_button)
    ] == ["Run", "Stop", "Run selected", "Clear cache"]
    assert "germinate-graph" in ex.graph._dom_classes
    assert ex.graph.names.split("\n") == ["tokenize", "count"]
    assert ex.graph.background.startswith(b"<?xml") and b"<script" not in ex.graph.background
    assert ex.graph.phase_x == [48.0, 144.0]  # two phases, 96 units apart
    assert sorted(buttons(ex)) == ["count", "tokenize"]
    for name, button in buttons(ex).items():
        assert button.description == name
        assert "germinate-task" in button._dom_classes
        assert status_classes(button) == ["germinate-status-pending"]
    rows = ex.phase_strip.children
    assert [[c.description for c in row.children[1:]] for row in rows] == [["tokenize"], ["count"]]
    assert list(ex.input_form.fields) == ["text"]
    assert ex.status_line.text == "Not run yet · 2 tasks"


def test_run_button_runs_in_background_and_updates_live():
    s = State("slow")

    @s.task()
    def first(input: X) -> X:
        time.sleep(1.0)
        return X(x=input.x + 1)

    @s.task()
    def second(input: X) -> X:
        return X(x=input.x * 2)

    first >> second
    ex = explore(s)
    ex.input_form.set(x=4)
    t0 = time.perf_counter()
    ex.run_button.click()
    assert time.perf_counter() - t0 < 0.5
    deadline = time.perf_counter() + 0.9  # the task takes 1 s
    while status_classes(buttons(ex)["first"]) != ["germinate-status-running"]:
        assert time.perf_counter() < deadline, status_classes(buttons(ex)["first"])
        time.sleep(0.02)
    assert ex.run_button.disabled and not ex.stop_button.disabled
    result = ex.wait(10)
    assert result is ex.last_result and result.ok
    assert result.outputs["second"] == X(x=10)
    assert status_classes(buttons(ex)["first"]) == ["germinate-status-succeeded"]
    assert status_classes(buttons(ex)["second"]) == ["germinate-status-succeeded"]
    assert (ex.status_line.done, ex.status_line.total) == (2, 2)
    assert ex.status_line.counts == {"succeeded": 2}
    assert ex.graph.statuses == {"first": "succeeded", "second": "succeeded"}
    assert not ex.run_button.disabled and ex.stop_button.disabled


def test_second_click_never_starts_second_run():
    s = State("once")
    calls = []

    @s.task()
    def slow(input: X) -> X:
        calls.append(1)
        time.sleep(0.5)
        return input

    ex = explore(s, reuse=False)
    ex.input_form.set(x=1)
    ex.run_button.click()
    ex._on_run_button_click()  # even if the disabled button were clicked again
    ex.wait(5)
    assert calls == [1]


def test_stop_cancels_the_run():
    s = State("stoppable")

    @s.task()
    async def slow(input: X) -> X:
        import asyncio

        await asyncio.sleep(5)
        return input

    @s.task()
    def after(input: X) -> X:
        return input

    slow >> after
    ex = explore(s)
    ex.input_form.set(x=1)
    ex.run_button.click()
    time.sleep(0.2)
    ex.stop_button.click()
    result = ex.wait(5)
    assert result.status == "cancelled"
    assert status_classes(buttons(ex)["slow"]) == ["germinate-status-cancelled"]
    assert status_classes(buttons(ex)["after"]) == ["germinate-status-cancelled"]
    assert ex.status_line.text.startswith("Run cancelled in ")
    assert ex.status_line.counts == {"cancelled": 2} and ex.status_line.done == 2


def test_failure_shows_failed_skipped_and_error_in_details():
    s = State("failing")

    @s.task()
    def boom(input: X) -> X:
        raise ValueError("<b>bad</b> value")

    @s.task()
    def later(input: X) -> X:
        return input

    boom >> later
    ex = explore(s)
    ex.input_form.set(x=1)
    ex.run_button.click()
    ex.wait(5)
    assert status_classes(buttons(ex)["boom"]) == ["germinate-status-failed"]
    assert status_classes(buttons(ex)["later"]) == ["germinate-status-skipped"]
    assert ex.selected == "boom"  # the first failed task is selected at the end of the run
    assert ex.status_line.text.endswith("1 failed: boom — ValueError: <b>bad</b> value"), (
        ex.status_line.text
    )
    assert "&lt;b&gt;bad&lt;/b&gt; value" in ex.status_line.value
    assert "&lt;b&gt;bad&lt;/b&gt; value" in details(ex)
    assert "<b>bad</b>" not in details(ex)
    assert "ValueError" in details(ex) and "Traceback" in details(ex)
    ex.select("later")
    assert "skipped because 'boom' failed" in details(ex)


def test_details_pane_escapes_and_truncates_outputs():
    s = State("evil")

    class Out(BaseModel):
        html: str
        long: str

    @s.task()
    def evil(input: X) -> Out:
        return Out(html="<img src=x onerror=alert(1)>", long="y" * 2000)

    ex = explore(s)
    ex.input_form.set(x=1)
    ex.run_button.click()
    ex.wait(5)
    ex.select("evil")
    shown = details(ex)
    assert "<img" not in shown and "&lt;img src=x onerror=alert(1)&gt;" in shown
    assert "<td>state</td><td>evil</td>" in shown
    assert "agent.evil_executor" in shown
    assert "<code>html</code>" in shown  # under the cap: whole, a break allowed in the word
    assert "y" * 2000 in shown.replace("<wbr>", "") and "y" * 21 not in shown


def test_select_shows_schemas_and_enables_run_selected(design):
    ex = explore(design)
    ex.input_form.set(text="a b")
    assert ex.run_selected_button.disabled
    ex.select("count")
    assert ex.selected == "count"
    assert not ex.run_selected_button.disabled
    d = details(ex)
    assert "<td>parents</td><td>tokenize</td>" in d and "<td>phase</td><td>phase 2</td>" in d
    assert "<b>T</b>" in d and "<code>tokens</code>" in d and "<code>list[str]</code>" in d
    assert "var(--jp-brand-color1" in buttons(ex)["count"].layout.border
    assert ex.graph.selected == "count"
    with pytest.raises(GerminateError, match=r"no task 'cont' in state 'design'. Did you mean"):
        ex.select("cont")


def test_clicking_a_task_toggle_selects_it(design):
    ex = explore(design)
    buttons(ex)["tokenize"].click()
    assert ex.selected == "tokenize"


def test_run_selected_runs_upstream_only():
    s = State("sel")
    ran = []
    for name in "abc":

        def f(input: X, _n=name) -> X:
            ran.append(_n)
            return input

        f.__name__ = name
        s.task()(f)
    a, b, c = s.get("a"), s.get("b"), s.get("c")
    a >> b >> c
    ex = explore(s, reuse=False)
    ex.input_form.set(x=1)
    ex.select("b")
    ex.run_selected_button.click()
    ex.wait(5)
    assert sorted(ran) == ["a", "b"]


def test_reuse_by_default_and_clear_cache(design, fresh_registry):
    ex = explore(design)
    ex.input_form.set(text="a b")
    ex.run_button.click()
    ex.wait(5)
    ex.run_button.click()
    result = ex.wait(5)
    assert result.counts() == {"cached": 2}
    assert status_classes(buttons(ex)["count"]) == ["germinate-status-cached"]
    ex.clear_cache_button.click()
    assert fresh_registry.cache == {}
    assert "Cache cleared (2 results)" in ex.message.value
    ex.run_button.click()
    assert ex.wait(5).counts() == {"succeeded": 2}


def test_form_validates_and_disables_run():
    s = State("form")

    class In(BaseModel):
        name: str
        count: int
        ratio: float = 0.5
        flag: bool = False
        mode: Literal["fast", "slow"] = "fast"
        tags: list[str] = []

    @s.task()
    def t(input: In) -> X:
        return X(x=input.count)

    ex = explore(s)
    form = ex.input_form
    assert list(form.fields) == ["name", "count", "ratio", "flag", "mode", "tags"]
    kinds = {n: f.kind for n, f in form.fields.items()}
    assert kinds == {
        "name": "str",
        "count": "int",
        "ratio": "float",
        "flag": "bool",
        "mode": "choice",
        "tags": "json",
    }
    assert not form.valid and ex.run_button.disabled
    assert "Field required" in form.fields["name"].error.value
    form.fields["name"].widget.value = "n"
    form.fields["count"].widget.value = "three"
    assert "&#x27;three&#x27; is not an integer" in form.fields["count"].error.value
    assert ex.run_button.disabled
    form.fields["count"].widget.value = "3"
    form.fields["tags"].widget.value = '["a", '
    assert "invalid JSON" in form.fields["tags"].error.value
    form.fields["tags"].widget.value = '["a", "b"]'
    assert form.valid and not ex.run_button.disabled
    assert form.value == {
        "name": "n",
        "count": 3,
        "ratio": 0.5,
        "flag": False,
        "mode": "fast",
        "tags": ["a", "b"],
    }
    ex.run_button.click()
    assert ex.wait(5).outputs["t"] == X(x=3)


def test_live_update_when_task_declared_later(design):
    ex = explore(design)

    @design.task()
    def report(input: C) -> C:
        return input

    design.get("count") >> report
    deadline = time.time() + 3
    while "report" not in buttons(ex) and time.time() < deadline:
        time.sleep(0.05)
    assert "report" in buttons(ex)
    assert [c.description for c in ex.phase_strip.children[2].children[1:]] == ["report"]
    assert ex.graph.names.split("\n") == ["tokenize", "count", "report"]


def test_reset_empties_explorer_with_message(design, fresh_registry):
    ex = explore(design)
    fresh_registry.clear()
    ex.refresh()
    assert ex.phase_strip.children == () and ex.graph.names == ""
    assert "no longer exists (the registry was reset)" in ex.message.value
    assert ex.run_button.disabled


def test_validation_problems_are_shown_and_block_run():
    s = State("broken")

    @s.task()
    def a(input: X) -> X:
        return input

    @s.task()
    def b(input: T) -> X:
        return X(x=1)

    a >> b
    ex = explore(s)
    assert "needs input field &#x27;tokens: list[str]&#x27;" in ex.message.value
    ex.input_form.set(x=1)
    ex.run_button.click()
    assert ex.wait(1) is None or ex.last_result is None
    assert "Cannot run:" in ex.message.value


def test_workflow_shows_state_machine_and_opens_states():
    wf = Workflow("wf")
    one, two = State("one"), State("two")
    wf.add_state(one, initial_state=True)
    wf.add_state(two)

    @one.task(namespace="one")
    def a(input: X) -> X:
        return input

    @two.task(namespace="two")
    def b(input: X) -> X:
        return input

    @one.condition()
    def go(output) -> bool:
        return True

    (one & go) >> two
    ex = explore(wf)
    assert ex.machine.value.startswith("<svg ") and "var(--jp-ui-font-color1" in ex.machine.value
    assert ">one</text>" in ex.machine.value and ">go</text>" in ex.machine.value
    assert list(ex.state_selector.options) == ["one", "two"]
    assert sorted(buttons(ex)) == ["a", "go"]  # the condition runs as the state's last task
    assert ex.graph.conditions == ["go"]
    ex.state_selector.value = "two"
    assert sorted(buttons(ex)) == ["b"] and ex.state_name == "two"


def test_explore_rejects_other_things():
    with pytest.raises(TypeError, match="explore\\(\\) takes a State or a Workflow, got int"):
        explore(3)


def test_callback_errors_are_shown_not_swallowed(design, monkeypatch):
    ex = explore(design)
    shown = []
    monkeypatch.setattr("germinate_nb.notebook.explorer.report", shown.append)

    def broken(*a, **k):
        raise RuntimeError("draw failed")

    monkeypatch.setattr(ex, "_start", broken)
    ex.run_button.click()
    assert [str(e) for e in shown] == ["draw failed"]


def test_headless_explore_imports_no_widgets(design, monkeypatch):
    monkeypatch.setenv("GERMINATE_NB_HEADLESS", "1")
    assert repr(explore(design)) == "<explorer of state design: 2 tasks (headless)>"


def test_garbage_collected_explorer_unsubscribes(design, fresh_registry):
    import gc

    ex = explore(design)
    ex.close()
    del ex
    gc.collect()
    before = len(fresh_registry._listeners)
    State("another")
    assert len(fresh_registry._listeners) <= before
    TaskRegistry.default()


def test_runs_started_elsewhere_show_in_the_explorer(design):
    from germinate_nb import run

    ex = explore(design)
    run(design, {"text": "a b"})
    assert ex.wait(5) is not None
    assert status_classes(buttons(ex)["count"]) == ["germinate-status-succeeded"]
    assert ex.last_result.outputs["count"] == C(n=2)
    assert ex.status_line.done == 2
    other = State("unrelated")

    @other.task(namespace="unrelated")
    def lone(input: X) -> X:
        return input

    run(other, {"x": 1})
    assert ex.last_result.state == "design"


def test_closed_explorer_stops_observing(design, fresh_registry):
    ex = explore(design)
    assert len(fresh_registry.run_observers) == 1
    ex.close()
    assert fresh_registry.run_observers == []


def test_redisplay_from_the_same_cell_closes_the_previous_explorer(
    design, fresh_registry, monkeypatch
):
    monkeypatch.setattr("germinate_nb.notebook.explorer._current_cell_id", lambda: "cell-1")
    first = explore(design)
    first._repr_mimebundle_()
    second = explore(design)
    second._repr_mimebundle_()
    assert first.comm is None and second.comm is not None
    assert fresh_registry.run_observers == [second.follower]
    monkeypatch.setattr("germinate_nb.notebook.explorer._current_cell_id", lambda: "cell-2")
    third = explore(design)
    third._repr_mimebundle_()
    assert second.comm is not None and len(fresh_registry.run_observers) == 2


def test_refresh_keeps_the_form_when_roots_share_a_model():
    s = State("shared_roots")

    @s.task()
    def a(input: X) -> X:
        return input

    @s.task()
    def b(input: X) -> X:
        return input

    ex = explore(s)
    form = ex.input_form
    form.set(x=7)
    ex.refresh()
    assert ex.input_form is form and form.value == {"x": 7}


def test_select_survives_an_output_whose_repr_raises():
    from pydantic import ConfigDict

    class Opaque:
        def __repr__(self):
            raise ValueError("no <repr> for you")

    class Out(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        value: Opaque
        text: str = "fine"

    s = State("opaque")

    @s.task()
    def opaque(input: X) -> Out:
        return Out(value=Opaque())

    ex = explore(s)
    ex.input_form.set(x=1)
    ex.run_button.click()
    result = ex.wait(5)
    assert result.ok
    assert "<code>&lt;Out instance at 0x" in result._repr_html_()  # reprlib's own fallback
    ex.select("opaque")
    shown = details(ex)
    assert "&lt;repr failed: ValueError: no &lt;repr&gt; for you&gt;" in shown
    assert "&#x27;fine&#x27;" in shown


def test_explore_draws_dollar_signs_literally():
    """`$x^$` is not valid mathtext: matplotlib would raise if it parsed it."""
    s = State("money")

    class Choice(BaseModel):
        pick: Literal["$x^$", "$$"]

    @s.task()
    def start(input: X) -> X:
        return input

    @s.task()
    def pick(input: Choice) -> X:
        return X(x=1)

    start >> pick
    wf = Workflow("$w^$")
    wf.add_state(s, initial_state=True)
    wf.add_state(State("after"))

    @s.condition(name="$c^$")
    def go() -> bool:
        return True

    (s & go) >> wf.states[1]
    ex = explore(s)
    assert "$x^$" in ex.message.value and ex.graph.background.startswith(b"<?xml")
    ex.select("pick")
    ex.close()
    ex = explore(wf)
    assert ">$c^$</text>" in ex.machine.value  # literal, not mathtext
    ex.close()
