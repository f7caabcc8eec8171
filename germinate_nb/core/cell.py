"""Turn a ``%%germinate_task`` cell body into a task function (``input``, ``output``, ``await``)."""

from __future__ import annotations

import ast
import linecache
from collections.abc import Callable
from typing import Any

from germinate_nb.errors import DeclarationError

__all__ = ["compile_cell"]

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _walk_scope(node: ast.AST) -> Any:
    """Walk a node without entering nested functions, lambdas or classes."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, _SCOPES):
            continue
        yield child
        yield from _walk_scope(child)


def _is_async(tree: ast.Module) -> bool:
    for node in _walk_scope(tree):
        if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            return True
        if isinstance(node, ast.comprehension) and node.is_async:
            return True
    return False


def _assigns_output(tree: ast.Module) -> bool:
    for node in _walk_scope(tree):
        if isinstance(node, ast.Name) and node.id == "output" and isinstance(node.ctx, ast.Store):
            return True
    return False


def compile_cell(
    name: str,
    body: str,
    *,
    namespace: dict[str, Any],
    where: str | None = None,
    line_offset: int = 1,
) -> tuple[Callable[..., Any], bool]:
    r"""Compile a cell body into ``def <name>(input): ...`` whose globals are ``namespace``.

    The function returns the variable ``output`` when the body assigns it, else the value of
    the body's last expression. ``await`` anywhere at the body's top level makes it async.

    Parameters
    ----------
    name
        Task name (the function's name).
    body
        The cell's source below the magic line.
    namespace
        Globals for the function (the notebook's user namespace), read at call time.
    where
        How to name the cell in messages, e.g. ``%%germinate_task count``.
    line_offset
        Lines above the body in the cell (1 for the magic line), for cell line numbers.

    Returns
    -------
    (function, is_async)

    Raises
    ------
    DeclarationError
        For an empty body, a syntax error (with its cell line), or a body without output.

    Examples
    --------
    >>> f, is_async = compile_cell("double", "n = input * 2\nn", namespace={})
    >>> f(21), is_async
    (42, False)
    """
    where = where or f"task '{name}'"
    if not body.strip():
        msg = (
            f"the body of {where} is empty. Write the task below the magic line, ending with "
            "the expression whose value is the output (or assign `output = ...`)."
        )
        raise DeclarationError(msg, task=name)
    filename = f"<germinate_task {name}>"
    try:
        tree = ast.parse(body, filename=filename)
    except SyntaxError as err:
        line = (err.lineno or 1) + line_offset
        text = (err.text or "").strip()
        shown = f": `{text}`" if text else ""
        msg = (
            f"syntax error in {where}, cell line {line}: {err.msg}{shown}. "
            "Fix the cell and re-run it."
        )
        raise DeclarationError(msg, task=name) from None
    statements = list(tree.body)
    if not statements:  # comments only
        msg = (
            f"the body of {where} has only comments. Write the task below the magic line, "
            "ending with the expression whose value is the output (or assign `output = ...`)."
        )
        raise DeclarationError(msg, task=name)
    if _assigns_output(tree):
        statements.append(ast.Return(value=ast.Name(id="output", ctx=ast.Load())))
    elif isinstance(statements[-1], ast.Expr):
        last = statements[-1]
        assert isinstance(last, ast.Expr)
        statements[-1] = ast.copy_location(ast.Return(value=last.value), last)
    elif not isinstance(statements[-1], (ast.Return, ast.Raise)):
        msg = (
            f"the body of {where} has no output: end it with an expression (e.g. "
            "`Counts(n=len(input.tokens))`) or assign `output = ...`."
        )
        raise DeclarationError(msg, task=name)
    is_async = _is_async(tree)
    args = ast.arguments(
        posonlyargs=[],
        args=[ast.arg(arg="input")],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )
    func_type = ast.AsyncFunctionDef if is_async else ast.FunctionDef
    func = func_type(name=name, args=args, body=statements, decorator_list=[], returns=None)
    func.lineno = 1
    func.col_offset = 0
    module = ast.Module(body=[func], type_ignores=[])
    ast.fix_missing_locations(module)
    try:
        code = compile(module, filename, "exec")
    except SyntaxError as err:  # e.g. `yield` or `nonlocal` misuse, only found when compiling
        line = (err.lineno or 1) + line_offset
        msg = f"syntax error in {where}, cell line {line}: {err.msg}. Fix the cell and re-run it."
        raise DeclarationError(msg, task=name) from None
    linecache.cache[filename] = (len(body), None, body.splitlines(keepends=True), filename)
    scope: dict[str, Any] = {}
    exec(code, namespace, scope)  # noqa: S102 - the user's own cell, as IPython would run it
    function: Callable[..., Any] = scope[name]
    function.__qualname__ = name
    return function, is_async
