import pytest

from germinate_nb import (
    RegistryCollisionError,
    State,
    TaskExecutor,
    TaskKey,
    TaskRegistry,
    UnknownTaskError,
    use_registry,
)
from tests.resources.schemas import Query, Tokens


def test_classmethods_act_on_default_registry(fresh_registry):
    ex = TaskExecutor("hello_executor", print, namespace="agent")
    TaskRegistry.register("agent", "hello_executor", ex)
    assert TaskRegistry.get("agent", "hello_executor") is ex
    assert TaskRegistry.get_executor("agent.hello_executor") is ex
    assert fresh_registry.get_executor("agent.hello_executor") is ex


def test_instances_are_independent():
    a, b = TaskRegistry(), TaskRegistry()
    a.register("ns", "x", TaskExecutor("x", print))
    with pytest.raises(UnknownTaskError, match="no such namespace 'ns'"):
        b.get("ns", "x")


def test_unknown_executor_suggests_close_name(fresh_registry):
    fresh_registry.register("agent", "tokenize_executor", TaskExecutor("tokenize_executor", print))
    with pytest.raises(UnknownTaskError, match="Did you mean 'tokenize_executor'"):
        fresh_registry.get_executor("agent.tokenise_executor")


def test_unknown_executor_is_a_key_error_with_a_plain_message(fresh_registry):
    # issue 12: the seed raised KeyError; str() must still be the message, without quotes
    with pytest.raises(KeyError) as info:
        fresh_registry.get("none", "x")
    assert isinstance(info.value, UnknownTaskError) and isinstance(info.value, LookupError)
    assert str(info.value).startswith("no such namespace 'none'")


def test_executor_name_without_namespace():
    with pytest.raises(UnknownTaskError, match="has no namespace"):
        TaskRegistry().get_executor("plain")


def test_task_key_is_frozen_value():
    assert TaskKey("a", "b") == TaskKey(namespace="a", name="b")
    assert len({TaskKey("a", "b"), TaskKey("a", "b")}) == 1


def test_decorator_registers_executor_with_seed_name(fresh_registry):
    s = State("s")

    @s.task()
    def tokenize(input: Query) -> Tokens:
        return Tokens(tokens=[])

    @s.task(namespace="custom")
    def my_executor(input: Query) -> Tokens:
        return Tokens(tokens=[])

    assert tokenize.registered_name == "agent.tokenize_executor"
    assert my_executor.registered_name == "custom.my_executor"
    assert TaskRegistry.get_executor("agent.tokenize_executor") is tokenize.executor


def test_same_name_in_two_states_is_a_collision_naming_both():
    a, b = State("alpha"), State("beta")

    @a.task()
    def tokenize(input: Query) -> Tokens:
        return Tokens(tokens=[])

    with pytest.raises(
        RegistryCollisionError,
        match=r"'agent.tokenize_executor' of a task in state 'beta' is already taken by a task "
        r"in state 'alpha'.*namespace='beta'",
    ) as info:

        @b.task()
        def tokenize(input: Query) -> Tokens:  # noqa: F811
            return Tokens(tokens=[])

    assert info.value.states == ("alpha", "beta")
    assert "tokenize" not in b


def test_same_name_in_two_states_with_namespaces_is_fine():
    a, b = State("alpha"), State("beta")

    @a.task(namespace="alpha")
    def tokenize(input: Query) -> Tokens:
        return Tokens(tokens=[])

    first = tokenize

    @b.task(namespace="beta")
    def tokenize(input: Query) -> Tokens:  # noqa: F811
        return Tokens(tokens=[])

    assert first.state is a and tokenize.state is b


def test_use_registry_restores_previous(fresh_registry):
    with use_registry() as inner:
        assert TaskRegistry.default() is inner
        State("x")
    assert TaskRegistry.default() is fresh_registry
    assert "x" not in fresh_registry.states


def test_subscribers_see_changes_and_can_unsubscribe(fresh_registry):
    seen = []
    unsubscribe = fresh_registry.subscribe(lambda kind, state, task: seen.append((kind, task)))
    s = State("s")

    @s.task()
    def t(input: Query) -> Tokens:
        return Tokens(tokens=[])

    unsubscribe()
    s.remove_task("t")
    kinds = [k for k, _ in seen]
    assert kinds == ["state", "added"]


def test_failing_subscriber_is_dropped_and_logged(fresh_registry, caplog):
    def broken(kind, state, task):
        raise RuntimeError("listener broke")

    fresh_registry.subscribe(broken)
    State("s")
    State("t")
    records = [r for r in caplog.records if r.name == "germinate_nb"]
    assert len(records) == 1
    assert "failed and was removed" in records[0].getMessage()


def test_clear_forgets_everything(fresh_registry):
    s = State("s")

    @s.task()
    def t(input: Query) -> Tokens:
        return Tokens(tokens=[])

    fresh_registry.clear()
    assert fresh_registry.states == {}
    assert fresh_registry.executors() == {}
