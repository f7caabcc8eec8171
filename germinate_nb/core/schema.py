"""Input/output models from a task function's annotations, and field type compatibility."""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from germinate_nb.core.executor import input_parameter
from germinate_nb.errors import DeclarationError

__all__ = [
    "MergedInput",
    "get_io_schemas",
    "is_any_model",
    "is_compatible",
    "is_model",
    "is_plain_model",
    "resolve_type_hints",
    "type_name",
]


class MergedInput(BaseModel):
    """Input of a task declared without an input model: the merged parent outputs as attributes.

    Examples
    --------
    >>> m = MergedInput.model_validate({"tokens": ["a", "b"]})
    >>> m.tokens
    ['a', 'b']
    """

    model_config = ConfigDict(extra="allow", frozen=False)


def is_model(obj: Any) -> bool:
    """Is ``obj`` a pydantic model class?"""
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def is_any_model(obj: Any) -> bool:
    """Does a schema accept any fields (``BaseModel`` itself, as in the seed, or MergedInput)?

    As an input schema, the task receives a model carrying the merged parent outputs (or the
    run input) as attributes; as an output schema, any model instance or dict is accepted.
    """
    return obj is BaseModel or obj is MergedInput


_PLAIN_TYPES = frozenset((str, int, float, bool, bytes, type(None)))
_PLAIN_ORIGINS = frozenset((list, dict, tuple, set, frozenset, typing.Union, types.UnionType))


@functools.lru_cache(maxsize=4096)
def is_plain_model(model: type[BaseModel]) -> bool:
    """Is validating into ``model`` a pure function of the data and the model's JSON schema?

    True for models whose fields are plain data (str, int, float, bool, bytes, None, and
    lists, dicts, tuples, sets, unions and literals of those) with no validators, no
    constraints and no default factories. Then two equal inputs always validate to equal
    models, so the input data itself can key the reuse cache without dumping the model.

    Examples
    --------
    >>> class P(BaseModel):
    ...     x: int = 0
    ...     tags: list[str] = []
    >>> is_plain_model(P)
    True
    """
    decorators = model.__pydantic_decorators__
    if (
        decorators.validators
        or decorators.field_validators
        or decorators.root_validators
        or decorators.model_validators
    ):
        return False
    for info in model.model_fields.values():
        if info.default_factory is not None or info.metadata or not _is_plain(info.annotation):
            return False
    return True


def _is_plain(tp: Any) -> bool:
    if tp in _PLAIN_TYPES:
        return True
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return all(type(a) in _PLAIN_TYPES for a in typing.get_args(tp))
    if origin in _PLAIN_ORIGINS:
        return all(a is Ellipsis or _is_plain(a) for a in typing.get_args(tp))
    return False


def get_io_schemas(
    func: Callable[..., Any], *, task: str | None = None
) -> tuple[type[BaseModel] | None, type[BaseModel]]:
    """Return the input and output models of a task function from its annotations.

    The input is the parameter named ``input`` (else the first parameter that is not a
    ``Depends``); a function without such a parameter takes no input (``None``). An input
    parameter without annotation gets ``BaseModel``, as in the seed: the task receives any
    fields (the merged parent outputs, or the run input) as attributes.

    Raises
    ------
    DeclarationError
        When the return annotation is missing or is not a pydantic model, or the input
        annotation is not a pydantic model.

    Examples
    --------
    >>> from pydantic import BaseModel
    >>> class Q(BaseModel):
    ...     text: str
    >>> def echo(input: Q) -> Q:
    ...     return input
    >>> get_io_schemas(echo)
    (<class 'germinate_nb.core.schema.Q'>, <class 'germinate_nb.core.schema.Q'>)
    """
    name = task or getattr(func, "__name__", repr(func))
    param = input_parameter(func)
    try:
        hints = resolve_type_hints(func)
    except Exception as err:
        msg = (
            f"cannot resolve the annotations of task '{name}': {type(err).__name__}: {err}. "
            "Define the models before the task, at module or notebook level."
        )
        raise DeclarationError(msg, task=name) from None
    if "return" not in hints:
        msg = (
            f"task '{name}' has no return annotation. Annotate it with the pydantic model it "
            f"returns, e.g. `def {name}(input: In) -> Out:`."
        )
        raise DeclarationError(msg, task=name)
    output = hints["return"]
    if not is_model(output):
        msg = (
            f"task '{name}' returns {type_name(output)}, not a pydantic model. "
            "Annotate the return with a BaseModel subclass (wrap plain values in a model)."
        )
        raise DeclarationError(msg, task=name)
    input_schema: type[BaseModel] | None = None
    if param is not None:
        annotation = hints.get(param, BaseModel)
        if not is_model(annotation):
            msg = (
                f"task '{name}' takes '{param}: {type_name(annotation)}', not a pydantic model. "
                "Annotate the input with a BaseModel subclass."
            )
            raise DeclarationError(msg, task=name)
        input_schema = annotation
    return input_schema, output


def resolve_type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """``get_type_hints``, retried with the declaring scope's locals for string annotations.

    With ``from __future__ import annotations``, a model defined inside a function is only a
    name; the scope that applies the decorator (the first frame outside germinate_nb) has it.
    """
    try:
        return typing.get_type_hints(func)
    except NameError:
        frame = inspect.currentframe()
        while frame is not None and frame.f_globals.get("__name__", "").startswith("germinate_nb"):
            frame = frame.f_back
        if frame is None:
            raise
        try:
            return typing.get_type_hints(func, localns=dict(frame.f_locals))
        finally:
            del frame


def type_name(tp: Any) -> str:
    """Readable name of an annotation: ``list[str]``, ``int | None``, ``Tokens``."""
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    text = repr(tp).replace("typing.", "")
    return text


_NUMERIC_WIDENING = {(int, float), (bool, int), (int, complex), (float, complex)}


def is_compatible(source: Any, target: Any) -> bool:
    """Can a value declared as ``source`` be validated into a field declared as ``target``?

    Conservative: answers False only when the two types clearly cannot meet.

    Examples
    --------
    >>> is_compatible(list[str], list[str]), is_compatible(int, float)
    (True, True)
    >>> is_compatible(str, list[str])
    False
    >>> is_compatible(int, int | None)
    True
    """
    if source == target or target is Any or source is Any or object in (source, target):
        return True
    if (source, target) in _NUMERIC_WIDENING:
        return True
    t_origin, s_origin = typing.get_origin(target), typing.get_origin(source)
    if t_origin in (typing.Union, types.UnionType):
        return any(is_compatible(source, arg) for arg in typing.get_args(target))
    if s_origin in (typing.Union, types.UnionType):
        return all(
            is_compatible(arg, target) for arg in typing.get_args(source) if arg is not type(None)
        )
    if t_origin is typing.Literal or s_origin is typing.Literal:
        return True
    if t_origin is typing.Annotated:
        return is_compatible(source, typing.get_args(target)[0])
    if s_origin is typing.Annotated:
        return is_compatible(typing.get_args(source)[0], target)
    if t_origin is not None or s_origin is not None:
        s_base, t_base = s_origin or source, t_origin or target
        if not (isinstance(s_base, type) and isinstance(t_base, type)):
            return True
        if not _is_subclass(s_base, t_base):
            return False
        s_args, t_args = typing.get_args(source), typing.get_args(target)
        if not s_args or not t_args or len(s_args) != len(t_args):
            return True
        return all(is_compatible(s, t) for s, t in zip(s_args, t_args, strict=True))
    if isinstance(source, type) and isinstance(target, type):
        if is_model(source) and is_model(target):
            return True  # validated field by field at run time
        return _is_subclass(source, target)
    return True


def _is_subclass(source: type, target: type) -> bool:
    try:
        return issubclass(source, target)
    except TypeError:
        return True
