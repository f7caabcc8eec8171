"""A notebook cell owns the tasks it declares: re-running it after a rename replaces the old task.

IPython's ``pre_run_cell`` / ``post_run_cell`` events bracket each cell; the registry's change
notifications say which tasks the cell declared. When a cell that ran without error no longer
declares a task it declared last time (and no other cell took that task over since), the task
goes: renamed in place (one old name, one new name in the same state: the edges move to the new
task) or removed, with a one-line note in the cell's output. Cells are known by the id that
JupyterLab and Notebook 7 send with each execution; without one, nothing happens.
"""

from __future__ import annotations

import html
from typing import Any

from germinate_nb.core.registry import TaskRegistry
from germinate_nb.core.state import State

__all__ = ["CellTracker", "move_edges"]

Key = tuple[str, str]  # (state name, task name)


class Note:
    """A one-line note shown in the cell's output (plain text, and HTML-escaped)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<div class='germinate-note'><code>{html.escape(self.text)}</code></div>"


def move_edges(state: State, old: str, new: str) -> tuple[list[str], list[str]]:
    """Wire ``new`` to the parents and children of ``old`` (the ones it lacks); returns them."""
    source, target = state.get(old), state.get(new)
    parents = [p for p in source.parents if p is not target and p not in target.parents]
    children = [c for c in source.children if c is not target and c not in target.children]
    if parents:
        target.add_parents(parents)
    if children:
        target.add_children(children)
    return [p.name for p in parents], [c.name for c in children]


class CellTracker:
    """Follows which tasks each notebook cell declares (see the module docstring)."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.owner: dict[Key, str] = {}  # task -> the cell that declared it last
        self.cells: dict[str, list[Key]] = {}  # cell -> what it declared last time, in order
        self._cell: str | None = None
        self._declared: list[Key] = []
        self._registry: TaskRegistry | None = None
        self._unsubscribe: Any = None

    # -- IPython events ----------------------------------------------------------------------

    def pre_run_cell(self, info: Any) -> None:
        """A cell starts: listen to the registry for what it declares."""
        self._stop_listening()
        self._cell = getattr(info, "cell_id", None) or None
        self._declared = []
        if self._cell is None:
            return
        self._registry = TaskRegistry.default()
        self._unsubscribe = self._registry.subscribe(self._on_change)

    def post_run_cell(self, result: Any) -> None:
        """A cell ended: tasks it no longer declares go (only after a run without error)."""
        self._stop_listening()
        cell, declared = self._cell, self._declared
        self._cell, self._declared = None, []
        if cell is None or not getattr(result, "success", False):
            return
        previous = self.cells.get(cell, [])
        now = list(dict.fromkeys(declared))
        for key in now:
            self.owner[key] = cell
        stale = [k for k in previous if k not in now and self.owner.get(k) == cell]
        self.cells[cell] = now
        notes = self._retire(stale, [k for k in now if k not in previous])
        if notes:
            from IPython.display import display

            for note in notes:
                display(Note(note))

    # -- inside --------------------------------------------------------------------------------

    def _on_change(self, kind: str, state: Any, task: Any) -> None:
        if kind in ("added", "redefined") and state is not None and task is not None:
            if getattr(task, "kind", "task") != "condition":  # placed by build(), not a cell
                self._declared.append((state.name, task.name))

    def _stop_listening(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _retire(self, stale: list[Key], new: list[Key]) -> list[str]:
        registry = TaskRegistry.default()
        notes = []
        for state_name in dict.fromkeys(s for s, _ in stale):
            state = registry.states.get(state_name)
            if state is None:
                continue
            gone = [t for s, t in stale if s == state_name and t in state]
            fresh = [t for s, t in new if s == state_name and t in state]
            if len(gone) == 1 and len(fresh) == 1:
                old, renamed = gone[0], fresh[0]
                parents, children = move_edges(state, old, renamed)
                state.remove_task(old)
                self.owner.pop((state_name, old), None)
                moved = ""
                if parents or children:
                    moved = (
                        f"; its edges moved (parents: {', '.join(parents) or 'none'}; "
                        f"children: {', '.join(children) or 'none'})"
                    )
                notes.append(
                    f"✓ task '{renamed}' replaces '{old}' in state '{state_name}' (this cell "
                    f"declared '{old}' before){moved}"
                )
                continue
            for name in gone:
                edges = len(state.get(name).parents) + len(state.get(name).children)
                state.remove_task(name)
                self.owner.pop((state_name, name), None)
                dropped = f" and its {edges} edge{'s' if edges != 1 else ''}" if edges else ""
                notes.append(
                    f"✓ removed task '{name}'{dropped} from state '{state_name}': this cell no "
                    "longer declares it"
                )
        return notes
