"""CSV files with a header line. Every value is text; an empty cell is NULL by default."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from itertools import islice
from operator import itemgetter
from typing import IO, Any

from setwise.sources.rows import FieldColumns, Fields, Row, Unreadable


def read_csv(path: str, null: str | None = "") -> CsvRows:
    """Rows of the CSV file at ``path`` (``"-"``: standard input), by line number.

    A cell equal to ``null`` is NULL (default: the empty cell); ``null=None`` reads
    every cell as text. The encoding is UTF-8; a byte-order mark is skipped.
    """
    if path == "-":
        return CsvRows(sys.stdin, null, close=False)
    stream = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115  # closed by CsvRows
    return CsvRows(stream, null, close=True, path=path)


class CsvRows:
    """The rows of one CSV stream, numbered by the line each ends on. ``take`` reads a
    batch as columns (``FieldColumns``), without a dict per row, unless a record has
    another number of fields than the header."""

    def __init__(
        self, stream: IO[str], null: str | None, *, close: bool, path: str | None = None
    ) -> None:
        self.stream = stream
        self.path = path
        """The file read, which a database may read itself; None for standard input."""
        self.null = null
        self.close_when_done = close
        self.reader = csv.reader(stream)
        self.finished = False
        self.header: list[str] = next(self.reader, [])
        if not self.header:
            self._done()

    def __iter__(self) -> CsvRows:
        return self

    def __next__(self) -> Row:
        if not self.finished:
            for record in self.reader:
                if record:
                    return self.reader.line_num, self._fields(record)
            self._done()
        raise StopIteration

    def take(self, count: int) -> tuple[list[int], Sequence[Fields]]:
        """The next ``count`` rows (fewer at the end; blank lines skipped)."""
        if self.finished:
            return [], []
        reader = self.reader
        numbers: list[int] = []
        records: list[list[str]] = []
        read = 0
        for record in islice(reader, count):
            read += 1
            if record:
                numbers.append(reader.line_num)
                records.append(record)
        if read < count:
            self._done()
        if not records:
            return numbers, []
        width = len(self.header)
        if set(map(len, records)) == {width}:
            # itemgetter, not zip(*records): no tuple per row, whose allocations set off
            # the garbage collector (reading 1,000,000 rows: 2.0 s with zip, 1.3 s so).
            columns = [self._nulls(list(map(itemgetter(i), records))) for i in range(width)]
            return numbers, FieldColumns(self.header, columns)
        return numbers, [self._fields(record) for record in records]

    def _nulls(self, column: list[str]) -> list[Any]:
        null = self.null
        if null is None or null not in column:
            return column
        return [None if cell == null else cell for cell in column]

    def _fields(self, record: list[str]) -> Fields:
        width = len(self.header)
        if len(record) != width:
            return Unreadable(f"{len(record)} fields where the header has {width}")
        null = self.null
        return {
            name: None if null is not None and cell == null else cell
            for name, cell in zip(self.header, record, strict=True)
        }

    def close(self) -> None:
        """Stop reading; the file is closed (standard input is left open)."""
        if not self.finished:
            self._done()

    def _done(self) -> None:
        self.finished = True
        if self.close_when_done:
            self.stream.close()
