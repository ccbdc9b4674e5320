"""Turn values read from a changeset into the Python values their columns take.

Two kinds of source:

- *strict* (Python mappings and ORM objects): values must already have the column's
  type, exactly as ``update`` and ``patch`` require (a float is refused for an exact
  NUMERIC column);
- *lenient* (CSV, JSONL, Parquet, Arrow, DataFrames): text is parsed (numbers,
  ISO 8601 dates and timestamps, true/false), a float for an exact NUMERIC column
  is read by its shortest decimal form (``0.1`` → ``Decimal('0.1')``), then checked
  like any value, so a float with more places than the column keeps is refused.

Time zones: a column with ``timezone=True`` needs an offset on every value; a
column without one stores naive times, and an aware value is converted to UTC first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Column, types

from setwise.shown import shown
from setwise.validation import checker_for

Coercer = Callable[[Any], Any]
"""Takes a value as read; returns it as the column takes it, or raises ``Unfit``."""

_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off"})


class Unfit(ValueError):
    """A value that cannot be written; the argument is the reason."""

    @property
    def reason(self) -> str:
        return str(self.args[0])


def coercer_for(column: Column[Any], *, lenient: bool) -> Coercer:
    """The coercer for one column; the type dispatch is done here, once."""
    check = checker_for(column)
    parse = _parser_for(column.type) if lenient else None

    def coerce(value: Any) -> Any:
        if value is not None and parse is not None:
            value = parse(value)
        reason = check(value)
        if reason is not None:
            raise Unfit(reason)
        return value

    return coerce


def _parser_for(kind: types.TypeEngine[Any]) -> Callable[[Any], Any] | None:
    if isinstance(kind, types.Boolean):
        return _parse_bool
    if isinstance(kind, types.Integer):
        return _parse_int
    if isinstance(kind, types.Numeric):
        exact = bool(kind.asdecimal) and not isinstance(kind, types.Float)
        return _parse_decimal if exact else _parse_float
    if isinstance(kind, types.DateTime):
        return _parse_datetime if kind.timezone else _parse_naive_datetime
    if isinstance(kind, types.Date):
        return _parse_date
    if isinstance(kind, types.Time):
        return _parse_time
    if isinstance(kind, types.String):
        return _parse_text
    return None


def _parse_bool(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise Unfit(f"not a boolean: {shown(value)} (use true/false, t/f, yes/no or 1/0)")
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    return value


def _parse_int(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise Unfit(f"not an integer: {shown(value)}") from None
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise Unfit("has a fractional part; the column holds integers")
    return value


def _parse_decimal(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            raise Unfit(f"not a number: {shown(value)}") from None
        if not parsed.is_finite():
            raise Unfit(f"not a finite number: {shown(value)}")
        return parsed
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def _parse_float(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise Unfit(f"not a number: {shown(value)}") from None
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return float(value)
    return value


def _parse_date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise Unfit(f"not an ISO 8601 date (YYYY-MM-DD): {shown(value)}") from None
    return value


def _parse_datetime(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise Unfit(f"not an ISO 8601 timestamp: {shown(value)}") from None
    return value


def _parse_naive_datetime(value: Any) -> Any:
    parsed = _parse_datetime(value)
    if isinstance(parsed, dt.datetime) and parsed.tzinfo is not None:
        return parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _parse_time(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            raise Unfit(f"not an ISO 8601 time (HH:MM[:SS]): {shown(value)}") from None
    return value


def _parse_text(value: Any) -> Any:
    # A JSON number in a text column (an id written without quotes) is its digits.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value
