"""run_workflow: run a workflow's states one after another, following their conditions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from germinate_nb.core.conditions import ConditionResult, Transition
from germinate_nb.core.state import State
from germinate_nb.core.validate import Problem, validate
from germinate_nb.core.workflow import Workflow
from germinate_nb.errors import DagValidationError, DeclarationError, WorkflowLimitError
from germinate_nb.execution.dataflow import merge_outputs, run_input_dict
from germinate_nb.execution.result import RunResult, TaskError, short_repr
from germinate_nb.execution.runner import run

__all__ = ["ConditionValue", "WorkflowResult", "WorkflowStep", "run_workflow", "sink_output"]

ConditionValue = bool | TaskError | None
"""A condition's result in a step: whether it held, the error it raised, or None (not run)."""


@dataclass
class WorkflowStep:
    """One visit of a state during a workflow run.

    ``conditions`` holds every condition of the state, in definition order: True/False, the
    :class:`TaskError` it raised, or None when it did not run (a task of the state failed).
    ``transition`` names the condition followed out of the state, ``next_state`` its target.
    """

    state: str
    result: RunResult
    transition: str | None = None
    conditions: dict[str, ConditionValue] = field(default_factory=dict)
    next_state: str | None = None


@dataclass
class WorkflowResult:
    """The outcome of :func:`run_workflow`; partial (with ``error``) when a state failed.

    ``problems`` holds what kept a state from starting (its validation problems), if anything.
    """

    workflow: str
    steps: list[WorkflowStep] = field(default_factory=list)
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    problems: list[Problem] = field(default_factory=list)

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
    """Merge the outputs of a state's sink tasks into one dict (the state's output).

    Sink tasks are those without children other than condition tasks; condition results are
    not part of the output.
    """
    outputs = result.outputs
    sinks = [t.name for t in state.sink_tasks() if t.name in outputs]
    dumps = [(name, outputs[name].model_dump()) for name in sinks]
    if not dumps:
        return {}
    return merge_outputs(f"<output of {state.name}>", state.name, dumps)


def condition_values(state: State, result: RunResult) -> dict[str, ConditionValue]:
    """Each condition's result in ``result``, by condition name, in definition order."""
    values: dict[str, ConditionValue] = {}
    runs = result.task_runs
    for cond in state.conditions:
        tr = runs.get(cond.task.name)
        if tr is None:
            values[cond.name] = None
        elif isinstance(tr.output, ConditionResult) and tr.status.is_ok:
            values[cond.name] = tr.output.holds
        else:
            values[cond.name] = tr.error
    return values


def _transition_text(t: Transition) -> str:
    return f"{t.source.name} -[{t.condition.name}]-> {t.target.name}"


def _cannot_start(
    state: State, problems: list[Problem], via: Transition, data: dict[str, Any]
) -> str:
    """Why ``state`` cannot start on the output another state handed it through ``via``."""
    keys = ", ".join(data) or "none"
    lines = []
    for p in problems:
        if p.kind == "schema-gap" and p.field and p.tasks and not p.edges:  # a root's input
            lines.append(
                f"root task '{p.tasks[0]}' needs input field '{p.field}', which the output of "
                f"state '{via.source.name}' (through transition {_transition_text(via)}) does "
                f"not have (its output keys: {keys}). Make a sink task of '{via.source.name}' "
                f"output '{p.field}', or give the field a default."
            )
        else:
            lines.append(p.message)
    if len(lines) == 1:
        return f"state '{state.name}' cannot start: {lines[0]}"
    body = "\n".join(f"- {line}" for line in lines)
    return f"state '{state.name}' cannot start, it has {len(lines)} problems:\n{body}"


def _failure(state: State, step: WorkflowStep) -> str:
    """The error of a step whose run did not succeed: the condition that raised, if any."""
    for name, value in step.conditions.items():
        if isinstance(value, TaskError):
            return f"condition '{name}' of state '{state.name}' raised {value}"
    return f"state '{state.name}' {step.result.status}"


def run_workflow(
    workflow: Workflow,
    input: Any = None,
    *,
    max_transitions: int = 20,
    **run_options: Any,
) -> WorkflowResult:
    """Run a workflow from its initial state, following the first condition that holds.

    The workflow is built first (:meth:`Workflow.build`: each condition becomes a task in its
    state's last phase). Each state's run evaluates all its conditions on the merged output of
    its sink tasks; the first that holds, in definition order, picks the transition, and that
    output is the next state's input. Every condition's result is in ``step.conditions``.

    The run stops when no condition holds (the last state's output is ``result.output``), or
    with a partial result whose ``error`` says why: a task or a condition failed, or a later
    state cannot start on what it was handed (the message names the transition).

    Raises
    ------
    DagValidationError
        When the initial state cannot start (a cycle, or the run input lacks a field).
    WorkflowLimitError
        After ``max_transitions`` transitions; the partial result is ``err.result``.
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
    workflow.build(raise_on_error=False)  # problems surface when the state concerned starts
    result = WorkflowResult(workflow.name)
    state: State = workflow.initial_state
    data: Any = input
    via: Transition | None = None
    transitions = 0
    while True:
        if via is None:
            run_result = run(state, data, **run_options)
        else:
            state.build(raise_on_error=False)  # a state reached but never added: idempotent
            problems = validate(state, input=data)
            if problems:
                result.error = _cannot_start(state, problems, via, data)
                result.problems = problems
                return result
            try:
                run_result = run(state, data, **run_options)
            except DagValidationError as err:
                result.error = _cannot_start(state, list(err.problems), via, data)
                result.problems = list(err.problems)
                return result
        step = WorkflowStep(state.name, run_result)
        step.conditions = condition_values(state, run_result)
        result.steps.append(step)
        if not run_result.ok:
            result.error = _failure(state, step)
            return result
        try:
            output = sink_output(state, run_result)
        except Exception as err:
            result.error = str(err)
            return result
        result.output = output
        following = next(
            (t for t in state.transitions if step.conditions.get(t.condition.name) is True), None
        )
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
        step.transition = following.condition.name
        step.next_state = following.target.name
        transitions += 1
        via = following
        state = following.target
        data = run_input_dict(output)
