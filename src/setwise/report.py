"""What a run did, as numbers a person or a program can read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Report:
    """The outcome of ``update`` or ``apply``.

    ``matched`` rows satisfied the filter (or had a key in the changeset); of those,
    ``changed`` were written and ``unchanged`` already held the new values and were
    left alone. ``rows`` holds the ``returning`` columns of every matched row, in key
    order, when they were asked for.
    """

    table: str
    strategy: str
    matched: int
    changed: int
    unchanged: int
    elapsed_s: float
    run_id: str | None = None
    missing: int = 0
    missing_keys: tuple[Any, ...] = ()
    conflicts: tuple[Any, ...] = ()
    chunks: int = 1
    rows: tuple[dict[str, Any], ...] = ()
