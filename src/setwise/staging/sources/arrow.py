"""Arrow tables, Parquet files and DataFrames, read one record batch at a time.

What Arrow holds but cannot hand over is a problem of its row and column, not an
exception: two columns of one name (the last would win silently), a date past year
9999 (Python's dates end there), a time in nanoseconds (they hold microseconds), a
corrupt page of a Parquet file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import suppress
from typing import Any, BinaryIO

from setwise.extras import require
from setwise.problems import ProblemKind
from setwise.staging.sources.rows import Row, Unreadable

_FEATURE = "reading Parquet files, Arrow tables or DataFrames"
pa = require("pyarrow", extra="parquet", feature=_FEATURE)
pq = require("pyarrow.parquet", extra="parquet", feature=_FEATURE)

#: Errors of turning Arrow values into Python ones, or of reading a file's pages.
_READ_ERRORS = (pa.ArrowException, OverflowError, ValueError, OSError)


def read_parquet(path: str | BinaryIO, batch_rows: int) -> Iterator[Row]:
    """Rows of the Parquet file at ``path`` (or in a binary stream), read batch by
    batch, numbered from 1."""
    try:
        parquet = pq.ParquetFile(path)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except _READ_ERRORS as exc:
        yield (
            1,
            Unreadable(
                f"not a readable Parquet file: {_first_line(exc)}",
                value=path if isinstance(path, str) else "-",
            ),
        )
        return
    with parquet:
        rows = _Numbered()
        try:
            yield from rows.of(parquet.iter_batches(batch_size=batch_rows))
        except _READ_ERRORS as exc:
            column = _corrupt_column(parquet, rows.number)
            reason = f"a part of the file cannot be read: {_first_line(exc)}"
            yield (
                rows.number + 1,
                Unreadable(reason, column=column, value=path if isinstance(path, str) else "-"),
            )


def from_arrow(data: Any, batch_rows: int) -> Iterator[Row]:
    """Rows of a pyarrow Table, RecordBatch or RecordBatchReader."""
    if isinstance(data, pa.Table):
        return _Numbered().of(data.to_batches(max_chunksize=batch_rows))
    if isinstance(data, pa.RecordBatch):
        return _Numbered().of([data])
    return _Numbered().of(data)


def from_dataframe(frame: Any, batch_rows: int) -> Iterator[Row]:
    """Rows of a pandas or polars DataFrame, through Arrow (NaN and None read as NULL)."""
    if type(frame).__module__.startswith("polars"):
        return from_arrow(frame.to_arrow(), batch_rows)
    names = [str(name) for name in frame.columns]
    twice = {name for name, count in Counter(names).items() if count > 1}
    if twice:  # Arrow refuses the frame: convert the first of each, refuse the rest
        frame = frame.loc[:, ~frame.columns.duplicated()]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return _Numbered(_named_twice(names)).of(table.to_batches(max_chunksize=batch_rows))


class _Numbered:
    """Rows of record batches, numbered from 1 across them."""

    def __init__(self, named_twice: list[Unreadable] | None = None) -> None:
        self.number = 0
        self.named_twice = named_twice
        """The problems of column names given twice, once known; handed out first."""

    def of(self, batches: Iterable[Any]) -> Iterator[Row]:
        for read in batches:
            if self.named_twice is None:
                self.named_twice = _named_twice(read.schema.names)
            if self.named_twice:
                yield from ((self.number + 1, problem) for problem in self.named_twice)
                self.named_twice = []
            batch, finer = _in_microseconds(_first_of_each_name(read))
            rows: list[Any] | None = None
            if not finer:
                with suppress(*_READ_ERRORS):
                    rows = batch.to_pylist()
            if rows is None:
                rows = _rows_value_by_value(batch)
            for fields in rows:
                self.number += 1
                yield self.number, fields


def _named_twice(names: list[str]) -> list[Unreadable]:
    problems = []
    for name, count in Counter(names).items():
        if count > 1:
            reason = f"{count} columns are named {name!r}; rename or remove all but one"
            problems.append(Unreadable(reason, column=name, value=name))
    return problems


def _first_of_each_name(batch: Any) -> Any:
    names = batch.schema.names
    if len(set(names)) == len(names):
        return batch
    keep = [i for i, name in enumerate(names) if name not in names[:i]]
    return pa.RecordBatch.from_arrays(
        [batch.column(i) for i in keep], names=[names[i] for i in keep]
    )


def _microsecond_type(kind: Any) -> Any:
    """The type of microseconds for a type of nanoseconds, or None."""
    if pa.types.is_timestamp(kind) and kind.unit == "ns":
        return pa.timestamp("us", tz=kind.tz)
    if pa.types.is_time64(kind) and kind.unit == "ns":
        return pa.time64("us")
    return None


def _in_microseconds(batch: Any) -> tuple[Any, bool]:
    """``batch`` with its times in nanoseconds as microseconds where no digit is lost,
    and whether some are left in nanoseconds: Python's datetime and time hold
    microseconds, and pyarrow hands over a time of nanoseconds cut to them."""
    columns = list(batch.columns)
    finer = False
    for i, column in enumerate(columns):
        kind = _microsecond_type(column.type)
        if kind is None:
            continue
        try:
            columns[i] = column.cast(kind, safe=True)
        except pa.ArrowInvalid:
            finer = True
    if columns == list(batch.columns):
        return batch, finer
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names), finer


def _rows_value_by_value(batch: Any) -> list[dict[str, Any] | Unreadable]:
    """The rows of a batch some value of which Python cannot hold: such a row is an
    ``Unreadable`` naming the first column at fault."""
    names = batch.schema.names
    columns: list[list[Any]] = []
    for column in batch.columns:
        values = None
        if _microsecond_type(column.type) is None:  # else some are not whole microseconds
            with suppress(*_READ_ERRORS):
                values = column.to_pylist()
        if values is None:
            values = [_value(column, i) for i in range(len(column))]
        columns.append(values)
    rows: list[dict[str, Any] | Unreadable] = []
    for values in zip(*columns, strict=True):
        bad = next(
            ((n, v) for n, v in zip(names, values, strict=True) if isinstance(v, Unreadable)),
            None,
        )
        if bad is None:
            rows.append(dict(zip(names, values, strict=True)))
        else:
            name, problem = bad
            rows.append(Unreadable(problem.reason, name, problem.value, problem.kind))
    return rows


def _value(column: Any, index: int) -> Any:
    kind = _microsecond_type(column.type)
    try:
        if kind is not None:
            try:
                return column.slice(index, 1).cast(kind, safe=True)[0].as_py()
            except pa.ArrowInvalid:
                return Unreadable(
                    "a time in nanoseconds; setwise keeps microseconds and would cut "
                    "the rest: round it first",
                    value=_as_text(column, index),
                    kind=ProblemKind.BAD_VALUE,
                )
        return column[index].as_py()
    except OverflowError:
        return Unreadable(
            "out of the range of dates and times Python holds (years 1 to 9999)",
            value=_as_text(column, index),
            kind=ProblemKind.BAD_VALUE,
        )
    except _READ_ERRORS as exc:
        return Unreadable(f"cannot be read: {_first_line(exc)}", value=_as_text(column, index))


def _as_text(column: Any, index: int) -> str | None:
    try:
        text = column.slice(index, 1).cast(pa.string())[0].as_py()
    except _READ_ERRORS:
        return None
    return text if isinstance(text, str) else None


def _corrupt_column(parquet: Any, rows_read: int) -> str | None:
    """The column whose pages in the row group after ``rows_read`` rows cannot be read,
    found by reading each alone; None when none fails alone."""
    metadata = parquet.metadata
    start = 0
    for group in range(metadata.num_row_groups):
        start += metadata.row_group(group).num_rows
        if start > rows_read:
            for name in parquet.schema_arrow.names:
                try:
                    parquet.read_row_group(group, columns=[name])
                except _READ_ERRORS:
                    return str(name)
            return None
    return None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
