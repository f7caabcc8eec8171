"""What flows along edges: merging parent outputs, validating inputs and outputs of tasks."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from germinate_nb.core.executor import TaskExecutor
from germinate_nb.core.schema import MergedInput, is_any_model
from germinate_nb.errors import MergeConflictError, TaskInputError, TaskOutputError
from germinate_nb.execution.result import short_repr
from germinate_nb.execution.tracebacks import safe_str

__all__ = [
    "build_input",
    "coerce_output",
    "dump_output",
    "merge_dumps",
    "merge_outputs",
    "run_input_dict",
]


def run_input_dict(input: Any) -> dict[str, Any]:
    """The run input as a dict of its own (a model is dumped, a dict deep-copied; None is empty).

    The run keeps no reference into the caller's objects, so mutating the input after the run
    cannot change what a later reuse compares against.
    """
    if input is None:
        return {}
    if isinstance(input, BaseModel):
        return input.model_dump()
    if isinstance(input, Mapping):
        try:
            return copy.deepcopy(dict(input))
        except Exception:  # an uncopyable value: keep the caller's objects
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
    dumps = dict(parent_dumps)
    return merge_dumps(task, state, [parent for parent, _ in parent_dumps], dumps)


def merge_dumps(
    task: str, state: str, parents: Sequence[str], dumps: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """:func:`merge_outputs` of ``parents``, whose dumps ``dumps`` holds (a run's own, by task).

    A fresh dict; a key that comes again keeps its first value (they are equal).
    """
    merged = dict(dumps[parents[0]])
    for i in range(1, len(parents)):
        for key, value in dumps[parents[i]].items():
            if key not in merged:
                merged[key] = value
                continue
            first = merged[key]
            if first is value:
                continue
            try:
                if (first == value) is True:  # the common case, without _same's call
                    continue
            except Exception:
                pass
            if not _same(first, value):
                _conflict(task, state, parents[: i + 1], dumps, key)
    return merged


def _conflict(
    task: str,
    state: str,
    parents: Sequence[str],
    dumps: Mapping[str, Mapping[str, Any]],
    key: str,
) -> None:
    """Raise the MergeConflictError for ``key``: its first parent against the last one."""
    first = next(p for p in parents if key in dumps[p])
    parent = parents[-1]
    msg = (
        f"task '{task}' in state '{state}' gets key '{key}' from parents '{first}' "
        f"({short_repr(dumps[first][key])}) and '{parent}' ({short_repr(dumps[parent][key])}) "
        "with different values. Rename the field in one parent's output model, or make the "
        "parents agree."
    )
    raise MergeConflictError(msg, task=task, key=key, parents=(first, parent))


def _same(a: Any, b: Any) -> bool:
    """Are two merged values equal? Array-likes compare element-wise; undecidable is unequal."""
    if a is b:
        return True
    try:
        equal = a == b
        return bool(equal)
    except Exception:  # an array's truth value is ambiguous, or == itself raised
        pass
    try:
        return bool(equal.all())
    except Exception:
        return False


def build_input(
    executor: TaskExecutor,
    task: str,
    state: str,
    data: Mapping[str, Any],
    parents: Sequence[str],
) -> BaseModel | None:
    """Validate ``data`` into the task's input model (None when the task takes no input).

    An "any" input model (``BaseModel`` itself, or none given to the cell magic) receives the
    data as attributes of a :class:`MergedInput`.

    Raises
    ------
    TaskInputError
        When the data does not fit, or a validator of the model raised (any exception).
    """
    schema = executor.input_schema
    if schema is None:
        return None
    model = schema if executor._plain_input or not is_any_model(schema) else MergedInput
    try:
        validated: BaseModel = model.__pydantic_validator__.validate_python(data)  # model_validate
        return validated
    except ValidationError as err:
        details = format_validation_errors(err)
        errors: Any = _errors(err)
    except (
        Exception
    ) as err:  # a validator raising TypeError, RuntimeError...: not wrapped by pydantic
        details = f"a validator raised {type(err).__name__}: {safe_str(err)}"
        errors = None
    source = (
        f"from parent{'s' if len(parents) > 1 else ''} {', '.join(repr(p) for p in parents)}"
        if parents
        else "from the run input"
    )
    msg = (
        f"input of task '{task}' in state '{state}' does not fit {model.__name__} ({source}): "
        f"{details}. Make the {'parents’ outputs' if parents else 'run input'} provide these "
        f"fields, or change {model.__name__}."
    )
    raise TaskInputError(msg, task=task, errors=errors)


def coerce_output(executor: TaskExecutor, task: str, state: str, value: Any) -> BaseModel:
    """Validate what a task returned into its output model (a model or a dict is accepted).

    An "any" output model (``BaseModel`` itself, or none given to the cell magic) accepts any
    pydantic model instance as it is, and a dict as a :class:`MergedInput`.
    """
    schema = executor.output_schema
    if schema is None or is_any_model(schema):
        if isinstance(value, BaseModel):
            return value
        if isinstance(value, Mapping):
            try:
                return MergedInput.model_validate(dict(value))
            except Exception as err:
                msg = (
                    f"output of task '{task}' in state '{state}' is a dict that cannot become "
                    f"a model: {type(err).__name__}: {safe_str(err)}. Return a pydantic model."
                )
                raise TaskOutputError(msg, task=task) from None
        msg = (
            f"output of task '{task}' in state '{state}' is {type(value).__name__} "
            f"{short_repr(value)}; a task without an output model must return a pydantic model "
            "or a dict. Return one, or declare the output model."
        )
        raise TaskOutputError(msg, task=task)
    if type(value) is schema:
        return value
    try:
        if isinstance(value, BaseModel):
            data: Any = value.model_dump()
        elif isinstance(value, Mapping):
            data = value
        else:
            msg = (
                f"output of task '{task}' in state '{state}' is {type(value).__name__} "
                f"{short_repr(value)}, not {schema.__name__}. Return a {schema.__name__} "
                "instance or a dict of its fields."
            )
            raise TaskOutputError(msg, task=task)
        return schema.model_validate(data)
    except ValidationError as err:
        msg = (
            f"output of task '{task}' in state '{state}' does not fit {schema.__name__}: "
            f"{format_validation_errors(err)}. Return the fields {schema.__name__} declares."
        )
        raise TaskOutputError(msg, task=task, errors=_errors(err)) from None
    except TaskOutputError:
        raise
    except Exception as err:
        msg = (
            f"output of task '{task}' in state '{state}' cannot become {schema.__name__}: "
            f"{type(err).__name__}: {safe_str(err)}. Return a {schema.__name__} instance."
        )
        raise TaskOutputError(msg, task=task) from None


def dump_output(output: BaseModel, task: str, state: str) -> dict[str, Any]:
    """The output as a dict for children and the cache (``model_dump()``, errors explained)."""
    try:
        dump: dict[str, Any] = output.__pydantic_serializer__.to_python(output)  # model_dump()
        return dump
    except Exception as err:  # a field_serializer that raises, say
        msg = (
            f"output of task '{task}' in state '{state}' cannot be dumped for its children and "
            f"the cache: {type(err).__name__}: {safe_str(err)}. Fix the output model's "
            "serializers."
        )
        raise TaskOutputError(msg, task=task) from None


def _errors(err: ValidationError) -> Any:
    try:
        return err.errors()
    except Exception:
        return None


def format_validation_errors(err: ValidationError, limit: int = 5) -> str:
    """Pydantic's field errors on one line: ``tokens: Input should be a valid list (got 'a b')``."""
    parts = []
    try:
        errors = err.errors()
    except Exception:  # an error whose input cannot be shown
        return safe_str(err).replace("\n", " ")
    for e in errors[:limit]:
        loc = ".".join(str(x) for x in e.get("loc", ())) or "(model)"
        got = f" (got {short_repr(e['input'])})" if e.get("type") != "missing" else ""
        parts.append(f"{loc}: {e.get('msg', '')}{got}")
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)
