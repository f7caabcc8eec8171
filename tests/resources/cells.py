"""Cell text shared by the tests that write notebooks or run code in real kernels."""

MODELS = """from pydantic import BaseModel

class Query(BaseModel):
    text: str

class Tokens(BaseModel):
    tokens: list[str]

class Counts(BaseModel):
    n: int
"""
"""The query -> tokens -> counts models of the example pipelines (no braces: safe to format)."""
