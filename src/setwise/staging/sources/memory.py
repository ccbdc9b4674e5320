"""Python mappings and ORM objects. An absent key is left alone; ``None`` is NULL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import ColumnProperty

from setwise.staging.sources.rows import Row, Unreadable


class MemoryRows:
    """The rows of an iterable of mappings or ORM objects, numbered from 1. ``take``
    reads a batch without a tuple per row: a tracked object per row is what sets off
    Python's full garbage collections, ~50 ms each with a large changeset in memory
    (benchmarks/README.md)."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = iter(items)
        self.number = 0

    def __iter__(self) -> MemoryRows:
        return self

    def __next__(self) -> Row:
        item = next(self.items)
        self.number += 1
        return self.number, _fields(item)

    def take(self, count: int) -> tuple[range, list[dict[str, Any] | Unreadable]]:
        """The next ``count`` rows (fewer at the end) as row numbers and fields."""
        found: list[Any] = list(islice(self.items, count))
        start = self.number + 1
        self.number += len(found)
        if set(map(type, found)) != {dict}:
            found = [_fields(item) for item in found]
        return range(start, start + len(found)), found


def read_memory(items: Iterable[Any]) -> MemoryRows:
    """Rows of mappings (field → value) or ORM objects (their loaded column attributes)."""
    return MemoryRows(items)


def _fields(item: Any) -> dict[str, Any] | Unreadable:
    if type(item) is dict:  # the common case, without the Mapping ABC's slow check
        return item  # read, never changed: no copy needed
    if isinstance(item, Mapping):
        return dict(item)
    state = inspect(item, raiseerr=False)
    mapper = getattr(state, "mapper", None)
    if mapper is None:
        return Unreadable(f"a {type(item).__name__}, not a mapping or ORM object")
    loaded = state.dict
    return {
        prop.columns[0].name: loaded[prop.key]
        for prop in mapper.column_attrs
        if isinstance(prop, ColumnProperty) and prop.key in loaded
    }
