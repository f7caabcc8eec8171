"""validate(): every problem of a state's DAG at once: cycles, foreign parents, schema gaps."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from germinate_nb.core.schema import is_any_model, is_compatible, type_name
from germinate_nb.core.snapshot import DagSnapshot, TaskSpec
from germinate_nb.errors import DagValidationError
from germinate_nb.graph.phases import format_cycle

if TYPE_CHECKING:
    from germinate_nb.core.state import State

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


def validate(
    state: State | DagSnapshot, *, input: Any = None, raise_on_error: bool = False
) -> list[Problem]:
    """Check a state's DAG and return all its problems (an empty list when it is sound).

    Parameters
    ----------
    state
        The state to check (or a snapshot of it).
    input
        The run input (dict or model); when given, root tasks' required fields are checked
        against it.
    raise_on_error
        Raise :class:`DagValidationError` holding every problem instead of returning them.
    """
    snap = state if isinstance(state, DagSnapshot) else state.snapshot()
    input_keys = _input_keys(input)
    key = None if input_keys is None else tuple(sorted(input_keys))
    problems = list(snap.memo(("problems", key), lambda: tuple(_find_problems(snap, input_keys))))
    if raise_on_error and problems:
        lead = f"state '{snap.state}' has"
        raise problems_error(lead, problems)
    return problems


def problems_error(lead: str, problems: list[Problem]) -> DagValidationError:
    """One error holding every problem: ``<lead> N problems:`` then one ``- message`` per line."""
    n = len(problems)
    lines = "\n".join(f"- {p.message}" for p in problems)
    msg = f"{lead} {n} problem{'s' if n > 1 else ''}:\n{lines}"
    return DagValidationError(msg, problems=problems)


def _find_problems(snap: DagSnapshot, input_keys: dict[str, Any] | None) -> list[Problem]:
    problems: list[Problem] = []
    for cycle in snap.cycles:
        problems.append(
            Problem(
                "cycle",
                format_cycle(cycle, snap.state),
                tasks=tuple(cycle[:-1]),
                edges=tuple(zip(cycle[:-1], cycle[1:], strict=True)),
            )
        )
    outputs = {n: _open_or_model(t.executor) for n, t in snap.tasks.items()}
    for task in snap.tasks.values():
        _check_task(snap, task, input_keys, outputs, problems)
    return problems


def _open_or_model(executor: Any) -> type[BaseModel] | None:
    """A task's output model, or None when any fields may come out of it."""
    out = executor.output_schema if executor is not None else None
    return None if out is None or is_any_model(out) else out


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
    snap: DagSnapshot,
    task: TaskSpec,
    input_keys: dict[str, Any] | None,
    outputs: dict[str, type[BaseModel] | None],
    problems: list[Problem],
) -> None:
    state = snap.state
    executor = task.executor
    if executor is None:
        reason = f"no executor: {task.missing}" if task.missing else "no executor"
        problems.append(
            Problem(
                "no-executor",
                f"task '{task.name}' in state '{state}' has {reason}. Declare it with "
                f"@{state}.task() or register its executor in the TaskRegistry.",
                tasks=(task.name,),
            )
        )
        return
    foreign = task.foreign_parents
    for parent in foreign:
        other = parent.state if parent.state is not None else "no state"
        problems.append(
            Problem(
                "foreign-parent",
                f"task '{task.name}' in state '{state}' has parent '{parent.name}' "
                f"from {'state ' if parent.state else ''}'{other}'. Tasks depend only on "
                f"tasks of their own state: declare '{parent.name}' in '{state}' or "
                "join the states with a transition.",
                tasks=(task.name, parent.name),
                edges=((parent.name, task.name),),
            )
        )
    schema = executor.input_schema
    if schema is None or is_any_model(schema):
        return
    if foreign:
        parents = [*task.parents, *(p.name for p in foreign)]
        outs = tuple(
            [outputs[p] for p in task.parents]
            + [
                None
                if p.output_schema is None or is_any_model(p.output_schema)
                else p.output_schema
                for p in foreign
            ]
        )
    else:
        parents = list(task.parents)
        outs = tuple([outputs[p] for p in parents])
    if not parents:
        if input_keys is not None:
            _check_root(state, task.name, schema, _fields(schema), input_keys, problems)
        return
    try:
        findings = _analyse(schema, outs)
    except TypeError:  # an unhashable model in the mix: analyse without the memo
        findings = _analyse.__wrapped__(schema, outs)
    for finding in findings:
        problems.append(_problem(snap, task.name, schema, parents, finding))


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
    snap: DagSnapshot,
    task: str,
    schema: type[BaseModel],
    parents: list[str],
    finding: Finding,
) -> Problem:
    kind, fname = finding[0], finding[1]
    where = f"task '{task}' in state '{snap.state}'"
    if kind == "schema-gap":
        annotation = finding[2]
        outs = "; ".join(
            f"'{p}' outputs {', '.join(_outputs(snap, p)) or 'nothing'}" for p in parents
        )
        return Problem(
            kind,
            f"{where} needs input field '{fname}: {type_name(annotation)}' ({schema.__name__}), "
            f"but no parent provides it ({outs}). Add a parent whose output has '{fname}', or "
            f"give {schema.__name__}.{fname} a default.",
            tasks=(task,),
            edges=tuple((p, task) for p in parents),
            field=fname,
        )
    if kind == "type-mismatch":
        _, _, annotation, i, source_type = finding
        parent = parents[i]
        return Problem(
            kind,
            f"{where} expects input field '{fname}: {type_name(annotation)}', but parent "
            f"'{parent}' outputs '{fname}: {type_name(source_type)}'. Change the parent's "
            f"'{fname}' to {type_name(annotation)} or change {schema.__name__}.",
            tasks=(task, parent),
            edges=((parent, task),),
            field=fname,
        )
    _, _, i, first_type, j, second_type = finding
    first, second = parents[i], parents[j]
    return Problem(
        kind,
        f"{where} gets field '{fname}' from parents '{first}' ({type_name(first_type)}) and "
        f"'{second}' ({type_name(second_type)}), types that cannot agree. Rename one of the "
        "fields or make their types the same.",
        tasks=(task, first, second),
        edges=((first, task), (second, task)),
        field=fname,
    )


def _outputs(snap: DagSnapshot, name: str) -> list[str]:
    spec = snap.tasks.get(name)
    out = spec.executor.output_schema if spec is not None and spec.executor is not None else None
    return list(_fields(out)) if out is not None and not is_any_model(out) else []


def _check_root(
    state: str,
    task: str,
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
                    f"root task '{task}' in state '{state}' needs input field "
                    f"'{fname}: {type_name(annotation)}' ({schema.__name__}), but the run input "
                    f"has no '{fname}' (input keys: {keys}). Add '{fname}' to the run input.",
                    tasks=(task,),
                    field=fname,
                )
            )
