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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from setwise.staging.sources import reading


def described(changes: Any, label: str, *, options: Mapping[str, Any]) -> dict[str, Any]:
    """The record of the changes a run read: ``changes`` as ``open_source`` took them,
    ``label`` what its ``Source`` called them, ``options`` the reader's arguments
    (``format``, ``csv_delimiter``, ``encoding``, ``csv_null``, ``date_format``); those
    left at None are not recorded."""
    if not isinstance(changes, str | Path):
        return {"rows": label}
    path = str(changes)
    kind, delimiter = reading(
        path, options.get("format"), options.get("csv_delimiter"), options.get("encoding", "utf-8")
    )
    kept = {
        name: value for name, value in options.items() if value is not None and name != "format"
    }
    if kind in ("csv", "tsv"):
        kept["csv_delimiter"] = delimiter
    else:
        kept.pop("csv_null", None)
    if path == "-":
        return {"path": "-", "format": kind, "options": kept}
    with open(path, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    return {
        "path": os.path.abspath(path),
        "size": size,
        "sha256": digest,
        "format": kind,
        "options": kept,
    }
