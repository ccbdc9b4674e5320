"""A run's key ranges: the span of keys a chunk covers, and ``key IN (...)`` for a set of keys.

Both work for single and composite keys (a row value where the key has several columns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, literal, tuple_


@dataclass(frozen=True)
class Span:
    """A chunk's keys: after ``lower`` (exclusive) up to ``upper`` (inclusive); None is open."""

    lower: tuple[Any, ...] | None = None
    upper: tuple[Any, ...] | None = None

    def criteria(self, key: Sequence[ColumnElement[Any]]) -> list[ColumnElement[bool]]:
        """The conditions that keep ``key`` inside the span (row values for composite keys)."""
        found: list[ColumnElement[bool]] = []
        row = key[0] if len(key) == 1 else tuple_(*key)
        if self.lower is not None:
            found.append(row > _row_value(key, self.lower))
        if self.upper is not None:
            found.append(row <= _row_value(key, self.upper))
        return found


EVERYTHING = Span()


def _row_value(key: Sequence[ColumnElement[Any]], values: tuple[Any, ...]) -> Any:
    """The bound row value, each value typed as its key column (an ENUM meets an ENUM)."""
    if len(values) == 1:
        return values[0]
    return tuple_(*(literal(v, type_=column.type) for column, v in zip(key, values, strict=True)))


def key_in(key: Sequence[Column[Any]], keys: Sequence[tuple[Any, ...]]) -> ColumnElement[bool]:
    """``key IN (...)`` for a single or composite key."""
    if len(key) == 1:
        return key[0].in_([values[0] for values in keys])
    return tuple_(*key).in_(list(keys))
