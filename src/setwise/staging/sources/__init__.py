"""Read a changeset as a stream of rows, whatever it came as.

``open_source`` accepts a path to a ``.csv``, ``.jsonl`` (or ``.ndjson``) or
``.parquet`` file (``"-"`` reads CSV from standard input), a pyarrow Table or
RecordBatchReader, a pandas or polars DataFrame, or an iterable of mappings or ORM
objects. Every reader is a generator: rows are read as they are consumed, so memory
does not grow with the size of the input.

Rows come as ``(row_number, fields)``; ``row_number`` is the line in a CSV or JSONL
file and the 1-based position otherwise. ``fields`` maps field names to values, or
is an ``Unreadable`` for a line that could not be read at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from setwise.errors import SchemaError
from setwise.staging.sources.csv import read_csv
from setwise.staging.sources.jsonl import read_jsonl
from setwise.staging.sources.memory import read_memory
from setwise.staging.sources.rows import Row, Unreadable

#: Rows an Arrow or Parquet reader converts to Python at a time: large enough that
#: per-batch overhead vanishes, small enough to stay a few MB of Python objects.
ARROW_BATCH_ROWS = 10_000


@dataclass
class Source:
    """A changeset being read."""

    rows: Iterator[Row]
    lenient: bool
    """Values come as text or floats and are parsed to the column types (see ``staging.values``)."""
    label: str
    """What the rows come from, for messages."""

    def close(self) -> None:
        """Release the file behind the rows, read to the end or not."""
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()


def open_source(changes: Any, *, csv_null: str | None = "") -> Source:
    """Open ``changes`` for reading. ``csv_null``: the CSV cell text that means NULL
    (default the empty cell; ``None`` makes every cell a value, empty text included)."""
    if isinstance(changes, str | Path):
        return _open_path(str(changes), csv_null)
    module = type(changes).__module__.split(".")[0]
    if module == "pyarrow":
        from setwise.staging.sources.arrow import from_arrow

        return Source(from_arrow(changes, ARROW_BATCH_ROWS), True, "an Arrow table")
    if module in ("pandas", "polars"):
        from setwise.staging.sources.arrow import from_dataframe

        return Source(from_dataframe(changes, ARROW_BATCH_ROWS), True, f"a {module} DataFrame")
    if isinstance(changes, Iterable) and not isinstance(changes, bytes | dict):
        return Source(read_memory(changes), False, "the rows given")
    raise SchemaError(
        f"cannot read changes from {type(changes).__name__}: give a .csv, .jsonl or .parquet "
        "path, a DataFrame, an Arrow table, or an iterable of mappings or ORM objects"
    )


def _open_path(path: str, csv_null: str | None) -> Source:
    suffix = Path(path).suffix.lower()
    if path == "-" or suffix == ".csv":
        return Source(read_csv(path, csv_null), True, "standard input" if path == "-" else path)
    if suffix in (".jsonl", ".ndjson"):
        return Source(read_jsonl(path), True, path)
    if suffix == ".parquet":
        # pyarrow takes a fifth of a second to import: only when a Parquet file is read.
        from setwise.staging.sources.arrow import read_parquet

        return Source(read_parquet(path, ARROW_BATCH_ROWS), True, path)
    raise SchemaError(
        f"cannot tell the format of {path!r} from its name: use .csv, .jsonl or .parquet"
    )


__all__ = ["Row", "Source", "Unreadable", "open_source"]
