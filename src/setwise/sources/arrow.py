"""Arrow tables, Parquet files and DataFrames, read one record batch at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from setwise.extras import require
from setwise.sources.rows import Row

_FEATURE = "reading Parquet files, Arrow tables or DataFrames"
pa = require("pyarrow", extra="parquet", feature=_FEATURE)
pq = require("pyarrow.parquet", extra="parquet", feature=_FEATURE)


def read_parquet(path: str, batch_rows: int) -> Iterator[Row]:
    """Rows of the Parquet file at ``path``, read batch by batch, numbered from 1."""
    with pq.ParquetFile(path) as parquet:
        yield from _numbered(parquet.iter_batches(batch_size=batch_rows))


def from_arrow(data: Any, batch_rows: int) -> Iterator[Row]:
    """Rows of a pyarrow Table, RecordBatch or RecordBatchReader."""
    if isinstance(data, pa.Table):
        return _numbered(data.to_batches(max_chunksize=batch_rows))
    if isinstance(data, pa.RecordBatch):
        return _numbered([data])
    return _numbered(data)


def from_dataframe(frame: Any, batch_rows: int) -> Iterator[Row]:
    """Rows of a pandas or polars DataFrame, through Arrow (NaN and None read as NULL)."""
    if type(frame).__module__.startswith("polars"):
        table = frame.to_arrow()
    else:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    return from_arrow(table, batch_rows)


def _numbered(batches: Iterable[Any]) -> Iterator[Row]:
    number = 0
    for batch in batches:
        for fields in batch.to_pylist():
            number += 1
            yield number, fields
