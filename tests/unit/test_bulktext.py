"""The tab-separated text COPY (PostgreSQL) and LOAD DATA (MySQL) stage from: what each
value is written as, read back as the database reads it. Pure functions, no database."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest

from setwise.dialects.bulktext import MYSQL, NULL, POSTGRESQL, TextFormat

UNESCAPED = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "0": "\0"}


def read_back(block: str) -> list[list[str | None]]:
    """The rows as the database reads the text: fields end at a tab, lines at a newline,
    ``\\N`` alone is NULL, a backslash escapes the next character."""
    assert block.endswith("\n")
    rows = []
    for line in block[:-1].split("\n"):
        rows.append(
            [
                None if field == NULL else re.sub(r"\\(.)", lambda m: UNESCAPED[m.group(1)], field)
                for field in line.split("\t")
            ]
        )
    return rows


AWKWARD = ["tab\there", "line\nbreak", "carriage\rreturn", "back\\slash", "\\N", "", " ", "é"]


@pytest.mark.parametrize("form", [POSTGRESQL, MYSQL], ids=["COPY", "LOAD-DATA"])
def test_awkward_text_and_null_read_back_exactly(form: TextFormat) -> None:
    block = form.block([list(range(len(AWKWARD) + 1)), [*AWKWARD, None]])
    assert block is not None
    rows = read_back(block)
    assert [row[1] for row in rows] == [*AWKWARD, None]
    assert [row[0] for row in rows] == [str(i) for i in range(len(AWKWARD) + 1)]


def test_null_and_the_empty_string_are_two_values() -> None:
    assert POSTGRESQL.block([["", None], [None, ""]]) == "\t\\N\n\\N\t\n"
    # The text \N is escaped, so it stays text rather than turning into NULL.
    assert POSTGRESQL.block([["\\N"]]) == "\\\\N\n"


def test_a_nul_character_is_escaped_for_mysql_and_refused_for_postgresql() -> None:
    assert MYSQL.block([["x\0y"]]) == "x\\0y\n"
    assert POSTGRESQL.block([["x\0y"]]) is None  # the batch is staged its other way


def test_booleans_in_each_databases_words() -> None:
    assert POSTGRESQL.block([[True, False, None]]) == "t\nf\n\\N\n"
    assert MYSQL.block([[True, False, None]]) == "1\n0\n\\N\n"


@pytest.mark.parametrize(
    ("values", "text"),
    [
        ([Decimal("0.10"), Decimal("-3")], "0.10\n-3\n"),  # the scale written is kept
        ([Decimal("1E+2"), Decimal("5E-3")], "100\n0.005\n"),  # never an exponent
        ([1.5, 1e-7], "1.5\n1e-07\n"),
        ([2**62, -1], f"{2**62}\n-1\n"),
        ([dt.date(2024, 2, 29)], "2024-02-29\n"),
        ([dt.datetime(2024, 1, 2, 3, 4, 5, 6)], "2024-01-02 03:04:05.000006\n"),
        ([dt.time(1, 2)], "01:02:00\n"),
    ],
)
def test_numbers_and_times_are_written_as_the_database_reads_them(
    values: list[Any], text: str
) -> None:
    assert POSTGRESQL.block([values]) == text
    assert MYSQL.block([values]) == text


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        dt.datetime(2024, 1, 2, tzinfo=dt.UTC),  # a zone this text cannot carry
        dt.time(1, 2, tzinfo=dt.UTC),
        b"bytes",  # a type this module does not format
    ],
)
def test_a_value_this_text_cannot_carry_exactly_sends_the_batch_another_way(
    value: Any,
) -> None:
    assert POSTGRESQL.block([[1, 2], ["fine", value]]) is None


def test_columns_of_one_plain_type_are_written_as_they_are() -> None:
    block = POSTGRESQL.block([[1, 2, 3], ["a", "b", "c"], [Decimal("1.50"), Decimal(2), None]])
    assert block == "1\ta\t1.50\n2\tb\t2\n3\tc\t\\N\n"


@pytest.mark.parametrize("form", [POSTGRESQL, MYSQL], ids=["COPY", "LOAD-DATA"])
def test_a_column_of_one_number_throughout_is_on_every_line(form: TextFormat) -> None:
    # The presence masks of rows that carry every field: one number on every line, next
    # to texts that look like printf conversions.
    texts = ["a%s", "%d", "100%"]
    block = form.block([[1, 2, 3], [7, 7, 7], texts, [-2, -2, -2]])
    assert block is not None
    assert read_back(block) == [
        [str(n), "7", t, "-2"] for n, t in zip([1, 2, 3], texts, strict=True)
    ]
    assert form.block([[7, 7], [0, 0]]) == "7\t0\n7\t0\n"
    # A boolean is no number here, though True == 1: each is written in its own words.
    assert form.block([[1, True], [5, 5]]) == form.block([[1, True]]).replace("\n", "\t5\n")  # type: ignore[union-attr]
