"""Reading and checking values from files: pure logic, no database (issue 19)."""

from __future__ import annotations

import math
import time
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Column, Double, Integer, Numeric, String, Text

from setwise.staging.sources.csv import faulty_field
from setwise.staging.validation import ANYWHERE, Storable, Unfit, check_value
from setwise.staging.values import coercer_for, column_converter

COUNT = Column("count", Integer)
AMOUNT = Column("amount", Numeric(10, 2))
READING = Column("reading", Double)
NOTE = Column("note", Text)
LABEL = Column("label", String(10))
POSTGRESQL_LIKE = Storable(nul_in_text=False, nonfinite_floats=True)
MARIADB_LIKE = Storable(nul_in_text=True, nonfinite_floats=False)


def reason(column: Column[Any], value: Any, storable: Storable = ANYWHERE) -> str:
    with pytest.raises(Unfit) as caught:
        coercer_for(column, lenient=True, storable=storable)(value)
    return caught.value.reason


@pytest.mark.parametrize("text", ["1_000", "\u0663\u0664", "\uff11\uff12", "1 000", "0x1A", "٣"])
def test_integer_text_is_ascii_digits(text: str) -> None:
    assert reason(COUNT, text) == f"not an integer: {text!r}"
    assert reason(AMOUNT, text) == f"not a number: {text!r}"
    assert reason(READING, text) == f"not a number: {text!r}"
    # The batch path does not take what the row path refuses: it goes row by row.
    converter = column_converter(COUNT, lenient=True, required=False)
    assert converter(["7", text]) is None


@pytest.mark.parametrize(
    ("text", "number"), [(" 7 ", 7), ("+7", 7), ("007", 7), ("1.0", 1), ("5.00", 5), ("2E+1", 20)]
)
def test_whole_numbers_are_integers(text: str, number: int) -> None:
    found = coercer_for(COUNT, lenient=True)(text)
    assert found == number and type(found) is int
    strict = coercer_for(COUNT, lenient=False)(Decimal(text.strip()))
    assert strict == number and type(strict) is int


@pytest.mark.parametrize(
    "value", ["1e999999999", "-1E+999999999", Decimal("1E+999999999"), "9" * 100_000]
)
def test_a_huge_integer_is_out_of_range_at_once(value: Any) -> None:
    began = time.perf_counter()
    assert reason(COUNT, value) == "out of range for Integer (-2147483648 to 2147483647)"
    assert time.perf_counter() - began < 1


def test_not_finite_numbers() -> None:
    assert reason(COUNT, math.nan) == "not a finite number; the column holds integers"
    assert reason(COUNT, "NaN") == "not a finite number; the column holds integers"
    assert reason(AMOUNT, "Infinity") == "not a finite number: 'Infinity'"
    for value in ("NaN", "-inf", math.nan, math.inf, Decimal("NaN")):
        assert "not a finite number" in reason(READING, value, MARIADB_LIKE)
        assert coercer_for(READING, lenient=True, storable=POSTGRESQL_LIKE)(value) is not None
    assert reason(READING, "1e999") == "too large for a FLOAT column (at most 1.8e308)"
    assert reason(READING, 10**400) == "too large for a FLOAT column (at most 1.8e308)"


def test_a_float_column_is_checked() -> None:
    """From SQLAlchemy 2.1 a Float is no Numeric: it is still parsed and checked."""
    assert check_value(READING, "abc") == "expected a number, got str 'abc'"
    assert coercer_for(READING, lenient=True)(" 1.5 ") == 1.5


def test_text_that_cannot_be_sent() -> None:
    assert reason(NOTE, "caf\udce9").startswith("not UTF-8: byte 0xe9 at character 4")
    assert reason(NOTE, "a\ud800") == (
        "a lone surrogate (U+D800) at character 2, which is no character"
    )
    assert "a NUL character at character 2" in reason(NOTE, "a\0b", POSTGRESQL_LIKE)
    assert coercer_for(NOTE, lenient=True, storable=MARIADB_LIKE)("a\0b") == "a\0b"
    for storable in (POSTGRESQL_LIKE, MARIADB_LIKE):
        converter = column_converter(LABEL, lenient=True, required=False, storable=storable)
        assert converter(["fine", "caf\udce9"]) is None
        assert (converter(["a\0b"]) is None) is (storable is POSTGRESQL_LIKE)


@pytest.mark.parametrize(
    ("record", "index", "text"),
    [
        ('1,"a"b,c\n', 1, '"a"b'),  # a quoted field followed by more
        ('1,"never closed\nmore\n', 1, '"never closed\nmore\n'),
        ("1,short," + "x" * 50 + "\n", 2, "x" * 50),  # no quoting fault: the longest
        ('"a""b","c"\r\n', 0, '"a""b"'),
    ],
)
def test_the_field_at_fault_in_a_refused_record(record: str, index: int, text: str) -> None:
    assert faulty_field(record) == (index, text)
