"""JSON Lines: one object per line. An absent field is left alone; ``null`` is NULL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

from setwise.sources.rows import Row, Unreadable


def read_jsonl(path: str) -> Iterator[Row]:
    """Rows of the JSONL file at ``path``, by line number. Numbers with a fraction are
    read as Decimal, so exact columns stay exact; blank lines are skipped."""
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                yield number, Unreadable(f"not valid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(value, dict):
                yield number, Unreadable(f"a JSON {type(value).__name__}, not an object")
                continue
            yield number, value
