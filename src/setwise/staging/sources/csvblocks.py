"""The bytes of a CSV file in blocks of whole records, for a database's own CSV reader.

Handing a file to the database (PostgreSQL's ``COPY … (FORMAT csv)``) skips parsing
it in Python, but is only safe when the database reads every record exactly as the
CSV reader of ``setwise.staging.sources.csv`` would. On strict RFC 4180 CSV the two agree:
fields split at commas, a quoted field starts and ends at a field's edges, and a
quote inside one is doubled. Python's reader also takes looser text (``5" floppy``,
``a"b"c``), which another reader may read otherwise; so every block is checked
against the strict grammar first, and any file that is not strict is refused.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import BinaryIO

#: Bytes read at a time. A record longer than twice that is refused (read in Python).
BLOCK_BYTES = 1 << 20

# Possessive quantifiers: a refused block fails at once instead of backtracking.
_FIELD = rb'(?:"(?:[^"]++|"")*+"|[^",\r\n]*+)'
_RECORD = _FIELD + rb"(?:," + _FIELD + rb")*+\r?\n"
_ONE_RECORD = re.compile(_RECORD)
_RECORDS = re.compile(rb"(?:" + _RECORD + rb")*+")


class NotStrictCsv(Exception):
    """The file is not strict CSV (or cannot be split into records): read it in Python."""


def header_and_blocks(
    stream: BinaryIO, block_bytes: int = BLOCK_BYTES
) -> tuple[bytes, Iterator[bytes]]:
    """The header record (without its line end) and the blocks of whole records after it.

    The blocks are produced as they are read; the iterator raises ``NotStrictCsv`` at
    the first bytes outside the strict grammar. A byte-order mark is skipped, as the
    Python reader skips it; the last record may lack its line end.
    """
    start = stream.read(block_bytes)
    if start.startswith(codecs.BOM_UTF8):
        start = start[len(codecs.BOM_UTF8) :]
    header = _ONE_RECORD.match(start)
    while header is None and len(start) <= 2 * block_bytes and (more := stream.read(block_bytes)):
        start += more
        header = _ONE_RECORD.match(start)
    if header is None:
        raise NotStrictCsv("no strict CSV header line in the first block")
    return header.group().rstrip(b"\r\n"), _blocks(stream, start[header.end() :], block_bytes)


def _blocks(stream: BinaryIO, pending: bytes, block_bytes: int) -> Iterator[bytes]:
    finished = False
    while True:
        if not finished:
            more = stream.read(block_bytes)
            finished = not more
            pending += more
        if not pending:
            return
        whole = _RECORDS.match(pending).end()  # type: ignore[union-attr]  # matches ""
        if finished and whole < len(pending):
            # The last record, without a line end of its own.
            if _RECORDS.fullmatch(pending[whole:] + b"\n") is None:
                raise NotStrictCsv("a record that is not strict CSV")
            whole = len(pending)
        if whole:
            yield pending[:whole]
            pending = pending[whole:]
        elif len(pending) > 2 * block_bytes and not finished:
            # Still no whole record: a quote never closed, or bytes outside the grammar.
            raise NotStrictCsv("a record that is not strict CSV")
