"""Past runs read back from the run store as :class:`RunResult` objects, for views of history.

A stored run holds JSON and text only: outputs come back validated into the task's *current*
output model when the state is given (else as a :class:`MergedInput`), errors as
:class:`TaskError` parsed from their stored text. The result is a read-only picture of the past
run, in the same shape as a live run's, so the explorer and ``_repr_html_`` show it alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from germinate_nb.core.schema import MergedInput, is_any_model
from germinate_nb.execution.result import RunResult, RunStatus, TaskError, TaskRun, TaskStatus
from germinate_nb.execution.store_rows import TaskRow

if TYPE_CHECKING:
    from germinate_nb.core.state import State
    from germinate_nb.execution.store import RunStore

__all__ = ["load_result"]

_TRACEBACK = "\n\nTraceback (most recent call last):"


def load_result(store: RunStore, run_id: str, state: State | None = None) -> RunResult | None:
    """A past run as a :class:`RunResult`, or None when the store has no such run.

    Parameters
    ----------
    store
        The run store (``result.store``, ``resolve_store()``).
    run_id
        The run's id, or a prefix of it that names one run.
    state
        The state the run belongs to, as declared now: outputs are validated into its tasks'
        output models, and task runs come in its declaration order. Without it, outputs are
        :class:`MergedInput` models and task runs come in the order they were recorded.

    Returns
    -------
    RunResult or None
        ``status``, ``started_at``, ``duration``, ``run_id`` and ``store`` of the past run; per
        task its last attempt: status, output, error (with its traceback), log, start time,
        duration, fingerprint and ``skipped_because``. A run that never recorded its end (its
        process died) has status ``running``.

    Raises
    ------
    LookupError
        When ``run_id`` is a prefix of several runs' ids.
    """
    found = store.find_run(run_id)
    if found is None:
        return None
    last: dict[str, TaskRow] = {}
    for row in store.task_runs(found.run_id):
        last[row.task] = row  # the last attempt of each task counts
    order = list(last)
    if state is not None:
        declared = [t.name for t in state.tasks]
        order = [n for n in declared if n in last] + [n for n in order if n not in declared]
    task_runs = {name: _task_run(last[name], state) for name in order}
    duration = None
    if found.started is not None and found.ended is not None:
        duration = found.ended - found.started
    return RunResult(
        found.state,
        task_runs,
        status=_run_status(found.status),
        started_at=(
            datetime.fromtimestamp(found.started).astimezone()
            if found.started is not None
            else None
        ),
        duration=duration,
        run_id=found.run_id,
        store=store,
    )


def _run_status(text: str) -> RunStatus:
    try:
        return RunStatus(text)
    except ValueError:  # a status this version does not know: the run did not succeed
        return RunStatus.FAILED


def _task_run(row: TaskRow, state: State | None) -> TaskRun:
    try:
        status = TaskStatus(row.status)
    except ValueError:
        status = TaskStatus.FAILED
    tr = TaskRun(row.task, status, start_time=row.start, duration=row.duration, log=row.log)
    tr.fingerprint = row.fingerprint
    if row.output_json is not None:
        tr.output = _output(row, state)
    if status is TaskStatus.SKIPPED:
        tr.skipped_because = _skipped_because(row.error)
    elif row.error:
        tr.error = parse_error(row.error)
    return tr


def _output(row: TaskRow, state: State | None) -> BaseModel | None:
    schema: Any = MergedInput
    if state is not None and row.task in state:
        declared = state.get(row.task).executor
        if declared is not None and declared.output_schema is not None:
            if not is_any_model(declared.output_schema):
                schema = declared.output_schema
    text = row.output_json
    assert text is not None
    for model in (schema, MergedInput):  # the current model, else the fields as they were
        try:
            output: BaseModel = model.model_validate_json(text)
            return output
        except Exception:  # noqa: S112 - a past output that no longer fits the model
            continue
    return None


def parse_error(text: str) -> TaskError:
    r"""A stored error text (``type: message``, a blank line, the traceback) as a TaskError.

    Examples
    --------
    >>> error = parse_error("ValueError: boom\n\nTraceback (most recent call last):\n  ...")
    >>> error.type, error.message, error.traceback.splitlines()[0]
    ('ValueError', 'boom', 'Traceback (most recent call last):')
    >>> parse_error("a note without a type").message
    'a note without a type'
    """
    head, traceback = text, ""
    at = text.find(_TRACEBACK)
    if at >= 0:
        head, traceback = text[:at], text[at + 2 :]
    kind, sep, message = head.partition(": ")
    if not sep or not kind.replace(".", "").replace("_", "").isalnum():
        kind, message = "", head
    return TaskError(kind, message, traceback)


def _skipped_because(text: str) -> str | None:
    """``'count'`` of the stored note ``skipped: 'count' failed``."""
    prefix = "skipped: '"
    if text.startswith(prefix) and text.endswith("' failed"):
        return text[len(prefix) : -len("' failed")]
    return None
