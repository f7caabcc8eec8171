from tests.resources.models import C, Q, T, X

__all__ = ["C", "Q", "T", "X"]
