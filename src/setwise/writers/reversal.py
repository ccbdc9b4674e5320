"""What a revert writes: the inverse of what a run did to each row it journaled.

``Reversal`` joins the target's rows to the run's journal rows on the key (the journal
read one row per change, ``Journal.changes``) and undoes each by its operation
(``setwise.operations``):

- a row the run updated gets its old values back. A row someone changed after the
  run (a column the run wrote no longer holds what the run wrote) is a conflict,
  unless it holds the old values again (a revert that ran before restored it, or
  someone put it back): there is nothing to overwrite;
- a row the run deleted is inserted again, every column as it was. One whose key is
  taken again (a row with that key exists now) is a conflict; forced, the row there
  now is replaced by the old one (an update of every column, journaled as such);
- a row the run inserted is deleted, unless it changed since (a conflict); forced, it
  is deleted all the same.

``refuse_conflicts`` lists conflicts before a revert writes, and the statements skip
them under the lock unless the revert is forced.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    FromClause,
    Select,
    Table,
    and_,
    case,
    exists,
    false,
    func,
    or_,
    select,
    true,
    types,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.sql.dml import UpdateBase

from setwise.dialects import Strategy
from setwise.dialects.compare import StoredComparison
from setwise.errors import ConflictError, RowConflict
from setwise.journal.changes import key_column, new_column, old_column
from setwise.journal.runinfo import RunInfo
from setwise.journal.states import REVERT_KIND
from setwise.operations import DELETED, INSERTED, INVERSE, OP, UPDATED, WRITE_ORDER
from setwise.report import Report
from setwise.tables import temporary_copy
from setwise.target import Target, key_value
from setwise.writers.keys import EVERYTHING, Span

#: Conflicting rows listed in a ConflictError; the count is exact.
CONFLICT_SAMPLE = 1_000

#: The temporary table a chunked revert unpacks a packed journal into.
UNPACKED = "setwise_unpacked"


@dataclass(frozen=True)
class Reversal:
    """The writer of a revert: target rows joined to the run's journal rows."""

    target: Target
    journal: FromClause
    """The journal, one row per changed row (``Journal.changes``)."""
    run: RunInfo
    columns: tuple[Column[Any], ...]
    force: bool
    strategy: Strategy
    """The database's strategy, which names the journal's columns."""
    compare: StoredComparison = field(default_factory=StoredComparison)
    """Tells whether a row holds a journaled value, byte for byte."""
    done: tuple[str, ...] = (UPDATED,)
    """What the run did to the rows it journaled (``operations_of``)."""

    kind = REVERT_KIND

    @classmethod
    def of_run(
        cls,
        connection: Connection,
        target: Target,
        journal: FromClause,
        run: RunInfo,
        strategy: Strategy,
        *,
        force: bool = False,
        done: tuple[str, ...] = (UPDATED,),
    ) -> Reversal:
        """The reversal of ``run``: the columns it journaled, compared as ``target``'s
        table stores them on this connection's database."""
        return cls(
            target=target,
            journal=journal,
            run=run,
            columns=tuple(target.column(c) for c in run.columns),
            force=force,
            strategy=strategy,
            compare=strategy.stored_comparison(connection, target.table),
            done=done,
        )

    @property
    def operations(self) -> tuple[str, ...]:
        """What the revert does: the inverse of each operation of the run; forced over
        deleted rows whose key is taken again, updates too (the row replaced)."""
        undone = {INVERSE[op] for op in self.done}
        if DELETED in self.done and self.force:
            undone.add(UPDATED)
        return tuple(op for op in WRITE_ORDER if op in undone)

    @property
    def _updates_only(self) -> bool:
        """The run only updated rows: every journal row has its target row to join."""
        return self.done == (UPDATED,)

    def _did(self, op: str) -> ColumnElement[bool]:
        """The journal row is of a row the run did ``op`` to."""
        if op not in self.done:
            return false()
        if len(self.done) == 1:
            return true()
        return self.journal.c[OP] == op

    def _found(self) -> ColumnElement[bool]:
        """The journal row's key has a row in the target now."""
        return self.target.key[0].is_not(None)

    def _acts(self) -> ColumnElement[bool]:
        """The revert writes the row."""
        found = self._found()
        return or_(
            and_(self._did(UPDATED), found, self._differs(), self._allowed()),
            and_(self._did(DELETED), ~found),
            and_(self._did(DELETED), found, self._differs(), true() if self.force else false()),
            and_(self._did(INSERTED), found, self._allowed()),
        )

    def _conflicts(self) -> ColumnElement[bool]:
        """The row changed since the run (or its key was taken again), and the revert is
        not forced."""
        if self.force:
            return false()
        found = self._found()
        return or_(
            and_(self._did(UPDATED), found, ~self._allowed(), self._differs()),
            and_(self._did(DELETED), found, self._differs()),
            and_(self._did(INSERTED), found, ~self._allowed()),
        )

    def _matched(self) -> ColumnElement[bool]:
        """The journal row's row is there to undo: a deleted row always is."""
        return or_(self._did(DELETED), self._found())

    def _inverse(self) -> ColumnElement[Any]:
        """The revert's operation on the row (see ``operations``)."""
        return case(
            (self._did(UPDATED), UPDATED),
            (self._did(INSERTED), DELETED),
            (~self._found(), INSERTED),
            else_=UPDATED,
        )

    # -- pieces -----------------------------------------------------------------

    def _journal_key(self) -> list[Column[Any]]:
        # Columns of a table, or of the subquery that unpacks a packed journal: both
        # have the name and type a checkpoint of the run's range key needs.
        return [
            cast("Column[Any]", self.journal.c[key_column(c.name, self.strategy)])
            for c in self.target.key
        ]

    def _old(self, column: Column[Any]) -> ColumnElement[Any]:
        """The journal's old value of ``column``."""
        return self.journal.c[old_column(column.name, self.strategy)]

    def _new(self, column: Column[Any]) -> ColumnElement[Any]:
        """The journal's new value of ``column``: what the run wrote."""
        return self.journal.c[new_column(column.name, self.strategy)]

    def _joined(self, span: Span = EVERYTHING) -> ColumnElement[bool]:
        """Journal row and target row by key, both inside ``span`` (see ``Merge._joined``)."""
        kept = zip(self.target.key, self._journal_key(), strict=True)
        equal = [c == self.compare.kept(c, j) for c, j in kept]
        return and_(*equal, *span.criteria(self.target.key))

    def _of_run(self) -> ColumnElement[bool]:
        return self.journal.c.run_id == self.run.run_id

    def _restored(self) -> list[Column[Any]]:
        """Columns whose old values come back (the version column moves on instead). A
        generated column is not written: the database computes it again from the rest
        of the row, and refuses a value for it (a delete journals it with the row)."""
        version = self.target.version
        return [c for c in self.columns if c is not version and c.computed is None]

    def _moved(self) -> ColumnElement[bool]:
        """The row no longer holds what the run wrote."""
        return or_(
            false(),
            *(self.compare.differs(c, self._new(c), typed=True) for c in self.columns),
        )

    def _differs(self) -> ColumnElement[bool]:
        """Reverting would change the row."""
        return or_(
            false(),
            *(self.compare.differs(c, self._old(c), typed=True) for c in self._restored()),
        )

    def _allowed(self) -> ColumnElement[bool]:
        return true() if self.force else ~self._moved()

    def _new_values(self) -> dict[Column[Any], ColumnElement[Any]]:
        values: dict[Column[Any], ColumnElement[Any]] = {
            c: self.compare.kept(c, self._old(c)) for c in self._restored()
        }
        version = self.target.version
        if version is not None and version in self.columns:
            old = self.compare.kept(version, self._old(version))
            if isinstance(version.type, types.Integer):
                # An updated row's version moves on; a deleted row comes back as it was.
                bumped = version + 1
                values[version] = (
                    bumped
                    if self._updates_only
                    else case((and_(self._did(UPDATED), self._found()), bumped), else_=old)
                )
            else:
                values[version] = old
        return values

    # -- the writer interface ---------------------------------------------------

    def written_columns(self) -> list[Column[Any]]:
        return list(self._new_values())

    def keys_after(self, after: tuple[Any, ...] | None, limit: int) -> Select[Any]:
        key = self._journal_key()
        return (
            select(*key)
            .where(self._of_run(), *Span(after).criteria(key))
            .order_by(*key)
            .limit(limit)
        )

    def counts(self, span: Span, *, would_change: bool = True) -> Select[Any]:
        if not self._updates_only:
            return self._counts_by_operation(span)
        found = self.target.key[0].is_not(None)
        changes = and_(found, self._differs(), self._allowed())
        conflicts = and_(found, ~self._allowed(), self._differs())
        return (
            select(
                func.count(self.target.key[0]),
                func.coalesce(func.sum(case((changes, 1), else_=0)), 0),
                func.coalesce(func.sum(case((conflicts, 1), else_=0)), 0),
                func.count(),
            )
            .select_from(self.journal.outerjoin(self.target.table, self._joined(span)))
            .where(self._of_run(), *span.criteria(self._journal_key()))
        )

    def _counts_by_operation(self, span: Span) -> Select[Any]:
        def count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        return (
            select(count(self._matched()), count(self._acts()), count(self._conflicts()))
            .add_columns(func.count())
            .select_from(self.journal.outerjoin(self.target.table, self._joined(span)))
            .where(self._of_run(), *span.criteria(self._journal_key()))
        )

    def rows_in(self, span: Span) -> Select[Any]:
        """The run's journal rows in the span, their target rows still there or not."""
        key = self._journal_key()
        return select(func.count()).where(self._of_run(), *span.criteria(key))

    def journal_rows(self, span: Span) -> Select[Any]:
        new = self._new_values()
        # Labelled anew: see ``Merge.journal_rows``.
        pairs = [part for column in new for part in (column, new[column].label(None))]
        if not self._updates_only:
            # A deleted row has no target row to join: its key and every value come from
            # the journal, its old values (the target's) are NULL.
            key = self._journal_key()
            marked = [self._inverse().label(OP)] if len(self.operations) > 1 else []
            return (
                select(*key, *pairs, *marked)
                .select_from(self.journal.outerjoin(self.target.table, self._joined(span)))
                .where(self._of_run(), self._acts(), *span.criteria(key))
                .order_by(*key)
            )
        return (
            select(*self.target.key, *pairs)
            .select_from(self.journal.join(self.target.table, self._joined(span)))
            .where(
                self._of_run(),
                self._differs(),
                self._allowed(),
                *span.criteria(self._journal_key()),
            )
            .order_by(*self.target.key)
        )

    def direct_update(self, span: Span, stamps: dict[Column[Any], Any]) -> UpdateBase:
        """The UPDATE of the updated rows; for a run that only inserted rows, their
        DELETE. (A revert that inserts, or does several things, writes each from its own
        journal rows: ``ChunkWrite.from_journal``.)"""
        found = [self._of_run(), *span.criteria(self._journal_key()), self._joined(span)]
        if self.operations == (DELETED,):
            return sql_delete(self.target.table).where(
                exists().where(*found, self._did(INSERTED), self._allowed())
            )
        return (
            sql_update(self.target.table)
            .where(*found, self._did(UPDATED), self._differs(), self._allowed())
            .values({**self._new_values(), **stamps})
        )

    def matched_keys(self, span: Span) -> Select[Any]:
        return (
            select(*self.target.key)
            .select_from(self.journal.join(self.target.table, self._joined(span)))
            .where(self._of_run(), *span.criteria(self._journal_key()))
            .order_by(*self.target.key)
        )

    def missing_keys(self, span: Span, limit: int) -> Select[Any]:
        key = self._journal_key()
        return (
            select(*key)
            .select_from(self.journal.outerjoin(self.target.table, self._joined(span)))
            .where(self._of_run(), ~self._matched(), *span.criteria(key))
            .order_by(*key)
            .limit(limit)
        )

    def conflict_keys(self, span: Span, limit: int) -> Select[Any]:
        key = self._journal_key()
        return (
            select(*key)
            .select_from(self.journal.join(self.target.table, self._joined(span)))
            .where(self._of_run(), self._conflicts(), *span.criteria(key))
            .order_by(*key)
            .limit(limit)
        )

    def conflict_details(self, limit: int, span: Span = EVERYTHING) -> Select[Any]:
        """Key, then (written, now) for each column, of rows in ``span`` changed since
        the run."""
        pairs = [part for c in self.columns for part in (self._written(c), c)]
        return (
            self._moved_rows(*self._journal_key(), *pairs, span=span)
            .order_by(*self._journal_key())
            .limit(limit)
        )

    def conflict_count(self, span: Span = EVERYTHING) -> Select[Any]:
        """How many rows in ``span`` changed since the run."""
        return self._moved_rows(func.count(), span=span)

    def _written(self, column: Column[Any]) -> ColumnElement[Any]:
        """What a conflict says the row held after the run: what the run wrote, or for
        a row it deleted, what the row held when the run deleted it."""
        if DELETED not in self.done:
            return self._new(column)
        return case((self._did(DELETED), self._old(column)), else_=self._new(column))

    def _moved_rows(self, *columns: Any, span: Span = EVERYTHING) -> Select[Any]:
        return (
            select(*columns)
            .select_from(self.journal.join(self.target.table, self._joined(span)))
            .where(
                self._of_run(),
                self._conflicts_ignoring_force(),
                *span.criteria(self._journal_key()),
            )
        )

    def _conflicts_ignoring_force(self) -> ColumnElement[bool]:
        return replace(self, force=False)._conflicts()


def unpack_journal(connection: Connection, strategy: Strategy, reversal: Reversal) -> Table:
    """The run's packed journal rows, unpacked into a temporary table keyed like the
    target: each chunk of a revert finds its key range there through the index, where
    the packed journal would unpack the whole run again for every chunk."""
    rows = reversal.journal
    run_rows = select(rows).where(rows.c.run_id == reversal.run.run_id)
    key = [key_column(c.name, strategy) for c in reversal.target.key]
    copy = temporary_copy(connection, strategy, UNPACKED, run_rows, primary_key=key)
    strategy.analyze_stage(connection, copy)
    return copy


def refuse_conflicts(
    connection: Connection, strategy: Strategy, reversal: Reversal, span: Span
) -> None:
    """Raise ``ConflictError`` for rows in ``span`` changed since the run (``conflicts``)."""
    found = conflicts(connection, strategy, reversal, span)
    if found is not None:
        raise found


def conflicts(
    connection: Connection,
    strategy: Strategy,
    reversal: Reversal,
    span: Span = EVERYTHING,
    report: Report | None = None,
) -> ConflictError | None:
    """The ``ConflictError`` of rows in ``span`` changed since the run, if any;
    ``report``: what the revert had done when it found them (it has run).

    In the caller's transaction a plain read may show its snapshot, older than the rows
    the revert's locked writes find (``Strategy.plain_reads_lag_writes``): a row changed
    since would pass here, then be skipped under the lock, and the run be marked
    reverted with that row unreverted. On such a database the rows are read with a lock."""

    def current(statement: Select[Any]) -> Select[Any]:
        if strategy.plain_reads_lag_writes:
            return strategy.lock_rows(statement, reversal.target.table)
        return statement

    rows = connection.execute(current(reversal.conflict_details(CONFLICT_SAMPLE, span))).all()
    if not rows:
        return None
    width = len(reversal.target.key)
    found: list[RowConflict] = []
    for row in rows:
        key = key_value(row[:width])
        for i, column in enumerate(reversal.columns):
            written, now = row[width + 2 * i], row[width + 2 * i + 1]
            if written != now:
                found.append(RowConflict(key=key, column=column.name, written=written, now=now))
    total = connection.execute(current(reversal.conflict_count(span))).scalar_one()
    return ConflictError(
        reversal.target.name,
        conflicts=found,
        total=int(total),
        run_id=reversal.run.run_id,
        report=report,
    )


def operations_of(connection: Connection, journal: FromClause, run_id: str) -> tuple[str, ...]:
    """What run ``run_id`` did to the rows it journaled (``setwise.operations``), in
    the order a chunk writes them; a run with no journal rows only updated."""
    found = connection.execute(
        select(journal.c[OP]).where(journal.c.run_id == run_id).distinct()
    ).scalars()
    done = set(found) or {UPDATED}
    return tuple(op for op in WRITE_ORDER if op in done)
