"""The explorer's canvas, search, compact strip, status line, history, timeline and logs."""

from __future__ import annotations

import re
import threading
import time

import pytest
from pydantic import BaseModel

from germinate_nb import State, TaskExecutor, explore, run
from germinate_nb.core.options import TaskOptions
from germinate_nb.notebook.strip import PAGE, TOGGLE_CAP
from tests.resources.models import X


def layered_state(name: str, n: int, width: int = 20) -> State:
    s = State(name)

    def fn(input: X) -> X:
        return input

    tasks = [
        s.define_task(f"t{i}", TaskExecutor(f"t{i}_executor", fn, input_schema=X, output_schema=X))
        for i in range(n)
    ]
    for i in range(width, n):
        tasks[i].add_parents([tasks[i - width]])
    return s


def details(ex):
    return ex.details.html.value


def log_section(ex):
    """The log part of the details pane."""
    shown = details(ex)
    if "<u>log</u>" not in shown:
        return ""
    return shown.split("<u>log</u>", 1)[1].split("</pre>", 1)[0]


def test_search_filters_by_name_namespace_and_status_and_enter_selects():
    s = State("search")

    @s.task()
    def fetch_pages(input: X) -> X:
        return input

    @s.task(namespace="tools")
    def fetch_links(input: X) -> X:
        raise ValueError("offline")

    @s.task()
    def plan(input: X) -> X:
        return input

    ex = explore(s)
    ex.search.value = "fetch"
    assert ex.graph.matches == ["fetch_pages", "fetch_links"] and ex.graph.search == "fetch"
    ex.search.value = "ns:tools"
    assert ex.graph.matches == ["fetch_links"]
    run(s, {"x": 1})
    assert ex.wait(5) is not None
    ex.search.value = "status:failed"
    assert ex.graph.matches == ["fetch_links"]
    ex._on_search_msg(ex.search, {"event": "submit"}, [])  # what Enter sends
    assert ex.selected == "fetch_links" and ex.graph.selected == "fetch_links"
    ex.search.value = ""
    assert ex.graph.matches == []

    # a status search typed before a run follows it: the run's end names the failures
    ex.search.value = "status:failed"
    s.get("plan").executor.callable = _fails  # fails next run; the state version stays
    run(s, {"x": 1})
    assert ex.wait(5) is not None
    assert ex.graph.matches == ["fetch_links", "plan"]


def _fails(input: X) -> X:
    raise ValueError("now failing")


def _search_classes(button) -> set[str]:
    return set(button._dom_classes) & {"germinate-match", "germinate-nomatch"}


def test_search_marks_the_phase_strip_toggles_and_counts_matches_when_compact(design):
    ex = explore(design)
    toggles = ex.phase_strip.buttons
    assert all(not _search_classes(b) for b in toggles.values())
    ex.search.value = "tok"
    assert _search_classes(toggles["tokenize"]) == {"germinate-match"}
    assert _search_classes(toggles["count"]) == {"germinate-nomatch"}
    ex.search.value = "nothing-matches-this"
    assert all(_search_classes(b) == {"germinate-nomatch"} for b in toggles.values())
    ex.search.value = "  "
    assert all(not _search_classes(b) for b in toggles.values())

    big = layered_state("strip_search_big", TOGGLE_CAP + 60, width=30)
    ex = explore(big)
    counts = ex.phase_strip._summary_box.value
    assert "<th>found</th>" not in counts
    ex.search.value = "t1"  # t1, t10-t19, t100-t199: 111 tasks over the phases
    counts = ex.phase_strip._summary_box.value
    found = re.findall(r"<td><b>(\d+)</b></td>|<td style='opacity:0.5'>0</td>", counts)
    assert "<th>found</th>" in counts
    assert sum(int(n or 0) for n in found) == len(ex.graph.matches) == 111
    ex.select("t5")  # opens t5's phase page: its toggles carry the marks
    shown = ex.phase_strip.buttons
    assert _search_classes(shown["t5"]) == {"germinate-nomatch"}
    assert _search_classes(shown["t15"]) == {"germinate-match"}


def test_a_click_in_the_picture_selects_the_task(design):
    ex = explore(design)
    ex.graph.selected = "count"  # what a click in the page sets
    assert ex.selected == "count" and "<td>parents</td><td>tokenize</td>" in details(ex)


def test_double_click_focuses_on_the_lineage():
    s = layered_state("lineage", 6, width=2)
    ex = explore(s)
    ex._on_graph_focus("t2")  # what a double-click in the page sends
    assert ex.selected == "t2"
    assert ex.graph.focus_names == ["t0", "t2", "t4"]


def test_node_xy_needs_a_displayed_view_then_uses_it(design):
    ex = explore(design)
    with pytest.raises(RuntimeError, match="has not been displayed yet"):
        ex.node_xy("count")
    ex.graph.view = {"k": 1.0, "tx": 0.0, "ty": 0.0, "vw": 192.0, "vh": 68.0}  # the page's view
    assert ex.node_xy("tokenize") == (0.25, 40 / 68)
    assert ex.node_xy("count") == (0.75, 40 / 68)
    with pytest.raises(KeyError, match="task 'nope' is not in the picture"):
        ex.node_xy("nope")


def test_big_dag_gets_a_compact_strip_with_a_bounded_number_of_widgets():
    s = layered_state("big", 1000)
    t0 = time.perf_counter()
    ex = explore(s)
    assert time.perf_counter() - t0 < 10  # the benchmark holds the real budget
    strip = ex.phase_strip
    assert strip.compact and len(strip.buttons) == 0
    assert len(strip.children) == 3  # phase picker, one page of toggles, counts table
    assert "<b>phase 50</b></td><td>20</td>" in strip.children[2].value
    ex.select("t999")  # its phase opens on the page of toggles that holds it
    assert strip.opened == 49 and "t999" in strip.buttons
    assert len(strip.buttons) <= PAGE
    picker = strip.children[0]
    picker.value = 0  # pick phase 1: its first page of toggles
    assert sorted(strip.buttons) == sorted(f"t{i}" for i in range(20))
    assert len(ex.graph.names.split("\n")) == 1000
    # the page's toggles are the same widgets relabelled, and a click selects the task shown
    page_row = strip.children[1]
    first = page_row.children[0]
    picker.value = 1
    assert page_row.children[0] is first and first.description == "t20"
    first.click()
    assert ex.selected == "t20" and ">t20</h4>" in ex.details.html.value
    # nothing in the strip's column may shrink to nothing (its height is capped)
    assert all(c.layout.flex == "0 0 auto" for c in strip.children)


def test_small_dag_keeps_a_toggle_per_task():
    ex = explore(layered_state("small", TOGGLE_CAP))
    assert not ex.phase_strip.compact and len(ex.phase_strip.buttons) == TOGGLE_CAP


def test_status_line_during_and_after_a_run_with_a_stop():
    s = State("agent")
    gate = threading.Event()

    @s.task()
    def plan(input: X) -> X:
        return input

    @s.task()
    def fact_check(input: X) -> X:
        gate.wait(10)
        return input

    @s.task()
    def write(input: X) -> X:
        return input

    plan >> fact_check >> write
    ex = explore(s)
    ex.input_form.set(x=1)
    ex.run_button.click()
    deadline = time.time() + 5
    while "fact_check running" not in ex.status_line.text and time.time() < deadline:
        time.sleep(0.02)
    assert ex.status_line.text == "Running · 1/3 done · fact_check running"
    assert ex.status_line.counts == {"succeeded": 1, "running": 1, "pending": 1}
    ex.stop_button.click()
    result = ex.wait(5)
    gate.set()
    assert result.status == "cancelled"
    assert ex.status_line.text.startswith("Run cancelled in ")
    assert "1 succeeded, 2 cancelled" in ex.status_line.text
    assert "1 task still running in the background: fact_check" in ex.status_line.text
    assert ex.status_line.done == 3  # the bar counts ended tasks: 100 %, 2 of them cancelled
    assert "germinate-segment-cancelled' title='2 cancelled'" in ex.status_line.value


def test_run_selected_greys_the_tasks_outside_the_run():
    s = layered_state("sel", 4, width=2)  # t0 -> t2, t1 -> t3
    ex = explore(s)
    ex.input_form.set(x=1)
    ex.run_button.click()
    ex.wait(5)
    ex.select("t2")
    ex.run_selected_button.click()
    result = ex.wait(5)
    assert sorted(result.task_runs) == ["t0", "t2"]
    assert ex.statuses == {"t0": "cached", "t1": "not run", "t2": "cached", "t3": "not run"}
    assert ex.graph.statuses["t3"] == "not run"
    assert "ran t2 and upstream only" in ex.status_line.text


def test_a_task_edited_after_its_run_is_marked_changed(design):
    ex = explore(design)
    run(design, {"text": "a b"})
    ex.wait(5)
    assert ex.marks == {}

    @design.task()
    def count(input: BaseModel) -> BaseModel:  # noqa: F811 - the cell is edited
        return {"n": 0}

    deadline = time.time() + 3
    while ex.graph.marks != {"count": "changed"} and time.time() < deadline:
        time.sleep(0.05)
    assert ex.marks == {"count": "changed"} and ex.graph.marks == {"count": "changed"}
    ex.select("count")
    assert "code changed since its last run" in details(ex)
    run(design, {"text": "a b"})
    ex.wait(5)
    assert ex.marks == {}


def test_logs_show_live_in_details_then_stay():
    s = State("talk")
    printed, release = threading.Event(), threading.Event()

    @s.task()
    def speak(input: X) -> X:
        print("thinking <hard>")
        printed.set()
        release.wait(10)
        print("done")
        return input

    ex = explore(s)
    ex.input_form.set(x=1)
    ex.select("speak")
    ex.run_button.click()
    assert printed.wait(5)
    deadline = time.time() + 3
    while "thinking &lt;hard&gt;" not in log_section(ex) and time.time() < deadline:
        time.sleep(0.05)
    assert log_section(ex).endswith("thinking &lt;hard&gt;\n")
    release.set()
    ex.wait(5)
    assert log_section(ex).endswith("thinking &lt;hard&gt;\ndone\n")


def test_a_huge_output_is_cut_until_show_all():
    s = State("huge")

    class Big(BaseModel):
        blob: str

    @s.task()
    def make(input: X) -> Big:
        return Big(blob="z" * 5_000_000)

    ex = explore(s)
    ex.input_form.set(x=1)
    ex.run_button.click()
    ex.wait(10)
    ex.select("make")
    assert len(details(ex)) < 60_000 and "more characters (Show all)" in details(ex)
    assert ex.details.show_all_button.layout.display == ""
    ex.details.show_all_button.click()
    # whole up to WHOLE_CAP characters, broken into pieces the browser lays out at once: one
    # 200,000-character word froze JupyterLab for minutes; 5,000,000 now show in ~1 s
    from germinate_nb.notebook.details import WHOLE_CAP, WORD_PIECE

    shown = details(ex)
    text = shown.replace("<wbr>", "")
    assert f"&#x27;{'z' * (WHOLE_CAP - 1)}<span" in text  # the repr's quote, then the z's
    assert "z" * (WORD_PIECE + 1) not in shown
    assert (
        "… 4000002 more characters too many to show here: the run's result holds it whole" in shown
    )
    assert ex.details.show_all_button.layout.display == "none"
    ex.select("make")  # showing it again keeps it whole; another task starts cut
    assert details(ex) == shown


def test_history_views_an_earlier_run_and_compares_outputs():
    s = State("hist")

    class Out(BaseModel):
        answer: int
        note: str

    @s.task()
    def ask(input: X) -> Out:
        return Out(answer=input.x * 2, note="same")

    ex = explore(s, reuse=False)
    ex.input_form.set(x=1)
    first = run(s, {"x": 1})
    ex.wait(5)
    second = run(s, {"x": 5})
    ex.wait(5)
    options = [v for _, v in ex.history.run_picker.options]
    assert options == ["latest", second.run_id, first.run_id]
    labels = [label for label, _ in ex.history.run_picker.options]
    assert labels[1].endswith(' · {"x":5}') and labels[2].endswith(' · {"x":1}')  # inputs
    ex.select("ask")
    ex.history.view(first.run_id)
    assert ex.displayed_run is first and "viewing" in details(ex)
    assert ex.status_line.text.startswith(f"Viewing an earlier run ({labels[2]}) · Run succeeded")
    ex.view_selector.value = "Graph"  # the graph shows the earlier run's statuses too
    assert ex.displayed_run is first and ex.status_line.text.startswith("Viewing")
    assert ex.run_button.disabled  # an earlier run is on display
    ex.history.compare_with(second.run_id)
    table = ex.history.comparison.value
    assert "1 of 2 fields differ" in table
    assert "anywhere'>2</code></td><td><code style='overflow-wrap:anywhere'>10</code>" in table
    assert "</code></td><td>changed</td></tr>" in table
    ex.history.view("latest")
    assert ex.displayed_run is second and not ex.run_button.disabled


def test_timeline_view_draws_the_run_on_display(design):
    ex = explore(design)
    ex.view_selector.value = "Timeline"
    assert ex.timeline.value == "" and "after it ends" in ex.timeline_note.value
    run(design, {"text": "a b"})
    ex.wait(5)
    svg = ex.timeline.value
    assert svg.startswith("<svg ") and "timeline of design (succeeded)" in svg
    assert "var(--jp-ui-font-color1" in svg  # follows the notebook theme
    assert ex.views.selected_index == 1


def test_remove_task_from_the_explorer(design):
    ex = explore(design)
    ex.select("count")
    ex.details.remove_button.click()
    assert "count" not in design
    assert "Removed task 'count' (parents: tokenize) and its edges." in ex.message.value
    deadline = time.time() + 3
    while ex.graph.names != "tokenize" and time.time() < deadline:
        time.sleep(0.05)
    assert ex.graph.names == "tokenize" and ex.selected == ""


def test_an_explorer_whose_output_is_cleared_stops_following_runs(design, fresh_registry):
    ex = explore(design)
    page = {"type": "hello"}
    ex.graph._on_page_msg(ex.graph, page, [])  # shown
    assert fresh_registry.run_observers == [ex.follower]
    ex.graph._on_page_msg(ex.graph, {"type": "bye"}, [])  # its output cleared
    assert fresh_registry.run_observers == []
    result = run(design, {"text": "a b"})
    assert ex.last_result is None  # not followed while off screen
    ex.graph._on_page_msg(ex.graph, page, [])  # shown again: follows and catches up
    assert fresh_registry.run_observers == [ex.follower]
    assert ex.last_result is result and ex.statuses == {
        "tokenize": "succeeded",
        "count": "succeeded",
    }


class Words(BaseModel):
    words: list[str]


def test_a_failed_tasks_details_show_the_error_then_the_input_it_got():
    s = State("inputs_shown")

    @s.task()
    def explode(input: Words) -> Words:
        raise ValueError("boom <b>x</b>")

    ex = explore(s)
    run(s, {"words": ["hello", "<script>alert(1)</script>"]}, echo=False)
    ex.wait(10)
    shown = details(ex)
    error_at = shown.index("germinate-task-error")
    input_at = shown.index("<u>input value</u>")
    assert error_at < input_at < shown.index("<u>input</u> ")  # values before the schemas
    assert "boom &lt;b&gt;x&lt;/b&gt;" in shown
    value = shown[input_at:].split("</table>", 1)[0]
    assert "hello" in value and "&lt;script&gt;alert(1)&lt;/script&gt;" in value
    assert "<script>" not in shown


def test_the_explorers_runs_take_run_wide_limits_retries_and_timeout():
    s = State("limited_explorer")
    spans = []
    lock = threading.Lock()

    def call(input: X) -> X:
        t0 = time.perf_counter()
        time.sleep(0.05)
        with lock:
            spans.append((t0, time.perf_counter()))
        return input

    for i in range(4):
        s.define_task(
            f"call{i}",
            TaskExecutor(f"call{i}_executor", call, input_schema=X, output_schema=X),
            options=TaskOptions(limit="api"),
        )
    with pytest.raises(ValueError, match=r"limit 'api' is 0; give how many tasks"):
        explore(s, limits={"api": 0})
    ex = explore(s, limits={"api": 1}, retries=2, timeout=5)
    ex.input_form.set(x=1)
    ex.run_button.click()
    result = ex.wait(10)
    assert result is not None and result.ok
    spans.sort()
    assert len(spans) == 4
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), "two at once"
