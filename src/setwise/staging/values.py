"""Turn values read from a changeset into the Python values their columns take.

One check per column (``column_check``), built once for a run, with two paths
that accept and convert exactly the same values: ``one``, a value at a time, which
names the problem with any value it refuses; and ``batch``, a whole column of a
batch at once at C speed (``batches``), which gives up on a batch holding any value
that is not plainly fine, to be converted a value at a time.

Two kinds of source:

- *strict* (Python mappings and ORM objects): values must already have the column's
  type, exactly as ``update`` and ``patch`` require (a float is refused for an exact
  NUMERIC column);
- *lenient* (CSV, JSONL, Parquet, Arrow, DataFrames): text is parsed (numbers,
  ISO 8601 dates and timestamps, true/false), a float for an exact NUMERIC column
  is read by its shortest decimal form (``0.1`` → ``Decimal('0.1')``), then checked
  like any value, so a float with more places than the column keeps is refused.

Numbers in text are ASCII digits with an optional sign, point and exponent, as a
database or a spreadsheet writes them: Python's own ``int()``, ``float()`` and
``Decimal()`` also read ``1_000`` and Arabic-Indic or full-width digits, which no
database reads as numbers.
A whole number written as a decimal (``1.0``, ``5.00``, ``1e3``) is the integer it
is for an integer column, in either kind of source; so ``1`` and ``1.0`` are one key.

A JSON column's value is JSON: text is read as a JSON document (``jsonvalues``).

Time zones: a column with ``timezone=True`` needs an offset on every value; a
column without one stores naive times, and an aware value is converted to UTC first.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, types

from setwise.shown import shown
from setwise.staging.batches import (
    ColumnConverter,
    DecimalBatch,
    EachValue,
    IntegerBatch,
    NullsKept,
    TextBatch,
)
from setwise.staging.dates import dated, excel_serial
from setwise.staging.jsonvalues import parse_json
from setwise.staging.validation import (
    ANYWHERE,
    Storable,
    Unfit,
    checker_for,
    integer_range,
    is_exact,
    text_unfit,
)

Coercer = Callable[[Any], Any]
"""Takes a value as read; returns it as the column takes it, or raises ``Unfit``."""

_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off"})

#: A number as text: ASCII digits, an optional sign, point and exponent.
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIGITS = re.compile(r"[+-]?[0-9]+")
#: The words for NaN and the infinities that ``float()`` reads, lower-cased.
_NOT_FINITE = frozenset(
    sign + word for sign in ("", "+", "-") for word in ("nan", "inf", "infinity")
)
#: Digits of the longest integer text ``int()`` converts: Python refuses more than
#: 4,300 (``sys.get_int_max_str_digits``); longer text is read as a Decimal, whose
#: size the column check tells from its exponent.
_INT_DIGITS = 4_000


@dataclass(frozen=True)
class ColumnCheck:
    """One column's check and conversion: a value at a time, or a batch's column at once."""

    one: Coercer
    """Takes a value as read; returns it as the column takes it, or raises ``Unfit``."""
    batch: ColumnConverter
    """Takes one column of a batch; returns its values converted as ``one`` converts
    them, or None when any is not plainly fine: then go a value at a time."""


def column_check(
    column: Column[Any],
    *,
    lenient: bool,
    required: bool = False,
    storable: Storable = ANYWHERE,
    date_format: str | None = None,
) -> ColumnCheck:
    """The check for ``column``. ``lenient``: values read from text (see above).
    ``required``: a NULL is a problem (a key, a version) whatever the column allows;
    the batch path leaves it to the caller, which names what is missing. ``storable``:
    what the database takes beyond what every database takes. ``date_format``: how
    dates and timestamps are written in the text (``strptime`` codes), when not ISO 8601."""
    return ColumnCheck(
        coercer_for(column, lenient=lenient, storable=storable, date_format=date_format),
        column_converter(
            column, lenient=lenient, required=required, storable=storable, date_format=date_format
        ),
    )


def coercer_for(
    column: Column[Any],
    *,
    lenient: bool,
    storable: Storable = ANYWHERE,
    date_format: str | None = None,
) -> Coercer:
    """The coercer for one column; the type dispatch is done here, once. ``storable``
    and ``date_format`` as for ``column_check``."""
    check = checker_for(column, storable)
    parse = _parser_for(column.type, date_format) if lenient else None
    whole = isinstance(column.type, types.Integer) and not isinstance(column.type, types.Boolean)

    def coerce(value: Any) -> Any:
        if isinstance(value, str) and (unfit := text_unfit(value)) is not None:
            raise unfit
        if value is not None and parse is not None:
            value = parse(value)
        reason = check(value)
        if reason is not None:
            raise Unfit(reason)
        if whole and isinstance(value, Decimal):
            return int(value)  # checked: whole, and within the column's range
        return value

    return coerce


def column_converter(
    column: Column[Any],
    *,
    lenient: bool,
    required: bool,
    storable: Storable = ANYWHERE,
    date_format: str | None = None,
) -> ColumnConverter:
    """The batch path for ``column``; the rest as for ``column_check``."""
    kind = column.type
    nullable = bool(column.nullable) and not required
    if isinstance(kind, types.Integer) and not isinstance(kind, types.Boolean):
        low, high = integer_range(kind)
        return NullsKept(nullable, IntegerBatch(low, high, lenient))
    if isinstance(kind, types.Numeric) and is_exact(kind):
        return NullsKept(nullable, DecimalBatch(kind, lenient))
    if isinstance(kind, types.String) and not isinstance(kind, types.Enum):
        return NullsKept(nullable, TextBatch(kind.length, storable.nul_in_text))
    coerce = coercer_for(column, lenient=lenient, storable=storable, date_format=date_format)
    return EachValue(coerce, nullable)


def _parser_for(
    kind: types.TypeEngine[Any], date_format: str | None
) -> Callable[[Any], Any] | None:
    if isinstance(kind, types.Boolean):
        return _parse_bool
    if isinstance(kind, types.JSON):
        return parse_json
    if isinstance(kind, types.Uuid):
        return _parse_uuid if kind.as_uuid else _parse_uuid_text
    if isinstance(kind, types.Integer):
        return _parse_int
    if isinstance(kind, types.Float):  # first: from SQLAlchemy 2.1 a Float is no Numeric
        return _parse_float
    if isinstance(kind, types.Numeric):
        return _parse_decimal if kind.asdecimal else _parse_float
    if isinstance(kind, types.DateTime):
        if date_format is not None:
            return dated(date_format, timestamp=True, aware=bool(kind.timezone))
        return _parse_datetime if kind.timezone else _parse_naive_datetime
    if isinstance(kind, types.Date):
        return dated(date_format, timestamp=False) if date_format is not None else _parse_date
    if isinstance(kind, types.Time):
        return _parse_time if kind.timezone else _parse_naive_time
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


def _parse_uuid(value: Any) -> Any:
    """A UUID from its text in any form Python reads (braces, no dashes, upper case)."""
    if isinstance(value, str):
        try:
            return uuid.UUID(value.strip())
        except ValueError:
            raise Unfit(f"not a UUID: {shown(value)}") from None
    return value


def _parse_uuid_text(value: Any) -> Any:
    # A column of UUIDs as text: the text as its database writes it, lower case with
    # dashes, so that a key written in upper case still finds its row.
    parsed = _parse_uuid(value)
    return str(parsed) if isinstance(parsed, uuid.UUID) else parsed


def _parse_int(value: Any) -> Any:
    """An int, or a Decimal the check then finds whole (or not) and in range (or not)."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) <= _INT_DIGITS and _DIGITS.fullmatch(text):
            return int(text)
        if NUMBER.fullmatch(text):
            return Decimal(text)
        if text.lower() in _NOT_FINITE:
            raise Unfit("not a finite number; the column holds integers")
        raise Unfit(f"not an integer: {shown(value)}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Unfit("not a finite number; the column holds integers")
        if value.is_integer():
            return int(value)
        raise Unfit("has a fractional part; the column holds integers")
    return value


def _parse_decimal(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if NUMBER.fullmatch(text):
            return Decimal(text)
        if text.lower() in _NOT_FINITE:
            raise Unfit(f"not a finite number: {shown(value)}")
        raise Unfit(f"not a number: {shown(value)}")
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def _parse_float(value: Any) -> Any:
    """A float; a finite number too large for one is refused, never made an infinity."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _NOT_FINITE:
            return float(text)  # the column check decides whether the database takes it
        if not NUMBER.fullmatch(text):
            raise Unfit(f"not a number: {shown(value)}")
        value = Decimal(text)
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        if isinstance(value, Decimal) and not value.is_finite():
            return float(value)
        try:
            parsed = float(value)
        except OverflowError:  # an int past the largest double
            parsed = math.inf
        if math.isinf(parsed):
            raise Unfit("too large for a FLOAT column (at most 1.8e308)")
        return parsed
    return value


def _iso(read: Callable[[str], Any], form: str, dates: bool = False) -> Callable[[Any], Any]:
    """A parser of ISO 8601 text with ``read`` (``form``: what the text must look like);
    with ``dates``, a number is refused as the Excel serial date it likely is."""

    def parse(value: Any) -> Any:
        if dates and (unfit := excel_serial(value, None)) is not None:
            raise unfit
        if isinstance(value, str):
            try:
                parsed = read(value.strip())
            except ValueError:
                reason = f"not an ISO 8601 {form}: {shown(value)}"
                raise Unfit(reason, fix=("date_format",)) from None
            _whole_microseconds(value)
            return parsed
        return value

    return parse


#: The fraction of a second in ISO 8601 text: a point or a comma, then its digits.
_FRACTION = re.compile(r"[.,]([0-9]+)")


def _whole_microseconds(text: str) -> None:
    """Refuse a fraction of a second finer than a microsecond: Python's ``fromisoformat``
    reads ``.1234567`` as ``.123456``, cutting the digits a datetime cannot keep."""
    fraction = _FRACTION.search(text)
    if fraction is not None and fraction.group(1)[6:].strip("0"):
        raise Unfit(
            f"{len(fraction.group(1))} digits of a fraction of a second; setwise reads "
            "microseconds (6 digits) and would cut the rest: round it first"
        )


_parse_date = _iso(dt.date.fromisoformat, "date (YYYY-MM-DD)", dates=True)
_parse_datetime = _iso(dt.datetime.fromisoformat, "timestamp", dates=True)
_parse_time = _iso(dt.time.fromisoformat, "time (HH:MM[:SS])")


def _parse_naive_datetime(value: Any) -> Any:
    parsed = _parse_datetime(value)
    if isinstance(parsed, dt.datetime) and parsed.tzinfo is not None:
        return parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _parse_naive_time(value: Any) -> Any:
    # As a timestamp with an offset for a column without a time zone: converted to UTC.
    parsed = _parse_time(value)
    return in_utc(parsed) if isinstance(parsed, dt.time) else parsed


def in_utc(time: dt.time) -> dt.time:
    """``time`` in UTC, without its offset (a time without one as it is)."""
    offset = time.utcoffset()
    if offset is None:
        return time
    moment = dt.datetime.combine(dt.date(2000, 1, 1), time.replace(tzinfo=None))
    return (moment - offset).time()


def _parse_text(value: Any) -> Any:
    # A JSON number in a text column (an id written without quotes) is its digits.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value
