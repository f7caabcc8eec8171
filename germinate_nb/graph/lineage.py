"""Reachability over adjacency mappings: upstream, downstream, lineage and neighbourhoods."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

__all__ = ["downstream", "lineage", "neighbourhood", "upstream"]


def _reach(start: Iterable[str], step: Mapping[str, Sequence[str]]) -> set[str]:
    seen = set(start)
    stack = list(seen)
    while stack:
        for other in step.get(stack.pop(), ()):
            if other not in seen:
                seen.add(other)
                stack.append(other)
    return seen


def upstream(names: Iterable[str], parents: Mapping[str, Sequence[str]]) -> set[str]:
    """``names`` with all their ancestors.

    Examples
    --------
    >>> sorted(upstream(["c"], {"a": [], "b": ["a"], "c": ["b"], "d": []}))
    ['a', 'b', 'c']
    """
    return _reach(names, parents)


def downstream(names: Iterable[str], children: Mapping[str, Sequence[str]]) -> set[str]:
    """``names`` with all their descendants."""
    return _reach(names, children)


def lineage(
    name: str, parents: Mapping[str, Sequence[str]], children: Mapping[str, Sequence[str]]
) -> set[str]:
    """A task with its ancestors and its descendants."""
    return upstream([name], parents) | downstream([name], children)


def neighbourhood(
    name: str,
    parents: Mapping[str, Sequence[str]],
    children: Mapping[str, Sequence[str]],
    hops: int,
) -> set[str]:
    """Everything within ``hops`` edges of ``name``, in either direction.

    Examples
    --------
    >>> p = {"a": [], "b": ["a"], "c": ["b"]}
    >>> c = {"a": ["b"], "b": ["c"], "c": []}
    >>> sorted(neighbourhood("a", p, c, 1))
    ['a', 'b']
    """
    seen = {name}
    frontier = [name]
    for _ in range(hops):
        following = []
        for n in frontier:
            for other in (*parents.get(n, ()), *children.get(n, ())):
                if other not in seen:
                    seen.add(other)
                    following.append(other)
        frontier = following
    return seen
