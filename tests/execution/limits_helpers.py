"""Shared by the limit tests: a state of tasks recording their own start and end times."""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel

from germinate_nb import State


class Span(BaseModel):
    start: float
    end: float


class Go(BaseModel):
    seconds: float = 0.03


def limited_state(name: str, n: int = 20, kind: str = "sync", limit: str = "api") -> State:
    """``n`` independent tasks tagged ``limit``; each returns its own perf_counter span."""
    s = State(name)
    for i in range(n):
        is_async = kind == "async" or (kind == "mixed" and i % 2)
        if is_async:

            async def body(input: Go) -> Span:
                t0 = time.perf_counter()
                await asyncio.sleep(input.seconds)
                return Span(start=t0, end=time.perf_counter())
        else:

            def body(input: Go) -> Span:
                t0 = time.perf_counter()
                time.sleep(input.seconds)
                return Span(start=t0, end=time.perf_counter())

        body.__name__ = f"t{i}"
        s.task(namespace=name, limit=limit)(body)
    return s


def most_in_flight(spans: list[Span]) -> int:
    """The most spans overlapping at any instant (an end before a start at the same time)."""
    edges = sorted([(s.start, 1) for s in spans] + [(s.end, -1) for s in spans])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most
