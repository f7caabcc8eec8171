"""Reuse: the last successful result of each task, matched by code fingerprint and input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from germinate_nb.core.registry import TaskRegistry

if TYPE_CHECKING:
    from germinate_nb.core.state import State

__all__ = ["CacheEntry", "clear_cache", "lookup", "store"]


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """The last successful run of a task: its code fingerprint, its input and its output.

    The input is kept (not a hash of it) so any input can be compared, JSON-able or not;
    memory stays bounded at one entry per task.
    """

    fingerprint: str
    input: BaseModel | None
    output: BaseModel

    def matches(self, fingerprint: str, input: BaseModel | None) -> bool:
        """Would a run with this code and input give the same output?"""
        if fingerprint != self.fingerprint:
            return False
        if input is None or self.input is None:
            return input is None and self.input is None
        try:
            return type(input) is type(self.input) and bool(input == self.input)
        except Exception:  # a field type whose == raises: never reuse
            return False


def lookup(registry: TaskRegistry, state: str, task: str) -> CacheEntry | None:
    """The cache entry of a task, if any."""
    entry: Any = registry.cache.get((state, task))
    return entry if isinstance(entry, CacheEntry) else None


def store(registry: TaskRegistry, state: str, task: str, entry: CacheEntry) -> None:
    """Keep the last successful result of a task (one entry per task, so memory is bounded)."""
    registry.cache[(state, task)] = entry


def clear_cache(state: State | str | None = None, *, registry: TaskRegistry | None = None) -> int:
    """Forget reusable results (of one state, or all); returns how many were dropped."""
    registry = registry or TaskRegistry.default()
    name = state if isinstance(state, str) or state is None else state.name
    keys = [k for k in registry.cache if name is None or k[0] == name]
    for key in keys:
        del registry.cache[key]
    return len(keys)
