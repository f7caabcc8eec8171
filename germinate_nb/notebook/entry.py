"""explore(): the explorer widget in a notebook, a plain summary where widgets cannot show."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from germinate_nb.core.state import State
from germinate_nb.core.workflow import Workflow

if TYPE_CHECKING:
    from germinate_nb.notebook.explorer import DagExplorer

__all__ = ["HeadlessView", "explore"]


class HeadlessView:
    """What ``explore()`` returns under ``germinate-nb`` (no widgets are imported there)."""

    def __init__(self, target: State | Workflow) -> None:
        self.target = target

    def __repr__(self) -> str:
        if isinstance(self.target, Workflow):
            return f"<explorer of workflow {self.target.name} (headless)>"
        return f"<explorer of state {self.target.name}: {len(self.target)} tasks (headless)>"


def explore(target: State | Workflow, **options: Any) -> DagExplorer | HeadlessView:
    """Show a state's DAG (or a workflow's state machine) with live statuses and a Run button.

    Parameters
    ----------
    target
        The state, or a workflow (shown as its state machine; pick a state to see its DAG).
    **options
        For the runs the explorer starts: ``reuse`` (default True), ``max_workers``,
        ``store``, and run-wide ``retries``, ``timeout`` and ``limits`` (``{"llm": 4}``) as
        for :func:`run`.
    """
    if os.environ.get("GERMINATE_NB_HEADLESS") == "1":
        return HeadlessView(target)
    from germinate_nb.notebook.explorer import DagExplorer

    return DagExplorer(target, **options)
