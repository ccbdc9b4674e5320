"""Staging rows on MySQL and MariaDB as multi-row ``INSERT … VALUES`` text laid out a
column at a time, without the driver's escaping of each value.

PyMySQL's executemany escapes every value through a Python function and formats
every row with ``%``; for 100,000 rows of six columns that is most of setwise's own
time (benchmarks/README.md). Here a column of one plain type is written at once: its
integers by ``%d``, its text escaped as MySQL's ``mysql_real_escape_string`` (and PyMySQL's
``escape_string``) escape it, by a chain of ``str.replace`` per value, its
finite Decimals in plain notation; then one ``%`` per row. Every value is written as
PyMySQL writes it, so the server reads the same value.

That text is exact only where the server reads backslash escapes (no
``NO_BACKSLASH_ESCAPES`` in the session's sql_mode) and the client's character set is
UTF-8, whose bytes never hide a backslash inside a multi-byte character (as GBK's or
Shift-JIS's can): ``Session.read`` says whether both hold. A batch holding any value
of a type not listed here (a timedelta, an aware datetime, NaN ...) is None, and the
caller INSERTs it the driver's way.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from decimal import Decimal
from itertools import accumulate
from typing import Any

from sqlalchemy import Connection, Table

from setwise.dialects.columntext import ColumnForms

_SPECIAL = "\0\\\n\r\x1a\"'"

#: Client character sets whose bytes hold a backslash only as the character itself.
_UTF8 = frozenset({"utf8mb4", "utf8mb3", "utf8"})

#: Room left in a packet beside the statement (the packet header and command byte).
_SLACK = 1024

#: The longest statement aimed at: larger ones stage no faster and hold more memory.
_LONGEST = 4 * 1024 * 1024


def _escape(value: str) -> str:
    """``value`` with MySQL's string escapes (mysql_real_escape_string; PyMySQL's
    ``converters._escape_table``). A chain of ``replace`` (the backslash first): 3.5x
    faster than ``str.translate`` on text that holds any of them (benchmarks/README.md)."""
    return (
        value.replace("\\", "\\\\")
        .replace("\0", "\\0")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\x1a", "\\Z")
        .replace('"', '\\"')
        .replace("'", "\\'")
    )


def _escaped(values: Sequence[str]) -> list[str]:
    return list(map(_escape, values))


def _text(value: str) -> str:
    return "'" + _escape(value) + "'"


def _decimal(value: Decimal) -> str | None:
    return format(value, "f") if value.is_finite() else None


def _float(value: float) -> str | None:
    # PyMySQL's escape_float: the shortest repr, read back as a DOUBLE (e0), never a DECIMAL.
    if not math.isfinite(value):
        return None
    text = repr(value)
    return text if "e" in text else text + "e0"


def _naive(value: dt.datetime | dt.time) -> str | None:
    if value.tzinfo is not None:
        return None
    text = value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return "'" + text + "'"


#: Each value as the SQL literal PyMySQL writes for it; text in quotes (``'%s'``).
_LITERALS = ColumnForms(
    {
        int: int.__repr__,
        bool: lambda value: "1" if value else "0",
        str: _text,
        Decimal: _decimal,
        float: _float,
        bytes: lambda value: "_binary X'" + value.hex() + "'",
        dt.date: lambda value: "'" + value.isoformat() + "'",
        dt.datetime: _naive,
        dt.time: _naive,
    },
    null="NULL",
    text="'%s'",
    special=_SPECIAL,
    escape=_escaped,
)


def column_literals(values: Sequence[Any]) -> tuple[str, Sequence[Any]] | None:
    """One column as a printf conversion and the values it formats into SQL literals,
    or None when a value is not one written here (``columntext``)."""
    return _LITERALS.column(values)


def row_literals(columns: Sequence[Sequence[Any]]) -> list[str] | None:
    """Each row of ``columns`` as ``(v1,v2,…)`` SQL text; None when a value is not one
    written here. One printf per row, in C."""
    specs = []
    fields = []
    for values in columns:
        found = column_literals(values)
        if found is None:
            return None
        specs.append(found[0])
        fields.append(found[1])
    row = "(" + ",".join(specs) + ")"
    return list(map(row.__mod__, zip(*fields, strict=True)))


class Session:
    """What the server says about a connection's session, read in one statement."""

    def __init__(self, connection: Connection) -> None:
        packet, mode, charset = connection.exec_driver_sql(
            "SELECT @@max_allowed_packet, @@SESSION.sql_mode, @@character_set_client"
        ).one()
        self.exact = "NO_BACKSLASH_ESCAPES" not in str(mode).upper() and str(charset) in _UTF8
        """Text laid out here reads back as written: backslash escapes, UTF-8 client."""
        self.longest = max(1, min(int(packet) - _SLACK, _LONGEST))
        """The longest statement to send, in bytes: under max_allowed_packet."""


def statements(head: str, rows: Sequence[str], longest: int) -> Iterator[str]:
    """``head`` followed by ``rows`` joined with commas, as statements of at most
    ``longest`` bytes in UTF-8 (a row too long alone goes alone, for the server to refuse)."""
    ends = list(accumulate(len(row) + 1 for row in rows))
    start = 0
    done = 0
    while start < len(rows):
        stop = max(start + 1, bisect_right(ends, done + longest - len(head)))
        statement = head + ",".join(rows[start:stop])
        if not statement.isascii() and stop - start > 1:
            # Characters count fewer than their bytes: halve until the bytes fit.
            while len(statement.encode()) > longest and stop - start > 1:
                stop = start + (stop - start) // 2
                statement = head + ",".join(rows[start:stop])
        yield statement
        done = ends[stop - 1]
        start = stop


def insert_values(
    connection: Connection, table: Table, columns: Sequence[Sequence[Any]], session: Session
) -> bool:
    """INSERT ``columns`` (``driver_columns`` values, one sequence per column of
    ``table``) as multi-row statements laid out here; False (nothing sent) when the
    session or a value does not allow it."""
    if not session.exact:
        return False
    rows = row_literals(columns)
    if rows is None:
        return False
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(column.name) for column in table.columns)
    head = f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES "
    # no_parameters: the driver sends the text as it is, with no % formatting of its own.
    options = {"no_parameters": True}
    for statement in statements(head, rows, session.longest):
        connection.exec_driver_sql(statement, execution_options=options)
    return True
