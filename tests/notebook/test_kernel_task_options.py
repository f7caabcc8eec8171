"""%%germinate_task run options in a real kernel: parsed, checked, used by the run."""

from __future__ import annotations

import pytest

from tests.notebook.test_kernel import execute, texts

pytestmark = pytest.mark.kernel


def test_magic_options_are_parsed_and_used_by_the_run(kernel):
    setup = (
        "from pydantic import BaseModel\n"
        "class Q(BaseModel):\n    n: int\n"
        "class Flaky(Exception):\n    pass\n"
        "calls = []\n"
        "from germinate_nb import State\n"
        "State('opts')"
    )
    assert execute(kernel, setup)[0]["status"] == "ok"
    cell = (
        "%%germinate_task fetch --state opts --input Q --output Q --retries 2 --retry-delay 0.01 "
        "--backoff 1 --retry-on Flaky,TimeoutError --timeout 5 --limit llm\n"
        "calls.append(1)\n"
        "if len(calls) < 3:\n    raise Flaky('try again')\n"
        "Q(n=input.n + 1)"
    )
    reply, messages = execute(kernel, cell)
    assert reply["status"] == "ok", texts(messages)
    code = (
        "from germinate_nb import State, run\n"
        "t = State('opts').get('fetch')\n"
        "r = run(State('opts'), {'n': 1}, limits={'llm': 1}, echo=False)\n"
        "print(t.options.retries, t.options.retry_on, t.options.timeout, t.options.limit)\n"
        "print(r.status, [a.status for a in r.task_runs['fetch'].attempts], r.outputs['fetch'])"
    )
    reply, messages = execute(kernel, code)
    out = texts(messages)
    assert reply["status"] == "ok", out
    assert "2 (<class '__main__.Flaky'>, <class 'TimeoutError'>) 5.0 llm" in out
    assert "succeeded ['failed', 'failed', 'succeeded'] n=2" in out


def test_magic_bad_options_are_one_line_usage_errors(kernel):
    reply, messages = execute(kernel, "%%germinate_task bad --retry-on NoSuchError\n1")
    assert reply["status"] == "error"
    assert reply["ename"] == "UsageError"
    assert "--retry-on NoSuchError of %%germinate_task bad: no exception class" in reply["evalue"]
    reply, _ = execute(kernel, "%%germinate_task bad --timeout -3\n1")
    assert reply["ename"] == "UsageError"
    assert "--timeout -3.0 must be a number of seconds > 0" in reply["evalue"]
