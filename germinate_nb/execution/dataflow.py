"""What flows along edges: merging parent outputs, validating inputs and outputs of tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from germinate_nb.core.schema import MergedInput
from germinate_nb.core.task import TaskDefinition
from germinate_nb.errors import MergeConflictError, TaskInputError, TaskOutputError
from germinate_nb.execution.result import short_repr

__all__ = ["build_input", "coerce_output", "merge_outputs", "run_input_dict"]


def run_input_dict(input: Any) -> dict[str, Any]:
    """The run input as a dict (a model is dumped; None is empty)."""
    if input is None:
        return {}
    if isinstance(input, BaseModel):
        return input.model_dump()
    if isinstance(input, Mapping):
        return dict(input)
    msg = (
        f"run input must be a dict or a pydantic model, got {type(input).__name__} "
        f"{short_repr(input)}. Pass e.g. input={{'text': ...}}."
    )
    raise TypeError(msg)


def merge_outputs(
    task: str, state: str, parent_dumps: Sequence[tuple[str, Mapping[str, Any]]]
) -> dict[str, Any]:
    """Merge parents' dumped outputs; the same key with different values is an error.

    Examples
    --------
    >>> merge_outputs("c", "s", [("a", {"x": 1}), ("b", {"y": 2, "x": 1})])
    {'x': 1, 'y': 2}
    >>> merge_outputs("c", "s", [("a", {"x": 1}), ("b", {"x": 2})])
    Traceback (most recent call last):
    ...
    germinate_nb.errors.MergeConflictError: task 'c' in state 's' gets key 'x' from parents ...
    """
    if len(parent_dumps) == 1:
        return dict(parent_dumps[0][1])
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for parent, dump in parent_dumps:
        for key, value in dump.items():
            if key in merged and merged[key] != value:
                first = origin[key]
                msg = (
                    f"task '{task}' in state '{state}' gets key '{key}' from parents '{first}' "
                    f"({short_repr(merged[key])}) and '{parent}' ({short_repr(value)}) with "
                    "different values. Rename the field in one parent's output model, or make "
                    "the parents agree."
                )
                raise MergeConflictError(msg, task=task, key=key, parents=(first, parent))
            merged[key] = value
            origin.setdefault(key, parent)
    return merged


def build_input(
    task: TaskDefinition,
    state: str,
    data: Mapping[str, Any],
    parents: Sequence[str],
) -> BaseModel | None:
    """Validate ``data`` into the task's input model (None when the task takes no input)."""
    assert task.executor is not None
    schema = task.executor.input_schema
    if schema is None:
        return None
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        source = (
            f"from parent{'s' if len(parents) > 1 else ''} {', '.join(repr(p) for p in parents)}"
            if parents
            else "from the run input"
        )
        msg = (
            f"input of task '{task.name}' in state '{state}' does not fit "
            f"{schema.__name__} ({source}): {format_validation_errors(err)}. Make the "
            f"{'parents’ outputs' if parents else 'run input'} provide these fields, or change "
            f"{schema.__name__}."
        )
        raise TaskInputError(msg, task=task.name, errors=err.errors()) from None


def coerce_output(task: TaskDefinition, state: str, value: Any) -> BaseModel:
    """Validate what a task returned into its output model (a model or a dict is accepted)."""
    assert task.executor is not None
    schema = task.executor.output_schema
    if schema is None:  # a cell task declared without --output
        if isinstance(value, BaseModel):
            return value
        if isinstance(value, Mapping):
            return MergedInput.model_validate(value)
        msg = (
            f"output of task '{task.name}' in state '{state}' is {type(value).__name__} "
            f"{short_repr(value)}; a task without an output model must return a pydantic model "
            "or a dict. Return one, or declare the model with --output."
        )
        raise TaskOutputError(msg, task=task.name)
    if type(value) is schema:
        return value
    if isinstance(value, BaseModel):
        data: Any = value.model_dump()
    elif isinstance(value, Mapping):
        data = value
    else:
        msg = (
            f"output of task '{task.name}' in state '{state}' is {type(value).__name__} "
            f"{short_repr(value)}, not {schema.__name__}. Return a {schema.__name__} "
            "instance or a dict of its fields."
        )
        raise TaskOutputError(msg, task=task.name)
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        msg = (
            f"output of task '{task.name}' in state '{state}' does not fit {schema.__name__}: "
            f"{format_validation_errors(err)}. Return the fields {schema.__name__} declares."
        )
        raise TaskOutputError(msg, task=task.name, errors=err.errors()) from None


def format_validation_errors(err: ValidationError, limit: int = 5) -> str:
    """Pydantic's field errors on one line: ``tokens: Input should be a valid list (got 'a b')``."""
    parts = []
    errors = err.errors()
    for e in errors[:limit]:
        loc = ".".join(str(x) for x in e.get("loc", ())) or "(model)"
        got = f" (got {short_repr(e['input'])})" if e.get("type") != "missing" else ""
        parts.append(f"{loc}: {e.get('msg', '')}{got}")
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)
