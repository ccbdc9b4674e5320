"""A misspelt name is answered with the name meant, case and spaces aside."""

from __future__ import annotations

import pytest

from setwise.messages import closest

COLUMNS = ["id", "name", "price", "published"]


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("ID", "id"),  # too short for a close match by letters
        (" name", "name"),  # a CSV header written "id, name"
        ("Price ", "price"),
        ("pubished", "published"),
        ("colour", None),
    ],
)
def test_the_name_meant_is_suggested(name: str, meant: str | None) -> None:
    assert closest(name, COLUMNS) == meant
