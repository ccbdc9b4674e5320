"""MySQL INSERT text laid out a column at a time says what PyMySQL's escaping says.

Every value setwise writes itself must be the literal PyMySQL writes for it (its
``escape_item``), so the server reads the same value; anything else is left to the
driver (None). What the server stores is checked in tests/test_mysql_staging.py.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymysql.converters import escape_item

from setwise.dialects.mysql_values import column_literals, row_literals, statements

HOSTILE = ["O'Brien", 'a "b"', "back\\", "nul\0", "cr\r lf\n", "\x1a", "🦆", "%s %%", ""]


def pymysql(value: Any) -> str:
    return str(escape_item(value, "utf8mb4"))


def laid_out(values: list[Any]) -> list[str]:
    found = column_literals(values)
    assert found is not None
    spec, formatted = found
    return [spec % (value,) for value in formatted]


@pytest.mark.parametrize(
    "values",
    [
        HOSTILE,
        [*HOSTILE, None],
        [1, -(2**63), 2**64],
        [1, None, True, False],
        [Decimal("1.10"), Decimal("-0.0001"), Decimal("1E+3"), Decimal("0E-10")],
        [Decimal("12.5"), None],
        [0.1, -1e-300, 1e300, 5.0, -0.0],
        [dt.date(1, 1, 1), dt.date(2026, 12, 31)],
        [dt.datetime(2026, 1, 2, 3, 4, 5), dt.datetime(2026, 1, 2, 3, 4, 5, 6)],
        [dt.time(0, 0), dt.time(23, 59, 59, 999999)],
        [b"", bytes(range(256)), None],
    ],
    ids=[
        *("text", "text-null", "int", "int-bool-null", "decimal", "decimal-null", "float"),
        *("date", "datetime", "time", "bytes"),
    ],
)
def test_each_literal_is_what_pymysql_writes(values: list[Any]) -> None:
    assert laid_out(values) == [pymysql(value) for value in values]


#: Text made mostly of the characters MySQL escapes, and their escaped forms.
ESCAPE_PRONE = st.text(alphabet="\0\\\n\r\x1a\"'0nrZ é🦆")


@given(st.lists(st.text() | ESCAPE_PRONE, min_size=1, max_size=5))
def test_any_text_is_escaped_as_pymysql_escapes_it(values: list[str]) -> None:
    assert laid_out(values) == [pymysql(value) for value in values]


@pytest.mark.parametrize(
    "value",
    [
        Decimal("NaN"),
        Decimal("Infinity"),
        float("nan"),
        float("-inf"),
        dt.timedelta(1),
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        dt.time(1, tzinfo=dt.UTC),
        [1],
    ],
    ids=repr,
)
def test_a_value_not_written_exactly_leaves_the_batch_to_the_driver(value: Any) -> None:
    assert column_literals(["fine", value]) is None
    assert row_literals([[1, 2], ["a", value]]) is None


def test_rows_join_their_columns() -> None:
    assert row_literals([[1, 2], ["a'", None], [Decimal("1.5"), Decimal(2)]]) == [
        "(1,'a\\'',1.5)",
        "(2,NULL,2)",
    ]


@pytest.mark.parametrize("text", ["abc", "é€🦆"])
def test_statements_keep_under_the_byte_limit_and_lose_no_row(text: str) -> None:
    rows = [f"({i}{text * (i % 7)})" for i in range(500)]
    head = "INSERT INTO t (a, b) VALUES "
    longest = 600
    sent = list(statements(head, rows, longest))
    assert all(len(statement.encode()) <= longest for statement in sent)
    assert [row for statement in sent for row in statement[len(head) :].split(",")] == rows
    assert len(sent) > 1


def test_a_row_longer_than_the_limit_goes_alone() -> None:
    rows = ["(1)", "(" + "9" * 50 + ")", "(2)"]
    sent = list(statements("INSERT INTO t VALUES ", rows, 40))
    assert sent == ["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES " + rows[1], sent[2]]
    assert sent[2] == "INSERT INTO t VALUES (2)"
