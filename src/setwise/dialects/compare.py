"""Whether writing a value changes what a column stores, byte for byte.

A run writes a row only when some value it sets would change what the row stores.
That test must not use the column's collation (``utf8mb4_general_ci``, ``COLLATE
NOCASE``, citext and nondeterministic ICU collations call 'Boeing' equal to 'BOEING'
and ignore trailing spaces), and it must compare the value as the column will store it
(a NUMERIC(5, 2) rounds 20.001 to 20.00, a REAL keeps single precision, a TIMESTAMP(0)
drops fractions). Each dialect says how, in a subclass of ``StoredComparison``; the key
match that pairs a change with its row keeps the column's own rules.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, ColumnElement


class StoredComparison:
    """The generic test: the database's own ``IS DISTINCT FROM``, the value as given."""

    def assigned(self, column: Column[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
        """What a set-based run writes for ``value``: the value itself, unless the
        database would store it otherwise than its declared type says (SQLite keeps any
        number of places in a NUMERIC(5, 2) column)."""
        return value

    def stored(self, column: Column[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
        """``value`` as ``column`` will store it: rounded to its scale or precision."""
        return value

    def kept(self, column: Column[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
        """``value``, kept by a staging table or the journal in ``staging_type`` (an
        ENUM's value as text), as ``column``'s own type: to match a key or be written."""
        return value

    def key_match(self, column: Column[Any], staged: ColumnElement[Any]) -> ColumnElement[bool]:
        """A target row's key ``column`` equals the ``staged`` key, by the column's own
        rules (its collation)."""
        return column == self.kept(column, staged)

    def differs(
        self, column: Column[Any], value: ColumnElement[Any], *, typed: bool = False
    ) -> ColumnElement[bool]:
        """True where ``column`` does not hold what writing ``value`` stores, byte for
        byte. ``typed``: ``value`` is read from a column of the same type (a staging
        table, the journal), so it is already in the column's stored form."""
        return column.is_distinct_from(value if typed else self.stored(column, value))
