"""Names and look-ups as germinate-ai documents them (issue 12).

Sources: the seed's tasks reference (``shared/seed/germinate_ai-tasks-reference.txt``),
``core/states/states.py``, ``core/workflows.py``, ``utils/di.py`` and the user guide's examples.
"""

import asyncio
import inspect

import networkx as nx
import pytest
from pydantic import BaseModel

import germinate_nb
from germinate_nb import (
    DagCycleError,
    Depends,
    State,
    TaskDefinition,
    TaskExecutor,
    TaskRegistry,
    UnknownExecutorError,
    Workflow,
    resolve_dependencies,
    resolve_dependencies_wrapper,
    run,
    topological_generations,
)


class In(BaseModel):
    x: int


class Out(BaseModel):
    x: int


# seed (states.py): "def sorted_tasks_dag(self): Topologically sort tasks DAG and return task
# names for each phase."
def test_sorted_tasks_dag_returns_the_phases():
    s = State("s")

    @s.task()
    def a(input: In) -> Out:
        return Out(x=input.x)

    @s.task()
    def b(input: In) -> Out:
        return Out(x=input.x)

    @s.task()
    def c(input: In) -> Out:
        return Out(x=input.x)

    a >> [b, c]
    assert s.sorted_tasks_dag() == [["a"], ["b", "c"]] == s.phases


# seed (workflows.py): "def __init__(self, name, version = "0.1")";
# "workflow_id: ID used to uniquely identify each version of this workflow: f"{name}:{version}""
def test_workflow_default_version_and_id():
    assert Workflow("metagpt").version == "0.1"
    assert Workflow("metagpt").workflow_id == "metagpt:0.1"
    assert Workflow(name="simple_metagpt", version="0.0.1").workflow_id == "simple_metagpt:0.0.1"


# seed (states.py): "def task(self, namespace: str = "agent")"
def test_namespace_given_positionally():
    s = State("s")

    @s.task("tools")
    def search(input: In) -> Out:
        return Out(x=input.x)

    assert search.executor.namespace == "tools"
    assert TaskRegistry.get_executor("tools.search_executor") is search.executor


# seed docs: namespaces such as "agents.ideate"; registry.get_executor("namespace.name")
def test_dotted_namespace_and_lookup_on_the_last_dot():
    s = State("s")

    @s.task(namespace="agents.ideate")
    def pm(input: In) -> Out:
        return Out(x=input.x)

    assert pm.registered_name == "agents.ideate.pm_executor"
    assert TaskRegistry.get_executor("agents.ideate.pm_executor") is pm.executor
    assert TaskRegistry.get("agents.ideate", "pm_executor") is pm.executor
    assert run(s, {"x": 1}).outputs["pm"] == Out(x=1)


def test_namespace_that_is_not_dotted_names_is_refused():
    with pytest.raises(germinate_nb.DeclarationError, match="not a dotted Python name"):
        State("s").task(namespace="agents..ideate")


# seed (registry.py): 'raise KeyError(f"No such namespace {namespace}")' and
# 'raise KeyError(f"No task executor registered for {name}")'
def test_registry_miss_is_a_key_error_with_a_readable_message():
    with pytest.raises(KeyError) as info:
        TaskRegistry.get_executor("agent.nothing_executor")
    assert isinstance(info.value, UnknownExecutorError)
    assert str(info.value) == "no such namespace 'agent' (registered namespaces: none)."

    s = State("s")

    @s.task()
    def tokenize(input: In) -> Out:
        return Out(x=input.x)

    with pytest.raises(KeyError, match="no task executor registered as 'agent.tokenise_executor'"):
        TaskRegistry.get("agent", "tokenise_executor")


# seed (algorithms.py): 'raise TypeError("Invalid tasks specification: not a DAG")'
def test_cycle_is_a_type_error_that_shows_the_path():
    g = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a")])
    with pytest.raises(TypeError, match="a -> b -> c -> a") as info:
        topological_generations(g)
    assert isinstance(info.value, DagCycleError) and isinstance(info.value, ValueError)


# seed (task_executor.py): "def __call__(self, *args, **kwargs): return self.callable(*args,
# **kwargs)" -- the input is passed positionally, whatever the parameter is called.
def test_custom_executor_with_any_input_parameter_name():
    def double(data: In) -> Out:
        return Out(x=data.x * 2)

    executor = TaskExecutor(
        name="double_executor", callable=double, input_schema=In, output_schema=Out
    )
    assert executor(In(x=2)) == Out(x=4)
    TaskRegistry.register(namespace="custom_tasks", name="double_executor", executor=executor)
    s = State("s")
    d = s.add_task(TaskDefinition("d", executor=executor))
    named = s.add_task(TaskDefinition("again", executor_name="custom_tasks.double_executor"))
    d >> named
    result = run(s, {"x": 3})
    assert result.ok, result.task_runs
    assert result.outputs["d"] == Out(x=6) and result.outputs["again"] == Out(x=12)


# seed (di.py): "class Depends: def __call__(self): ... result = self.dependency(*self.args,
# **self.kwargs)"
def test_depends_is_callable():
    def make(a, b=0):
        return a + b

    assert Depends(make, 1, b=2)() == 3


# seed (di.py): "def resolve_dependencies(func, *args, **kwargs) -> inspect.BoundArguments:
# Returns bound arguments with dependencies resolved."
def test_resolve_dependencies_binds_and_resolves():
    def task(input, client=Depends(dict, url="db://")):
        return input, client

    bound = resolve_dependencies(task, "in")
    assert isinstance(bound, inspect.BoundArguments)
    assert bound.arguments == {"input": "in", "client": {"url": "db://"}}
    assert task(*bound.args, **bound.kwargs) == ("in", {"url": "db://"})


# seed (di.py): "def resolve_dependencies_wrapper(func): Returns a function wrapper that binds
# func arguments, applies defaults and resolves any dependency injections."
def test_resolve_dependencies_wrapper_is_exported_for_sync_and_async():
    assert "resolve_dependencies_wrapper" in germinate_nb.__all__

    def sync(input, n=Depends(int, "4")):
        return input * n

    async def coro(input, n=Depends(int, "5")):
        await asyncio.sleep(0)
        return input * n

    assert resolve_dependencies_wrapper(sync)(2) == 8
    wrapped = resolve_dependencies_wrapper(coro)
    assert inspect.iscoroutinefunction(wrapped)
    assert asyncio.run(wrapped(2)) == 10
