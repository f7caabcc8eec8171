"""Where task code runs locally: the thread pool for sync tasks, an event loop for async ones."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from germinate_nb.core.executor import DependencyCache
from germinate_nb.core.task import TaskDefinition
from germinate_nb.execution.dataflow import coerce_output
from germinate_nb.execution.result import TaskError

__all__ = ["DEFAULT_MAX_WORKERS", "LoopThread", "Outcome", "call_async", "call_sync", "task_error"]

DEFAULT_MAX_WORKERS = 32
"""Thread pool size when ``max_workers`` is not given: tasks are usually IO-bound."""

# ("ok", output model, seconds) or ("error", TaskError, seconds)
Outcome = tuple[str, Any, float]


def task_error(err: BaseException, *, with_traceback: bool = True) -> TaskError:
    """Describe an exception for ``TaskRun.error``."""
    tb = "".join(traceback.format_exception(err)) if with_traceback else ""
    return TaskError(type(err).__name__, str(err), tb)


def call_sync(
    task: TaskDefinition, state: str, input: BaseModel | None, deps: DependencyCache
) -> Outcome:
    """Run a sync task and validate its output; never raises an ``Exception``."""
    t0 = time.perf_counter()
    assert task.executor is not None
    try:
        value = task.executor.invoke(input, deps)
        output = coerce_output(task, state, value)
    except Exception as err:
        return ("error", task_error(err), time.perf_counter() - t0)
    return ("ok", output, time.perf_counter() - t0)


async def call_async(
    task: TaskDefinition, state: str, input: BaseModel | None, deps: DependencyCache
) -> Outcome:
    """Run an async task and validate its output; cancellation propagates."""
    t0 = time.perf_counter()
    assert task.executor is not None
    try:
        value = await task.executor.invoke(input, deps)
        output = coerce_output(task, state, value)
    except Exception as err:
        return ("error", task_error(err), time.perf_counter() - t0)
    return ("ok", output, time.perf_counter() - t0)


class LoopThread:
    """An event loop running in its own daemon thread, for one run's async tasks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name="germinate-async", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        """Schedule a coroutine on the loop."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = 2.0) -> None:
        """Cancel what is left on the loop, then stop it."""

        async def _cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        if self.loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(_cancel_rest(), self.loop).result(timeout)
        except Exception:  # a task that refuses to die: stop the loop anyway
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)


def on_done(
    callback: Callable[[concurrent.futures.Future[Any]], None],
) -> Callable[[concurrent.futures.Future[Any]], None]:
    """Wrap a done-callback so a cancelled future is ignored."""

    def wrapped(fut: concurrent.futures.Future[Any]) -> None:
        if not fut.cancelled():
            callback(fut)

    return wrapped
