import pytest

from germinate_nb import DeclarationError, State, TaskDefinition
from tests.resources.schemas import Counts, Query, Tokens


def make(*names):
    return [TaskDefinition(n) for n in names]


def names(tasks):
    return sorted(t.name for t in tasks)


def test_rshift_adds_child_and_returns_right_side():
    a, b = make("a", "b")
    assert (a >> b) is b
    assert names(a.children) == ["b"] and names(b.parents) == ["a"]


def test_lshift_adds_parent_and_returns_right_side():
    a, b = make("a", "b")
    assert (b << a) is a
    assert names(b.parents) == ["a"] and names(a.children) == ["b"]


def test_chain_wires_each_pair():
    a, b, c = make("a", "b", "c")
    a >> b >> c
    assert names(b.parents) == ["a"] and names(c.parents) == ["b"]
    assert names(a.children) == ["b"]


def test_list_on_the_right_of_rshift():
    a, b, c = make("a", "b", "c")
    out = a >> [b, c]
    assert out == [b, c]
    assert names(a.children) == ["b", "c"]
    assert names(c.parents) == ["a"]


def test_list_on_the_left_of_rshift_uses_reflected_operator():
    a, b, c = make("a", "b", "c")
    assert ([a, b] >> c) is c
    assert names(c.parents) == ["a", "b"]
    assert names(a.children) == ["c"]


def test_list_on_the_left_of_lshift_uses_reflected_operator():
    a, b, c = make("a", "b", "c")
    assert ([b, c] << a) is a
    assert names(a.children) == ["b", "c"]


def test_lshift_with_list_on_right():
    a, b, c = make("a", "b", "c")
    assert (c << [a, b]) == [a, b]
    assert names(c.parents) == ["a", "b"]


def test_add_parents_and_add_children_accept_single_task_or_sequence():
    a, b, c, d = make("a", "b", "c", "d")
    d.add_parents(a)
    d.add_parents((b, c))
    a.add_children([b])
    assert names(d.parents) == ["a", "b", "c"]
    assert names(b.parents) == ["a"]


def test_wiring_twice_keeps_one_edge():
    a, b = make("a", "b")
    a >> b
    a >> b
    assert len(b.parents) == 1 and len(a.children) == 1


def test_wiring_a_non_task_is_a_declaration_error():
    (a,) = make("a")
    with pytest.raises(DeclarationError, match=r"cannot wire task 'a' >> int 3"):
        a >> 3
    with pytest.raises(DeclarationError, match=r"every item must be a task"):
        a >> [TaskDefinition("b"), "c"]


def test_self_edge_is_refused():
    (a,) = make("a")
    with pytest.raises(DeclarationError, match=r"task 'a' cannot depend on itself"):
        a >> a


def test_repr_follows_seed_format():
    s = State("design")
    a = TaskDefinition("a", state=s)
    b, c = make("b", "c")
    a >> [b, c]
    assert repr(a) == "<Task: design.a (parents: [], children: [b, c])>"
    assert repr(b) == "<Task: b (parents: [a], children: [])>"


def test_task_without_state_is_hashable():
    a, b = make("a", "b")
    assert len({a, b}) == 2
    assert {a: 1}[a] == 1


def test_task_graph_survives_pickling():
    import pickle

    a, b, c = make("a", "b", "c")
    a >> [b, c]
    b2 = pickle.loads(pickle.dumps(b))
    (a2,) = b2.parents
    assert a2.name == "a" and sorted(t.name for t in a2.children) == ["b", "c"]
    assert b2 in a2.children


def test_call_delegates_to_function():
    s = State("s")

    @s.task()
    def tokenize(input: Query) -> Tokens:
        return Tokens(tokens=input.text.split())

    assert tokenize(Query(text="a b")) == Tokens(tokens=["a", "b"])


def test_calling_task_without_executor_names_task():
    with pytest.raises(DeclarationError, match="task 'x' has no executor"):
        TaskDefinition("x")()


def test_parents_keep_wiring_order():
    s = State("s")

    @s.task()
    def z(input: Query) -> Counts:
        return Counts(n=1)

    @s.task()
    def a(input: Query) -> Counts:
        return Counts(n=1)

    @s.task()
    def m(input: Counts) -> Counts:
        return input

    [z, a] >> m
    assert [t.name for t in m.parents] == ["z", "a"]


def test_wiring_that_closes_a_cycle_warns_with_the_path_at_once():
    from germinate_nb import State
    from germinate_nb.core.task import CycleWarning

    s = State("loop")
    a, b, c = (s.add_task(TaskDefinition(n)) for n in "abc")
    a >> b >> c
    with pytest.warns(
        CycleWarning,
        match=r"c >> a closes a cycle in state 'loop': "
        r"c -> a -> b -> c\. The state cannot run until one edge goes, e\.g\. "
        r"`a\.remove_parents\(c\)`\.",
    ) as record:
        c >> a  # the seed allows the call: a warning, not an error
    assert record[0].filename == __file__  # it points at the line that wired it
    assert a in c.children


def test_wiring_without_a_cycle_does_not_warn():
    import warnings

    a, b, c = (TaskDefinition(n) for n in "abc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a >> [b, c]
        b >> c
