"""CSV files with a header line. Every value is text; an empty cell is NULL by default."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from typing import IO, Any

from setwise.sources.rows import Row, Unreadable


def read_csv(path: str, null: str | None = "") -> Iterator[Row]:
    """Rows of the CSV file at ``path`` (``"-"``: standard input), by line number.

    A cell equal to ``null`` is NULL (default: the empty cell); ``null=None`` reads
    every cell as text. The encoding is UTF-8; a byte-order mark is skipped.
    """
    opened: Any = (
        nullcontext(sys.stdin) if path == "-" else open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed by with
    )
    with opened as stream:
        yield from _rows(stream, null)


def _rows(stream: IO[str], null: str | None) -> Iterator[Row]:
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return
    width = len(header)
    for record in reader:
        if not record:
            continue
        if len(record) != width:
            reason = f"{len(record)} fields where the header has {width}"
            yield reader.line_num, Unreadable(reason)
            continue
        if null is None:
            yield reader.line_num, dict(zip(header, record, strict=True))
        else:
            yield (
                reader.line_num,
                {
                    name: None if cell == null else cell
                    for name, cell in zip(header, record, strict=True)
                },
            )
