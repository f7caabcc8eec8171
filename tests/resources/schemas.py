"""Pydantic models shared by tests."""

from __future__ import annotations

from pydantic import BaseModel


class Query(BaseModel):
    text: str


class Tokens(BaseModel):
    tokens: list[str]


class TokenStr(BaseModel):
    tokens: str


class Counts(BaseModel):
    n: int


class Number(BaseModel):
    x: int


class Text(BaseModel):
    text: str
