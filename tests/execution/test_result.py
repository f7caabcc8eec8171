from germinate_nb import State, run
from tests.execution.conftest import Q, T


def test_repr_html_escapes_user_text():
    s = State("s")

    @s.task()
    def evil(input: Q) -> T:
        return T(tokens=["<img src=x onerror=alert(1)>"])

    @s.task()
    def broken(input: Q) -> T:
        raise ValueError("<script>alert(2)</script>")

    html = run(s, {"text": ""})._repr_html_()
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>" not in html and "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "germinate-status-failed" in html and "germinate-status-succeeded" in html


def test_repr_lists_tasks_with_status(design):
    text = repr(run(design, {"text": "a b"}))
    assert text.startswith("<RunResult design: succeeded in ")
    assert "(2 succeeded)" in text
    assert "  tokenize: succeeded -> T(tokens=['a', 'b'])" in text
    assert "  count: succeeded -> C(n=2)" in text


def test_counts_and_by_status(design):
    result = run(design, {"text": "a"})
    assert result.counts() == {"succeeded": 2}
    assert result.by_status("succeeded") == ["tokenize", "count"]


def test_html_caps_each_log_and_error_and_says_where_to_read_it_whole():
    from germinate_nb.execution.result import HTML_CAP

    s = State("s")

    @s.task()
    def noisy(input: Q) -> T:
        print("x" * (3 * HTML_CAP))
        raise ValueError("y" * (3 * HTML_CAP))

    result = run(s, {"text": ""}, echo=False)
    page = result._repr_html_()
    assert len(page) < 8 * HTML_CAP  # a 60 kB log and a 60 kB message stay a few caps long
    assert "more characters: read them whole in result.task_runs[&#x27;noisy&#x27;].log" in page
    assert "read them whole in result.task_runs[&#x27;noisy&#x27;].error" in page


def test_html_of_a_huge_run_lists_failures_first_then_a_sample():
    s = State("s")
    tasks = []
    for i in range(300):

        def fn(input: Q) -> T:
            return T(tokens=[])

        fn.__name__ = f"t{i}"
        tasks.append(s.task()(fn))

    @s.task()
    def broken(input: Q) -> T:
        raise ValueError("the one failure")

    page = run(s, {"text": ""})._repr_html_()
    assert "the one failure" in page
    assert "... and 101 more tasks (see result.task_runs)" in page
