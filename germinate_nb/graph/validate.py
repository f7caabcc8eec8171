"""validate(): every problem of a state's DAG at once: cycles, foreign parents, schema gaps."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from pydantic import BaseModel

from germinate_nb.core.schema import MergedInput, is_compatible, type_name
from germinate_nb.core.state import State
from germinate_nb.core.task import TaskDefinition
from germinate_nb.errors import DagValidationError, UnknownTaskError
from germinate_nb.graph.phases import find_cycles, format_cycle

__all__ = ["Problem", "problems_error", "validate"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a state's DAG.

    ``kind`` is one of ``cycle``, ``foreign-parent``, ``no-executor``, ``schema-gap``,
    ``type-mismatch``, ``type-conflict``; ``tasks`` names the tasks involved, ``edges`` the
    (parent, child) edges to paint, ``field`` the input field concerned (if any).
    """

    kind: str
    message: str
    tasks: tuple[str, ...] = ()
    edges: tuple[tuple[str, str], ...] = ()
    field: str | None = None
    extra: Mapping[str, Any] = dc_field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


@functools.lru_cache(maxsize=4096)
def _fields(model: type[BaseModel]) -> dict[str, tuple[Any, bool]]:
    """Field name -> (annotation, required) of a model (cached per class)."""
    return {
        name: (info.annotation, info.is_required()) for name, info in model.model_fields.items()
    }


@functools.lru_cache(maxsize=16384)
def _compatible(source: Any, target: Any) -> bool:
    return is_compatible(source, target)


def _is_compatible(source: Any, target: Any) -> bool:
    try:
        return _compatible(source, target)
    except TypeError:  # unhashable annotation
        return is_compatible(source, target)


def validate(state: State, *, input: Any = None, raise_on_error: bool = False) -> list[Problem]:
    """Check a state's DAG and return all its problems (an empty list when it is sound).

    Parameters
    ----------
    state
        The state to check.
    input
        The run input (dict or model); when given, root tasks' required fields are checked
        against it.
    raise_on_error
        Raise :class:`DagValidationError` holding every problem instead of returning them.
    """
    input_keys = _input_keys(input)
    signature = (
        state.version,
        state.registry.version,
        None if input_keys is None else tuple(sorted(input_keys)),
    )
    cached = state._validation_cache
    if cached is not None and cached[0] == signature:
        problems = list(cached[1])
    else:
        problems = _find_problems(state, input_keys)
        state._validation_cache = (signature, tuple(problems))
    if raise_on_error and problems:
        lead = f"state '{state.name}' has"
        raise problems_error(lead, problems)
    return problems


def problems_error(lead: str, problems: list[Problem]) -> DagValidationError:
    """One error holding every problem: ``<lead> N problems:`` then one ``- message`` per line."""
    n = len(problems)
    lines = "\n".join(f"- {p.message}" for p in problems)
    msg = f"{lead} {n} problem{'s' if n > 1 else ''}:\n{lines}"
    return DagValidationError(msg, problems=problems)


def _find_problems(state: State, input_keys: dict[str, Any] | None) -> list[Problem]:
    problems: list[Problem] = []
    tasks = state.tasks
    for cycle in find_cycles(state.dag) if _has_cycle(state) else []:
        problems.append(
            Problem(
                "cycle",
                format_cycle(cycle, state.name),
                tasks=tuple(cycle[:-1]),
                edges=tuple(zip(cycle[:-1], cycle[1:], strict=True)),
            )
        )
    for task in tasks:
        _check_task(state, task, input_keys, problems)
    return problems


def _has_cycle(state: State) -> bool:
    from germinate_nb.errors import DagCycleError

    try:
        _ = state.phases
    except DagCycleError:
        return True
    return False


def _input_keys(input: Any) -> dict[str, Any] | None:
    if input is None:
        return None
    if isinstance(input, BaseModel):
        return {k: v.annotation for k, v in type(input).model_fields.items()} | {
            k: Any for k in (input.model_extra or {})
        }
    if isinstance(input, Mapping):
        return {str(k): Any for k in input}
    return {}


def _check_task(
    state: State,
    task: TaskDefinition,
    input_keys: dict[str, Any] | None,
    problems: list[Problem],
) -> None:
    executor = task.executor
    if executor is None:
        reason = "no executor"
        if task.executor_name:
            try:
                executor = state.registry.get_executor(task.executor_name)
            except UnknownTaskError:
                reason = f"no executor: '{task.executor_name}' is not registered"
        if executor is None:
            problems.append(
                Problem(
                    "no-executor",
                    f"task '{task.name}' in state '{state.name}' has {reason}. Declare it with "
                    f"@{state.name}.task() or register its executor in the TaskRegistry.",
                    tasks=(task.name,),
                )
            )
            return
    parents = task.parents
    for parent in parents:
        if parent.state is not state:
            other = parent.state.name if parent.state is not None else "no state"
            problems.append(
                Problem(
                    "foreign-parent",
                    f"task '{task.name}' in state '{state.name}' has parent '{parent.name}' "
                    f"from {'state ' if parent.state else ''}'{other}'. Tasks depend only on "
                    f"tasks of their own state: declare '{parent.name}' in '{state.name}' or "
                    "join the states with a transition.",
                    tasks=(task.name, parent.name),
                    edges=((parent.name, task.name),),
                )
            )
    schema = executor.input_schema
    if schema is None or schema is MergedInput:
        return
    if not parents:
        if input_keys is not None:
            _check_root(state, task, schema, _fields(schema), input_keys, problems)
        return
    outs = tuple(p.executor.output_schema if p.executor is not None else None for p in parents)
    try:
        findings = _analyse(schema, outs)
    except TypeError:  # an unhashable model in the mix: analyse without the memo
        findings = _analyse.__wrapped__(schema, outs)
    for finding in findings:
        problems.append(_problem(state, task, schema, parents, finding))


Finding = tuple[Any, ...]


@functools.lru_cache(maxsize=16384)
def _analyse(
    schema: type[BaseModel], outs: tuple[type[BaseModel] | None, ...]
) -> tuple[Finding, ...]:
    """Schema findings for a child input model fed by parents with these output models.

    Memoised on the models, so a DAG that repeats the same model pairs is checked once per pair.
    """
    provided: dict[str, list[tuple[int, Any]]] = {}
    open_ended = any(out is None for out in outs)  # a parent whose output fields are unknown
    for i, out in enumerate(outs):
        if out is None:
            continue
        for fname, (annotation, _) in _fields(out).items():
            provided.setdefault(fname, []).append((i, annotation))
    findings: list[Finding] = []
    for fname, (annotation, required) in _fields(schema).items():
        sources = provided.get(fname)
        if not sources:
            if required and not open_ended:
                findings.append(("schema-gap", fname, annotation))
            continue
        for i, source_type in sources:
            if not _is_compatible(source_type, annotation):
                findings.append(("type-mismatch", fname, annotation, i, source_type))
        for k, (i, first_type) in enumerate(sources):
            for j, second_type in sources[k + 1 :]:
                if not (
                    _is_compatible(first_type, second_type)
                    or _is_compatible(second_type, first_type)
                ):
                    findings.append(("type-conflict", fname, i, first_type, j, second_type))
    return tuple(findings)


def _problem(
    state: State,
    task: TaskDefinition,
    schema: type[BaseModel],
    parents: list[TaskDefinition],
    finding: Finding,
) -> Problem:
    kind, fname = finding[0], finding[1]
    where = f"task '{task.name}' in state '{state.name}'"
    if kind == "schema-gap":
        annotation = finding[2]
        outs = "; ".join(
            f"'{p.name}' outputs {', '.join(_outputs(p)) or 'nothing'}" for p in parents
        )
        return Problem(
            kind,
            f"{where} needs input field '{fname}: {type_name(annotation)}' ({schema.__name__}), "
            f"but no parent provides it ({outs}). Add a parent whose output has '{fname}', or "
            f"give {schema.__name__}.{fname} a default.",
            tasks=(task.name,),
            edges=tuple((p.name, task.name) for p in parents),
            field=fname,
        )
    if kind == "type-mismatch":
        _, _, annotation, i, source_type = finding
        parent = parents[i].name
        return Problem(
            kind,
            f"{where} expects input field '{fname}: {type_name(annotation)}', but parent "
            f"'{parent}' outputs '{fname}: {type_name(source_type)}'. Change the parent's "
            f"'{fname}' to {type_name(annotation)} or change {schema.__name__}.",
            tasks=(task.name, parent),
            edges=((parent, task.name),),
            field=fname,
        )
    _, _, i, first_type, j, second_type = finding
    first, second = parents[i].name, parents[j].name
    return Problem(
        kind,
        f"{where} gets field '{fname}' from parents '{first}' ({type_name(first_type)}) and "
        f"'{second}' ({type_name(second_type)}), types that cannot agree. Rename one of the "
        "fields or make their types the same.",
        tasks=(task.name, first, second),
        edges=((first, task.name), (second, task.name)),
        field=fname,
    )


def _outputs(task: TaskDefinition) -> list[str]:
    out = task.executor.output_schema if task.executor is not None else None
    return list(_fields(out)) if out is not None else []


def _check_root(
    state: State,
    task: TaskDefinition,
    schema: type[BaseModel],
    wanted: dict[str, tuple[Any, bool]],
    input_keys: dict[str, Any],
    problems: list[Problem],
) -> None:
    for fname, (annotation, required) in wanted.items():
        if required and fname not in input_keys:
            keys = ", ".join(input_keys) or "none"
            problems.append(
                Problem(
                    "schema-gap",
                    f"root task '{task.name}' in state '{state.name}' needs input field "
                    f"'{fname}: {type_name(annotation)}' ({schema.__name__}), but the run input "
                    f"has no '{fname}' (input keys: {keys}). Add '{fname}' to the run input.",
                    tasks=(task.name,),
                    field=fname,
                )
            )
