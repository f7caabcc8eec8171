"""Real IPython kernels started through jupyter_client."""

from __future__ import annotations

import queue

import pytest

pytestmark = pytest.mark.kernel


def execute(kc, code, timeout=60):
    """Run code; return (reply content, list of iopub messages of that request)."""
    msg_id = kc.execute(code)
    messages = []
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no idle status from the kernel for {code!r}") from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"], messages


def texts(messages):
    out = []
    for m in messages:
        if m["msg_type"] == "stream":
            out.append(m["content"]["text"])
        elif m["msg_type"] in ("display_data", "execute_result"):
            out.append(m["content"]["data"].get("text/plain", ""))
    return "".join(out)


def test_new_kernel_has_magics_without_load_ext(kernel):
    reply, messages = execute(kernel, "%lsmagic")
    assert reply["status"] == "ok"
    assert "%%germinate_task" in texts(messages) and "%germinate" in texts(messages)


def test_declare_and_run_round_trip(kernel):
    reply, _ = execute(
        kernel,
        "from pydantic import BaseModel\n"
        "class Query(BaseModel):\n    text: str\n"
        "class Tokens(BaseModel):\n    tokens: list[str]\n"
        "class Counts(BaseModel):\n    n: int\n",
    )
    assert reply["status"] == "ok"
    reply, messages = execute(
        kernel,
        "%%germinate_task tokenize --input Query --output Tokens\n"
        "Tokens(tokens=input.text.split())",
    )
    assert reply["status"] == "ok"
    assert "✓ task 'tokenize' in state 'main' (parents: none; phase 1 of 1)" in texts(messages)
    displays = [m for m in messages if m["msg_type"] == "display_data"]
    assert "&#x27;tokenize&#x27;" in displays[0]["content"]["data"]["text/html"]
    reply, _ = execute(
        kernel,
        "%%germinate_task count --after tokenize --output Counts\nCounts(n=len(input.tokens))",
    )
    assert reply["status"] == "ok"
    reply, messages = execute(
        kernel, """result = %germinate run --input '{"text": "a b c"}'\nresult"""
    )
    assert reply["status"] == "ok"
    out = texts(messages)
    assert "<RunResult main: succeeded" in out and "count: succeeded -> Counts(n=3)" in out
    reply, messages = execute(kernel, "print(result.outputs['count'].n)")
    assert texts(messages).strip() == "3"


def test_error_cell_returns_one_line_error_reply(kernel):
    reply, messages = execute(kernel, "%%germinate_task broken --after nothing_here\n1")
    assert reply["status"] == "error"
    assert reply["ename"] == "UsageError"
    assert reply["evalue"].startswith(
        "unknown parent 'nothing_here' in --after of %%germinate_task broken."
    )
    assert "\n" not in reply["evalue"]
    reply, _ = execute(kernel, "1 + 1")
    assert reply["status"] == "ok"


def test_run_inside_kernel_event_loop_with_async_tasks(kernel):
    code = (
        "import asyncio\n"
        "from germinate_nb import State, run\n"
        "s = State('asyncy')\n"
        "@s.task(namespace='asyncy')\n"
        "async def wait(input: Query) -> Counts:\n"
        "    await asyncio.sleep(0.05)\n"
        "    return Counts(n=len(input.text))\n"
        "print(run(s, {'text': 'four'}).outputs['wait'].n)\n"
    )
    reply, messages = execute(kernel, code)
    assert reply["status"] == "ok", reply
    assert texts(messages).strip() == "4"
