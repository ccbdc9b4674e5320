"""Write one chunk's rows: with its journal, by key from Python, or with one UPDATE.

With a journal, two set-based statements in the chunk's transaction:

1. ``INSERT INTO journal SELECT key, old, new … ORDER BY key FOR UPDATE``: locks the
   rows in key order (two runs never deadlock each other) and records exactly the
   values it is about to overwrite, as they are under the lock;
2. the writer's own UPDATE, which finds those rows again and writes the same values,
   when it reads nothing else that could have changed in between; otherwise (or when
   its row count says it wrote other rows) ``UPDATE target … FROM journal``, which
   writes exactly what the journal recorded.

On a snapshot, where the server returns the values an UPDATE overwrote (PostgreSQL
18), a writer that only updates sends one statement instead: its UPDATE, whose
``RETURNING old.c, new.c`` the journal's INSERT takes in the same statement
(``_in_one_statement``, ``Strategy.journaling_update``).

A writer that deletes (``operations``: ``setwise.operations``) journals each row whole
and runs its own DELETE, or ``DELETE … WHERE EXISTS`` (the chunk's journal rows); one
that inserts writes ``INSERT … SELECT`` of its journal rows; one that does several
journals each row with its operation, and writes each operation from the journal.

Where the database has no UPDATE … FROM, or the caller's transaction cannot read a
journal table created after it began, the rows are read into Python under their locks,
journaled, and written by key. Without a journal the writer's own UPDATE runs alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    FromClause,
    Select,
    Table,
    Update,
    bindparam,
    exists,
    literal,
    select,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.expression import Executable

from setwise.dialects import Strategy
from setwise.engine.statements import reads_only, repeatable
from setwise.engine.taken import keys_taken, taken_by_constraint, taken_error
from setwise.errors import WriteCheckError
from setwise.journal.changes import JournalShape
from setwise.journal.layout import JournalLayout
from setwise.operations import DELETED, INSERTED, OP, UPDATED, WRITE_ORDER
from setwise.writers.keys import Span
from setwise.writers.merge import Merge
from setwise.writers.protocol import Writer

log = logging.getLogger("setwise")


class ChunkWrite:
    """How the chunks of one run write their rows, and the statements they send."""

    def __init__(
        self,
        strategy: Strategy,
        writer: Writer,
        stamps: dict[Column[Any], Any],
        journal_table: Table | None,
        *,
        written: Sequence[Column[Any]],
        on_snapshot: bool,
        by_key: bool,
    ) -> None:
        self.strategy = strategy
        self.writer = writer
        self.stamps = stamps
        self.journal_table = journal_table
        self.written = written
        """The columns the writer writes (``Writer.written_columns``), asked once."""
        self.shape = JournalShape.of(journal_table) if journal_table is not None else None
        """The journal table's layout (``journal.layout``) and column names."""
        self.operations = tuple(op for op in WRITE_ORDER if op in writer.operations)
        """What the writer does, in the order a chunk does it (``setwise.operations``)."""
        self.marked = len(self.operations) > 1
        """The writer's journal rows end with their own operation."""
        self.on_snapshot = on_snapshot
        """Chunks run on a snapshot (``Strategy.snapshot_chunks``): their own
        transactions, which retry when a row they write changed since the snapshot."""
        self.by_key = by_key or not strategy.supports_update_from
        """Write the journal and the rows by key from Python, never reading the journal
        table back: without UPDATE … FROM, or for a caller's transaction that cannot see
        a journal table created after it began (MySQL's REPEATABLE READ, error 1412)."""
        parts = [strategy.name, writer.kind]
        parts.append("journaled" if journal_table is not None else "no journal")
        if self.by_key:
            parts.append("by key")
        self.name = " / ".join(parts)
        """How the run writes, for reports: database, kind, journal, keyed or not."""

    def write(self, connection: Connection, span: Span, chunk: int, run_id: str | None) -> int:
        """Write the rows of ``span`` as chunk ``chunk`` of run ``run_id``; the rows changed."""
        if self.journal_table is not None:
            assert run_id is not None
            return self._write_journaled(connection, span, chunk, run_id)
        if self.strategy.supports_update_from:
            return int(connection.execute(self.writer.direct_update(span, self.stamps)).rowcount)
        return self._write_by_key(connection, self._locked_rows(connection, span))

    def statements(
        self, span: Span, chunk: int, run_id: str | None, connection: Connection | None = None
    ) -> list[Executable]:
        """The statements one chunk sends on ``connection``, in order: what a run executes
        and what a plan shows (a keyed path sends the locked SELECT, then an executemany
        UPDATE by key). Without a connection, those of a server that cannot return an
        UPDATE's old values (``_in_one_statement``)."""
        if self.by_key:
            locked = self._locked(self._in_python(self.writer.journal_rows(span)))
            return [locked, *(self._by_key(op) for op in self.operations)]
        direct = self.writer.direct_update(span, self.stamps)
        if self.journal_table is None:
            return [direct]
        assert run_id is not None
        if connection is not None:
            one = self._in_one_statement(connection, direct, chunk, run_id)
            if one is not None:
                return [one]
        return self._journal_then_write(span, chunk, run_id, direct)

    def _journal_then_write(
        self, span: Span, chunk: int, run_id: str, direct: UpdateBase
    ) -> list[Executable]:
        """The two statements of a journaled chunk, given the writer's own UPDATE
        ``direct``: the journal's INSERT, then ``direct`` where it writes what the INSERT
        recorded, else the writes from the journal."""
        assert self.journal_table is not None
        rows = self._locked(self.writer.journal_rows(span))
        names = self._journal_names()
        op = self.operations[0]
        copy_rows = self._layout.copy(self.journal_table, rows, names, run_id, chunk, op)
        if not self.marked and op != INSERTED and self._rewrites_journaled_rows(direct):
            return [copy_rows, direct]
        return [copy_rows, *self.from_journal(span, chunk, run_id)]

    def from_journal(self, span: Span, chunk: int, run_id: str) -> list[UpdateBase]:
        """The statements that write a chunk's rows from its journal rows, an operation
        at a time: exactly what the journal recorded."""
        writes = {
            UPDATED: self.update_from_journal,
            DELETED: self.delete_from_journal,
            INSERTED: self.insert_from_journal,
        }
        return [writes[op](span, chunk, run_id) for op in self.operations]

    def _chunk_rows(
        self, span: Span, chunk: int, run_id: str, op: str
    ) -> tuple[FromClause, list[ColumnElement[Any]], list[ColumnElement[bool]]]:
        """The journal read one row per change, its key columns, and the conditions that
        find the journal rows of chunk ``chunk`` with operation ``op``."""
        assert self.journal_table is not None
        assert self.shape is not None
        table = self.shape.layout.changes(self.journal_table)
        journal_key: list[ColumnElement[Any]] = [
            table.c[self.shape.key[c.name]] for c in self.writer.target.identity
        ]
        found = [
            table.c.run_id == run_id,
            # The span finds the chunk's rows by the journal's primary key (run, key…):
            # no index of its own on (run, chunk) to keep up on every journal row.
            *span.criteria(journal_key),
            table.c.chunk == chunk,
        ]
        if self.marked:
            found.append(table.c[OP] == op)
        return table, journal_key, found

    def delete_from_journal(self, span: Span, chunk: int, run_id: str) -> UpdateBase:
        """The DELETE of the rows a chunk journaled as deleted."""
        target = self.writer.target
        _, journal_key, found = self._chunk_rows(span, chunk, run_id, DELETED)
        # An ENUM key kept as text, cast back to match (``StoredComparison.kept``).
        kept = self.strategy.offline_comparison(target.table).kept
        same = [c == kept(c, k) for c, k in zip(target.identity, journal_key, strict=True)]
        return sql_delete(target.table).where(exists().where(*found, *same))

    def insert_from_journal(self, span: Span, chunk: int, run_id: str) -> UpdateBase:
        """The INSERT … SELECT of the rows a chunk journaled as inserted: the key and the
        new value of each column written, typed as the target's columns."""
        assert self.shape is not None
        target = self.writer.target
        table, journal_key, found = self._chunk_rows(span, chunk, run_id, INSERTED)
        # The journal keeps an ENUM's values as text (``staging_type``): cast back where
        # the database has no assignment cast from text (``StoredComparison.kept``).
        kept = self.strategy.offline_comparison(target.table).kept
        values = [kept(c, k) for c, k in zip(target.identity, journal_key, strict=True)]
        values += [kept(c, table.c[self.shape.new[c.name]]) for c in self.written]
        stamped = [c for c in self.stamps if c not in self.written]
        values += [literal(self.stamps[c], c.type) for c in stamped]
        columns = [*target.identity, *self.written, *stamped]
        rows = select(*values).where(*found)
        restoring = self.strategy.restoring_insert(target.table)
        return restoring.from_select([c.name for c in columns], rows)

    def insert(
        self, connection: Connection, span: Span, chunk: int, run_id: str | None, missing: int
    ) -> int:
        """Insert the rows of ``span`` whose keys have no row (``missing="insert"``), the
        ``missing`` rows the chunk counted, journaled first (``INSERTED``) when the run
        keeps a journal; the rows inserted. Another count means another writer inserted
        one of those keys in between: the chunk is rolled back."""
        table = self.writer.target.name
        *journaled, inserting = self.insert_statements(span, chunk, run_id)
        if self.by_key and journaled:  # read into Python: see ``by_key``
            assert self.journal_table is not None and run_id is not None
            rows = [tuple(row) for row in connection.execute(journaled[0])]
            names = self._journal_names()
            self._layout.insert(
                connection, self.journal_table, rows, names, run_id, chunk, INSERTED
            )
            said = f"{len(rows)} journaled as inserted"
            self._check_inserted(connection, span, chunk, missing, len(rows), said)
        elif journaled:
            copied = self._layout.copied(connection, journaled[0])
            said = f"{copied} journaled as inserted"
            self._check_inserted(connection, span, chunk, missing, copied, said)
        try:
            inserted = int(connection.execute(inserting).rowcount)
        except IntegrityError as exc:
            if taken_by_constraint(exc, self.strategy, self.writer):
                raise taken_error(chunk, table, missing, 1) from exc
            raise
        said = f"{missing} row(s) of {table!r} were to be inserted, but the database reported"
        self._check_inserted(connection, span, chunk, missing, inserted, f"{said} {inserted}")
        return inserted

    def _check_inserted(
        self, connection: Connection, span: Span, chunk: int, expected: int, found: int, said: str
    ) -> None:
        """As ``_check_written``, but ``KeysTakenError`` when fewer rows went in because
        another writer inserted some of their keys since the chunk counted them."""
        if found < expected and self.strategy.supports_sane_rowcount:
            taken = keys_taken(connection, self.strategy, self.writer, span, expected)
            if taken:
                raise taken_error(chunk, self.writer.target.name, expected, taken)
        self._check_written(chunk, expected, found, said)

    def insert_statements(self, span: Span, chunk: int, run_id: str | None) -> list[Executable]:
        """The statements that insert a chunk's rows whose keys have no row: with a
        journal, the journal's INSERT … SELECT of them first (by key: the SELECT whose
        rows are journaled from Python), then the target's INSERT … SELECT."""
        merge = self.writer
        assert isinstance(merge, Merge)
        statement = merge.insert(span, self.stamps).execution_options(preserve_rowcount=True)
        if self.journal_table is None or run_id is None:
            return [statement]
        rows = merge.inserted_journal_rows(span)
        if self.by_key:
            return [self._in_python(rows), statement]
        names = self._journal_names()
        return [
            self._layout.copy(self.journal_table, rows, names, run_id, chunk, INSERTED),
            statement,
        ]

    def update_from_journal(self, span: Span, chunk: int, run_id: str) -> Update:
        """The UPDATE that writes a chunk's rows from its journal rows: exactly what the
        journal recorded, whatever changed since the INSERT."""
        assert self.shape is not None
        shape, target = self.shape, self.writer.target
        table, journal_key, found = self._chunk_rows(span, chunk, run_id, UPDATED)
        # ENUM values kept as text, cast back to match and be written (``kept``).
        kept = self.strategy.offline_comparison(target.table).kept
        values: dict[Column[Any], Any] = {
            c: kept(c, table.c[shape.new[c.name]]) for c in self.written
        }
        same = [c == kept(c, k) for c, k in zip(target.identity, journal_key, strict=True)]
        return sql_update(target.table).where(*found, *same).values({**values, **self.stamps})

    def _in_one_statement(
        self, connection: Connection, direct: UpdateBase, chunk: int, run_id: str
    ) -> Executable | None:
        """Where the server returns the values an UPDATE overwrote (PostgreSQL 18), the
        writer's own UPDATE journaling the rows it writes in the same statement: the
        target is read once (a journaled chunk's statements cost 0.34 s of server CPU
        instead of 0.38 s at 45,000 changed rows). Only on a snapshot, which locks
        nothing: elsewhere the journal's INSERT … FOR UPDATE locks the rows in key order
        so that two runs never deadlock each other, and a locking read before this
        statement cost more than it saved (0.42 s against 0.36 s). None where it cannot:
        a writer that deletes or inserts, or a statement with a table called ``old`` or
        ``new``."""
        assert self.journal_table is not None
        if not self.on_snapshot or self.operations != (UPDATED,):
            return None
        if not isinstance(direct, Update):
            return None
        identity = self.writer.target.identity
        rows = self.strategy.journaling_update(connection, direct, identity, self.written)
        if rows is None:
            return None
        names = self._journal_names()
        return self._layout.copy(self.journal_table, rows, names, run_id, chunk, UPDATED)

    def _write_journaled(self, connection: Connection, span: Span, chunk: int, run_id: str) -> int:
        assert self.journal_table is not None
        if self.by_key:
            self._lock_present(connection, span)
            rows = self._locked_rows(connection, span)
            if rows:
                names = self._journal_names()
                op = self.operations[0]
                self._layout.insert(connection, self.journal_table, rows, names, run_id, chunk, op)
            return self._write_by_key(connection, rows)
        direct = self.writer.direct_update(span, self.stamps)
        one = self._in_one_statement(connection, direct, chunk, run_id)
        if one is not None:  # one journal row per row the UPDATE wrote: the chunk's count
            return self._layout.copied(connection, one, writes=True)
        self._lock_present(connection, span)
        copy_rows, *applied = self._journal_then_write(span, chunk, run_id, direct)
        apply_rows: Sequence[Executable] = applied
        consistent = self.strategy.single_writer or self.on_snapshot
        if not self.marked and not consistent:
            # The rows the INSERT locked still match, so the UPDATE writes all of them;
            # it writes more only when another writer made new rows match in between.
            # Then the savepoint takes both statements back and the journal join runs.
            with connection.begin_nested() as savepoint:
                inserted, written = self._copy_and_apply(connection, copy_rows, apply_rows)
                if written == inserted or not self.strategy.supports_sane_rowcount:
                    return inserted
                savepoint.rollback()
            log.info("chunk %d: rows changed under it; writing it through its journal", chunk)
            apply_rows = self.from_journal(span, chunk, run_id)
        inserted, written = self._copy_and_apply(connection, copy_rows, apply_rows)
        table = self.writer.target.name
        said = f"the journal holds {inserted} row(s) but the database reported {written}"
        self._check_written(chunk, inserted, written, f"{said} written in {table!r}")
        return inserted

    def _check_written(self, chunk: int, expected: int, found: int, said: str) -> None:
        """``WriteCheckError`` (the chunk rolls back) when the database reports ``found``
        rows written, not the ``expected``, where its row counts can be trusted."""
        if found == expected or not self.strategy.supports_sane_rowcount:
            return
        raise WriteCheckError(
            f"chunk {chunk}: {said}; the chunk was rolled back",
            table=self.writer.target.name,
            expected=expected,
            found=found,
        )

    def _copy_and_apply(
        self, connection: Connection, copy_rows: Executable, apply_rows: Sequence[Executable]
    ) -> tuple[int, int]:
        """Run the journal INSERT and the writes; the rows the INSERT journaled, and the
        rows the writes wrote together."""
        inserted = self._layout.copied(connection, copy_rows)
        written = 0
        for statement in apply_rows:
            # SQLAlchemy keeps an INSERT's rowcount only when asked to.
            rowcount = statement.execution_options(preserve_rowcount=True)
            written += connection.execute(rowcount).rowcount
        return inserted, written

    def _rewrites_journaled_rows(self, direct: UpdateBase) -> bool:
        """True when the writer's own UPDATE, sent right after the journal INSERT, writes
        the rows and values the INSERT recorded: then it runs instead of a join of the
        journal, which cost a third of the UPDATE on SQLite and a sixth on PostgreSQL
        (benchmarks/README.md).

        It must compute the same rows and values again (no now(), random(), unknown
        SQL), and read nothing another writer could change in between: on a database
        with one writer at a time nothing can, and on a chunk's snapshot both read the
        same data (a row changed since fails the UPDATE); elsewhere the INSERT locked
        the rows it read, so the UPDATE may read only those (no other table, no
        subquery)."""
        if not repeatable(direct):
            return False
        if self.strategy.single_writer or self.on_snapshot:
            return True
        return reads_only(direct, self.writer.target.table, self.strategy.stage_schema)

    def _locked(self, statement: Select[Any]) -> Select[Any]:
        if self.on_snapshot or self.strategy.single_writer:
            # Nothing is locked, or no other run writes beside this one, so nothing needs
            # the key order that keeps two runs' locks from deadlocking: without it a run
            # over the whole table reads it by a plain scan rather than its key index
            # (0.36 s of 0.64 s at 1,000,000 rows on PostgreSQL), and SQLite sorts
            # nothing for it (its journal INSERT of 450,000 rows: 0.50 -> 0.37 s).
            return statement.order_by(None)
        if self._locks_apart:
            return statement
        return self.strategy.lock_rows(statement, self.writer.target.table)

    def _lock_present(self, connection: Connection, span: Span) -> None:
        """Where the writer inserts rows (``_locks_apart``), lock the rows of ``span``
        that are there, in key order."""
        if self._locks_apart:
            target = self.writer.target
            present = self.strategy.lock_rows(self.writer.matched_keys(span), target.table)
            connection.execute(present).all()

    @property
    def _locks_apart(self) -> bool:
        """The writer inserts rows, whose journal rows join no target row: a row lock
        on the target's side of that outer join is refused (PostgreSQL's FOR UPDATE
        OF), so the rows that are there (``matched_keys``) are locked first, in key
        order, and the journal read locks nothing."""
        return INSERTED in self.operations and not self.on_snapshot

    def _locked_rows(self, connection: Connection, span: Span) -> list[tuple[Any, ...]]:
        rows = self._locked(self._in_python(self.writer.journal_rows(span)))
        return [tuple(r) for r in connection.execute(rows)]

    def _in_python(self, rows: Select[Any]) -> Select[Any]:
        """The journal ``rows`` of the by-key path, each old and new value selected so
        that, read into Python and bound again, it is written exactly as it was read
        (``Strategy.read_exactly``): else MariaDB's DOUBLE 1e300 came back as 1e65 and a
        TIME of -00:00:01 as 23:59:59, in the journal and in the rows written."""
        width = len(self.writer.target.identity)
        values = range(width, width + 2 * len(self.written))
        columns = [
            self.strategy.read_exactly(column) if i in values else column
            for i, column in enumerate(rows.selected_columns)
        ]
        return rows.with_only_columns(*columns, maintain_column_froms=True)

    def _by_key(self, op: str) -> UpdateBase:
        """The executemany statement that writes rows of operation ``op`` by key."""
        target = self.writer.target
        by_key = [c == bindparam(f"k_{c.name}") for c in target.identity]
        if op == DELETED:
            return sql_delete(target.table).where(*by_key)
        values: dict[Column[Any], Any] = {c: bindparam(f"v_{c.name}") for c in self.written}
        values |= self.stamps
        if op == INSERTED:
            keys: dict[Column[Any], Any] = {c: bindparam(f"k_{c.name}") for c in target.identity}
            return self.strategy.restoring_insert(target.table).values(keys | values)
        return sql_update(target.table).where(*by_key).values(values)

    def _write_by_key(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        """Without UPDATE … FROM: one executemany by key per operation, of the rows' new
        values (nothing but the key for a delete)."""
        target = self.writer.target
        columns = self.written
        width = len(target.identity)
        params: dict[str, list[dict[str, Any]]] = {op: [] for op in self.operations}
        for row in rows:
            op = row[-1] if self.marked else self.operations[0]
            keys: dict[str, Any] = {f"k_{c.name}": row[i] for i, c in enumerate(target.identity)}
            news = {f"v_{c.name}": row[width + 2 * i + 1] for i, c in enumerate(columns)}
            params[op].append(keys if op == DELETED else keys | news)
        for op in self.operations:
            if params[op]:
                connection.execute(self._by_key(op), params[op])
        return len(rows)

    @property
    def _layout(self) -> JournalLayout:
        assert self.shape is not None
        return self.shape.layout

    def _journal_names(self) -> list[str]:
        assert self.shape is not None
        names = self.shape.names(self.writer.target.identity, self.written)
        return [*names, OP] if self.marked else names
