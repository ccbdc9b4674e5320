"""Keys and values as a person writes them, and messages that name options the way the
caller passes them: pure functions, no database."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from setwise.cli.exits import as_option
from setwise.errors import (
    ConflictError,
    PlanTimeoutError,
    RowConflict,
    SchemaError,
    TooManyRowsError,
    TransactionTooLargeError,
)
from setwise.messages import as_argument
from setwise.problems import Problem
from setwise.shown import plain, shown

SIX = dt.datetime(2013, 1, 1, 6, 0)

WRITTEN = [
    (("JFK", SIX), "('JFK', 2013-01-01 06:00:00)"),
    (Decimal("3.90"), "3.90"),
    (Decimal("1E+2"), "100"),
    ("\\N", "'\\N'"),
    ("two\nlines\tand a tab", "'two\\nlines\\tand a tab'"),
    ("it's", "'it's'"),
    (None, "NULL"),
    (True, "true"),
    (42, "42"),
    (2.5, "2.5"),
    (dt.date(2013, 1, 1), "2013-01-01"),
    (dt.time(6, 30), "06:30:00"),
    (b"\x00\xff", "x'00ff'"),
    ({"id": 7}, "{id: 7}"),
]


@pytest.mark.parametrize(("value", "written"), WRITTEN, ids=[w for _, w in WRITTEN])
def test_values_are_shown_as_a_person_writes_them(value: object, written: str) -> None:
    assert shown(value) == written


def test_json_holds_json_types_as_they_are_and_the_rest_as_written() -> None:
    found = plain({"key": ("JFK", SIX), "fare": Decimal("3.90"), "n": 3, "none": None})
    assert found == {"key": ["JFK", "2013-01-01 06:00:00"], "fare": "3.90", "n": 3, "none": None}
    assert json.loads(json.dumps(found)) == found


def test_problems_and_conflicts_show_values_as_written() -> None:
    assert str(Problem("price", Decimal("3.905"), "too many places", row=3)) == (
        "row 3, column 'price', value 3.905: too many places"
    )
    conflict = RowConflict(("JFK", SIX), "fare", Decimal("3.90"), None)
    message = str(ConflictError("flights", conflicts=[conflict]))
    assert "key ('JFK', 2013-01-01 06:00:00), fare: the run wrote 3.90, now NULL" in message


def test_a_message_names_arguments_as_the_caller_passes_them() -> None:
    errors = [
        (SchemaError("'t' has no primary key", argument="key"), "key=", "--key COLUMN"),
        (
            ConflictError("t", conflicts=[RowConflict(1, "n", 1, 2)]),
            "Pass force=True to",
            "Pass --force to",
        ),
        (
            TransactionTooLargeError("t", would_change=9, fits=3, setting="s", basis="b"),
            "Pass chunk_rows=3 or chunk_rows='auto'",
            "Pass --chunk-rows 3 or --chunk-rows auto",
        ),
        (PlanTimeoutError("t", seconds=1), "(timeout_seconds=;", "(--plan-timeout SECONDS;"),
        (
            TooManyRowsError("t", limit=5, would_change=9),
            "more than max_rows=5 allows",
            "more than --max-rows 5 allows",
        ),
    ]
    for error, in_python, on_the_command_line in errors:
        assert in_python in str(error) and str(error) == error.explain(as_argument)
        assert on_the_command_line in error.explain(as_option)
        assert "=" not in error.explain(as_option).replace(" = ", "")


def test_a_suggestion_follows_the_argument() -> None:
    error = SchemaError("unknown column 'stok'", suggestion="stock")
    assert str(error) == "unknown column 'stok'. Did you mean 'stock'?"
