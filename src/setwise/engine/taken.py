"""Keys another writer inserted while a chunk was inserting them (``missing="insert"``).

A chunk counts the keys its changes have no row for, then inserts those rows. Another
writer may commit a row for one of those keys in between. MariaDB's INSERT … SELECT
reads the newest rows and leaves that key out, so fewer rows are journaled or inserted
than were counted; PostgreSQL's reads the chunk's snapshot and fails on the key's
unique constraint. Either way the chunk rolls back with ``KeysTakenError``, which is
run again as a deadlock is, and the next try finds the row and updates it.
"""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from setwise.dialects import Strategy
from setwise.dialects.integrity import violated_columns
from setwise.errors import KeysTakenError
from setwise.writers.keys import Span
from setwise.writers.protocol import Writer


def keys_taken(
    connection: Connection, strategy: Strategy, writer: Writer, span: Span, counted: int
) -> int:
    """How many of the ``counted`` keys of ``span`` that had no row have one now, by a
    current read: a locking one where a plain read shows an older snapshot
    (``Strategy.plain_reads_lag_writes``)."""
    statement = writer.counts(span, would_change=False)
    if strategy.plain_reads_lag_writes:
        statement = strategy.lock_rows(statement, writer.target.table)
    matched, _changes, _conflicted, total = (int(n) for n in connection.execute(statement).one())
    return max(counted - (total - matched), 0)


def taken_error(chunk: int, table: str, expected: int, taken: int) -> KeysTakenError:
    """The error of chunk ``chunk`` that was to insert ``expected`` rows into ``table``
    when another writer had inserted ``taken`` of their keys."""
    return KeysTakenError(
        f"chunk {chunk}: another writer inserted {taken} of the {expected} key(s) of "
        f"{table!r} this chunk was to insert, after it counted them missing; the chunk "
        "was rolled back (run it again: it updates those rows)",
        table=table,
        expected=expected,
        found=expected - taken,
    )


def taken_by_constraint(error: IntegrityError, strategy: Strategy, writer: Writer) -> bool:
    """Whether inserting the rows whose keys had no row failed on the unique constraint
    of exactly the key columns. The rows inserted are those whose key the statement
    found no row for, one per key: only a row another writer committed after the
    transaction's snapshot can collide with them there."""
    facts = strategy.describe_integrity_error(error.orig)
    if facts.kind != "unique":
        return False
    columns = violated_columns(facts, writer.target.table)
    return sorted(columns) == sorted(column.name for column in writer.target.key)
