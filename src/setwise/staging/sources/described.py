"""What a run read its changes from, as its record keeps it (``RunInfo.source``).

A file is named by its absolute path, its size and the SHA-256 of its bytes, with the
format and the reader's options. The hash is taken from the file once the run has read
and staged it, in a pass of its own: the second read of bytes the operating system has
just read (a Parquet file is read by pyarrow out of order, a CSV file on PostgreSQL and
MariaDB by the database itself, so no reader of setwise's sees every byte in order).
Standard input cannot be read twice: its record has no size or hash.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

#: Formats by file suffix, as ``open_source`` reads them.
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def described(changes: Any, label: str, *, csv_null: str | None) -> dict[str, Any]:
    """The record of the changes a run read: ``changes`` as ``open_source`` took them,
    ``label`` what its ``Source`` called them."""
    if not isinstance(changes, str | Path):
        return {"rows": label}
    path = str(changes)
    if path == "-":
        return {"path": "-", "format": "csv", "options": {"csv_null": csv_null}}
    format_ = FORMATS.get(Path(path).suffix.lower(), "")
    options: dict[str, Any] = {"csv_null": csv_null} if format_ == "csv" else {}
    with open(path, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    return {
        "path": os.path.abspath(path),
        "size": size,
        "sha256": digest,
        "format": format_,
        "options": options,
    }
