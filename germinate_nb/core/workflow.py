"""Workflow: states joined by conditional transitions into a state machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from germinate_nb.core.state import Condition, State, Transition
from germinate_nb.errors import DagValidationError, DeclarationError, UnknownTaskError

if TYPE_CHECKING:
    from germinate_nb.core.validate import Problem

__all__ = ["Workflow"]


class Workflow:
    """A state machine of states; transitions come from ``(state & condition) >> other``.

    Examples
    --------
    >>> from germinate_nb.core.registry import use_registry
    >>> with use_registry():
    ...     wf = Workflow("demo", "1.0")
    ...     draft, review = State("draft"), State("review")
    ...     wf.add_state(draft, initial_state=True)
    ...     wf.add_state(review)
    ...     @draft.condition()
    ...     def needs_review(output) -> bool:
    ...         return True
    ...     _ = (draft & needs_review) >> review
    ...     wf.transitions
    [<Transition: draft -[needs_review]-> review>]
    >>> wf.workflow_id
    'demo:1.0'
    """

    def __init__(self, name: str, version: str = "0.1") -> None:
        self.name = name
        self.version = version
        self._states: dict[str, State] = {}
        self.initial_state: State | None = None

    def add_state(self, state: State, initial_state: bool = False) -> None:
        """Add a state; ``initial_state=True`` makes it where runs start."""
        if not isinstance(state, State):
            msg = f"Workflow.add_state() takes a State, got {type(state).__name__}."
            raise DeclarationError(msg)
        self._states[state.name] = state
        if initial_state:
            self.initial_state = state

    @property
    def workflow_id(self) -> str:
        """``"name:version"``: identifies this version of the workflow (as in the seed)."""
        return f"{self.name}:{self.version}"

    @property
    def states(self) -> list[State]:
        """The states in the order they were added."""
        return list(self._states.values())

    def get_state(self, name: str) -> State:
        """Return the state called ``name``."""
        try:
            return self._states[name]
        except KeyError:
            known = ", ".join(self._states) or "none"
            msg = f"workflow '{self.name}' has no state '{name}' (states: {known})."
            raise UnknownTaskError(msg, name=name) from None

    @property
    def transitions(self) -> list[Transition]:
        """Every transition out of this workflow's states, in declaration order."""
        return [t for s in self._states.values() for t in s.transitions]

    def transitions_from(self, state: State) -> list[tuple[Condition, State]]:
        """The (condition, target) pairs leaving ``state``, in condition definition order."""
        return [(t.condition, t.target) for t in state.transitions]

    def check(self) -> list[str]:
        """Return the structural problems of the state machine (empty when fine)."""
        problems = []
        if self.initial_state is None:
            problems.append(
                f"workflow '{self.name}' has no initial state: "
                "call add_state(state, initial_state=True)."
            )
        for t in self.transitions:
            if t.target.name not in self._states:
                problems.append(
                    f"transition {t.source.name} -[{t.condition.name}]-> {t.target.name} of "
                    f"workflow '{self.name}' leads to a state not added to it: "
                    f"call add_state({t.target.name})."
                )
        return problems

    def build(self, *, raise_on_error: bool = True) -> list[str]:
        """Build every state (:meth:`State.build`: condition tasks placed, DAG validated).

        Idempotent. Returns the problems found, as messages: those of :meth:`check` and those
        of each state (states reached by a transition but not added are built too).

        Raises
        ------
        DagValidationError
            With ``raise_on_error`` (the default) when there is any problem; ``err.problems``
            holds the states' :class:`Problem` objects.
        """
        messages = self.check()
        found: list[Problem] = []
        states = dict(self._states)
        for t in self.transitions:
            states.setdefault(t.target.name, t.target)
        for state in states.values():
            problems = state.build(raise_on_error=False)
            found.extend(problems)
            messages.extend(p.message for p in problems)
        if raise_on_error and messages:
            n = len(messages)
            lines = "\n".join(f"- {m}" for m in messages)
            msg = f"workflow '{self.name}' has {n} problem{'s' if n > 1 else ''}:\n{lines}"
            raise DagValidationError(msg, problems=found)
        return messages

    def __repr__(self) -> str:
        initial = self.initial_state.name if self.initial_state else None
        return (
            f"<Workflow: {self.name} v{self.version} (states: {list(self._states)}, "
            f"initial: {initial})>"
        )
