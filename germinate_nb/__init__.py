"""germinate_nb: declare, see, check and run a DAG of typed Python tasks in a Jupyter notebook.

Importing the package loads the task model and the engine only; IPython, ipywidgets,
matplotlib and dask are imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from germinate_nb.core.executor import (
    BaseTaskExecutor,
    Depends,
    TaskExecutor,
    resolve_dependencies,
    resolve_dependencies_wrapper,
)
from germinate_nb.core.options import TaskOptions
from germinate_nb.core.registry import TaskKey, TaskRegistry, use_registry
from germinate_nb.core.schema import get_io_schemas
from germinate_nb.core.snapshot import DagSnapshot
from germinate_nb.core.state import (
    Condition,
    ConditionResult,
    State,
    Transition,
    task_decorator_factory,
)
from germinate_nb.core.task import TaskDefinition
from germinate_nb.core.validate import Problem, validate
from germinate_nb.core.workflow import Workflow
from germinate_nb.errors import (
    DagCycleError,
    DagValidationError,
    DeclarationError,
    GerminateError,
    MergeConflictError,
    NestedRunError,
    RegistryCollisionError,
    RunFailedError,
    SchemaMismatchError,
    TaskCancelledError,
    TaskInputError,
    TaskOutputError,
    TaskTimeoutError,
    UnknownExecutorError,
    UnknownTaskError,
    WorkflowLimitError,
)
from germinate_nb.execution.backend import Backend
from germinate_nb.execution.cache import clear_cache
from germinate_nb.execution.context import TaskContext, current_task
from germinate_nb.execution.events import RunObserver
from germinate_nb.execution.local import LocalBackend
from germinate_nb.execution.result import Attempt, RunResult, RunStatus, TaskRun, TaskStatus
from germinate_nb.execution.runner import RunHandle, arun, run, start_run
from germinate_nb.execution.schedule import Schedule
from germinate_nb.execution.store import (
    RunStore,
    StoreError,
    StoreWarning,
    resolve_store,
    set_default_store,
)
from germinate_nb.execution.workflows import WorkflowResult, run_workflow
from germinate_nb.graph.build import build_tasks_dag, is_dag
from germinate_nb.graph.phases import topological_generations, toposort_tasks_phases

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from germinate_nb.execution.dask import DaskBackend, DaskExecutor
    from germinate_nb.notebook.entry import explore
    from germinate_nb.notebook.explorer import DagExplorer

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BaseTaskExecutor",
    "Condition",
    "ConditionResult",
    "DagCycleError",
    "DagExplorer",
    "DagSnapshot",
    "DaskBackend",
    "DaskExecutor",
    "DagValidationError",
    "DeclarationError",
    "Depends",
    "GerminateError",
    "LocalBackend",
    "MergeConflictError",
    "NestedRunError",
    "Problem",
    "RegistryCollisionError",
    "RunFailedError",
    "RunHandle",
    "RunObserver",
    "RunResult",
    "RunStatus",
    "RunStore",
    "Schedule",
    "SchemaMismatchError",
    "State",
    "StoreError",
    "StoreWarning",
    "TaskCancelledError",
    "TaskContext",
    "TaskDefinition",
    "TaskExecutor",
    "TaskInputError",
    "TaskKey",
    "TaskOutputError",
    "TaskRegistry",
    "TaskRun",
    "TaskOptions",
    "TaskTimeoutError",
    "Attempt",
    "TaskStatus",
    "Transition",
    "UnknownExecutorError",
    "UnknownTaskError",
    "Workflow",
    "WorkflowLimitError",
    "WorkflowResult",
    "__version__",
    "arun",
    "build_tasks_dag",
    "clear_cache",
    "current_task",
    "explore",
    "get_io_schemas",
    "is_dag",
    "load_ipython_extension",
    "resolve_dependencies",
    "resolve_dependencies_wrapper",
    "resolve_store",
    "run",
    "run_workflow",
    "set_default_store",
    "start_run",
    "task_decorator_factory",
    "topological_generations",
    "toposort_tasks_phases",
    "unload_ipython_extension",
    "use_registry",
    "validate",
]


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register the magics (``%load_ext germinate_nb``); loading twice is harmless."""
    from germinate_nb.notebook.magics import load

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """Remove what :func:`load_ipython_extension` added."""
    from germinate_nb.notebook.magics import unload

    unload(ipython)


_LAZY: dict[str, str] = {
    "explore": "germinate_nb.notebook.entry",
    "DagExplorer": "germinate_nb.notebook.explorer",
    "DaskBackend": "germinate_nb.execution.dask",
    "DaskExecutor": "germinate_nb.execution.dask",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    msg = f"module 'germinate_nb' has no attribute '{name}'"
    raise AttributeError(msg)
