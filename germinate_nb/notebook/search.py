"""The explorer's search: which tasks a query names (substrings, and ``status:`` filters)."""

from __future__ import annotations

from collections.abc import Mapping

from germinate_nb.core.snapshot import DagSnapshot

__all__ = ["match_tasks"]


def match_tasks(
    snap: DagSnapshot,
    query: str,
    statuses: Mapping[str, str],
    marks: Mapping[str, str] | None = None,
) -> list[str]:
    """The tasks a query names, in declaration order.

    Words are matched all together (AND), case-insensitively: a plain word is a substring of
    the task's name or namespace; ``status:failed`` (or ``is:failed``) keeps tasks with that
    status on display (``status:changed`` the tasks whose code changed since they last ran);
    ``ns:agent`` a namespace substring. An empty query matches nothing.

    Examples
    --------
    >>> from germinate_nb import State, TaskExecutor, use_registry
    >>> with use_registry():
    ...     s = State("s")
    ...     for n in ("fetch_a", "fetch_b", "plan"):
    ...         _ = s.define_task(n, TaskExecutor(n + "_executor", print, namespace="io"))
    ...     snap = s.snapshot()
    >>> match_tasks(snap, "fetch status:failed", {"fetch_b": "failed"})
    ['fetch_b']
    >>> match_tasks(snap, "ns:io", {})
    ['fetch_a', 'fetch_b', 'plan']
    """
    words = query.lower().split()
    if not words:
        return []
    marks = marks or {}
    found = []
    for name in snap.names:
        spec = snap.tasks[name]
        namespace = spec.executor.namespace.lower() if spec.executor is not None else ""
        status = statuses.get(name, "pending").lower()
        for word in words:
            key, _, value = word.partition(":")
            if value and key in ("status", "is"):
                if value == "changed":
                    if not marks.get(name):
                        break
                elif not status.replace(" ", "-").startswith(value):
                    break
            elif value and key in ("ns", "namespace"):
                if value not in namespace:
                    break
            elif word not in name.lower() and word not in namespace:
                break
        else:
            found.append(name)
    return found
