"""Check values against their columns before any statement is sent.

The database would refuse most of these too, but one at a time, after a round trip,
and some not at all: SQLite stores a string in an INTEGER column, and every database
silently rounds a Decimal with more places than the column's scale. Checking here
finds every problem at once and names the column, the value and the reason.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, types
from sqlalchemy.sql.elements import BindParameter, ClauseElement, Null
from sqlalchemy.sql.visitors import iterate

from setwise.problems import Problem, ProblemKind
from setwise.shown import shown

if TYPE_CHECKING:
    from setwise.dialects import Strategy

# Inclusive ranges of the integer column types, as the three databases store them.
_INTEGER_RANGES: tuple[tuple[type[types.TypeEngine[Any]], int, int], ...] = (
    (types.SmallInteger, -(2**15), 2**15 - 1),
    (types.BigInteger, -(2**63), 2**63 - 1),
    (types.Integer, -(2**31), 2**31 - 1),
)


#: Every integer column holds less than 10 ** 19 (BIGINT: 2 ** 63 - 1 is 9.2e18): a
#: Decimal whose leading digit is at that power or above is out of range, found from
#: its exponent before ``int()`` would build a number of a billion digits.
_INTEGER_DIGITS = 19

Checker = Callable[[Any], str | None]
"""Takes a value; returns why it cannot be written to the column, or None."""


class Unfit(ValueError):
    """A value that cannot be written; the argument is the reason. ``fix``: the
    argument that would settle it, as ``Problem.fix`` holds it."""

    def __init__(self, reason: str, *, fix: tuple[Any, ...] = ()) -> None:
        super().__init__(reason)
        self.fix = fix

    @property
    def reason(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Storable:
    """Values only some databases store as given (see the flags on ``Strategy``)."""

    nul_in_text: bool = True
    """A text value may hold a NUL character."""
    nonfinite_floats: bool = True
    """A FLOAT column takes NaN and ±Infinity."""
    single_floats: Callable[[types.Float[Any]], bool] | None = None
    """Whether a FLOAT column of a type keeps single precision (``Strategy.single_precision``)."""

    @classmethod
    def on(cls, strategy: Strategy) -> Storable:
        """What ``strategy``'s database stores."""
        return cls(
            strategy.text_holds_nul, strategy.floats_hold_nonfinite, strategy.single_precision
        )


ANYWHERE = Storable()
"""No database's limits: the checks every value gets whatever it is written to."""


def check_value(column: Column[Any], value: Any, storable: Storable = ANYWHERE) -> str | None:
    """Why ``value`` cannot be written to ``column``, or None when it can."""
    return checker_for(column, storable)(value)


@lru_cache(maxsize=4096)
def checker_for(column: Column[Any], storable: Storable = ANYWHERE) -> Checker:
    """The check for one column, with the type dispatch done once, not per value."""
    check = _checker_for_type(column.type, storable)
    nullable = column.nullable

    def checked(value: Any) -> str | None:
        if value is None:
            return None if nullable else "NULL in a NOT NULL column"
        return check(value)

    return checked


def _checker_for_type(kind: types.TypeEngine[Any], storable: Storable) -> Checker:
    if isinstance(kind, types.Boolean):
        return lambda v: None if isinstance(v, bool) else f"expected a boolean, got {_kind(v)}"
    if isinstance(kind, types.Integer):
        return partial(_check_integer, kind)
    # Float before Numeric: from SQLAlchemy 2.1 a Float is no Numeric.
    if isinstance(kind, types.Float) or (isinstance(kind, types.Numeric) and not kind.asdecimal):
        single = isinstance(kind, types.Float) and bool(
            storable.single_floats and storable.single_floats(kind)
        )
        return partial(_check_float, storable.nonfinite_floats, single)
    if isinstance(kind, types.Numeric):
        return partial(_check_numeric, kind)
    if isinstance(kind, types.Enum):
        return partial(_check_enum, kind)
    if isinstance(kind, types.String):
        return partial(_check_string, kind.length, storable.nul_in_text)
    if isinstance(kind, types.DateTime):
        return partial(_check_datetime, bool(kind.timezone))
    if isinstance(kind, types.Date):
        return _check_date
    if isinstance(kind, types.Time):
        return partial(_check_time, bool(kind.timezone))
    if isinstance(kind, types.Uuid):
        return partial(_check_uuid, bool(kind.as_uuid))
    return lambda v: None


def _check_string(length: int | None, nul_ok: bool, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"expected text, got {_kind(value)}"
    if length is not None and len(value) > length:
        return f"{len(value)} characters, longer than the column's {length}"
    if not nul_ok and "\0" in value:
        return (
            f"a NUL character at character {value.index(chr(0)) + 1}, which this "
            "database's text cannot hold"
        )
    return text_problem(value)


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be sent as UTF-8, or None: a byte that was not UTF-8 in the
    file (read as a ``surrogateescape`` character), or a lone surrogate."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        point = ord(text[error.start])
        at = f"at character {error.start + 1}"
        if 0xDC80 <= point <= 0xDCFF:
            return (
                f"not UTF-8: byte 0x{point - 0xDC00:02x} {at}; save the file as UTF-8 "
                "(from Latin-1: iconv -f latin1 -t utf-8), or name its encoding"
            )
        return f"a lone surrogate (U+{point:04X}) {at}, which is no character"
    return None


#: The argument that reads a file whose bytes are not UTF-8, with the likeliest value.
ENCODING_FIX = ("encoding", "latin-1")


def text_unfit(text: str) -> Unfit | None:
    """``text_problem`` as an ``Unfit``; a byte that was not UTF-8 names ``encoding``."""
    reason = text_problem(text)
    if reason is None:
        return None
    return Unfit(reason, fix=ENCODING_FIX if reason.startswith("not UTF-8") else ())


def _check_datetime(aware: bool, value: Any) -> str | None:
    if not isinstance(value, dt.datetime):
        return f"expected a datetime, got {_kind(value)}"
    if aware and value.tzinfo is None:
        return "no time zone, and the column stores one; give an offset such as +00:00"
    return None


def _check_time(aware: bool, value: Any) -> str | None:
    if not isinstance(value, dt.time):
        return f"expected a time, got {_kind(value)}"
    if not aware and value.tzinfo is not None:
        # The drivers send the time with its offset and the column drops it: 10:00+02:00
        # would be stored as 10:00, a time two hours from the one given.
        return "a time with an offset, and the column stores none; give the time without it"
    return None


def _check_uuid(as_uuid: bool, value: Any) -> str | None:
    # SQLAlchemy's Uuid takes a uuid.UUID (as_uuid) or its text, and sends neither
    # checked: SQLite would fail on text in the driver, or store text that is no UUID.
    if as_uuid:
        return None if isinstance(value, uuid.UUID) else f"expected a UUID, got {_kind(value)}"
    if not isinstance(value, str):
        return f"expected a UUID's text, got {_kind(value)}"
    try:
        uuid.UUID(value)
    except ValueError:
        return f"not a UUID: {shown(value)}"
    return None


def _check_date(value: Any) -> str | None:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        return f"expected a date, got {_kind(value)}"
    return None


def check_values(
    values: Mapping[Column[Any], Any], row: int | None = None, storable: Storable = ANYWHERE
) -> list[Problem]:
    """Every problem with writing ``values`` (column → value) to their columns, on a
    database that stores what ``storable`` says."""
    problems = []
    for column, value in values.items():
        reason = check_value(column, value, storable)
        if reason is not None:
            kind = ProblemKind.NULL if value is None else ProblemKind.BAD_VALUE
            problems.append(Problem(column.name, value, reason, row, kind))
    return problems


def check_assignments(
    assignments: Mapping[Column[Any], ClauseElement], storable: Storable = ANYWHERE
) -> list[Problem]:
    """Problems with the literal values in the SET clause of an UPDATE, on a database
    that stores what ``storable`` says.

    A plain literal is checked like any value. Inside an expression such as
    ``price * 1.10`` only floats are checked: combining an exact numeric column with
    a float makes the database compute in floating point.
    """
    problems = []
    for column, expression in assignments.items():
        if isinstance(expression, Null):
            reason = check_value(column, None, storable)
            if reason:
                problems.append(Problem(column.name, None, reason, kind=ProblemKind.NULL))
        elif isinstance(expression, BindParameter) and not expression.callable:
            reason = check_value(column, expression.value, storable)
            if reason:
                problems.append(Problem(column=column.name, value=expression.value, reason=reason))
        elif is_exact(column.type):
            problems.extend(
                Problem(
                    column=column.name,
                    value=value,
                    reason="a float in an expression on an exact numeric column is computed "
                    f"in floating point; use Decimal({str(value)!r})",
                )
                for value in _float_literals(expression)
            )
    return problems


def _float_literals(expression: ClauseElement) -> Iterable[float]:
    for element in iterate(expression):
        if isinstance(element, BindParameter) and isinstance(element.value, float):
            yield element.value


def is_exact(kind: types.TypeEngine[Any]) -> bool:
    """An exact numeric type: a NUMERIC that reads as Decimal, no FLOAT."""
    return (
        isinstance(kind, types.Numeric)
        and not isinstance(kind, types.Float)
        and bool(kind.asdecimal)
    )


def _check_integer(kind: types.Integer, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return f"expected an integer, got {_kind(value)}"
    low, high = integer_range(kind)
    out_of_range = f"out of range for {kind.__class__.__name__} ({low} to {high})"
    if isinstance(value, Decimal):
        if not value.is_finite():
            return "not a finite number; the column holds integers"
        if value and value.adjusted() >= _INTEGER_DIGITS:
            return out_of_range
        if value != value.to_integral_value():
            return "has a fractional part; the column holds integers"
        value = int(value)
    return None if low <= value <= high else out_of_range


def integer_range(kind: types.Integer) -> tuple[int, int]:
    """The lowest and highest value an integer column of ``kind`` holds."""
    for integer_type, low, high in _INTEGER_RANGES:
        if isinstance(kind, integer_type):
            return low, high
    return -(2**63), 2**63 - 1  # an integer type of no known size: the widest


def _check_numeric(kind: types.Numeric[Any], value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return f"expected a number, got {_kind(value)}"
    if isinstance(value, float):
        return f"a float is inexact for a NUMERIC column; pass Decimal({str(value)!r})"
    return check_decimal_fits(kind, Decimal(value))


#: The largest single-precision float: a REAL or FLOAT(24) column refuses more.
_SINGLE_MAX = 3.4028234663852886e38


def _check_float(nonfinite_ok: bool, single: bool, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return f"expected a number, got {_kind(value)}"
    if isinstance(value, Decimal):
        finite = value.is_finite()
    else:
        finite = not isinstance(value, float) or math.isfinite(value)
    if not finite:
        if nonfinite_ok:
            return None
        return "not a finite number: this database does not store NaN or infinity as given"
    try:
        stored = float(value)  # a Decimal's text, rounded; no arithmetic on its exponent
    except OverflowError:  # an int past the largest double
        stored = math.inf
    if math.isinf(stored):
        return "too large for a FLOAT column (at most 1.8e308)"
    if single and abs(stored) > _SINGLE_MAX:
        return "too large for this single-precision FLOAT column (at most 3.4e38)"
    return None


def check_decimal_fits(kind: types.Numeric[Any], value: Decimal) -> str | None:
    """Why ``value`` does not fit NUMERIC(precision, scale), or None."""
    if not value.is_finite():
        return "not a finite number"
    _, digits, raw_exponent = value.as_tuple()
    exponent = int(raw_exponent)  # an int for every finite Decimal
    # Zeros at the end of the fraction round nothing away: 1.500 is 1.50 in two places,
    # and a zero has no places however it is written (0.000, 0E-9).
    zeros = len(digits) - len(bytes(digits).rstrip(b"\0"))
    places = max(0, -exponent - zeros) if any(digits) else 0
    if kind.scale is not None and places > kind.scale:
        return f"has {places} decimal places; the column keeps {kind.scale} and would round it"
    if kind.precision is not None:
        scale = kind.scale or 0
        # Zero has no integer digits however it is written (0, 0.00, 0E+5).
        integer_digits = 0 if not any(digits) else max(0, len(digits) + exponent)
        if integer_digits > kind.precision - scale:
            return f"too large for NUMERIC({kind.precision}, {scale})"
    return None


def _check_enum(kind: types.Enum, value: Any) -> str | None:
    allowed = list(kind.enums)
    name = value.name if isinstance(value, enum.Enum) else value
    if name not in allowed:
        return f"not one of {allowed}"
    return None


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {shown(value)}"
