"""Small models shared by engine, explorer and Dask tests."""

from pydantic import BaseModel


class Q(BaseModel):
    text: str


class T(BaseModel):
    tokens: list[str]


class C(BaseModel):
    n: int


class X(BaseModel):
    x: int
