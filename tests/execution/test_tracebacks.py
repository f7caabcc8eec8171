"""User-first tracebacks: engine frames hidden with a note, chains kept, never raising."""

from __future__ import annotations

import importlib.util
import linecache
import sys
import textwrap
from pathlib import Path

import pytest

from germinate_nb import State
from germinate_nb.core.executor import DependencyCache
from germinate_nb.execution.tracebacks import (
    PACKAGE_DIR,
    format_full_traceback,
    format_user_traceback,
    safe_str,
)
from tests.resources.models import Q, T

ENGINE_SOURCE = """
def call(f, *args):
    return _dispatch(f, *args)


def _dispatch(f, *args):
    return f(*args)


def explode():
    raise RuntimeError("engine broke")


def call_explode():
    return explode()
"""


@pytest.fixture
def engine(tmp_path: Path):
    """A stand-in engine module living in its own directory (the hidden prefix)."""
    folder = tmp_path / "fake_engine"
    folder.mkdir()
    path = folder / "engine.py"
    path.write_text(ENGINE_SOURCE)
    spec = importlib.util.spec_from_file_location(f"fake_engine_{id(folder)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, (str(folder),)


def user_task(x: int) -> int:
    return helper(x)


def helper(x: int) -> int:
    raise ValueError(f"bad value {x}")


def caught(fn, *args) -> BaseException:
    try:
        fn(*args)
    except BaseException as err:  # noqa: BLE001 - the point of the helper
        return err
    raise AssertionError("did not raise")


def test_engine_frames_are_hidden_with_a_note(engine):
    module, prefixes = engine
    err = caught(module.call, user_task, 3)
    text = format_user_traceback(err, hidden_prefixes=prefixes)
    assert "engine.py" not in text
    assert "  (2 germinate_nb frames hidden)\n" in text
    assert "in user_task\n    return helper(x)" in text
    assert "in helper\n    raise ValueError" in text
    assert text.endswith("ValueError: bad value 3\n")
    # the note sits where the frames were: after the caller, before the user's function
    assert text.index("in caught") < text.index("frames hidden") < text.index("in user_task")
    full = format_full_traceback(err)
    assert "engine.py" in full and "in _dispatch" in full and "germinate_nb frame" not in full


def test_real_germinate_nb_frames_are_hidden_by_default():
    s = State("design")

    @s.task()
    def tokenize(input: Q) -> T:
        raise LookupError(f"no tokens in {input.text!r}")

    err = caught(tokenize.executor.invoke, Q(text="a b"), DependencyCache())
    text = format_user_traceback(err)
    assert "executor.py" in format_full_traceback(err)
    assert "executor.py" not in text and PACKAGE_DIR not in text
    assert "  (1 germinate_nb frame hidden)\n" in text
    assert "in tokenize\n" in text and text.endswith("LookupError: no tokens in 'a b'\n")


def test_when_every_frame_is_the_engines_the_last_one_is_kept(engine):
    module, prefixes = engine
    err = caught(module.call_explode)
    # with a user frame around them, both engine frames go
    lines = format_user_traceback(err, hidden_prefixes=prefixes).splitlines()
    assert "in caught" in lines[1]  # this test file is not hidden
    assert lines[3:] == ["  (2 germinate_nb frames hidden)", "RuntimeError: engine broke"]
    # only engine frames (call_explode -> explode): the one that raised stays
    bare = RuntimeError("engine broke").with_traceback(err.__traceback__.tb_next)
    only = format_user_traceback(bare, hidden_prefixes=prefixes).splitlines()
    assert only[:2] == ["Traceback (most recent call last):", "  (1 germinate_nb frame hidden)"]
    assert "engine.py" in only[2] and "in explode" in only[2]
    assert only[3:] == ['    raise RuntimeError("engine broke")', "RuntimeError: engine broke"]


def test_germinate_task_cell_frames_are_kept(engine):
    module, prefixes = engine
    body = "def count(x):\n    return x['tokens'] / 0\n"
    filename = "<germinate_task count>"
    namespace: dict = {}
    exec(compile(body, filename, "exec"), namespace)
    linecache.cache[filename] = (len(body), None, body.splitlines(True), filename)
    try:
        err = caught(module.call, namespace["count"], {"tokens": 4})
        text = format_user_traceback(err, hidden_prefixes=prefixes)
    finally:
        linecache.cache.pop(filename, None)
    assert 'File "<germinate_task count>", line 2, in count\n' in text
    assert "    return x['tokens'] / 0\n" in text
    assert "(2 germinate_nb frames hidden)" in text
    assert text.endswith("ZeroDivisionError: division by zero\n")


class Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("boom")

    def __repr__(self) -> str:
        raise TypeError("no repr either")


def test_exception_whose_str_and_repr_raise_gets_a_fallback(engine):
    module, prefixes = engine

    def raises_unprintable() -> None:
        raise Unprintable()

    err = caught(module.call, raises_unprintable)
    assert safe_str(err) == "<exception str() failed: ValueError: boom>"
    for text in (format_user_traceback(err, hidden_prefixes=prefixes), format_full_traceback(err)):
        assert text.endswith(
            "test_tracebacks.Unprintable: <exception str() failed: ValueError: boom>\n"
        )
        assert "in raises_unprintable" in text


def test_safe_str_handles_a_failing_failure_and_bad_args():
    class Worse(Exception):
        def __str__(self) -> str:
            raise Unprintable()

    class BadRepr:
        def __repr__(self) -> str:
            raise RuntimeError("repr broke")

    assert (
        safe_str(Worse())
        == "<exception str() failed: tests.execution.test_tracebacks.Unprintable: <str() failed>>"
    )
    # BaseException.__str__ of several args uses repr() of each
    assert (
        safe_str(ValueError(BadRepr(), 2)) == "<exception str() failed: RuntimeError: repr broke>"
    )
    assert safe_str(ValueError("fine")) == "fine"
    assert format_full_traceback(ValueError(BadRepr(), 2)) == (
        "ValueError: <exception str() failed: RuntimeError: repr broke>\n"
    )


def test_chained_exceptions_are_included_oldest_first(engine):
    module, prefixes = engine

    def load() -> None:
        try:
            module.call(helper, 1)
        except ValueError as err:
            raise KeyError("config") from err

    def handle() -> None:
        try:
            load()
        except KeyError:
            raise RuntimeError("task failed")  # noqa: B904 - implicit context on purpose

    text = format_user_traceback(caught(handle), hidden_prefixes=prefixes)
    assert text.index("ValueError: bad value 1") < text.index("KeyError: 'config'")
    assert text.index("KeyError: 'config'") < text.index("RuntimeError: task failed")
    assert "The above exception was the direct cause of the following exception:" in text
    assert "During handling of the above exception, another exception occurred:" in text
    assert text.count("Traceback (most recent call last):") == 3
    assert text.count("(2 germinate_nb frames hidden)") == 1  # only the first one went through it


def test_suppressed_context_is_left_out():
    def convert() -> None:
        try:
            {}["k"]
        except KeyError:
            raise ValueError("clean") from None

    text = format_user_traceback(caught(convert))
    assert "KeyError" not in text and text.endswith("ValueError: clean\n")


def test_a_cycle_of_contexts_terminates():
    a, b = ValueError("a"), KeyError("b")
    a.__context__, b.__context__ = b, a
    text = format_full_traceback(a)
    assert text.count("ValueError: a") == 1 and text.count("KeyError: 'b'") == 1


def test_deep_recursion_is_limited():
    def recurse(n: int) -> int:
        return recurse(n + 1)

    err = caught(recurse, 0)
    assert isinstance(err, RecursionError)
    text = format_user_traceback(err)
    assert len(text.splitlines()) < 150
    assert "more frames not shown" in text
    assert "[Previous line repeated" in text
    assert text.endswith("RecursionError: maximum recursion depth exceeded\n")


def test_a_long_chain_is_cut_with_a_note():
    err: BaseException = ValueError(0)
    for i in range(1, 200):
        nxt = ValueError(i)
        nxt.__cause__ = err
        err = nxt
    text = format_full_traceback(err)
    assert "earlier chained exceptions not shown: only the last 32 are" in text
    assert text.count("ValueError: ") == 32 and text.endswith("ValueError: 199\n")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are Python 3.11+")
def test_exception_group_shows_each_sub_exception(engine):
    module, prefixes = engine

    def both() -> None:
        errors = [caught(module.call, helper, 1), caught(module.call, helper, 2)]
        raise ExceptionGroup("two tasks failed", errors)  # noqa: F821

    text = format_user_traceback(caught(both), hidden_prefixes=prefixes)
    assert "ExceptionGroup: two tasks failed (2 sub-exceptions)" in text
    assert "  [sub-exception 1 of 2]\n" in text and "  [sub-exception 2 of 2]\n" in text
    assert "    ValueError: bad value 1\n" in text and "    ValueError: bad value 2\n" in text
    assert "engine.py" not in text and text.count("(2 germinate_nb frames hidden)") == 2


def test_notes_and_syntax_errors_are_formatted_like_the_interpreter():
    err = caught(compile, "x = (", "<germinate_task broken>", "exec")
    text = format_user_traceback(err)
    assert 'File "<germinate_task broken>", line 1' in text and "SyntaxError:" in text
    noted = ValueError("v")
    noted.add_note("while running task 'count'")
    assert format_full_traceback(noted) == "ValueError: v\nwhile running task 'count'\n"


def test_formatting_never_raises_even_on_nonsense():
    assert format_user_traceback("not an exception") == "not an exception\n"  # type: ignore[arg-type]
    text = format_user_traceback(ValueError("x"), hidden_prefixes=(None,))  # type: ignore[arg-type]
    assert text.startswith("ValueError: x\n(the traceback could not be formatted: ")


def test_hidden_prefix_is_a_directory_not_a_name_prefix(tmp_path: Path):
    folder = tmp_path / "germinate_nb"
    folder.mkdir()
    sibling = tmp_path / "germinate_nb_user"
    sibling.mkdir()
    path = sibling / "mine.py"
    path.write_text(textwrap.dedent("def boom():\n    raise OSError('mine')\n"))
    spec = importlib.util.spec_from_file_location("germinate_nb_user_mine", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = format_user_traceback(caught(module.boom), hidden_prefixes=(str(folder),))
    assert "mine.py" in text and "germinate_nb frame" not in text
