import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from germinate_nb import (
    DagCycleError,
    TaskDefinition,
    build_tasks_dag,
    is_dag,
    topological_generations,
    toposort_tasks_phases,
)
from germinate_nb.graph.phases import find_cycles


@st.composite
def random_dags(draw):
    """A DAG as (n, edges) with edges only from lower to higher index."""
    n = draw(st.integers(min_value=1, max_value=40))
    edges = set()
    if n > 1:
        pairs = st.tuples(st.integers(0, n - 2), st.integers(1, n - 1)).filter(
            lambda p: p[0] < p[1]
        )
        edges = draw(st.sets(pairs, max_size=3 * n))
    return n, sorted(edges)


def tasks_from(n, edges):
    tasks = [TaskDefinition(f"t{i:02d}") for i in range(n)]
    for a, b in edges:
        tasks[a] >> tasks[b]
    return tasks


def oracle_depths(n, edges):
    """Independent oracle: longest path length from any root, by index order."""
    depth = [0] * n
    for b in range(n):
        for a, bb in edges:
            if bb == b:
                depth[b] = max(depth[b], depth[a] + 1)
    return depth


@settings(max_examples=200, deadline=None)
@given(random_dags())
def test_phases_match_longest_path_oracle(dag):
    n, edges = dag
    phases = toposort_tasks_phases(tasks_from(n, edges))
    where = {name: i for i, phase in enumerate(phases) for name in phase}
    assert sorted(where) == [f"t{i:02d}" for i in range(n)]
    for a, b in edges:
        assert where[f"t{a:02d}"] < where[f"t{b:02d}"]
    depth = oracle_depths(n, edges)
    for i in range(n):
        assert where[f"t{i:02d}"] == depth[i]
    for phase in phases:
        assert phase == sorted(phase)


@settings(max_examples=200, deadline=None)
@given(random_dags(), st.data())
def test_injected_cycle_is_reported_as_a_real_path(dag, data):
    n, edges = dag
    if not edges:
        return
    tasks = tasks_from(n, edges)
    g = build_tasks_dag(tasks)
    # close a cycle: an edge from a descendant back to an ancestor
    a, b = data.draw(st.sampled_from(edges))
    descendants = sorted(nx.descendants(g, f"t{b:02d}") | {f"t{b:02d}"})
    back_from = data.draw(st.sampled_from(descendants))
    tasks[int(back_from[1:])] >> tasks[a]
    g = build_tasks_dag(tasks)
    assert not is_dag(g)
    with pytest.raises(DagCycleError) as info:
        topological_generations(g, state="s")
    cycle = list(info.value.cycle)
    assert cycle[0] == cycle[-1] and len(cycle) >= 3
    assert len(set(cycle[:-1])) == len(cycle) - 1
    for u, v in zip(cycle, cycle[1:], strict=False):
        assert g.has_edge(u, v), (u, v)
    assert " -> ".join(cycle) in str(info.value)
    for found in find_cycles(g):
        for u, v in zip(found, found[1:], strict=False):
            assert g.has_edge(u, v)


def test_cycle_message_has_path_and_fix():
    a, b, c = (TaskDefinition(x) for x in "abc")
    a >> b >> c >> a
    with pytest.raises(
        DagCycleError,
        match=r"cycle in state 'design': a -> b -> c -> a\. "
        r"Remove one of these edges, e.g. `c >> a`\.",
    ) as info:
        topological_generations(build_tasks_dag([a, b, c]), state="design")
    assert info.value.cycle == ("a", "b", "c", "a")
    assert isinstance(info.value, ValueError)


def test_two_separate_cycles_are_both_found():
    g = nx.DiGraph([("a", "b"), ("b", "a"), ("x", "y"), ("y", "z"), ("z", "x"), ("b", "x")])
    assert find_cycles(g) == [["a", "b", "a"], ["x", "y", "z", "x"]]


def test_build_tasks_dag_nodes_carry_tasks():
    a, b = TaskDefinition("a"), TaskDefinition("b")
    a >> b
    g = build_tasks_dag([a, b])
    assert g.nodes["a"]["task"] is a
    assert list(g.edges) == [("a", "b")]


def test_empty_graph_has_no_phases():
    assert topological_generations(nx.DiGraph()) == []
