"""MariaDB Galera Cluster: detect a node, read its write-set caps, make reads causal.

Galera replicates a transaction as one *write set* at COMMIT. A node refuses a write
set over ``wsrep_max_ws_rows`` rows or ``wsrep_max_ws_size`` bytes: the statement that
passes the cap fails with error 1180 and the whole transaction is rolled back, so a
later COMMIT reports success and commits nothing. Every row a statement writes counts
(a row written twice counts twice; a matched row left unchanged does not), temporary
tables do not. Writers on different nodes never wait for each other: the loser of a
conflict gets error 1213 at its next statement or at COMMIT.

Whether a connection reaches a Galera node is probed once per database connection and
cached on it; the caps, global settings an operator may change at any time, are read
again at the start of every run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Table, bindparam, func, literal, select, text

from setwise.dialects.base import RowCap
from setwise.dialects.health import FlowControl

log = logging.getLogger("setwise")

#: Rows a chunk writes besides its changes: the run's row claimed, the ``chunks`` row,
#: the run's checkpoint update and, on the last chunk, the run's status update (an
#: unchunked run writes its ``runs`` row and its ``chunks`` row instead).
BOOKKEEPING_ROWS = 4

#: Write-set bytes per changed row, as a multiple of its stored length plus
#: ``ROW_OVERHEAD_BYTES``. Measured on the 3-node test cluster (wsrep_replicated_bytes
#: over 500 and 2,000 changed rows of the tests' ``books``, titles growing from 5 to
#: 190 characters): a row's write set is its before and after images, about
#: before + after + 30 bytes, and its journal row adds the old and new values of the
#: changed columns and about 40 bytes more. So a journaled row is at most about
#: 2 x (before + after + 40) and an unjournaled one before + after + 30; the factors
#: below double that again for the after image outgrowing the sampled rows (the 190
#: character titles made rows 4.9x longer: estimated 696 bytes against 569 measured).
BYTES_PER_ROW_FACTOR = {True: 8, False: 4}
ROW_OVERHEAD_BYTES = 40

#: Rows read to average the target's row length: its statistics
#: (``information_schema.tables.avg_row_length``) lag behind bulk loads badly (seen: 8
#: bytes for rows of 48), so the length is measured on the rows themselves.
SAMPLE_ROWS = 1_000

#: ``wsrep_sync_wait`` bit 1: wait, before a read, until the node has applied every write
#: set the cluster committed before it (a "causal" read).
SYNC_READS = 1

_INFO_KEY = "setwise.galera"


@dataclass(frozen=True)
class GaleraNode:
    """What a Galera node caps per transaction; None where it sets no cap."""

    max_ws_rows: int | None
    max_ws_size: int | None


def is_galera(connection: Connection) -> bool:
    """True when ``connection`` reaches a Galera node that replicates this session."""
    info = connection.info
    if _INFO_KEY not in info:
        info[_INFO_KEY] = _probe(connection) is not None
    return bool(info[_INFO_KEY])


def _probe(connection: Connection) -> GaleraNode | None:
    # SHOW VARIABLES never fails: a server without Galera just lists fewer rows.
    names = ("wsrep_on", "wsrep_max_ws_rows", "wsrep_max_ws_size")
    statement = text("SHOW VARIABLES WHERE Variable_name IN :names").bindparams(
        bindparam("names", expanding=True)
    )
    with _transaction(connection):
        listed = connection.execute(statement, {"names": list(names)}).all()
    found = {str(name): str(value) for name, value in listed}
    if found.get("wsrep_on", "OFF").upper() != "ON":
        return None
    rows, size = (int(found.get(name) or 0) for name in names[1:])
    # 0 is "no cap" for the row count; the size cap always has a value.
    return GaleraNode(max_ws_rows=rows or None, max_ws_size=size or None)


def row_cap(connection: Connection, table: Table, *, journaled: bool) -> RowCap | None:
    """The most rows of ``table`` one transaction on this node may change, or None."""
    found = _probe(connection) if is_galera(connection) else None
    if found is None:
        return None
    writes = 2 if journaled else 1
    each = "the row and its journal row" if journaled else "the row"
    caps: list[RowCap] = []
    if found.max_ws_rows is not None:
        rows = (found.max_ws_rows - BOOKKEEPING_ROWS) // writes
        basis = f"each changed row writes {each}, plus {BOOKKEEPING_ROWS} rows of bookkeeping"
        caps.append(RowCap(max(rows, 1), f"wsrep_max_ws_rows = {found.max_ws_rows}", basis))
    if found.max_ws_size is not None:
        row_bytes = (_average_row_bytes(connection, table) + ROW_OVERHEAD_BYTES) * (
            BYTES_PER_ROW_FACTOR[journaled]
        )
        rows = found.max_ws_size // row_bytes
        basis = f"about {row_bytes} bytes of write set per changed row"
        caps.append(RowCap(max(rows, 1), f"wsrep_max_ws_size = {found.max_ws_size}", basis))
    return min(caps, key=lambda cap: cap.rows, default=None)


def flow_control(connection: Connection) -> FlowControl | None:
    """This node's flow control so far; None when ``connection`` reaches no Galera node."""
    if not is_galera(connection):
        return None
    statement = text("SHOW GLOBAL STATUS WHERE Variable_name IN :names").bindparams(
        bindparam("names", expanding=True)
    )
    names = ["wsrep_flow_control_paused_ns", "wsrep_local_recv_queue"]
    with _transaction(connection):
        found = {str(k): v for k, v in connection.execute(statement, {"names": names})}
    return FlowControl(int(found.get(names[0]) or 0), int(found.get(names[1]) or 0))


def _average_row_bytes(connection: Connection, table: Table) -> int:
    """The average stored length of a sample of ``table``'s rows (0 for an empty table)."""
    sample = select(*table.columns).limit(SAMPLE_ROWS).subquery()
    length = sum((func.coalesce(func.length(column), 0) for column in sample.columns), literal(0))
    with _transaction(connection):
        found = connection.execute(select(func.avg(length))).scalar_one()
    return int(found or 0)


@contextmanager
def causal_reads(connection: Connection) -> Iterator[None]:
    """Within the block, every read waits until this node has applied what the cluster
    committed before it; the session's own setting comes back afterwards."""
    if not is_galera(connection):
        yield
        return
    with _transaction(connection):
        before = int(connection.execute(text("SELECT @@session.wsrep_sync_wait")).scalar_one())
        _set_sync_wait(connection, before | SYNC_READS)
    try:
        yield
    finally:
        try:
            with _transaction(connection):
                _set_sync_wait(connection, before)
        except Exception:  # the block's own error is what the caller needs to see
            log.exception("could not restore wsrep_sync_wait = %d", before)


def _set_sync_wait(connection: Connection, value: int) -> None:
    connection.execute(text("SET SESSION wsrep_sync_wait = :value"), {"value": value})


@contextmanager
def _transaction(connection: Connection) -> Iterator[None]:
    """Run in the caller's transaction, or in a short one that leaves the connection idle
    as it was (a chunked run begins its own transaction on it next)."""
    if connection.in_transaction():
        yield
        return
    with connection.begin():
        yield
