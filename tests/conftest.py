"""Shared fixtures: every test gets a fresh default registry."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

from germinate_nb import TaskRegistry  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_registry():
    """A new, empty default registry for each test."""
    registry = TaskRegistry()
    previous = TaskRegistry.set_default(registry)
    yield registry
    TaskRegistry.set_default(previous)
