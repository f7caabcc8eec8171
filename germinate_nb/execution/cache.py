"""Reuse: the last successful result of each task, matched by code fingerprint and input."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel

from germinate_nb.core.registry import TaskRegistry

if TYPE_CHECKING:
    from germinate_nb.core.state import State

__all__ = ["UNHASHABLE", "CacheEntry", "clear_cache", "lookup", "store"]

UNHASHABLE = object()
"""The input dump of a task whose input could not be dumped: never reused."""


class CacheEntry(NamedTuple):
    """The last successful run of a task: the fingerprint of the code that ran, and dumps.

    Holding dumps (``model_dump()``, fresh containers), not the models handed to the user,
    isolates the cache from user mutation: mutating ``result.outputs["t"].tokens`` does not
    change what a later reuse hands downstream. A hit rebuilds a fresh output model from the
    dump (one ``model_validate``); values of arbitrary types (a numpy array) are shared.
    A tuple: a run makes one per task that succeeds.
    """

    fingerprint: str
    input_dump: Any
    output_dump: dict[str, Any]
    output_type: type[BaseModel]

    def __repr__(self) -> str:
        return f"<CacheEntry {self.output_type.__name__} fingerprint {self.fingerprint}>"

    def matches(self, fingerprint: str, input_dump: Any) -> bool:
        """Would a run with this code and input give the same output?"""
        if fingerprint != self.fingerprint or input_dump is UNHASHABLE:
            return False
        try:
            return bool(input_dump == self.input_dump)
        except Exception:  # a field type whose == raises or is ambiguous: never reuse
            return False

    def rebuild(self) -> BaseModel | None:
        """A fresh output model from the dump, or None when it no longer validates."""
        try:
            return self.output_type.model_validate(self.output_dump)
        except Exception:
            return None


def lookup(registry: TaskRegistry, state: str, task: str) -> CacheEntry | None:
    """The cache entry of a task, if any."""
    entry: Any = registry.cache.get((state, task))
    return entry if isinstance(entry, CacheEntry) else None


def store(registry: TaskRegistry, state: str, task: str, entry: CacheEntry) -> None:
    """Keep the last successful result of a task (one entry per task, so memory is bounded)."""
    registry.cache[(state, task)] = entry


def clear_cache(
    state: State | str | None = None,
    *,
    registry: TaskRegistry | None = None,
    store: Any = None,
) -> int:
    """Forget reusable results (of one state, or all); returns how many in-memory ones dropped.

    The run store's outputs of the state stop being reused too (history keeps them), so the
    next ``reuse=True`` run really runs every task. ``store``: None for the store runs use
    here (left alone when its file does not exist yet), a path or RunStore, or False for the
    in-memory cache only.
    """
    registry = registry or TaskRegistry.default()
    name = state if isinstance(state, str) or state is None else state.name
    keys = [k for k in registry.cache if name is None or k[0] == name]
    for key in keys:
        del registry.cache[key]
    if store is not False:
        from germinate_nb.execution.store import resolve_store, store_path

        path = store_path(store)
        if path is not None and path.is_file():
            found = resolve_store(store, stacklevel=3)
            if found is not None:
                found.forget(name)
    return len(keys)
