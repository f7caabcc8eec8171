from __future__ import annotations

import pytest
from pydantic import BaseModel

from germinate_nb import State


class Q(BaseModel):
    text: str


class T(BaseModel):
    tokens: list[str]


class C(BaseModel):
    n: int


class X(BaseModel):
    x: int


@pytest.fixture
def design():
    """tokenize -> count, the smallest two-task state."""
    s = State("design")

    @s.task()
    def tokenize(input: Q) -> T:
        return T(tokens=input.text.split())

    @s.task()
    def count(input: T) -> C:
        return C(n=len(input.tokens))

    tokenize >> count
    return s
