"""What a plan shows a person reviewing it: the first rows that would change, old and new
value per column, read by the very SELECT the journal keeps them with (bound parameters
only), and how many found rows a changeset's ``where`` leaves alone."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from sqlalchemy import Column, Connection, types

from setwise.report import ColumnChange, PlannedRow
from setwise.target import key_value
from setwise.writers.keys import EVERYTHING
from setwise.writers.merge import Merge
from setwise.writers.protocol import Writer

#: Digits past which a value is shown as computed, not rounded: PostgreSQL's NUMERIC
#: without a precision holds up to 131,072 digits before the point, and rounding a
#: number that long (``1e999999999``) would build it digit by digit.
_MOST_DIGITS = 1000


def _stored(column: Column[Any], value: Any) -> Any:
    """A new value as the column will hold it: an exact decimal rounded to the column's
    places, half away from zero as PostgreSQL and MariaDB store it (the SELECT gives
    ``price * 1.10`` as 25.5970, or on SQLite the float 25.597, where NUMERIC(10, 2)
    keeps 25.60)."""
    kind = column.type
    exact_column = isinstance(kind, types.Numeric) and not isinstance(kind, types.Float)
    if isinstance(value, float) and exact_column and getattr(kind, "asdecimal", False):
        value = Decimal(repr(value))
    scale = getattr(kind, "scale", None)
    if not isinstance(value, Decimal) or not isinstance(scale, int) or not value.is_finite():
        return value
    digits = value.adjusted() + 1 + scale
    precision = getattr(kind, "precision", None)
    if digits > (precision if isinstance(precision, int) else _MOST_DIGITS):
        return value  # the column cannot hold it, and the run refuses it: shown as computed
    with localcontext() as context:
        context.prec = max(context.prec, digits + 1)
        return value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)


def outside_count(connection: Connection, writer: Writer) -> int:
    """Found rows of a changeset its ``where`` leaves alone (0 without one)."""
    counted = writer.outside() if isinstance(writer, Merge) else None
    return 0 if counted is None else int(connection.execute(counted).scalar_one())


def sample_key(writer: Writer) -> Sequence[Column[Any]]:
    """The key ``journal_rows`` starts each row with."""
    return writer.target.identity if isinstance(writer, Merge) else writer.target.key


def sample_rows(connection: Connection, writer: Writer, rows: int) -> tuple[PlannedRow, ...]:
    """The first ``rows`` rows that would change, read by the very SELECT the journal
    keeps old and new values with: key, then (old, new) per written column."""
    if not rows:
        return ()
    columns = writer.written_columns()
    width = len(sample_key(writer))
    found = []
    for row in connection.execute(writer.journal_rows(EVERYTHING).limit(rows)):
        key = key_value(row[:width])
        pairs = [
            ColumnChange(column.name, row[width + 2 * i], _stored(column, row[width + 2 * i + 1]))
            for i, column in enumerate(columns)
        ]
        # Columns a row keeps (a JSONL row leaving one out) are not shown; all are, when
        # the values differ only in a way Python does not tell apart (a float's last bit).
        changed = [pair for pair in pairs if pair.old != pair.new] or pairs
        found.append(PlannedRow(key, tuple(changed)))
    return tuple(found)
