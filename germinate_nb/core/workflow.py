"""Workflow: states joined by conditional transitions into a state machine."""

from __future__ import annotations

from germinate_nb.core.state import Condition, State, Transition
from germinate_nb.errors import DeclarationError, UnknownTaskError

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
    """

    def __init__(self, name: str, version: str = "0.1.0") -> None:
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
        """The (condition, target) pairs leaving ``state``, in declaration order."""
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

    def __repr__(self) -> str:
        initial = self.initial_state.name if self.initial_state else None
        return (
            f"<Workflow: {self.name} v{self.version} (states: {list(self._states)}, "
            f"initial: {initial})>"
        )
