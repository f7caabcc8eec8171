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
