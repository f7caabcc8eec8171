from typing import Any, Literal, Optional

import pytest

from germinate_nb.core.schema import MergedInput, is_compatible, type_name
from tests.resources.schemas import Counts, Tokens


@pytest.mark.parametrize(
    ("source", "target", "ok"),
    [
        (int, int, True),
        (int, float, True),
        (float, int, False),
        (str, list[str], False),
        (list[str], list[str], True),
        (list[int], list[str], False),
        (int, Optional[int], True),
        (int, int | None, True),
        (Optional[int], int, True),
        (str, Any, True),
        (str, Literal["a"], True),
        (dict[str, int], dict[str, float], True),
        (Tokens, Counts, True),
    ],
)
def test_is_compatible(source, target, ok):
    assert is_compatible(source, target) is ok


def test_type_name():
    assert type_name(list[str]) == "list[str]"
    assert type_name(int) == "int"
    assert type_name(type(None)) == "None"


def test_merged_input_exposes_attributes():
    m = MergedInput.model_validate({"a": 1, "b": [2]})
    assert (m.a, m.b) == (1, [2])
    assert m.model_dump() == {"a": 1, "b": [2]}
