"""What a run refuses before it writes, and what a server's cap on a transaction allows.

The guards (``expect_rows``, ``max_rows``) and the cap of a cluster that certifies
write sets (Galera's ``wsrep_max_ws_rows`` and ``wsrep_max_ws_size``): a run too
large for one transaction is refused, chunks are held under the cap, and a COMMIT
that may report success having committed nothing is checked.
"""

from __future__ import annotations

import logging
from typing import Literal

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import DBAPIError

from setwise.dialects import RowCap, Strategy
from setwise.errors import (
    NotFoundError,
    RunError,
    TooManyRowsError,
    TransactionTooLargeError,
    WriteCheckError,
)
from setwise.journal.changes import Journal

log = logging.getLogger("setwise")


def guard(
    target: str,
    matched: int,
    would_change: int,
    *,
    expect_rows: int | None,
    max_rows: int | None,
    cap: RowCap | None = None,
) -> None:
    """Refuse a run over ``target`` that would change more than ``max_rows`` rows or
    matches fewer than ``expect_rows``; one that would change more rows than one
    transaction may write on this server (``cap``), before writing."""
    if max_rows is not None and would_change > max_rows:
        raise TooManyRowsError(target, limit=max_rows, would_change=would_change)
    if expect_rows is not None and matched < expect_rows:
        raise NotFoundError(target, expected=expect_rows, matched=matched)
    if cap is not None and would_change > cap.rows:
        raise TransactionTooLargeError(
            target,
            would_change=would_change,
            fits=cap.rows,
            setting=cap.setting,
            basis=cap.basis,
        )


def chunk_cap(cap: RowCap | None, chunk_rows: int | Literal["auto"] | None) -> int | None:
    """The most rows a chunk may hold on this server (Galera's write-set caps)."""
    if cap is None:
        return None
    if isinstance(chunk_rows, int) and chunk_rows > cap.rows:
        log.warning(
            "chunks of %d rows asked for; %d at most: %s (%s)",
            chunk_rows,
            cap.rows,
            cap.setting,
            cap.basis,
        )
    return cap.rows


def confirm_committed(
    connection: Connection, strategy: Strategy, journal: Journal, run_id: str | None, chunk: int
) -> None:
    """Where a COMMIT may report success having committed nothing (Galera, after a
    statement passed the write-set cap and its error went unseen), check that the
    chunk's record, written in its transaction, is there."""
    if run_id is None or not strategy.confirms_commits(connection):
        return
    chunks = journal.chunks
    recorded = (
        select(func.count())
        .select_from(chunks)
        .where(chunks.c.run_id == run_id, chunks.c.chunk == chunk)
    )
    try:
        with connection.begin():
            found = connection.execute(recorded).scalar_one()
    except DBAPIError as exc:  # the chunk committed (or not): never run it again
        raise RunError(run_id, chunk, exc) from exc
    if not found:
        lost = WriteCheckError(
            "the database reported the chunk committed, but its journal record is not "
            "there: the transaction was rolled back (on Galera, past wsrep_max_ws_rows "
            "or wsrep_max_ws_size)",
            table=chunks.name,
            expected=1,
            found=0,
        )
        raise RunError(run_id, chunk, lost)
