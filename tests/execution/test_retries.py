# ruff: noqa: F811
"""Retries: transient failures retried after a delay, every attempt kept, never a bad input."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from germinate_nb import DeclarationError, State, TaskStatus, run, start_run, use_registry
from germinate_nb.core.executor import _without_task_options


class N(BaseModel):
    n: int


class Flaky:
    """Fails the first ``k[name]`` calls of each task (thread-safe)."""

    def __init__(self, k: dict[str, int]) -> None:
        self.k = k
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def hit(self, name: str) -> None:
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1
            n = self.calls[name]
        if n <= self.k.get(name, 0):
            raise ConnectionError(f"{name} flaked on call {n}")


@st.composite
def flaky_dags(draw):
    n = draw(st.integers(2, 9))
    parents = {
        i: sorted(draw(st.sets(st.integers(0, i - 1), max_size=2))) if i else [] for i in range(n)
    }
    k = {f"t{i}": draw(st.integers(0, 2)) for i in range(n)}
    asyncs = {f"t{i}": draw(st.booleans()) for i in range(n)}
    return n, parents, k, asyncs


def build(name, n, parents, flaky, asyncs, retries):
    s = State(name)
    tasks = {}
    for i in range(n):
        tname = f"t{i}"
        if asyncs[tname]:

            async def body(input: N, _t=tname, _i=i) -> N:  # noqa: PT028
                flaky.hit(_t) if flaky else None
                return N(n=input.n * 3 + _i)
        else:

            def body(input: N, _t=tname, _i=i) -> N:  # noqa: PT028
                flaky.hit(_t) if flaky else None
                return N(n=input.n * 3 + _i)

        body.__name__ = tname
        tasks[i] = s.task(
            namespace=name, retries=retries.get(tname, 0), retry_delay=0.001, backoff=1.0
        )(body)
    for i, ps in parents.items():
        for p in ps[:1]:  # one parent: no merge conflicts between the parents' fields
            tasks[p] >> tasks[i]
    return s


@settings(max_examples=25, deadline=None)
@given(flaky_dags(), st.data())
def test_transient_failures_within_retries_end_like_the_fault_free_run(dag, data):
    n, parents, k, asyncs = dag
    retries = {t: k[t] + data.draw(st.integers(0, 1)) for t in sorted(k)}
    with use_registry():
        clean = run(build("clean", n, parents, None, asyncs, {}), {"n": 1}, echo=False)
        assert clean.ok
        flaky = Flaky(k)
        result = run(build("flaky", n, parents, flaky, asyncs, retries), {"n": 1}, echo=False)
    assert result.ok, result
    assert {t: o.n for t, o in result.outputs.items()} == {t: o.n for t, o in clean.outputs.items()}
    for t, tr in result.task_runs.items():
        assert len(tr.attempts) == k[t] + 1
        assert [a.status for a in tr.attempts] == ["failed"] * k[t] + ["succeeded"]


@settings(max_examples=20, deadline=None)
@given(flaky_dags())
def test_a_task_failing_more_than_its_retries_fails_and_skips_its_descendants(dag):
    n, parents, k, asyncs = dag
    victim = max(k, key=lambda t: k[t])
    if k[victim] == 0:
        k[victim] = 1
    retries = {t: k[t] for t in k}
    retries[victim] = k[victim] - 1
    with use_registry():
        result = run(build("short", n, parents, Flaky(k), asyncs, retries), {"n": 1}, echo=False)
    tr = result.task_runs[victim]
    assert tr.status is TaskStatus.FAILED
    assert len(tr.attempts) == k[victim]
    assert "ConnectionError" in str(tr.error)
    children = {i: [c for c, ps in parents.items() if ps[:1] == [i]] for i in range(n)}
    stack, below = [int(victim[1:])], set()
    while stack:
        for c in children[stack.pop()]:
            below.add(f"t{c}")
            stack.append(c)
    for t in below:
        assert result.task_runs[t].status is TaskStatus.SKIPPED


def test_retry_waits_its_delay_with_backoff_and_logs_each_attempt():
    s = State("delays")
    flaky = Flaky({"fetch": 2})

    @s.task(retries=2, retry_delay=0.1, backoff=2.0)
    def fetch(input: N) -> N:
        print("calling")
        flaky.hit("fetch")
        return N(n=input.n)

    events = []
    result = run(s, {"n": 1}, echo=False, observers=[lambda e, r, t: events.append(e)])
    tr = result.task_runs["fetch"]
    assert result.ok and tr.attempt == 3 and tr.max_attempts == 3
    a1, a2, a3 = tr.attempts
    gap1 = a2.start - (a1.start + a1.duration)
    gap2 = a3.start - (a2.start + a2.duration)
    assert 0.1 <= gap1 < 0.2 and 0.2 <= gap2 < 0.35  # delay * backoff**k, + up to 10 % jitter
    assert events.count("task_retry") == 2 and events.count("task_start") == 1
    assert "--- attempt 1/3 ---\ncalling\n--- attempt 1/3 failed: ConnectionError" in tr.log
    assert tr.log.endswith("--- attempt 3/3 ---\ncalling\n")
    assert result.attempt_note("fetch") == "attempt 3/3"


def test_retry_on_filters_the_errors_retried():
    s = State("filtered")
    calls = {"a": 0, "b": 0}

    @s.task(retries=3, retry_delay=0, retry_on=(TimeoutError,))
    def a(input: N) -> N:
        calls["a"] += 1
        raise ValueError("not transient")

    @s.task(retries=3, retry_delay=0, retry_on=TimeoutError)
    def b(input: N) -> N:
        calls["b"] += 1
        if calls["b"] < 3:
            raise TimeoutError("slow api")
        return input

    result = run(s, {"n": 1}, echo=False)
    assert calls == {"a": 1, "b": 3}
    assert result.task_runs["a"].status is TaskStatus.FAILED
    assert result.task_runs["b"].status is TaskStatus.SUCCEEDED


def test_input_validation_error_is_never_retried():
    s = State("badinput")
    calls = []

    @s.task(retries=5, retry_delay=0)
    def a(input: N) -> N:
        calls.append(1)
        return input

    result = run(s, {"n": "not a number"}, echo=False)
    tr = result.task_runs["a"]
    assert tr.status is TaskStatus.FAILED and not calls
    assert tr.error.type == "TaskInputError" and len(tr.attempts) == 1


def test_run_wide_retries_apply_unless_the_task_says_otherwise():
    s = State("runwide")
    flaky = Flaky({"a": 2, "b": 2})

    @s.task()
    def a(input: N) -> N:
        flaky.hit("a")
        return input

    @s.task(retries=0)
    def b(input: N) -> N:
        flaky.hit("b")
        return input

    result = run(s, {"n": 1}, echo=False, retries=2)
    assert result.task_runs["a"].status is TaskStatus.SUCCEEDED
    assert result.task_runs["b"].status is TaskStatus.FAILED
    assert flaky.calls == {"a": 3, "b": 1}


def test_cancel_during_a_retry_delay_cancels_the_task():
    s = State("canceldelay")
    calls = []

    @s.task(retries=3, retry_delay=5.0)
    def a(input: N) -> N:
        calls.append(1)
        raise ConnectionError("down")

    handle = start_run(s, {"n": 1})
    deadline = time.monotonic() + 5
    while not handle.result.task_runs["a"]._attempts and time.monotonic() < deadline:
        time.sleep(0.01)
    assert handle.result.task_runs["a"].status is TaskStatus.RUNNING
    t0 = time.perf_counter()
    handle.cancel()
    assert handle.wait(2) is not None and time.perf_counter() - t0 < 1
    tr = handle.result.task_runs["a"]
    assert tr.status is TaskStatus.CANCELLED and not tr.background
    time.sleep(0.1)
    assert calls == [1]


def test_cancelled_error_is_never_retried():
    from germinate_nb import TaskCancelledError

    s = State("cancelraise")
    calls = []

    @s.task(retries=3, retry_delay=0)
    def a(input: N) -> N:
        calls.append(1)
        raise TaskCancelledError("stopped", task="a")

    result = run(s, {"n": 1}, echo=False)
    assert calls == [1] and result.task_runs["a"].status is TaskStatus.FAILED


def test_a_retried_success_is_reused_and_options_keep_the_fingerprint():
    s = State("reuse_retry")
    flaky = Flaky({"a": 1})

    @s.task(retries=1, retry_delay=0)
    def a(input: N) -> N:
        flaky.hit("a")
        return N(n=input.n + 1)

    fp = a.executor.fingerprint
    assert run(s, {"n": 1}, echo=False, reuse=True).ok

    @s.task(retries=4, retry_delay=0, timeout=9)
    def a(input: N) -> N:
        flaky.hit("a")
        return N(n=input.n + 1)

    assert a.executor.fingerprint == fp
    again = run(s, {"n": 1}, echo=False, reuse=True)
    assert again.task_runs["a"].status is TaskStatus.CACHED and flaky.calls["a"] == 2


def test_options_leave_the_fingerprint_text_but_keep_the_rest():
    text = "@s.task('tools', retries=3,\n        limit='llm')\ndef f(input): ...\n"
    assert _without_task_options(text) == "@s.task('tools')\ndef f(input): ...\n"
    plain = "@s.task()\ndef f(input): ...\n"
    assert _without_task_options(plain) is plain


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"retries": -1}, r"task 'x' in state 'opts': retries=-1 must be an int from 0 to"),
        ({"retries": 10**9}, r"retries=1000000000 must be an int from 0 to 10,000"),
        ({"timeout": 1e10}, r"timeout=10000000000.0 must be .* at most 2,592,000 \(30 days\)"),
        ({"retry_delay": 1e10}, r"retry_delay=10000000000.0 must be .* from 0 to 2,592,000"),
        ({"limit": "llm\n"}, r"limit='llm\\n' must be a name"),
        ({"retry_on": KeyboardInterrupt}, r"retry_on=KeyboardInterrupt would never retry"),
        ({"retries": 1.5}, "retries=1.5 must be an int"),
        ({"timeout": 0}, r"timeout=0 must be a number of seconds > 0"),
        ({"retry_delay": -1}, "retry_delay=-1 must be a number of seconds from 0"),
        ({"backoff": 0.5}, "backoff=0.5 must be a number >= 1"),
        ({"limit": "a b"}, r"limit='a b' must be a name .* limits=\{'llm': 4\}"),
        (
            {"retry_on": "TimeoutError"},
            r"retry_on must be an exception class .* got 'TimeoutError'",
        ),
        ({"retry_on": (TimeoutError, 3)}, r"got 3\. E\.g\. retry_on=\(TimeoutError"),
    ],
)
def test_bad_options_are_declaration_errors_naming_the_fix(options, match):
    s = State("opts")
    with pytest.raises(DeclarationError, match=match):

        @s.task(**options)
        def x(input: N) -> N:
            return input


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"retries": -2}, r"run\(retries=-2\): give an int from 0 to 10,000"),
        ({"timeout": -1}, r"run\(timeout=-1\): give a number of seconds > 0"),
        ({"timeout": 1e10}, r"run\(timeout=10000000000.0\): .* at most 2,592,000"),
        ({"limits": {"": 1}}, r"run\(limits=...\): '' is not a limit name"),
        ({"limits": {1: 2}}, r"run\(limits=...\): 1 is not a limit name"),
        ({"limits": {"llm ": 1}}, r"'llm ' is not a limit name"),
        ({"limits": {"llm": 0}}, r"limit 'llm' is 0; give how many tasks tagged limit='llm'"),
        ({"limits": ["llm"]}, r"give a dict of limit name to count"),
    ],
)
def test_bad_run_options_are_value_errors(options, match):
    s = State("runopts")

    @s.task()
    def x(input: N) -> N:
        return input

    with pytest.raises(ValueError, match=match):
        run(s, {"n": 1}, echo=False, **options)


def test_failed_attempts_are_recorded_in_the_store(tmp_path):
    from germinate_nb import RunStore

    s = State("stored_retry")
    flaky = Flaky({"a": 2})

    @s.task(retries=2, retry_delay=0)
    def a(input: N) -> N:
        flaky.hit("a")
        return input

    store = RunStore.open(tmp_path / "runs.sqlite")
    result = run(s, {"n": 1}, echo=False, store=store)
    assert result.ok
    rows = store.task_runs(result.run_id)
    assert [(r.attempt, r.status) for r in rows] == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert "flaked on call 1" in rows[0].error
    store.close()


def test_a_limit_name_no_task_uses_warns_with_a_did_you_mean():
    s = State("typo_limits")

    @s.task(limit="llm")
    def x(input: N) -> N:
        return input

    with pytest.warns(UserWarning, match=r"no task of state 'typo_limits' has limit='lm'.*'llm'"):
        result = run(s, {"n": 1}, limits={"lm": 1}, echo=False)
    assert result.ok


def test_the_longest_backoff_saturates_instead_of_overflowing():
    from germinate_nb.core.options import MAX_SECONDS, task_options

    steep = task_options("t", retries=10_000, retry_delay=0.001, backoff=2.0)
    assert steep.delay(5_000) == MAX_SECONDS  # 2.0 ** 5000 overflows a float
    assert task_options("t", retries=10_000, retry_delay=0).delay(5_000) == 0.0


def test_a_due_time_past_what_the_platform_can_wait_keeps_the_timer_thread_alive():
    from germinate_nb.execution.timers import TIMERS

    far = TIMERS.call_later(1e12, lambda: None)  # OverflowError in Condition.wait once
    fired = threading.Event()
    TIMERS.call_later(0.01, fired.set)
    assert fired.wait(5), "the timer thread died"
    TIMERS.cancel(far)
