"""Conditions and transitions: ``@state.condition()`` and ``(state & condition) >> other``.

As in the seed, each condition is also a task (``transition_conditions.<name>_executor``)
that ``State.build()`` places in the state's last phase, after every sink task: the engine runs
it like any task (async awaited, ``Depends`` resolved once per run) and its output is a
:class:`ConditionResult`.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import keyword
import re
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from germinate_nb.core.executor import (
    TaskExecutor,
    dependency_values,
    executor_name_for,
    input_parameter,
    run_coroutine,
)
from germinate_nb.core.schema import MergedInput, is_any_model, is_model, resolve_type_hints
from germinate_nb.core.task import TaskDefinition
from germinate_nb.errors import DeclarationError

if TYPE_CHECKING:
    from germinate_nb.core.state import State

__all__ = [
    "CONDITIONS_NAMESPACE",
    "Condition",
    "ConditionExecutor",
    "ConditionResult",
    "Transition",
    "condition_task_name",
]

CONDITIONS_NAMESPACE = "transition_conditions"
"""The seed's registry namespace of condition executors."""


class ConditionResult(BaseModel):
    """The output of a condition task: does the condition hold on the state's output?"""

    holds: bool

    @property
    def condition_evaluation(self) -> bool:
        """The seed's name of :attr:`holds` (its ``ConditionOutputSchema`` field)."""
        return self.holds


def condition_task_name(name: str) -> str:
    """Name of the task that evaluates condition ``name``: the name itself when it is an identifier.

    Other names (conditions may be called anything) become identifiers.

    Examples
    --------
    >>> condition_task_name("needs_review"), condition_task_name("$x$ < 1")
    ('needs_review', '_x____1')
    """
    if isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name):
        return name
    text = re.sub(r"\W", "_", str(name), flags=re.ASCII) or "condition"
    if text[0].isdigit() or keyword.iskeyword(text):
        text = f"_{text}"
    return text


def is_async_callable(func: Any) -> bool:
    """Does calling ``func`` return a coroutine (an ``async def``, a partial or callable of one)?"""
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - an object whose __call__ is async
    return inspect.iscoroutinefunction(call)


def _wants_dict(annotation: Any) -> bool:
    """Is a condition's input annotated as a mapping (it then gets the output as a dict)?"""
    origin = typing.get_origin(annotation) or annotation
    return origin in (dict, collections.abc.Mapping, typing.Mapping)


def _holds(name: str, value: Any) -> ConditionResult:
    """A condition's return value as a :class:`ConditionResult` (its truth value)."""
    if isinstance(value, ConditionResult):
        return value
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()
        msg = (
            f"condition '{name}' returned an awaitable instead of a bool. Declare it "
            f"`async def {name}(...)` so it is awaited."
        )
        raise TypeError(msg)
    return ConditionResult(holds=bool(value))


def _as_dicts(args: tuple[Any, ...], kwargs: dict[str, Any], param: str) -> tuple[Any, ...]:
    """Give a mapping-annotated input parameter the output as a dict."""
    if param in kwargs and isinstance(kwargs[param], BaseModel):
        kwargs[param] = kwargs[param].model_dump()
    elif args and isinstance(args[0], BaseModel):
        args = (args[0].model_dump(), *args[1:])
    return args


def _evaluator(
    func: Callable[..., Any], name: str, param: str | None, wants_dict: bool
) -> Callable[..., Any]:
    """The task callable of a condition: calls ``func`` and returns a :class:`ConditionResult`.

    It carries ``func``'s signature (``__wrapped__``), so the engine binds the input and the
    ``Depends`` parameters of the condition itself.
    """
    convert = wants_dict and param is not None
    if is_async_callable(func):

        @functools.wraps(func)
        async def evaluate_async(*args: Any, **kwargs: Any) -> ConditionResult:
            if convert:
                args = _as_dicts(args, kwargs, param)  # type: ignore[arg-type]
            return _holds(name, await func(*args, **kwargs))

        return evaluate_async

    @functools.wraps(func)
    def evaluate(*args: Any, **kwargs: Any) -> ConditionResult:
        if convert:
            args = _as_dicts(args, kwargs, param)  # type: ignore[arg-type]
        return _holds(name, func(*args, **kwargs))

    return evaluate


class ConditionExecutor(TaskExecutor):
    """The executor of a condition's task: ``kind == "condition"``, output ``ConditionResult``.

    ``condition_name`` names the condition (look it up with ``state.get_condition(name)``);
    ``func`` is the user's predicate. The executor holds no reference to the state, so it
    pickles for remote backends.
    """

    kind = "condition"

    def __init__(
        self,
        condition_name: str,
        func: Callable[..., Any],
        *,
        task_name: str,
        namespace: str = CONDITIONS_NAMESPACE,
    ) -> None:
        param = input_parameter(func)
        annotation = _input_annotation(func, param, condition_name)
        if param is None:
            input_schema: type[BaseModel] | None = None
        elif is_model(annotation):
            input_schema = annotation
        else:  # unannotated, a mapping or another type: the merged output of the sinks
            input_schema = BaseModel
        super().__init__(
            executor_name_for(task_name),
            _evaluator(func, condition_name, param, _wants_dict(annotation)),
            input_schema=input_schema,
            output_schema=ConditionResult,
            namespace=namespace,
        )
        self.condition_name = condition_name
        self.func = func
        self.annotation = annotation


def _input_annotation(func: Callable[..., Any], param: str | None, name: str) -> Any:
    if param is None:
        return None
    target: Any = func
    if isinstance(func, functools.partial):
        target = func.func
    elif not inspect.isroutine(func) and not isinstance(func, type):
        target = getattr(type(func), "__call__", func)  # noqa: B004 - a callable object
    try:
        hints = resolve_type_hints(target)
    except Exception as err:
        msg = (
            f"cannot resolve the annotations of condition '{name}': {type(err).__name__}: "
            f"{err}. Define the models before the condition, at module or notebook level."
        )
        raise DeclarationError(msg, task=name) from None
    return hints.get(param)


class Condition:
    """A named predicate over a state's output, used to pick the next state.

    Made by ``@state.condition()``. ``task`` is the task that evaluates it once the state is
    built (``state.build()``, done by ``run_workflow``); ``executor`` its
    :class:`ConditionExecutor`; ``transition`` the :class:`Transition` it guards (None until
    ``(state & condition) >> other``).

    Calling a condition evaluates it directly: ``condition(output)``.
    """

    def __init__(
        self,
        name: str,
        func: Callable[..., Any],
        state: State | None = None,
        *,
        namespace: str = CONDITIONS_NAMESPACE,
    ) -> None:
        self.name = name
        self.state = state
        self.transition: Transition | None = None
        self.task = TaskDefinition(condition_task_name(name), state=state)
        self.func: Callable[..., Any] = func
        self.executor: ConditionExecutor = self._make_executor(func, namespace)
        self.task.executor = self.executor

    def _make_executor(self, func: Callable[..., Any], namespace: str) -> ConditionExecutor:
        if not callable(func):
            where = f"@{self.state.name}.condition()" if self.state else "Condition()"
            msg = f"{where} decorates functions, not {type(func).__name__}."
            raise DeclarationError(msg, task=str(self.name))
        return ConditionExecutor(self.name, func, task_name=self.task.name, namespace=namespace)

    @property
    def namespace(self) -> str:
        """Registry namespace of the condition's executor."""
        return self.executor.namespace

    @property
    def registered_name(self) -> str:
        """``"transition_conditions.<name>_executor"``: where the registry finds the executor."""
        return self.executor.registered_name

    def is_async(self) -> bool:
        """Is the predicate an ``async def``?"""
        return self.executor.is_async()

    def _call(self, output: Any) -> Any:
        """Call the predicate on ``output`` with fresh ``Depends`` values; may be a coroutine."""
        func = self.func
        executor = self.executor
        param = executor.input_param
        kwargs = dependency_values(func)
        if param is None:
            return func(**kwargs)
        annotation = executor.annotation
        if is_model(annotation) and not is_any_model(annotation):
            data = output.model_dump() if isinstance(output, BaseModel) else output
            output = annotation.model_validate(data)
        elif is_any_model(annotation):
            data = output.model_dump() if isinstance(output, BaseModel) else output
            output = MergedInput.model_validate(data)
        elif _wants_dict(annotation) and isinstance(output, BaseModel):
            output = output.model_dump()
        if executor._positional:
            return func(output, **kwargs)
        kwargs[param] = output
        return func(**kwargs)

    def __call__(self, output: Any = None) -> bool:
        """Evaluate the condition on a state's output (validated into its annotated model).

        An ``async`` condition is awaited: with no event loop running in this thread, on a
        fresh one; inside a running loop (a notebook cell is one), on a fresh loop in a helper
        thread while this thread waits. Use ``await condition.acall(output)`` to evaluate it
        on the running loop instead.
        """
        value = self._call(output)
        if inspect.iscoroutine(value):
            value = run_coroutine(value)
        return _holds(self.name, value).holds

    async def acall(self, output: Any = None) -> bool:
        """Evaluate the condition on the running event loop (the async twin of calling it)."""
        value = self._call(output)
        if inspect.isawaitable(value):
            value = await value
        return _holds(self.name, value).holds

    def __repr__(self) -> str:
        state = f"{self.state.name}." if self.state else ""
        return f"<Condition: {state}{self.name}>"


class Transition:
    """An edge of a workflow's state machine: ``(source & condition) >> target``.

    ``state & condition`` makes the transition (``target`` still None, ``is_valid()`` False);
    ``>> target`` completes it, links it to the condition (``condition.transition``) and
    returns it. A condition guards one transition: a new one replaces the old.
    """

    def __init__(
        self,
        source: State | None = None,
        condition: Condition | None = None,
        target: State | None = None,
    ) -> None:
        self._source = source
        self._condition = condition
        self._target = target
        if self.is_valid():
            self._link()

    # Typed as complete: a transition is seen incomplete only between ``state & condition``
    # and ``>> target`` (``is_valid()`` tells); ``state.transitions`` lists complete ones.

    @property
    def source(self) -> State:
        """The state the transition leaves."""
        return self._source  # type: ignore[return-value]

    @property
    def condition(self) -> Condition:
        """The condition that must hold."""
        return self._condition  # type: ignore[return-value]

    @property
    def target(self) -> State:
        """The state the transition enters (None until ``>> target``)."""
        return self._target  # type: ignore[return-value]

    def is_valid(self) -> bool:
        """Does the transition have a source, a condition and a target?"""
        return self._source is not None and self._condition is not None and self._target is not None

    def __rshift__(self, target: State) -> Transition:
        from germinate_nb.core.state import State

        if not isinstance(target, State):
            source = self._source.name if self._source is not None else "?"
            cond = self._condition.name if self._condition is not None else "?"
            msg = f"({source} & {cond}) >> needs a State on the right, got {type(target).__name__}."
            raise DeclarationError(msg)
        self._target = target
        if self.is_valid():
            self._link()
        return self

    def _link(self) -> None:
        condition = self._condition
        assert condition is not None
        condition.transition = self
        source = self._source
        if source is not None:
            source._touch(None, "transition")

    def __repr__(self) -> str:
        def name(obj: Any) -> str:
            return obj.name if obj is not None else "?"

        return (
            f"<Transition: {name(self._source)} -[{name(self._condition)}]-> {name(self._target)}>"
        )
