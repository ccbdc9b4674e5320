"""CSV files with a header line. Every value is text; an empty cell is NULL by default.

A file is read as UTF-8 unless told its encoding (a UTF-8 byte-order mark skipped); a
byte that is not UTF-8 does not stop the reading: it is kept as a ``surrogateescape``
character, which the value checks then refuse by row and column, naming ``encoding``
(``validation.text_unfit``). Quoting is read strictly (``"a"b`` or a quote never
closed is refused, not guessed at), and a record the csv module refuses becomes an
``Unreadable`` row naming the field at fault. Fields are separated by commas, or by
the ``delimiter`` given (a tab for TSV); a header of one field whose name holds a
``;``, a tab or a ``|`` is refused as a file separated by that character.
"""

from __future__ import annotations

import codecs
import csv
import io
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from operator import itemgetter
from typing import IO, Any

from setwise.errors import SchemaError
from setwise.staging.sources.rows import (
    NOT_UTF16,
    UTF16_FIX,
    UTF16_MARKS,
    FieldColumns,
    Fields,
    Row,
    Unreadable,
)

#: The longest field read, in characters. Python's csv module stops at 128 KiB, so a
#: legitimate 200 KB text could not be applied at all. 64 MiB is four times MariaDB's
#: default max_allowed_packet (16 MiB, the most one row can carry there) and far past
#: any text a changeset sets; it stays bounded so that a quote never closed cannot
#: read the rest of a large file into one field.
MAX_FIELD_CHARS = 64 * 2**20

#: Characters of a refused field kept in its problem: enough to recognise it.
_PREVIEW_CHARS = 200


#: Characters that separate the fields of a file a header of one field shows was not
#: separated by commas; a tab's file is TSV.
SEPARATORS = (";", "\t", "|")


def read_csv(
    path: str, null: str | None = "", *, delimiter: str = ",", encoding: str = "utf-8"
) -> CsvRows:
    """Rows of the CSV file at ``path`` (``"-"``: standard input), by line number.

    A cell equal to ``null`` is NULL (default: the empty cell); ``null=None`` reads
    every cell as text. Fields are separated by ``delimiter``; the text is in
    ``encoding`` (a UTF-8 byte-order mark is skipped).
    """
    encoding = reading_encoding(encoding)
    if path == "-":
        buffer = getattr(sys.stdin, "buffer", None)
        if buffer is None:  # a stand-in for stdin with no bytes under it
            return CsvRows(sys.stdin, null, close=False, delimiter=delimiter)
        stdin = io.TextIOWrapper(buffer, encoding=encoding, errors="surrogateescape", newline="")
        return CsvRows(stdin, null, close=False, delimiter=delimiter, encoding=encoding)
    stream = open(  # noqa: SIM115  # closed by CsvRows
        path, newline="", encoding=encoding, errors="surrogateescape"
    )
    return CsvRows(stream, null, close=True, path=path, delimiter=delimiter, encoding=encoding)


def reading_encoding(encoding: str) -> str:
    """The codec a file in ``encoding`` is read with: UTF-8's skips a byte-order mark."""
    name = codecs.lookup(encoding).name
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name


@contextmanager
def _field_limit() -> Iterator[None]:
    # The csv module's limit is one setting for the whole process: raised while this
    # reader reads, then put back, so a program's own csv reading is left as it was.
    previous = csv.field_size_limit(MAX_FIELD_CHARS)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


class CsvRows:
    """The rows of one CSV stream, numbered by the line each ends on. ``take`` reads a
    batch as columns (``FieldColumns``), without a dict per row, unless a record has
    another number of fields than the header or cannot be read."""

    def __init__(
        self,
        stream: IO[str],
        null: str | None,
        *,
        close: bool,
        path: str | None = None,
        delimiter: str = ",",
        encoding: str = "utf-8-sig",
    ) -> None:
        self.stream = stream
        self.path = path
        """The file read, which a database may read itself; None for standard input."""
        self.null = null
        self.delimiter = delimiter
        self.encoding = encoding
        """The codec the text is read with (``reading_encoding``)."""
        self.close_when_done = close
        self.reader = csv.reader(stream, strict=True, delimiter=delimiter)
        self.last_line = 0
        """The line the last record read ended on."""
        self.shadow: _Lines | None = None
        """A second reading of the file, for the text of records the csv module refuses."""
        self.finished = False
        self.pending: list[Row] = []
        """Rows to hand out before the next record: the header's problems."""
        self.header: list[str] = []
        with _field_limit():
            try:
                # Blank lines before the header are skipped, as blank lines after it are.
                self.header = next((record for record in self.reader if record), [])
            except csv.Error as error:
                self.pending.append((self.reader.line_num, self._refused(error)))
        self.last_line = self.reader.line_num
        if self.header and self.header[0].startswith(UTF16_MARKS):
            self.pending.append((1, Unreadable(NOT_UTF16, value=self.header[0][:2], fix=UTF16_FIX)))
            self.header = []
        if len(self.header) == 1:
            self._one_field(self.header[0])
        # A name given twice: its first field is read, the others left out, and the
        # header refused (the changeset then fails, with the other problems found).
        self.keep = [i for i, name in enumerate(self.header) if name not in self.header[:i]]
        self.names = [self.header[i] for i in self.keep]
        for name, count in Counter(self.header).items():
            if count > 1:
                fields = [str(i + 1) for i, found in enumerate(self.header) if found == name]
                reason = (
                    f"the header names column {name!r} {count} times (fields "
                    f"{', '.join(fields)}); rename or remove all but one"
                )
                self.pending.append((1, Unreadable(reason, column=name, value=name)))
        if not self.header:
            self._done()

    def _one_field(self, name: str) -> None:
        """Refuse a header of one field that holds another separator: the file is not
        separated by ``self.delimiter`` (a changeset needs a key and a column anyway)."""
        for separator in SEPARATORS:
            parts = name.split(separator)
            if separator == self.delimiter or sum(1 for part in parts if part.strip()) < 2:
                continue
            if all(part.isprintable() for part in parts):  # names, not a binary file's bytes
                self.close()
                shown = "a tab" if separator == "\t" else repr(separator)
                fix = ("format", "tsv") if separator == "\t" else ("csv_delimiter", separator)
                raise SchemaError(
                    f"the header of {self.path or 'standard input'} is one column, "
                    f"{name[:_PREVIEW_CHARS]!r}: the file looks separated by {shown}, not "
                    f"by {self.delimiter!r}",
                    name=name,
                    argument=fix,
                )

    def __iter__(self) -> CsvRows:
        return self

    def __next__(self) -> Row:
        if self.pending:
            return self.pending.pop(0)
        if not self.finished:
            with _field_limit():
                while True:
                    try:
                        record = next(self.reader)
                    except StopIteration:
                        break
                    except csv.Error as error:
                        refused = self._refused(error)
                        self.last_line = self.reader.line_num
                        return self.last_line, refused
                    self.last_line = self.reader.line_num
                    if record:
                        return self.last_line, self._fields(record)
            self._done()
        raise StopIteration

    def take(self, count: int) -> tuple[list[int], Sequence[Fields]]:
        """The next ``count`` rows (fewer at the end; blank lines skipped)."""
        pending, self.pending = self.pending, []
        if self.finished:
            return [number for number, _ in pending], [fields for _, fields in pending]
        reader = self.reader
        numbers: list[int] = []
        records: list[list[str]] = []
        refused: dict[int, Unreadable] = {}  # by position in ``records``
        read = 0
        with _field_limit():
            rows = islice(reader, count)
            while True:
                try:
                    for record in rows:
                        read += 1
                        if record:
                            numbers.append(reader.line_num)
                            records.append(record)
                    if records or read < count:
                        break
                    # A batch of blank lines only: read on (an empty batch ends the rows).
                    read = 0
                    rows = islice(reader, count)
                except csv.Error as error:
                    # The record began after the last one read (blank lines aside).
                    self.last_line = numbers[-1] if numbers else self.last_line
                    refused[len(records)] = self._refused(error)
                    read += 1
                    numbers.append(reader.line_num)
                    records.append([])
                    # islice ends once its iterator raised: go on with a new one.
                    rows = islice(reader, count - read)
        if numbers:
            self.last_line = numbers[-1]
        if read < count:
            self._done()
        if pending:
            numbers[:0] = [number for number, _ in pending]
        if not records and not pending:
            return numbers, []
        width = len(self.header)
        if not pending and not refused and set(map(len, records)) == {width}:
            # itemgetter, not zip(*records): no tuple per row, whose allocations set off
            # the garbage collector (reading 1,000,000 rows: 2.0 s with zip, 1.3 s so).
            columns = [self._nulls(list(map(itemgetter(i), records))) for i in self.keep]
            return numbers, FieldColumns(self.names, columns)
        found = [fields for _, fields in pending]
        found += [refused.get(i) or self._fields(r) for i, r in enumerate(records)]
        return numbers, found

    def _nulls(self, column: list[str]) -> list[Any]:
        null = self.null
        if null is None or null not in column:
            return column
        return [None if cell == null else cell for cell in column]

    def _fields(self, record: list[str]) -> Fields:
        width = len(self.header)
        if len(record) > width:
            extra = record[width:]
            last = self.header[-1]
            return Unreadable(
                f"{len(record)} fields where the header has {width}: the fields after "
                f"{last!r} have no column (an unquoted comma in a value?)",
                column=last,
                value=extra[0][:_PREVIEW_CHARS] if len(extra) == 1 else extra[:3],
            )
        if len(record) < width:
            missing = self.header[len(record)]
            return Unreadable(
                f"{len(record)} fields where the header has {width}: no value for {missing!r}",
                column=missing,
            )
        null = self.null
        return {
            self.header[i]: None if null is not None and record[i] == null else record[i]
            for i in self.keep
        }

    def _refused(self, error: csv.Error) -> Unreadable:
        """The problem of a record the csv module refused, naming the field at fault: the
        record's text is read again from the file (not kept while reading: that cost a
        tenth of the reading), by a second handle that only moves forward."""
        column = None
        text = ""
        if self.path is not None:
            if self.shadow is None or self.shadow.line > self.last_line:
                self.shadow = _Lines(self.path, self.encoding)
            lines = self.shadow.between(self.last_line, self.reader.line_num)
            index, text = faulty_field("".join(lines).lstrip("\r\n"), self.delimiter)
            column = self.header[index] if index < len(self.header) else None
        preview = text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "…"
        return Unreadable(f"not CSV: {error}", column=column, value=preview)

    def close(self) -> None:
        """Stop reading; the file is closed (standard input is left open)."""
        if not self.finished:
            self._done()

    def _done(self) -> None:
        self.finished = True
        if self.shadow is not None:
            self.shadow.close()
        if self.close_when_done:
            self.stream.close()
        elif isinstance(self.stream, io.TextIOWrapper) and self.stream is not sys.stdin:
            self.stream.detach()  # our wrapper of stdin's bytes: leave them open


class _Lines:
    """The lines of a file, read forward once, numbered as the csv reader numbers them."""

    def __init__(self, path: str, encoding: str) -> None:
        self.stream = open(  # noqa: SIM115  # closed by CsvRows
            path, newline="", encoding=encoding, errors="surrogateescape"
        )
        self.line = 0
        """Lines read so far."""

    def between(self, after: int, through: int) -> list[str]:
        """Lines ``after`` + 1 to ``through``; at most ``MAX_FIELD_CHARS`` characters of
        them, which is where the csv reader stops a field too."""
        found: list[str] = []
        size = 0
        for line in self.stream:
            self.line += 1
            if self.line > after and size <= MAX_FIELD_CHARS:
                found.append(line)
                size += len(line)
            if self.line >= through:
                break
        return found

    def close(self) -> None:
        self.stream.close()


def faulty_field(record: str, delimiter: str = ",") -> tuple[int, str]:
    """The index and text of the field where strict CSV reading of ``record`` (one
    record's lines) fails: a quoted field followed by more than a comma, a quote never
    closed, or the longest field when none of those is found (one over the limit)."""
    index = position = 0
    longest = (0, 0, 0)  # (length, index, start)
    end_of_record = len(record.rstrip("\r\n"))
    while position <= end_of_record:
        start = position
        if record.startswith('"', position):
            close = position + 1
            while True:
                close = record.find('"', close)
                if close < 0:
                    return index, record[start:]  # a quote never closed
                if record.startswith('"', close + 1):
                    close += 2
                    continue
                break
            position = close + 1
            if position < end_of_record and record[position] != delimiter:
                following = record.find(delimiter, position)
                return index, record[start : following if following >= 0 else end_of_record]
        else:
            following = record.find(delimiter, position, end_of_record)
            position = following if following >= 0 else end_of_record
        longest = max(longest, (position - start, index, start))
        if position >= end_of_record:
            break
        index += 1
        position += 1
    length, index, start = longest
    return index, record[start : start + length]
