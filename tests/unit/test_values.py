"""Reading and checking values from files: pure logic, no database (issue 19)."""

from __future__ import annotations

import datetime as dt
import math
import time
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    Enum,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    literal,
    null,
)

from setwise.problems import Problem, ProblemKind
from setwise.staging.sources.csv import faulty_field
from setwise.staging.validation import (
    ANYWHERE,
    Storable,
    Unfit,
    check_assignments,
    check_value,
    check_values,
)
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


# -- what a file's text becomes, column type by column type -------------------------------

FLAG = Column("flag", Boolean)
DAY = Column("day", Date)
AWARE = Column("at", DateTime(timezone=True))
NAIVE = Column("naive", DateTime)
CLOCK = Column("clock", Time)
PRICE = Column("price", Numeric(5, 2), nullable=False)
KIND = Column("kind", Enum("a", "b", name="kind"))
SMALL = Column("small", SmallInteger)
BIG = Column("big", BigInteger)


def read(column: Column[Any], value: Any) -> Any:
    return coercer_for(column, lenient=True)(value)


@pytest.mark.parametrize(
    ("column", "text", "value"),
    [
        (FLAG, "yes", True),
        (FLAG, " F ", False),
        (FLAG, "1", True),
        (FLAG, 0, False),
        (DAY, "2024-02-29", dt.date(2024, 2, 29)),
        (AWARE, "2024-01-01T01:00:00+01:00", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
        (NAIVE, "2024-01-01 06:30", dt.datetime(2024, 1, 1, 6, 30)),
        (CLOCK, "12:30", dt.time(12, 30)),
        (PRICE, "999.99", Decimal("999.99")),
        (PRICE, " -0.5 ", Decimal("-0.5")),
        (PRICE, 0.1, Decimal("0.1")),  # a float by its shortest decimal form
        (PRICE, 7, Decimal(7)),
        (LABEL, 12, "12"),  # a JSON number in a text column is its digits
        (KIND, "b", "b"),
        (SMALL, "-32768", -32768),
        (BIG, str(2**63 - 1), 2**63 - 1),
    ],
)
def test_text_a_file_holds_becomes_the_columns_value(
    column: Column[Any], text: Any, value: Any
) -> None:
    found = read(column, text)
    assert found == value and type(found) is type(value)


def test_an_aware_time_for_a_naive_column_is_stored_in_utc() -> None:
    assert read(NAIVE, "2024-01-01T01:00:00+01:00") == dt.datetime(2024, 1, 1, 0, 0)


@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        (FLAG, "maybe", "not a boolean: 'maybe' (use true/false, t/f, yes/no or 1/0)"),
        (FLAG, 2, "expected a boolean, got int 2"),
        (DAY, "2024-02-30", "not an ISO 8601 date (YYYY-MM-DD): '2024-02-30'"),
        (DAY, "30/01/2024", "not an ISO 8601 date (YYYY-MM-DD): '30/01/2024'"),
        (
            AWARE,
            "2024-01-01T00:00:00",
            "no time zone, and the column stores one; give an offset such as +00:00",
        ),
        (NAIVE, "yesterday", "not an ISO 8601 timestamp: 'yesterday'"),
        (CLOCK, "25:00", "not an ISO 8601 time (HH:MM[:SS]): '25:00'"),
        (PRICE, "1.005", "has 3 decimal places; the column keeps 2 and would round it"),
        (PRICE, "1234.5", "too large for NUMERIC(5, 2)"),
        (PRICE, None, "NULL in a NOT NULL column"),
        (LABEL, "abcdefghijk", "11 characters, longer than the column's 10"),
        (KIND, "c", "not one of ['a', 'b']"),
        (SMALL, "40000", "out of range for SmallInteger (-32768 to 32767)"),
        (COUNT, "1.5", "has a fractional part; the column holds integers"),
        (COUNT, 2.5, "has a fractional part; the column holds integers"),
        (
            BIG,
            str(2**63),
            "out of range for BigInteger (-9223372036854775808 to 9223372036854775807)",
        ),
    ],
)
def test_a_value_that_does_not_fit_is_refused_with_its_reason(
    column: Column[Any], value: Any, why: str
) -> None:
    assert reason(column, value) == why


@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        (PRICE, 0.1, "a float is inexact for a NUMERIC column; pass Decimal('0.1')"),
        (PRICE, "1.00", "expected a number, got str '1.00'"),
        (COUNT, "7", "expected an integer, got str '7'"),
        (COUNT, True, "expected an integer, got bool true"),
        (DAY, dt.datetime(2024, 1, 1), "expected a date, got datetime 2024-01-01 00:00:00"),
        (LABEL, 5, "expected text, got int 5"),
    ],
)
def test_python_values_are_taken_only_with_the_columns_own_type(
    column: Column[Any], value: Any, why: str
) -> None:
    """Mappings and ORM objects are strict: nothing is parsed, nothing guessed."""
    with pytest.raises(Unfit) as caught:
        coercer_for(column, lenient=False)(value)
    assert caught.value.reason == why


def test_each_problem_names_its_row_column_value_and_reason() -> None:
    problems = check_values({PRICE: Decimal("1.005"), LABEL: "x" * 30, COUNT: None}, row=7)
    assert [(p.row, p.column, p.value, p.kind) for p in problems] == [
        (7, "price", Decimal("1.005"), ProblemKind.BAD_VALUE),
        (7, "label", "x" * 30, ProblemKind.BAD_VALUE),
    ]
    assert str(problems[0]) == (
        "row 7, column 'price', value 1.005: has 3 decimal places; the column keeps 2 "
        "and would round it"
    )
    assert check_values({PRICE: None}, row=3) == [
        Problem("price", None, "NULL in a NOT NULL column", 3, ProblemKind.NULL)
    ]


def test_a_float_in_a_set_expression_on_an_exact_column_is_refused() -> None:
    price = Column("price", Numeric(5, 2))
    Table("goods", MetaData(), price)
    assert check_assignments({price: price * 1.1}) == [
        Problem(
            "price",
            1.1,
            "a float in an expression on an exact numeric column is computed in floating "
            "point; use Decimal('1.1')",
        )
    ]
    assert check_assignments({price: price * Decimal("1.1")}) == []
    assert check_assignments({price: literal(Decimal("1.005"), price.type)}) == [
        Problem(
            "price", Decimal("1.005"), "has 3 decimal places; the column keeps 2 and would round it"
        )
    ]
    assert check_assignments({PRICE: null()})[0].kind == ProblemKind.NULL
