"""A plan's sample shows each new value as its column will store it, and never fails
on a value the column cannot hold (the run refuses that one, by row and column)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Column, Float, Integer, Numeric

from setwise.api.sample import _stored


def test_an_exact_decimal_is_rounded_half_away_from_zero_to_the_columns_places() -> None:
    price = Column("price", Numeric(10, 2))
    assert _stored(price, Decimal("25.5970")) == Decimal("25.60")
    assert _stored(price, Decimal("-0.125")) == Decimal("-0.13")
    assert _stored(price, 25.597) == Decimal("25.60")  # SQLite's float for a NUMERIC


def test_a_value_too_large_for_the_column_is_shown_as_computed() -> None:
    huge = Decimal("1.05E+301")
    assert _stored(Column("price", Numeric(10, 2)), huge) == huge
    assert _stored(Column("price", Numeric(scale=2)), Decimal("1E+999999999")).is_finite()


def test_a_value_longer_than_the_default_context_still_rounds() -> None:
    long = Decimal("1" * 40 + ".125")
    assert _stored(Column("big", Numeric(60, 2)), long) == Decimal("1" * 40 + ".13")


def test_other_columns_keep_their_values() -> None:
    assert _stored(Column("ratio", Float()), 0.1) == 0.1
    assert _stored(Column("stock", Integer()), 7) == 7
