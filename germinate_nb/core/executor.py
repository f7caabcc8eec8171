"""Task executors (the callables behind tasks) and FastAPI-style ``Depends`` injection."""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import functools
import hashlib
import inspect
import json
import linecache
import textwrap
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_json

from germinate_nb.core.options import OPTION_NAMES

__all__ = [
    "BaseTaskExecutor",
    "Depends",
    "TaskExecutor",
    "dependency_values",
    "executor_name_for",
    "resolve_dependencies",
    "resolve_dependencies_wrapper",
]


def executor_name_for(task_name: str) -> str:
    """The seed's executor naming: ``<task>_executor`` unless it already ends in ``executor``.

    Examples
    --------
    >>> executor_name_for("tokenize"), executor_name_for("my_executor")
    ('tokenize_executor', 'my_executor')
    """
    return task_name if task_name.endswith("executor") else f"{task_name}_executor"


class BaseTaskExecutor(ABC):
    """Base class for task executors.

    ``name`` is the name this executor is found under in the registry.
    """

    name: str

    @abstractmethod
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Execute the task."""


class Depends:
    """A parameter default that asks for a value made by ``factory(*args, **kwargs)``.

    Factories are resolved once per run and shared by all the tasks of that run that ask for
    the same factory with the same arguments (the seed cached them process-wide, forever).
    Calling a ``Depends`` (``Depends(factory)()``), as the seed allowed, calls the factory.

    Examples
    --------
    >>> def make_client(url="mem://"):
    ...     return {"url": url}
    >>> def task(input=None, client=Depends(make_client, "db://")):
    ...     return client
    >>> resolve_dependencies(task).arguments["client"]
    {'url': 'db://'}
    >>> Depends(make_client)()
    {'url': 'mem://'}
    """

    def __init__(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if not callable(factory):
            msg = f"Depends() needs a callable factory, got {factory!r}. Pass the function itself."
            raise TypeError(msg)
        self.factory = factory
        self.args = args
        self.kwargs = kwargs

    @property
    def key(self) -> Any:
        """Cache key: the factory with its arguments (identity when they are unhashable)."""
        try:
            key = (self.factory, self.args, tuple(sorted(self.kwargs.items())))
            hash(key)
        except TypeError:
            return ("id", id(self))
        return key

    def resolve(self) -> Any:
        """Call the factory."""
        return self.factory(*self.args, **self.kwargs)

    def __call__(self) -> Any:
        """Call the factory and return its value (the seed's spelling of :meth:`resolve`)."""
        return self.resolve()

    def __repr__(self) -> str:
        name = getattr(self.factory, "__qualname__", repr(self.factory))
        return f"Depends({name})"


class DependencyCache:
    """Values of ``Depends`` factories for one run; thread-safe, each factory called once.

    A factory that raises is not remembered: the next task asking for it calls it again.
    """

    def __init__(self) -> None:
        self._values: dict[Any, Any] = {}
        self._locks: dict[Any, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, dep: Depends) -> Any:
        """Return the factory's value, calling it on first use."""
        key = dep.key
        values = self._values
        if key in values:
            return values[key]
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one call per factory even when tasks on several threads ask at once
            if key in values:
                return values[key]
            value = dep.resolve()
            values[key] = value
            return value


def _parameters(func: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """The parameters of ``func`` in order, or None when it has no inspectable signature."""
    try:
        return list(inspect.signature(func).parameters.values())
    except Exception:  # builtins, and objects whose __signature__ is broken or raises
        return None


def _unfilled(params: list[inspect.Parameter] | None, input_param: str | None) -> list[str]:
    """Required parameters that the engine would leave empty (not the input, not Depends)."""
    return [
        p.name
        for p in params or ()
        if p.default is inspect.Parameter.empty
        and p.name != input_param
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to the end from synchronous code, even inside a running loop.

    What a sync task (or condition) returned as a coroutine, e.g. a sync ``functools.wraps``
    decorator around an ``async def``: its result is what the function meant to return.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="germinate-coro") as pool:
        return pool.submit(asyncio.run, coro).result()


def _dependencies_in(params: list[inspect.Parameter] | None) -> dict[str, Depends]:
    return {p.name: p.default for p in params or () if isinstance(p.default, Depends)}


def _input_in(params: list[inspect.Parameter] | None) -> str | None:
    names = [
        p.name
        for p in params or ()
        if not isinstance(p.default, Depends)
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if "input" in names:
        return "input"
    return names[0] if names else None


def _first_positional_in(params: list[inspect.Parameter] | None, name: str) -> bool:
    """Can ``name`` be passed as the first positional argument?"""
    first = params[0] if params else None
    return (
        first is not None
        and first.name == name
        and first.kind
        in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )


def dependency_parameters(func: Callable[..., Any]) -> dict[str, Depends]:
    """Return the parameters of ``func`` whose default is a ``Depends``."""
    return _dependencies_in(_parameters(func))


def input_parameter(func: Callable[..., Any]) -> str | None:
    """Name of the parameter that receives the task input, or None.

    The parameter called ``input``, else the first parameter that is not a ``Depends`` (the
    seed passed the input positionally, whatever its name).
    """
    return _input_in(_parameters(func))


_INFER: Any = object()


def dependency_values(
    func: Callable[..., Any], cache: DependencyCache | None = None
) -> dict[str, Any]:
    """Resolve the ``Depends`` parameters of ``func`` into keyword arguments.

    Parameters
    ----------
    func
        The task function.
    cache
        The run's cache; a fresh one when omitted.

    Returns
    -------
    dict
        Parameter name to resolved value.
    """
    cache = cache or DependencyCache()
    return {name: cache.get(dep) for name, dep in dependency_parameters(func).items()}


def resolve_dependencies(
    func: Callable[..., Any], *args: Any, **kwargs: Any
) -> inspect.BoundArguments:
    """Bind ``args`` and ``kwargs`` to ``func``, apply defaults and resolve every ``Depends``.

    The seed's signature and return value: call ``func(*bound.args, **bound.kwargs)``. Each
    ``Depends`` is resolved by calling its factory (the engine, instead, resolves them once
    per run).

    Raises
    ------
    TypeError
        When the arguments do not fit the signature of ``func``.

    Examples
    --------
    >>> def task(input, n=Depends(int, "7")):
    ...     return input, n
    >>> bound = resolve_dependencies(task, "in")
    >>> task(*bound.args, **bound.kwargs)
    ('in', 7)
    """
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    for name, value in bound.arguments.items():
        if isinstance(value, Depends):
            bound.arguments[name] = value()
    return bound


def resolve_dependencies_wrapper(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``func`` so each call binds its arguments and resolves its ``Depends`` (the seed's).

    An ``async def`` function gives an ``async def`` wrapper.

    Examples
    --------
    >>> def task(input, n=Depends(int, "7")):
    ...     return input, n
    >>> resolve_dependencies_wrapper(task)("in")
    ('in', 7)
    """
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            bound = resolve_dependencies(func, *args, **kwargs)
            return await func(*bound.args, **bound.kwargs)

        return awrapper

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = resolve_dependencies(func, *args, **kwargs)
        return func(*bound.args, **bound.kwargs)

    return wrapper


class TaskExecutor(BaseTaskExecutor):
    """Executes one task: the user's callable with its input and output schemas.

    Parameters
    ----------
    name
        Executor name (``<function>_executor`` when made by ``@state.task``).
    callable
        The user's function, sync or async.
    input_schema, output_schema
        Pydantic models; ``input_schema`` is None for a task that takes no input.
    namespace
        Registry namespace; ``registered_name`` is ``"<namespace>.<name>"``.
    source
        Source text used for display and fingerprints (defaults to the function's source).
    input_param
        The parameter that receives the task input: by default the one called ``input``, else
        the first parameter that is not a ``Depends`` (None: the function takes no input).

    ``kind`` is ``"task"`` (``"condition"`` for the executor of a state's condition).
    """

    kind: str = "task"

    def __init__(
        self,
        name: str,
        callable: Callable[..., Any],
        *,
        input_schema: type[BaseModel] | None = None,
        output_schema: type[BaseModel] | None = None,
        namespace: str = "custom_tasks",
        source: str | None = None,
        input_param: str | None = _INFER,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.input_schema = input_schema
        self.output_schema = output_schema
        self.callable = callable
        params = _parameters(callable)  # inspected once: the slowest part of declaring a task
        if input_param is _INFER:
            input_param = _input_in(params)
        self.input_param = input_param
        self._positional = input_param is not None and _first_positional_in(params, input_param)
        self._source = source
        self._dependencies = _dependencies_in(params)
        self._direct = self._positional and not self._dependencies  # callable(input) will do
        self._is_async = inspect.iscoroutinefunction(callable)
        unfilled = _unfilled(params, input_param)
        if unfilled:
            from germinate_nb.errors import DeclarationError  # errors imports nothing of ours

            given = f"its input '{input_param}' and " if input_param else ""
            function = getattr(callable, "__qualname__", name)
            msg = (
                f"task function '{function}' cannot be called by a run: parameter(s) "
                f"{', '.join(repr(n) for n in unfilled)} have no default, and a run passes only "
                f"{given}Depends(...) parameters. Give them a default or a Depends(...)."
            )
            raise DeclarationError(msg, task=name)
        self._fingerprint: str | None = None
        from germinate_nb.core.schema import is_plain_model  # schema imports this module

        # plain-data input: the engine may key reuse on the input data (see is_plain_model)
        self._plain_input = (
            input_schema is not None
            and input_schema is not BaseModel
            and is_plain_model(input_schema)
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function, resolving its ``Depends`` parameters afresh."""
        for name, dep in self._dependencies.items():
            if name not in kwargs:
                kwargs[name] = dep.resolve()
        return self.callable(*args, **kwargs)

    def invoke(self, input: BaseModel | None, cache: DependencyCache) -> Any:
        """Call the function the way the engine does: validated input plus this run's deps."""
        if not self._dependencies:
            if self._positional:
                return self.callable(input)
            if self.input_param is None:
                return self.callable()
            return self.callable(**{self.input_param: input})
        kwargs = {name: cache.get(dep) for name, dep in self._dependencies.items()}
        if self._positional:  # the input may be positional-only
            return self.callable(input, **kwargs)
        if self.input_param is not None:
            kwargs[self.input_param] = input
        return self.callable(**kwargs)

    def __hash__(self) -> int:
        return hash(f"{self.namespace}.{self.name}")

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        return f"<Task Executor: {self.name} >"

    def is_async(self) -> bool:
        """Is the underlying callable a coroutine function?"""
        return self._is_async

    @property
    def registered_name(self) -> str:
        """Name the task executor is registered under."""
        return f"{self.namespace}.{self.name}"

    @property
    def source(self) -> str:
        """Source text of the task (cell body or function source)."""
        if self._source is None:
            self._source = _function_source(self.callable)
        return self._source

    @property
    def fingerprint(self) -> str:
        """Hash of the task's code, schemas and namespace (computed once; never raises).

        Made only of text that is the same in every process (source, JSON schemas, names), so
        it survives a kernel restart: no object ids, addresses or hash-seeded orderings.
        """
        if self._fingerprint is None:
            try:
                body = (
                    _text_digest(self._source)
                    if self._source is not None
                    else _callable_digest(self.callable)
                )
                parts = (
                    self.namespace,
                    self.name,
                    body,
                    _schema_digest(self.input_schema),
                    _schema_digest(self.output_schema),
                )
                digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "replace"))
                self._fingerprint = digest.hexdigest()[:16]
            except Exception:  # an exotic callable: a fingerprint that never matches another
                self._fingerprint = f"unfingerprintable-{id(self):x}"
        return self._fingerprint


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def _callable_digest(func: Callable[..., Any], seen: frozenset[int] = frozenset()) -> str:
    """Digest of a function's source and of the values it does not show (see _bound_digest).

    The source is digested by code object: many tasks share one function.
    """
    if hasattr(func, "__wrapped__"):
        func = inspect.unwrap(func)
    code = getattr(func, "__code__", None)
    if code is not None:
        digest = _code_source_digest(code)
        bound = _bound_digest(func, seen | {id(func)})
        return digest if bound is None else _text_digest(f"{digest}\x00{bound}")
    return _text_digest(_function_source(func))


def _bound_digest(func: Any, seen: frozenset[int]) -> str | None:
    """Digest of a function's closure cells and default values; None when it has neither.

    Two functions made by one factory share their source but not these (``make("c1")``,
    ``make("c2")``), so a task re-declared that way is not served the other's output. Plain
    data counts by value, functions by their code, classes and modules by name, any other
    object by its type only (like the globals and helpers a task calls, its state is not
    part of the task's code). A function without either keeps the fingerprint it always had.
    """
    cells = getattr(func, "__closure__", None) or ()
    defaults = getattr(func, "__defaults__", None) or ()
    kwdefaults = getattr(func, "__kwdefaults__", None) or {}
    if not (cells or defaults or kwdefaults):
        return None
    parts = []
    for cell in cells:
        try:
            value = cell.cell_contents
        except ValueError:  # a cell not filled yet
            parts.append("<empty>")
            continue
        parts.append(_value_text(value, seen))
    parts += ["default", *(_value_text(v, seen) for v in defaults)]
    parts += [f"{k}={_value_text(kwdefaults[k], seen)}" for k in sorted(kwdefaults)]
    return _text_digest("\x00".join(parts))


def _value_text(value: Any, seen: frozenset[int]) -> str:
    """A closure value or default as text that is the same in every process."""
    if inspect.isfunction(value) or inspect.ismethod(value):
        if id(value) in seen:  # a function closing over itself (recursion)
            return "function:<itself>"
        return f"function:{_callable_digest(value, seen)}"
    if isinstance(value, type) or inspect.isbuiltin(value):
        return f"name:{value.__module__}.{value.__qualname__}"
    if inspect.ismodule(value):
        return f"module:{value.__name__}"
    try:
        if isinstance(value, (set, frozenset)):  # ordered by text: the same whatever the hashes
            return "set:" + ",".join(sorted(_to_json(v) for v in value))
        return "json:" + _to_json(value)
    except Exception:  # not data: its type stands for it
        cls = type(value)
        return f"object:{cls.__module__}.{cls.__qualname__}"


def _to_json(value: Any) -> str:
    return to_json(value).decode()


@functools.lru_cache(maxsize=4096)
def _code_source_digest(code: Any) -> str:
    return _text_digest(_code_source(code))


@functools.lru_cache(maxsize=1024)
def _schema_digest(schema: type[BaseModel] | None) -> str:
    return _text_digest(_schema_text(schema))


def _function_source(func: Callable[..., Any]) -> str:
    func = inspect.unwrap(func)
    code = getattr(func, "__code__", None)
    if code is not None:
        return _code_source(code)
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        cls = type(func)
        return f"<callable {cls.__module__}.{cls.__qualname__}>"


@functools.lru_cache(maxsize=4096)
def _code_source(code: Any) -> str:
    """The source of a function's code object (cached: many tasks share one function).

    Read from ``linecache`` (where IPython also puts each cell) at the code's first line, as
    :func:`inspect.getsource` does, but without its search of every loaded module for the
    file (0.1-0.5 s at the first call in a kernel with many modules).

    The run options of a ``@state.task(...)`` decorator (``retries=3``...) are left out: they
    say how the task runs, not what it computes, so changing them keeps reuse.
    """
    lines = linecache.getlines(code.co_filename)
    first = code.co_firstlineno
    if lines and 0 < first <= len(lines):
        try:
            return _without_task_options("".join(inspect.getblock(lines[first - 1 :])))
        except Exception:  # a tokenizer error in an odd file: ask inspect
            pass
    try:
        return _without_task_options(inspect.getsource(code))
    except (OSError, TypeError):
        return f"<bytecode {_code_digest(code)}>"


def _without_task_options(text: str) -> str:
    r"""``text`` with the run options of its ``@<x>.task(...)`` decorators removed.

    Examples
    --------
    >>> _without_task_options("@s.task(retries=3, limit='llm')\ndef f(input): ...\n")
    '@s.task()\ndef f(input): ...\n'
    """
    if "task(" not in text or not any(name in text for name in OPTION_NAMES):
        return text  # the common case: nothing to parse
    try:
        tree = ast.parse(textwrap.dedent(text))
    except SyntaxError:
        return text
    indent = len(text) - len(text.lstrip(" \t"))
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return text
    data = textwrap.dedent(text).encode()
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    edits = []
    for dec in node.decorator_list:
        if not (
            isinstance(dec, ast.Call)
            and isinstance(dec.func, ast.Attribute)
            and dec.func.attr == "task"
            and any(k.arg in OPTION_NAMES for k in dec.keywords)
            and dec.end_lineno is not None
            and dec.end_col_offset is not None
        ):
            continue
        kept = ast.Call(dec.func, dec.args, [k for k in dec.keywords if k.arg not in OPTION_NAMES])
        start = starts[dec.lineno - 1] + dec.col_offset
        end = starts[dec.end_lineno - 1] + dec.end_col_offset
        edits.append((start, end, ast.unparse(kept).encode()))
    for start, end, new in reversed(edits):
        data = data[:start] + new + data[end:]
    out = data.decode()
    return textwrap.indent(out, " " * indent) if indent else out


def _code_digest(code: Any) -> str:
    """A digest of bytecode, constants and names that is stable across processes."""
    h = hashlib.sha256(code.co_code)
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            text = _code_digest(const)
        elif isinstance(const, frozenset):  # its repr order follows the hash seed
            text = repr(sorted(repr(c) for c in const))
        else:
            text = repr(const)
        h.update(text.encode())
    h.update(" ".join(code.co_names).encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=1024)
def _schema_text(schema: type[BaseModel] | None) -> str:
    if schema is None:
        return "-"
    try:
        return json.dumps(_canonical_defaults(schema.model_json_schema()), sort_keys=True)
    except Exception:  # a model with types JSON schema cannot express
        return f"{schema.__module__}.{schema.__qualname__}:{sorted(schema.model_fields)}"


def _canonical_defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema with each ``default`` in a canonical order where order means nothing.

    A set in a default (a ``uniqueItems`` array, also inside a nested model's default) is
    written by pydantic in the set's iteration order, which follows ``PYTHONHASHSEED``: sorted
    here, so a fingerprint is the same in every process. Lists keep their order.
    """
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> list[dict[str, Any]]:
        """The schema branches a value may follow ($ref, allOf, anyOf, oneOf)."""
        if not isinstance(node, dict):
            return []
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return [node, *resolve(defs.get(ref.rsplit("/", 1)[-1]))]
        found = [node]
        for key in ("allOf", "anyOf", "oneOf"):
            for branch in node.get(key, ()) or ():
                found += resolve(branch)
        return found

    def canonical(value: Any, node: Any) -> Any:
        branches = resolve(node)
        if isinstance(value, list):
            unique = any(b.get("uniqueItems") for b in branches)
            items: Any = next(
                (b["items"] for b in branches if isinstance(b.get("items"), dict)), {}
            )
            values = [canonical(v, items) for v in value]
            if unique:
                values.sort(key=lambda v: json.dumps(v, sort_keys=True, default=str))
            return values
        if isinstance(value, dict):
            props: dict[str, Any] = {}
            extra: Any = {}
            for b in branches:
                props.update(b.get("properties", {}) or {})
                if isinstance(b.get("additionalProperties"), dict):
                    extra = b["additionalProperties"]
            return {k: canonical(v, props.get(k, extra)) for k, v in value.items()}
        return value

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items() if k != "default"}
            if "default" in node:
                out["default"] = canonical(node["default"], node)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    walked: dict[str, Any] = walk(schema)
    return walked
