"""Shared fixtures: every test gets a fresh default registry; runs keep no store."""

from __future__ import annotations

import os
import signal

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# No run store for the session (and the subprocesses and kernels it starts, which inherit the
# environment): runs must not write .germinate/ into the repository or a user's folders. Store
# tests opt in with a store under tmp_path.
os.environ["GERMINATE_STORE"] = "off"
# The Ctrl-C tests send real SIGINTs (to this process and to CLI subprocesses). A shell that
# starts the suite in the background (`pytest &`) makes SIGINT ignored, and an ignored signal
# stays ignored in every program started from there: restore Python's handler, which the
# subprocesses then get back as the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from germinate_nb import TaskRegistry  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_registry():
    """A new, empty default registry for each test."""
    registry = TaskRegistry()
    previous = TaskRegistry.set_default(registry)
    yield registry
    TaskRegistry.set_default(previous)


@pytest.fixture
def design():
    """tokenize -> count, the smallest two-task state."""
    from germinate_nb import State
    from tests.resources.models import C, Q, T

    s = State("design")

    @s.task()
    def tokenize(input: Q) -> T:
        return T(tokens=input.text.split())

    @s.task()
    def count(input: T) -> C:
        return C(n=len(input.tokens))

    tokenize >> count
    return s
