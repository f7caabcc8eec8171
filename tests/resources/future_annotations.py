"""Tasks declared inside a function under postponed (string) annotations."""

from __future__ import annotations

from pydantic import BaseModel

from germinate_nb import State


def build():
    class Local(BaseModel):
        v: int

    s = State("future")

    @s.task()
    def t(input: Local) -> Local:
        return input

    return s, Local
