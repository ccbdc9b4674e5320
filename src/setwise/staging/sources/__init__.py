"""Read a changeset as a stream of rows, whatever it came as.

``open_source`` accepts a path to a ``.csv``, ``.tsv``, ``.jsonl`` (or ``.ndjson``) or
``.parquet`` file (``"-"`` reads standard input, as CSV unless ``format`` says
otherwise; ``format`` also overrides a file's name), a pyarrow Table or
RecordBatchReader, a pandas or polars DataFrame, or an iterable of mappings or ORM
objects. Every reader is a generator: rows are read as they are consumed, so memory
does not grow with the size of the input.

Rows come as ``(row_number, fields)``; ``row_number`` is the line in a CSV or JSONL
file and the 1-based position otherwise. ``fields`` maps field names to values, or
is an ``Unreadable`` for a line that could not be read at all.
"""

from __future__ import annotations

import codecs
import io
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from setwise.errors import InvalidArgumentError, SchemaError
from setwise.staging.sources.csv import read_csv, reading_encoding
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


def open_source(
    changes: Any,
    *,
    csv_null: str | None = "",
    format: str | None = None,
    csv_delimiter: str | None = None,
    encoding: str = "utf-8",
) -> Source:
    """Open ``changes`` for reading. ``csv_null``: the CSV cell text that means NULL
    (default the empty cell; ``None`` makes every cell a value, empty text included).
    ``format`` (csv, tsv, jsonl, parquet), ``csv_delimiter`` and ``encoding``: how a
    file or standard input is read (see ``reading``)."""
    if isinstance(changes, str | Path):
        path = str(changes)
        kind, delimiter = reading(path, format, csv_delimiter, encoding)
        return _open_path(path, kind, csv_null, delimiter, encoding)
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


#: The formats a file is read in, and the names that tell them.
FORMATS = {"csv": (".csv",), "tsv": (".tsv", ".tab"), "jsonl": (".jsonl", ".ndjson")}
FORMATS["parquet"] = (".parquet",)


def reading(
    path: str, format: str | None, csv_delimiter: str | None, encoding: str
) -> tuple[str, str]:
    """The format the file at ``path`` is read in (``format``, else told by its name;
    standard input is CSV) and, for CSV and TSV, the field separator. Refuses an
    unknown format or encoding, a separator that is not one character, or one given
    for a format with none."""
    if format is not None and format.lower() not in FORMATS:
        raise InvalidArgumentError(
            f"the format {format!r} is none of {', '.join(FORMATS)}",
            argument="format",
            value=format,
        )
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InvalidArgumentError(
            f"{encoding!r} is no encoding Python knows (utf-8, latin-1, cp1252...)",
            argument="encoding",
            value=encoding,
        ) from None
    kind = format.lower() if format is not None else None
    suffix = Path(path).suffix.lower()
    if kind is None:
        found = [name for name, suffixes in FORMATS.items() if suffix in suffixes]
        kind = "csv" if path == "-" else found[0] if found else None
    if kind is None:
        raise SchemaError(
            f"cannot tell the format of {path!r} from its name: use .csv, .tsv, .jsonl or .parquet",
            argument=("format", "csv"),
        )
    if csv_delimiter is not None and kind not in ("csv", "tsv"):
        raise InvalidArgumentError(
            f"a field separator is for CSV and TSV, and {path!r} is read as {kind}",
            argument="csv_delimiter",
            value=csv_delimiter,
        )
    if csv_delimiter is not None and (len(csv_delimiter) != 1 or csv_delimiter in '"\r\n'):
        raise InvalidArgumentError(
            f"the field separator {csv_delimiter!r} is not one character other than a "
            "quote or a line end",
            argument="csv_delimiter",
            value=csv_delimiter,
        )
    return kind, csv_delimiter or ("\t" if kind == "tsv" else ",")


def _open_path(path: str, kind: str, csv_null: str | None, delimiter: str, encoding: str) -> Source:
    label = "standard input" if path == "-" else path
    if kind in ("csv", "tsv"):
        rows = read_csv(path, csv_null, delimiter=delimiter, encoding=encoding)
        return Source(rows, True, label)
    if kind == "jsonl":
        return Source(read_jsonl(path, reading_encoding(encoding)), True, label)
    # pyarrow takes a fifth of a second to import: only when a Parquet file is read.
    from setwise.staging.sources.arrow import read_parquet

    if path == "-":  # Parquet is read from its end: standard input is read whole first
        return Source(
            read_parquet(io.BytesIO(sys.stdin.buffer.read()), ARROW_BATCH_ROWS), True, label
        )
    return Source(read_parquet(path, ARROW_BATCH_ROWS), True, label)


__all__ = ["Row", "Source", "Unreadable", "open_source"]
