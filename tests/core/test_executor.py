import asyncio

import pytest

from germinate_nb import Depends, State, TaskExecutor
from germinate_nb.core.executor import DependencyCache, dependency_values
from tests.resources.schemas import Query, Tokens


def test_registered_name_and_repr():
    ex = TaskExecutor("tok_executor", lambda input: input, namespace="agent")
    assert ex.registered_name == "agent.tok_executor"
    assert repr(ex) == "<Task Executor: tok_executor >"


def test_executor_hash_uses_namespace_and_name():
    ex = TaskExecutor("tok_executor", lambda input: input, namespace="agent")
    assert hash(ex) == hash("agent.tok_executor")


def test_default_namespace_is_seeds():
    assert TaskExecutor("x", print).namespace == "custom_tasks"


def test_is_async():
    async def f(input: Query) -> Tokens:
        await asyncio.sleep(0)
        return Tokens(tokens=[])

    assert TaskExecutor("f", f).is_async()
    assert not TaskExecutor("g", lambda: None).is_async()


def test_depends_is_injected_on_direct_call():
    calls = []

    def client(url):
        calls.append(url)
        return f"client:{url}"

    def task(input, db=Depends(client, "db://x")):
        return (input, db)

    ex = TaskExecutor("t", task)
    assert ex("in") == ("in", "client:db://x")
    assert ex("in", db="mine") == ("in", "mine")
    assert calls == ["db://x"]


def test_dependency_cache_calls_each_factory_once():
    calls = []

    def factory(n=1):
        calls.append(n)
        return object()

    def f(input=None, a=Depends(factory), b=Depends(factory)):
        return a, b

    cache = DependencyCache()
    first = dependency_values(f, cache)
    second = dependency_values(f, cache)
    assert first["a"] is first["b"] is second["a"]
    assert calls == [1]
    assert dependency_values(f)["a"] is not first["a"]


def test_depends_needs_callable():
    with pytest.raises(TypeError, match="Depends\\(\\) needs a callable factory, got 3"):
        Depends(3)


def test_fingerprint_changes_with_code_and_schema():
    s = State("s")

    @s.task()
    def t(input: Query) -> Tokens:
        return Tokens(tokens=[])

    first = t.executor.fingerprint

    @s.task()
    def t(input: Query) -> Tokens:  # noqa: F811
        return Tokens(tokens=["changed"])

    assert t.executor.fingerprint != first

    ex1 = TaskExecutor("a", print, input_schema=Query, output_schema=Tokens, source="x")
    ex2 = TaskExecutor("a", print, input_schema=Tokens, output_schema=Tokens, source="x")
    ex3 = TaskExecutor("a", print, input_schema=Query, output_schema=Tokens, source="x")
    assert ex1.fingerprint != ex2.fingerprint
    assert ex1.fingerprint == ex3.fingerprint
