"""The life of one task on any backend: input, reuse, the call, the output; never raises.

Any exception of any class met on the way (a ``SystemExit`` from the task, a validator raising
``TypeError``, a serializer failing, an exception whose ``__str__`` raises) becomes an ``error``
outcome for that task alone. Only two things pass through: ``KeyboardInterrupt`` when the task
runs inline in the main thread (it is the user's Ctrl-C, which cancels the run) and the
``CancelledError`` of an async task the run itself cancelled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import CoroutineType
from typing import Any

from pydantic import BaseModel

from germinate_nb.core.executor import run_coroutine
from germinate_nb.core.schema import MergedInput, is_any_model
from germinate_nb.errors import MergeConflictError, TaskCancelledError, TaskInputError
from germinate_nb.execution.backend import Job, Outcome
from germinate_nb.execution.cache import UNHASHABLE
from germinate_nb.execution.dataflow import build_input, coerce_output, dump_output, merge_dumps
from germinate_nb.execution.logs import _ROUTE, flush_echo
from germinate_nb.execution.result import TaskError
from germinate_nb.execution.tracebacks import (
    format_full_traceback,
    format_user_traceback,
    safe_str,
)

__all__ = ["aexecute", "describe_error", "execute"]

_NOTHING: tuple[type[BaseException], ...] = ()
_NEVER_RETRIED = (TaskInputError, MergeConflictError, TaskCancelledError)
"""Errors no retry can cure: the task's input is wrong, or the run stopped it."""


def is_retryable(job: Job, err: BaseException) -> bool:
    """May a failed attempt with this error be retried (the job has retries left)?"""
    retry_on = job.retry_on
    return (
        retry_on is not None
        and isinstance(err, Exception)
        and isinstance(err, retry_on)
        and not isinstance(err, _NEVER_RETRIED)
    )


EPOCH_OFFSET = time.time() - time.perf_counter()
"""``perf_counter() + EPOCH_OFFSET`` is the wall-clock time, without a second clock read."""


def describe_error(err: BaseException, *, with_traceback: bool = True) -> TaskError:
    """Describe an exception for ``TaskRun.error``; never raises.

    ``traceback`` shows the user's frames first (germinate_nb's own frames hidden, with a note
    saying how many), ``full_traceback`` everything.
    """
    if not with_traceback:
        return TaskError(type(err).__name__, safe_str(err))
    return TaskError(
        type(err).__name__,
        safe_str(err),
        format_user_traceback(err),
        format_full_traceback(err),
    )


def _prepare(job: Job) -> tuple[BaseModel | None, Any]:
    """The validated input and its reuse key.

    The reuse key is the input data itself when the input model is plain data (then equal
    data always validates to an equal input), else the validated input's dump: either way a
    value the user never holds, so mutating a result cannot change it.
    """
    executor = job.executor
    parents = job.parents
    if parents:
        inputs = job.inputs
        assert inputs is not None
        if len(parents) == 1:  # its dump as it is: the engine's own, never handed to the user
            data = inputs[parents[0]]
        else:
            data = merge_dumps(job.name, job.state, parents, inputs)
    else:
        data = job.run_input or {}
    if executor._plain_input:  # the common case, without the wrapping of build_input
        try:
            return executor.input_schema.__pydantic_validator__.validate_python(data), data  # type: ignore[union-attr]
        except Exception:
            pass  # build_input explains it
    model = build_input(executor, job.name, job.state, data, job.parents)
    if model is None:
        return None, None
    try:
        return model, model.__pydantic_serializer__.to_python(model)
    except Exception:  # an input that cannot be dumped is simply never reused
        return model, UNHASHABLE


def _reuse(job: Job, model: BaseModel | None, key: Any) -> Outcome | None:
    """A ``cached`` outcome when this code already ran on this input: in memory, else stored.

    The in-memory entry is the task's last successful run; on a miss the run store (if the
    job has one) is asked for any run with this fingerprint and input.
    """
    cached = job.cached
    if cached is not None and cached.matches(job.executor.fingerprint, key):
        output = cached.rebuild()
        if output is not None:
            return Outcome(
                job.name,
                "cached",
                output=output,
                dump=cached.output_dump,
                input=model,
                input_dump=key,
                fingerprint=cached.fingerprint,
            )
    if job.store is not None and key is not UNHASHABLE:
        return _reuse_stored(job, model, key)
    return None


def _reuse_stored(job: Job, model: BaseModel | None, key: Any) -> Outcome | None:
    """A ``cached`` outcome from the run store, its JSON validated into the current model.

    A stored output that no longer validates (or anything else going wrong) is a miss: the
    task runs. An "any" output model is rebuilt as a :class:`MergedInput`.
    """
    executor = job.executor
    fingerprint = executor.fingerprint
    lookup = job.store
    assert lookup is not None
    try:
        text = lookup.lookup(job.name, fingerprint, key)
        if text is None:
            return None
        schema = executor.output_schema
        if schema is None or is_any_model(schema):
            schema = MergedInput
        output: BaseModel = schema.__pydantic_validator__.validate_json(text)
        dump = output.__pydantic_serializer__.to_python(output)
    except Exception:  # never an error: the task simply runs
        return None
    return Outcome(
        job.name,
        "cached",
        output=output,
        dump=dump,
        input=model,
        input_dump=key,
        fingerprint=fingerprint,
        from_store=True,
    )


def _output(job: Job, value: Any) -> tuple[BaseModel, dict[str, Any]]:
    """The task's return value as its output model, and that model's dump."""
    executor = job.executor
    if type(value) is executor.output_schema:
        try:
            return value, value.__pydantic_serializer__.to_python(value)
        except Exception:
            pass  # dump_output explains it
    output = coerce_output(executor, job.name, job.state, value)
    return output, dump_output(output, job.name, job.state)


def execute(
    job: Job, lane: str = "", passthrough: tuple[type[BaseException], ...] = _NOTHING
) -> Outcome:
    """Run a sync task's whole life in this thread; exceptions in ``passthrough`` propagate."""
    t0 = job.started = time.perf_counter()
    start = t0 + EPOCH_OFFSET
    job.lane = lane
    executor = job.executor
    token = _ROUTE.set(job)
    model = key = None
    try:
        model, key = _prepare(job)
        if job.cached is not None or job.store is not None:
            hit = _reuse(job, model, key)
            if hit is not None:
                hit.start, hit.lane, hit.attempt = start, lane, job.attempt
                return hit
        value = executor.callable(model) if executor._direct else executor.invoke(model, job.deps)
        if type(value) is CoroutineType:  # a sync wrapper around an async def returned it
            value = run_coroutine(value)
        output, dump = _output(job, value)
    except passthrough:
        raise
    except BaseException as err:  # noqa: BLE001 - any exception fails this task only
        error = describe_error(err)
        return Outcome(
            job.name, "error", None, None, model, None, error, start,
            time.perf_counter() - t0, lane, executor.fingerprint, None, job.log_text,
            False, job.attempt, job.retry_on is not None and is_retryable(job, err),
        )  # fmt: skip
    finally:
        if job.timeout is not None:  # what the run's timeout looks at
            job.ended = time.perf_counter()
        _ROUTE.reset(token)
        if job.echo_tails:
            flush_echo(job, end=True)
    return Outcome(
        job.name, "ok", output, dump, model, key, None, start,
        time.perf_counter() - t0, lane, executor.fingerprint,
        None, job._log.text if job._log is not None else "", False, job.attempt,
    )  # fmt: skip


async def aexecute(
    job: Job, lane: str = "event loop", then: Callable[[Outcome], None] | None = None
) -> Outcome:
    """Run an async task's whole life on the running loop; ``then(outcome)`` is called last.

    The ``CancelledError`` of a task cancelled by its run propagates (``then`` is not called);
    one that escapes the task's own code while the run goes on (an inner future was cancelled)
    fails the task.
    """
    t0 = job.started = time.perf_counter()
    start = t0 + EPOCH_OFFSET
    job.lane = lane
    executor = job.executor
    _ROUTE.set(job)  # each asyncio task runs in its own copy of the context
    model = key = None
    try:
        model, key = _prepare(job)
        reusable = job.cached is not None or job.store is not None
        outcome = _reuse(job, model, key) if reusable else None
        if outcome is not None:
            outcome.start, outcome.lane = start, lane
        else:
            if executor._direct:
                value = await executor.callable(model)
            else:
                value = await executor.invoke(model, job.deps)
            output, dump = _output(job, value)
            outcome = Outcome(
                job.name, "ok", output, dump, model, key, None, start,
                time.perf_counter() - t0, lane, executor.fingerprint,
                None, "", False, job.attempt,
            )  # fmt: skip
    except asyncio.CancelledError as err:
        if job.cancel.is_set():
            raise
        error = describe_error(err)
        error.message = error.message or (
            "a CancelledError escaped from the task (an awaited future was cancelled) while "
            "the run was not cancelled"
        )
        outcome = Outcome(
            job.name, "error", None, None, model, None, error, start,
            time.perf_counter() - t0, lane, executor.fingerprint,
        )  # fmt: skip
    except BaseException as err:  # noqa: BLE001 - any exception fails this task only
        outcome = Outcome(
            job.name, "error", None, None, model, None, describe_error(err), start,
            time.perf_counter() - t0, lane, executor.fingerprint,
        )  # fmt: skip
        outcome.retryable = is_retryable(job, err)
    finally:
        if job.timeout is not None:  # what the run's timeout looks at
            job.ended = time.perf_counter()
        if job.echo_tails:
            flush_echo(job, end=True)
    outcome.attempt = job.attempt
    if job._log is not None:
        outcome.log = job._log.text
    if then is not None:
        then(outcome)
    return outcome
