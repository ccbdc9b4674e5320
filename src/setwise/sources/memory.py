"""Python mappings and ORM objects. An absent key is left alone; ``None`` is NULL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import ColumnProperty

from setwise.sources.rows import Row, Unreadable


def read_memory(items: Iterable[Any]) -> Iterator[Row]:
    """Rows of mappings (field → value) or ORM objects (their loaded column attributes)."""
    for number, item in enumerate(items, start=1):
        if type(item) is dict:  # the common case, without the Mapping ABC's slow check
            yield number, item  # read, never changed: no copy needed
            continue
        if isinstance(item, Mapping):
            yield number, dict(item)
            continue
        state = inspect(item, raiseerr=False)
        mapper = getattr(state, "mapper", None)
        if mapper is None:
            yield number, Unreadable(f"a {type(item).__name__}, not a mapping or ORM object")
            continue
        loaded = state.dict
        yield (
            number,
            {
                prop.columns[0].name: loaded[prop.key]
                for prop in mapper.column_attrs
                if isinstance(prop, ColumnProperty) and prop.key in loaded
            },
        )
