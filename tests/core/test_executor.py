import asyncio

import pytest
from pydantic import BaseModel

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


def _schema_fingerprint(model: type[BaseModel]) -> str:
    return TaskExecutor("fp_executor", lambda input: input, output_schema=model).fingerprint


def test_a_set_in_a_nested_default_is_fingerprinted_in_a_canonical_order():
    from germinate_nb.core.executor import _canonical_defaults

    class Inner(BaseModel):
        tags: frozenset[str] = frozenset({"b", "a"})
        order: list[int] = [2, 1]

    class Outer(BaseModel):
        inner: Inner = Inner()
        maybe: set[int] | None = None

    schema = Outer.model_json_schema()
    schema["properties"]["inner"]["default"]["tags"] = ["b", "a"]  # what another seed writes
    canonical = _canonical_defaults(schema)
    assert canonical["properties"]["inner"]["default"] == {"tags": ["a", "b"], "order": [2, 1]}
    assert canonical["$defs"]["Inner"]["properties"]["tags"]["default"] == ["a", "b"]
    assert canonical["$defs"]["Inner"]["properties"]["order"]["default"] == [2, 1]  # a list


def test_fingerprints_still_tell_different_defaults_apart():
    class A(BaseModel):
        tags: set[str] = {"u", "v"}
        order: list[int] = [1, 2]

    class B(BaseModel):
        tags: set[str] = {"u", "w"}
        order: list[int] = [1, 2]

    class C(BaseModel):
        tags: set[str] = {"u", "v"}
        order: list[int] = [2, 1]

    for other in (B, C):
        other.__name__ = "A"  # only the default differs
        other.model_rebuild(force=True)
    prints = {_schema_fingerprint(m) for m in (A, B, C)}
    assert len(prints) == 3


def _three() -> int:
    return 3


def test_odd_signatures_run_or_are_refused_at_declaration():
    import functools

    from germinate_nb import run
    from germinate_nb.errors import DeclarationError

    s = State("odd_signatures")

    @s.task()
    def positional_only(input: Query, /, n: int = Depends(_three)) -> Tokens:
        return Tokens(tokens=[input.text] * n)

    def logged(fn):  # a sync decorator around an async task: it returns the coroutine
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        return wrapper

    @s.task()
    @logged
    async def wrapped_async(input: Query) -> Tokens:
        await asyncio.sleep(0)
        return Tokens(tokens=[input.text])

    def runs_itself(fn):  # an async_to_sync-style wrapper: it runs the coroutine itself
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return asyncio.run(fn(*args, **kwargs))

        return wrapper

    @s.task()
    @runs_itself
    async def self_run(input: Query) -> Tokens:
        await asyncio.sleep(0)
        return Tokens(tokens=[input.text, "!"])

    for workers in (1, None):
        result = run(s, {"text": "a"}, echo=False, max_workers=workers)
        assert result.ok, result
        assert result.outputs["positional_only"] == Tokens(tokens=["a", "a", "a"])
        assert result.outputs["wrapped_async"] == Tokens(tokens=["a"])
        assert result.outputs["self_run"] == Tokens(tokens=["a", "!"])

    def needs_more(other, input: Query) -> Tokens:
        return Tokens(tokens=[])

    with pytest.raises(
        DeclarationError,
        match=r"task function '.*needs_more' cannot be called by a run: parameter\(s\) 'other' "
        r"have no default, and a run passes only its input 'input' and Depends\(\.\.\.\) "
        r"parameters\. Give them a default or a Depends",
    ):
        s.task()(needs_more)

    class BrokenSignature:
        __name__ = "broken"

        @property
        def __signature__(self):
            raise RuntimeError("no signature")

        def __call__(self, input: Query) -> Tokens:
            return Tokens(tokens=[])

    ex = TaskExecutor("broken_executor", BrokenSignature())  # no bare RuntimeError
    assert ex.input_param is None


def _tokens(input: Query) -> Tokens:
    return Tokens(tokens=[input.text])


def _made(value, *, kw=None):
    """A task function made by a factory: one source, the value in its closure."""

    def body(input: Query) -> Tokens:
        return Tokens(tokens=[str(value)])

    if kw is not None:

        def body(input: Query, *, extra=kw) -> Tokens:  # noqa: F811 - a default instead
            return Tokens(tokens=[str(extra)])

    return TaskExecutor("made_executor", body, namespace="fp")


def test_functions_one_factory_made_differ_by_their_closure_values():
    assert _made("c1").fingerprint != _made("c2").fingerprint
    assert _made("c1").fingerprint == _made("c1").fingerprint  # the same value: reused
    assert _made({"b", "a", "c"}).fingerprint == _made({"c", "a", "b"}).fingerprint
    assert _made((1, [2, {"k": 3}])).fingerprint != _made((1, [2, {"k": 4}])).fingerprint
    assert _made(None, kw=1).fingerprint != _made(None, kw=2).fingerprint
    assert _made(_made).fingerprint != _made(_tokens).fingerprint  # functions by their code,
    assert _made(len).fingerprint != _made(print).fingerprint  # built-ins and classes by name
    assert _made(Query).fingerprint != _made(Tokens).fingerprint
    lock_a, lock_b = __import__("threading").Lock(), __import__("threading").Lock()
    assert _made(lock_a).fingerprint == _made(lock_b).fingerprint  # any other object: its type


def test_a_function_closing_over_itself_is_fingerprinted():
    def outer():
        def again(input: Query) -> Tokens:
            return again(input) if not input.text else Tokens(tokens=[])

        return again

    fp = TaskExecutor("rec_executor", outer(), namespace="fp").fingerprint
    assert len(fp) == 16 and not fp.startswith("unfingerprintable")


def test_a_function_without_closure_or_defaults_keeps_its_fingerprint():
    """Stored rows stay reusable: the digest of such a function is its source's, as before."""
    import hashlib

    from germinate_nb.core.executor import _code_source_digest, _schema_digest

    def plain(input: Query) -> Tokens:
        return Tokens(tokens=input.text.split())

    ex = TaskExecutor("plain_executor", plain, namespace="fp", input_schema=Query,
                      output_schema=Tokens)  # fmt: skip
    parts = ("fp", "plain_executor", _code_source_digest(plain.__code__),
             _schema_digest(Query), _schema_digest(Tokens))  # fmt: skip
    assert ex.fingerprint == hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]
