"""Write one chunk's rows: with its journal, by key from Python, or with one UPDATE.

With a journal, two set-based statements in the chunk's transaction:

1. ``INSERT INTO journal SELECT key, old, new … ORDER BY key FOR UPDATE``: locks the
   rows in key order (two runs never deadlock each other) and records exactly the
   values it is about to overwrite, as they are under the lock;
2. the writer's own UPDATE, which finds those rows again and writes the same values,
   when it reads nothing else that could have changed in between; otherwise (or when
   its row count says it wrote other rows) ``UPDATE target … FROM journal``, which
   writes exactly what the journal recorded.

Where the database has no UPDATE … FROM, or the caller's transaction cannot read a
journal table created after it began, the rows are read into Python under their locks,
journaled, and written by key. Without a journal the writer's own UPDATE runs alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, Select, Table, Update, bindparam
from sqlalchemy import update as sql_update
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.expression import Executable
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import iterate

from setwise.dialects import Strategy
from setwise.errors import WriteCheckError
from setwise.journal.changes import JournalShape
from setwise.journal.layout import JournalLayout
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

    def statements(self, span: Span, chunk: int, run_id: str | None) -> list[Executable]:
        """The statements one chunk sends, in order: what a run executes and what a plan
        shows (a keyed path sends the locked SELECT, then an executemany UPDATE by key)."""
        if self.by_key:
            return [self._locked(self.writer.journal_rows(span)), self._update_by_key()]
        direct = self.writer.direct_update(span, self.stamps)
        if self.journal_table is None:
            return [direct]
        assert run_id is not None
        rows = self._locked(self.writer.journal_rows(span))
        names = self._journal_names()
        copy_rows = self._layout.copy(self.journal_table, rows, names, run_id, chunk)
        if self._rewrites_journaled_rows(direct):
            return [copy_rows, direct]
        return [copy_rows, self.update_from_journal(span, chunk, run_id)]

    def insert(
        self, connection: Connection, span: Span, chunk: int, run_id: str | None, missing: int
    ) -> int:
        """Insert the rows of ``span`` whose keys have no row (``missing="insert"``), the
        ``missing`` rows the chunk counted; the rows inserted. Fewer inserted means another
        writer inserted one of those keys in between: the chunk is rolled back."""
        statement = self.insert_statements(span, chunk, run_id)[-1]
        inserted = int(connection.execute(statement).rowcount)
        table = self.writer.target.name
        said = f"{missing} row(s) of {table!r} were to be inserted, but the database reported"
        self._check_written(chunk, missing, inserted, f"{said} {inserted}")
        return inserted

    def insert_statements(self, span: Span, chunk: int, run_id: str | None) -> list[Executable]:
        """The statements that insert a chunk's rows whose keys have no row."""
        del chunk, run_id
        merge = self.writer
        assert isinstance(merge, Merge)
        statement = merge.insert(span, self.stamps)
        return [statement.execution_options(preserve_rowcount=True)]

    def update_from_journal(self, span: Span, chunk: int, run_id: str) -> Update:
        """The UPDATE that writes a chunk's rows from its journal rows: exactly what the
        journal recorded, whatever changed since the INSERT."""
        assert self.journal_table is not None
        assert self.shape is not None
        shape, table = self.shape, self.shape.layout.changes(self.journal_table)
        target = self.writer.target
        values: dict[Column[Any], Any] = {c: table.c[shape.new[c.name]] for c in self.written}
        journal_key = [table.c[shape.key[c.name]] for c in target.identity]
        return (
            sql_update(target.table)
            .where(
                table.c.run_id == run_id,
                # The span finds the chunk's rows by the journal's primary key (run, key…):
                # no index of its own on (run, chunk) to keep up on every journal row.
                *span.criteria(journal_key),
                table.c.chunk == chunk,
                *(c == k for c, k in zip(target.identity, journal_key, strict=True)),
            )
            .values({**values, **self.stamps})
        )

    def _write_journaled(self, connection: Connection, span: Span, chunk: int, run_id: str) -> int:
        assert self.journal_table is not None
        if self.by_key:
            rows = self._locked_rows(connection, span)
            if rows:
                names = self._journal_names()
                self._layout.insert(connection, self.journal_table, rows, names, run_id, chunk)
            return self._write_by_key(connection, rows)
        copy_rows, apply_rows = self.statements(span, chunk, run_id)
        consistent = self.strategy.single_writer or self.on_snapshot
        if isinstance(apply_rows, Update) and not consistent:
            # The rows the INSERT locked still match, so the UPDATE writes all of them;
            # it writes more only when another writer made new rows match in between.
            # Then the savepoint takes both statements back and the journal join runs.
            with connection.begin_nested() as savepoint:
                inserted, written = self._copy_and_apply(connection, copy_rows, apply_rows)
                if written == inserted or not self.strategy.supports_sane_rowcount:
                    return inserted
                savepoint.rollback()
            log.info("chunk %d: rows changed under it; writing it through its journal", chunk)
            apply_rows = self.update_from_journal(span, chunk, run_id)
        inserted, written = self._copy_and_apply(connection, copy_rows, apply_rows)
        table = self.writer.target.name
        said = f"the journal holds {inserted} row(s) but the database reported {written}"
        self._check_written(chunk, inserted, written, f"{said} updated in {table!r}")
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
        self, connection: Connection, copy_rows: Executable, apply_rows: Executable
    ) -> tuple[int, int]:
        """Run the journal INSERT and the UPDATE; the rows each wrote."""
        inserted = self._layout.copied(connection, copy_rows)
        return inserted, connection.execute(apply_rows).rowcount

    def _rewrites_journaled_rows(self, direct: Update) -> bool:
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
        if self.on_snapshot:
            # Nothing is locked, so nothing needs the key order that keeps two runs'
            # locks from deadlocking: without it a run over the whole table reads it
            # by a plain scan rather than its key index (0.36 s of 0.64 s at 1,000,000
            # rows on PostgreSQL).
            return statement.order_by(None)
        return self.strategy.lock_rows(statement, self.writer.target.table)

    def _locked_rows(self, connection: Connection, span: Span) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in connection.execute(self._locked(self.writer.journal_rows(span)))]

    def _update_by_key(self) -> Update:
        target = self.writer.target
        return (
            sql_update(target.table)
            .where(*(c == bindparam(f"k_{c.name}") for c in target.identity))
            .values({c: bindparam(f"v_{c.name}") for c in self.written} | dict(self.stamps))
        )

    def _write_by_key(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        """Without UPDATE … FROM: one executemany by key of the rows' new values."""
        if not rows:
            return 0
        target = self.writer.target
        columns = self.written
        width = len(target.identity)
        params = []
        for row in rows:
            keys = {f"k_{c.name}": row[i] for i, c in enumerate(target.identity)}
            news = {f"v_{c.name}": row[width + 2 * i + 1] for i, c in enumerate(columns)}
            params.append(keys | news)
        connection.execute(self._update_by_key(), params)
        return len(rows)

    @property
    def _layout(self) -> JournalLayout:
        assert self.shape is not None
        return self.shape.layout

    def _journal_names(self) -> list[str]:
        assert self.shape is not None
        return self.shape.names(self.writer.target.identity, self.written)


#: Functions that give the same result for the same arguments in every statement. Any
#: other (now(), random(), a user's function) might not, and text setwise cannot read
#: might hold one: an UPDATE with those is not run twice in the hope of one result.
DETERMINISTIC_FUNCTIONS = frozenset(
    {"abs", "coalesce", "ifnull", "nullif", "lower", "upper", "length", "substr", "trim"}
    | {"ltrim", "rtrim", "replace", "round", "max", "min", "count", "sum", "avg"}
    | {"cast", "convert"}  # the stored-value comparisons of dialects/ (MySQL's CONVERT … USING)
)


def repeatable(statement: Update) -> bool:
    """True when ``statement`` finds the same rows and computes the same values each
    time it runs over the same data."""
    for element in iterate(statement):
        if isinstance(element, TextClause):
            return False
        name = str(getattr(element, "name", "")).lower()
        if isinstance(element, FunctionElement) and name not in DETERMINISTIC_FUNCTIONS:
            return False
    return True


def reads_only(statement: Update, target: Table, private_schema: str | None) -> bool:
    """True when ``statement`` reads no table but ``target`` (and setwise's own, in
    ``private_schema``), and no subquery: nothing another writer could change once the
    rows of ``target`` it reads are locked."""
    for element in iterate(statement):
        if isinstance(element, Table):
            if element._deannotate() is not target and element.schema != private_schema:
                return False
        elif getattr(element, "is_selectable", False) and not isinstance(element, FunctionElement):
            return False
    return True
