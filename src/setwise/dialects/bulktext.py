"""Staging columns as one block of tab-separated text: PostgreSQL's COPY text format and
MySQL's LOAD DATA defaults (fields end at a tab, lines at a newline, backslash escapes,
``\\N`` for NULL).

A column of one plain type goes as it is (a text column checked for characters that
need escaping all at once): 50,000 rows of
six columns take ~20 ms (one ``%`` format per row), against ~60-80 ms through
psycopg's ``write_row`` and ~180 ms with a Python function per value
(benchmarks/README.md). A column holding any
value this module does not format exactly makes the whole block None, and the caller
stages that batch its other way.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

from setwise.dialects.columntext import ColumnForms, Format

NULL = "\\N"

#: Characters that need a backslash escape. A NUL is escaped for MySQL (``\\0``) and
#: refused for PostgreSQL, whose text cannot hold it.
_SPECIAL = "\\\t\n\r\0"


def _decimal(value: Decimal) -> str | None:
    return format(value, "f") if value.is_finite() else None


def _naive_datetime(value: dt.datetime) -> str | None:
    return None if value.tzinfo is not None else value.isoformat(sep=" ")


def _naive_time(value: dt.time) -> str | None:
    return None if value.tzinfo is not None else value.isoformat()


def _float(value: float) -> str | None:
    return repr(value) if math.isfinite(value) else None


class TextFormat:
    """How one database reads tab-separated staging text."""

    def __init__(self, *, true: str, false: str, nul: str | None) -> None:
        self.nul = nul
        """The escape of a NUL character; None: a text with a NUL cannot go this way."""
        forms: dict[type, Format] = {
            int: int.__repr__,
            str: self.escaped,
            Decimal: _decimal,
            bool: lambda value: true if value else false,
            float: _float,
            dt.date: dt.date.isoformat,
            dt.datetime: _naive_datetime,
            dt.time: _naive_time,
        }
        self.forms = ColumnForms(
            forms, null=NULL, text="%s", special=_SPECIAL, escape=self._escaped_column
        )
        """How a column's values are written (``columntext``)."""

    def escaped(self, text: str) -> str | None:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        text = text.replace("\r", "\\r")
        if "\0" in text:
            return None if self.nul is None else text.replace("\0", self.nul)
        return text

    def _escaped_column(self, values: Sequence[str]) -> list[str] | None:
        escaped = list(map(self.escaped, values))
        return None if None in escaped else cast("list[str]", escaped)

    def column(self, values: Sequence[Any]) -> tuple[str, Sequence[Any] | None] | None:
        """One column as a printf conversion and the values it formats, or None when a
        value cannot go this way. A column of one integer throughout (the presence
        masks of rows that carry every field) is its text alone, with no values: each
        line holds it as it is, and the format has one field fewer to convert."""
        found = self.forms.column(values)
        if found is not None and found[0] == "%d":  # integers throughout
            first = values[0]
            if values[-1] == first and values.count(first) == len(values):
                return int.__repr__(first), None
        return found

    def block(self, columns: Sequence[Sequence[Any]]) -> str | None:
        """The rows of ``columns`` as lines of tab-separated fields, each line ended by a
        newline; None when any value cannot go this way. One printf per row, in C."""
        specs = []
        fields = []
        for values in columns:
            found = self.column(values)
            if found is None:
                return None
            spec, formatted = found
            specs.append(spec)
            if formatted is not None:
                fields.append(formatted)
        line = "\t".join(specs) + "\n"
        if not fields:  # every column one integer throughout
            return line * len(columns[0]) if columns else ""
        return "".join(map(line.__mod__, zip(*fields, strict=True)))


POSTGRESQL = TextFormat(true="t", false="f", nul=None)
MYSQL = TextFormat(true="1", false="0", nul="\\0")
