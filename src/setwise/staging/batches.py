"""Convert a batch of changeset values column by column, at C speed where it can.

The row-by-row path (``values.coercer_for``) costs tens of microseconds a row, more
than the database takes to write it. Here a whole column of a batch is checked and
converted at once (``map``, ``min``/``max``, ``sum``), for the common types. A column
converter (``values.column_converter`` picks one per column) returns the converted
values, or None when any value is not plainly fine: the caller then converts that
batch row by row, which finds and names every problem.
So this path never accepts a value the row path refuses, and converts every value it
accepts exactly as the row path would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal, Inexact, InvalidOperation, localcontext
from itertools import repeat
from operator import is_
from typing import Any

from sqlalchemy import types

from setwise.staging.validation import Unfit

ColumnConverter = Callable[[Sequence[Any]], list[Any] | None]
"""Takes one column of a batch; returns its converted values, or None: go row by row."""

_NONE = type(None)


KindsConverter = Callable[[list[Any], set[type]], list[Any] | None]
"""Takes the non-NULL values of a column and the set of their types (read once, in C,
by the caller); returns them converted, or None: go row by row."""


class NullsKept:
    """Converts the non-NULL values of a column; NULLs stay NULL where allowed."""

    def __init__(self, nullable: bool, convert: KindsConverter):
        self.nullable = nullable
        self.convert = convert

    def __call__(self, values: Sequence[Any]) -> list[Any] | None:
        kinds = set(map(type, values))
        if _NONE not in kinds:
            return self.convert(values if isinstance(values, list) else list(values), kinds)
        if not self.nullable:
            return None
        present = [v for v in values if v is not None]
        kinds.discard(_NONE)
        converted = self.convert(present, kinds) if present else []
        if converted is None:
            return None
        found = iter(converted)
        return [None if v is None else next(found) for v in values]


class IntegerBatch:
    def __init__(self, low: int, high: int, lenient: bool) -> None:
        self.low, self.high, self.lenient = low, high, lenient

    def __call__(self, values: list[Any], kinds: set[type]) -> list[Any] | None:
        if kinds == {str} and self.lenient:
            if not _plain_digits(values):
                return None
            try:
                values = list(map(int, values))  # int() strips spaces, as the row path does
            except ValueError:
                return None
        elif kinds != {int}:
            return None  # bool, float, Decimal: the row path decides
        if min(values) < self.low or max(values) > self.high:
            return None
        return values


class DecimalBatch:
    """An exact NUMERIC(precision, scale) column: Decimals (or text, or floats when lenient)."""

    def __init__(self, kind: types.Numeric[Any], lenient: bool) -> None:
        self.scale = kind.scale
        # Digits allowed before the point: |v| < 10 ** digits.
        self.digits = kind.precision - (kind.scale or 0) if kind.precision is not None else None
        self.lenient = lenient

    def __call__(self, values: list[Any], kinds: set[type]) -> list[Any] | None:
        try:
            if self.lenient and kinds == {str}:
                if not _plain_digits(values):
                    return None
                values = list(map(Decimal, values))  # Decimal() strips spaces too
            elif self.lenient and kinds == {float}:
                values = [Decimal(repr(v)) for v in values]
            elif kinds != {Decimal}:
                return None
            with localcontext() as context:
                # Exact arithmetic: a sum's exponent is then the smallest exponent of its
                # terms, so one sum tells the most decimal places of any value; an
                # infinity or NaN makes it non-finite (or raises).
                context.prec = 10_000
                context.traps[InvalidOperation] = True
                context.traps[Inexact] = True  # too many digits to add exactly: go row by row
                total = sum(values, Decimal(0))
        except (InvalidOperation, Inexact, ValueError):
            return None
        if not total.is_finite():
            return None
        exponent = int(total.as_tuple().exponent)
        if self.scale is not None and -exponent > self.scale:
            return None
        # adjusted() is the power of ten of the leading digit: for a non-zero value,
        # |v| < 10 ** digits exactly when it is under ``digits``. A zero written with a
        # large exponent (0E+9) goes row by row, which accepts it. One pass over ints,
        # where max() and min() of Decimals took twice as long.
        if self.digits is not None and max(map(Decimal.adjusted, values)) >= self.digits:
            return None
        return values


class TextBatch:
    def __init__(self, length: int | None, nul_ok: bool) -> None:
        self.length = length
        self.nul_ok = nul_ok

    def __call__(self, values: list[Any], kinds: set[type]) -> list[Any] | None:
        if kinds != {str}:
            return None
        if self.length is not None and max(map(len, values)) > self.length:
            return None
        joined = "".join(values)
        if not self.nul_ok and "\0" in joined:
            return None
        if not joined.isascii():
            try:
                joined.encode("utf-8")  # a byte that was not UTF-8, a lone surrogate
            except UnicodeEncodeError:
                return None
        return values


class EachValue:
    """Any other type: the row path's own coercer, one value after another."""

    def __init__(self, coerce: Callable[[Any], Any], nullable: bool) -> None:
        self.coerce = coerce
        self.nullable = nullable

    def __call__(self, values: Sequence[Any]) -> list[Any] | None:
        if not self.nullable and _has_none(values):
            return None
        try:
            return list(map(self.coerce, values))
        except Unfit:
            return None


def _plain_digits(texts: list[str]) -> bool:
    """No text holds what ``int()`` and ``Decimal()`` read but the row path refuses: an
    underscore, or a digit outside ASCII (``values.NUMBER``)."""
    joined = "".join(texts)
    return joined.isascii() and "_" not in joined


def _has_none(values: Sequence[Any]) -> bool:
    # By identity: ``None in values`` compares every value with ==, slow for Decimals.
    return any(map(is_, values, repeat(None)))
