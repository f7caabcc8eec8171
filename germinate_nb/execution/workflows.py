"""run_workflow: run a workflow's states one after another, following their conditions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from germinate_nb.core.state import State
from germinate_nb.core.workflow import Workflow
from germinate_nb.errors import DeclarationError, WorkflowLimitError
from germinate_nb.execution.dataflow import merge_outputs
from germinate_nb.execution.result import RunResult, short_repr
from germinate_nb.execution.runner import run

__all__ = ["WorkflowResult", "WorkflowStep", "run_workflow", "sink_output"]


@dataclass
class WorkflowStep:
    """One visit of a state during a workflow run."""

    state: str
    result: RunResult
    transition: str | None = None  # the condition followed out of this state, if any


@dataclass
class WorkflowResult:
    """The outcome of :func:`run_workflow`."""

    workflow: str
    steps: list[WorkflowStep] = field(default_factory=list)
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Did every visited state's run succeed, with no condition error?"""
        return self.error is None and all(s.result.ok for s in self.steps)

    @property
    def path(self) -> list[str]:
        """Names of the visited states, in order."""
        return [s.state for s in self.steps]

    def __repr__(self) -> str:
        status = "ok" if self.ok else "failed"
        path = " -> ".join(self.path) or "(nothing ran)"
        output = short_repr(self.output)
        text = f"<WorkflowResult {self.workflow}: {status}, {path}, output={output}"
        if self.error:
            text += f", error={self.error!r}"
        return text + ">"


def sink_output(state: State, result: RunResult) -> dict[str, Any]:
    """Merge the outputs of a state's sink tasks (tasks without children) into one dict."""
    sinks = [t.name for t in state.tasks if not t.children and t.name in result.outputs]
    dumps = [(name, result.outputs[name].model_dump()) for name in sinks]
    if not dumps:
        return {}
    return merge_outputs(f"<output of {state.name}>", state.name, dumps)


def run_workflow(
    workflow: Workflow,
    input: Any = None,
    *,
    max_transitions: int = 20,
    **run_options: Any,
) -> WorkflowResult:
    """Run a workflow from its initial state, following the first condition that holds.

    Each state's DAG runs with the previous state's merged sink outputs as input. The run stops
    when a state fails, when no condition of the current state holds, or at
    ``max_transitions`` (a :class:`WorkflowLimitError` carrying the partial result as
    ``err.result``).
    """
    if not isinstance(workflow, Workflow):
        msg = f"run_workflow() takes a Workflow, got {type(workflow).__name__}."
        raise TypeError(msg)
    if workflow.initial_state is None:
        msg = (
            f"workflow '{workflow.name}' has no initial state. "
            "Call workflow.add_state(state, initial_state=True)."
        )
        raise DeclarationError(msg)
    result = WorkflowResult(workflow.name)
    state: State = workflow.initial_state
    data: Any = input
    transitions = 0
    while True:
        run_result = run(state, data, **run_options)
        step = WorkflowStep(state.name, run_result)
        result.steps.append(step)
        if not run_result.ok:
            result.error = f"state '{state.name}' {run_result.status}"
            return result
        try:
            output = sink_output(state, run_result)
        except Exception as err:
            result.error = str(err)
            return result
        result.output = output
        following = None
        for condition, target in workflow.transitions_from(state):
            try:
                holds = condition(output)
            except Exception as err:
                result.error = (
                    f"condition '{condition.name}' of state '{state.name}' raised "
                    f"{type(err).__name__}: {err}"
                )
                return result
            if holds:
                following = (condition, target)
                break
        if following is None:
            return result
        if transitions >= max_transitions:
            recent = result.path[-min(len(result.path), 6) :]
            loop = " -> ".join(recent)
            msg = (
                f"workflow '{workflow.name}' reached max_transitions={max_transitions} without "
                f"finishing; it kept looping through {loop}. Make a condition stop the loop or "
                "raise max_transitions."
            )
            raise WorkflowLimitError(msg, states=sorted(set(recent)), result=result)
        step.transition = following[0].name
        transitions += 1
        state = following[1]
        data = output
