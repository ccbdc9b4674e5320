"""``setwise.revert``: put back the values a run overwrote, as a run of its own.

A revert reads the run's journal, joined to the table on the key, and writes each
row's old values back: it is a changeset whose source is the journal. It is chunked
and journaled like any run, so a revert can be reverted. A row someone changed after
the run (any column the run wrote no longer holds what the run wrote) is a conflict:
the revert refuses before writing anything, unless ``force=True``, and skips such
rows under the lock in any case when not forced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    FromClause,
    MetaData,
    Select,
    Table,
    Update,
    and_,
    case,
    false,
    func,
    or_,
    select,
    true,
    types,
)
from sqlalchemy import update as sql_update

from setwise.dialects import Strategy
from setwise.dialects.compare import StoredComparison
from setwise.dialects.packed import is_packed
from setwise.engine.options import RunOptions
from setwise.engine.run import run
from setwise.engine.transaction import Bind, atomic, dialect_of, engine_of, reading_connection
from setwise.errors import ConflictError, RowConflict, SetwiseError
from setwise.journal.changes import Journal, key_column, new_column, old_column, tagged
from setwise.journal.records import RunInfo
from setwise.journal.schema import temporary_copy
from setwise.report import ProgressCallback, Report
from setwise.target import Target, resolve_target
from setwise.writers.merge import Merge, drop_kept_stage
from setwise.writers.protocol import Writer
from setwise.writers.setbased import EVERYTHING, Span

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

    kind = "revert"

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
        equal = [c == j for c, j in zip(self.target.key, self._journal_key(), strict=True)]
        return and_(*equal, *span.criteria(self.target.key))

    def _of_run(self) -> ColumnElement[bool]:
        return self.journal.c.run_id == self.run.run_id

    def _restored(self) -> list[Column[Any]]:
        """Columns whose old values come back (the version column moves on instead)."""
        return [c for c in self.columns if c is not self.target.version]

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
        values: dict[Column[Any], ColumnElement[Any]] = {c: self._old(c) for c in self._restored()}
        version = self.target.version
        if version is not None and version in self.columns:
            if isinstance(version.type, types.Integer):
                values[version] = version + 1
            else:
                values[version] = self._old(version)
        return values

    # -- the writer interface ---------------------------------------------------

    def written_columns(self) -> list[Column[Any]]:
        return list(self._new_values())

    def range_key(self) -> list[Column[Any]]:
        return self._journal_key()

    def keys_after(self, after: tuple[Any, ...] | None, limit: int) -> Select[Any]:
        key = self._journal_key()
        return (
            select(*key)
            .where(self._of_run(), *Span(after).criteria(key))
            .order_by(*key)
            .limit(limit)
        )

    def counts(self, span: Span, *, would_change: bool = True) -> Select[Any]:
        found = self.target.key[0].is_not(None)
        changes = and_(found, self._differs(), self._allowed())
        conflicts = and_(found, ~self._allowed())
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

    def rows_in(self, span: Span) -> Select[Any]:
        """The run's journal rows in the span, their target rows still there or not."""
        key = self._journal_key()
        return select(func.count()).where(self._of_run(), *span.criteria(key))

    def journal_rows(self, span: Span) -> Select[Any]:
        new = self._new_values()
        pairs = [part for column in new for part in (column, new[column])]
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

    def direct_update(self, span: Span, stamps: dict[Column[Any], Any]) -> Update:
        return (
            sql_update(self.target.table)
            .where(
                self._joined(span),
                self._of_run(),
                self._differs(),
                self._allowed(),
                *span.criteria(self._journal_key()),
            )
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
            .where(self._of_run(), self.target.key[0].is_(None), *span.criteria(key))
            .order_by(*key)
            .limit(limit)
        )

    def conflict_keys(self, span: Span, limit: int) -> Select[Any]:
        key = self._journal_key()
        return (
            select(*key)
            .select_from(self.journal.join(self.target.table, self._joined(span)))
            .where(self._of_run(), ~self._allowed(), *span.criteria(key))
            .order_by(*key)
            .limit(limit)
        )

    def conflict_details(self, limit: int, span: Span = EVERYTHING) -> Select[Any]:
        """Key, then (written, now) for each column, of rows in ``span`` changed since
        the run."""
        pairs = [part for c in self.columns for part in (self._new(c), c)]
        return (
            self._moved_rows(*self._journal_key(), *pairs, span=span)
            .order_by(*self._journal_key())
            .limit(limit)
        )

    def conflict_count(self, span: Span = EVERYTHING) -> Select[Any]:
        """How many rows in ``span`` changed since the run."""
        return self._moved_rows(func.count(), span=span)

    def _moved_rows(self, *columns: Any, span: Span = EVERYTHING) -> Select[Any]:
        return (
            select(*columns)
            .select_from(self.journal.join(self.target.table, self._joined(span)))
            .where(self._of_run(), self._moved(), *span.criteria(self._journal_key()))
        )


def revert(
    bind: Bind,
    run_id: str,
    *,
    force: bool = False,
    chunk_rows: int | Literal["auto"] | None = None,
    chunk_seconds: float = 0.5,
    throttle_seconds: float = 0.0,
    journal_prefix: str = "setwise_",
    retries: int = 5,
    progress: ProgressCallback | None = None,
    actor: str | None = None,
    tag: str | None = None,
    resume: str | None = None,
) -> Report:
    """Restore the values run ``run_id`` overwrote; returns the revert's own Report.

    Rows changed by someone else since the run raise ``ConflictError`` listing them
    (key, column, the value the run wrote, the value now) and nothing is written,
    unless ``force=True``. The revert is journaled: revert its ``run_id`` to redo.
    ``tag`` is kept with the revert's own run, as for ``setwise.update``. A chunked
    revert is a run like any other: ``resume=`` the revert's own run id goes on after
    its checkpoint, checking for conflicts only the rows it has not restored yet; a new
    revert is refused while one has not ended.
    """
    journal = Journal(journal_prefix)
    strategy = dialect_of(bind)
    # Causal reads: the run may have written through another node of a cluster.
    with reading_connection(bind) as connection, strategy.causal_reads(connection):
        info = journal.get(connection, run_id)
        if resume is None:
            journal.refuse_revert(connection, info)
        else:
            journal.refuse(info, "revert")
        if info.arguments.get("journal") is False:
            raise SetwiseError(
                f"run {run_id} kept no journal (journal=False): it cannot be reverted"
            )
        target = resolve_target(info.table, connection)
        name = journal.changes_table(target, strategy).name
        table = Table(name, MetaData(), autoload_with=connection, schema=target.table.schema)
        reversal = Reversal(
            target=target,
            journal=Journal.changes(table),
            run=info,
            columns=tuple(target.column(c) for c in info.columns),
            force=force,
            strategy=strategy,
            compare=strategy.stored_comparison(connection, target.table),
        )
        unrestored = EVERYTHING  # a resumed revert's rows after its checkpoint
        if resume is not None:
            unrestored = Span(_resumed_revert(journal, connection, info, resume, target.key))
        if not force:
            _refuse_conflicts(connection, strategy, reversal, unrestored)
    options = RunOptions(
        chunk_rows=chunk_rows,
        chunk_seconds=chunk_seconds,
        throttle_seconds=throttle_seconds,
        journal=True,
        journal_prefix=journal_prefix,
        retries=retries,
        progress=progress,
        actor=actor,
        resume=resume,
        arguments=tagged({"reverts": run_id, "force": force}, tag),
    )
    unpack = options.chunked and is_packed(table)

    def build(connection: Connection, strategy: Strategy) -> Reversal:
        if not unpack:
            return reversal
        return replace(reversal, journal=_unpack(connection, strategy, reversal))

    def cleanup(connection: Connection, strategy: Strategy, writer: Writer) -> None:
        if unpack:
            assert isinstance(writer, Reversal) and isinstance(writer.journal, Table)
            strategy.drop_stage(connection, writer.journal)

    report = run(bind, target, build, options, cleanup=cleanup, repeatable=True)
    with atomic(bind) as scope:
        journal.mark_reverted(scope.connection, info, report.run_id)
    if info.kind == Merge.kind and strategy.kept_stage_prefixes is not None:
        # An interrupted changeset run kept its staged rows for a resume that a revert
        # makes pointless. Dropped on a connection of its own, as DDL.
        with engine_of(bind).begin() as connection:
            drop_kept_stage(connection, target, journal.stage_name(run_id, strategy))
    return report


def _unpack(connection: Connection, strategy: Strategy, reversal: Reversal) -> Table:
    """The run's packed journal rows, unpacked into a temporary table keyed like the
    target: each chunk of a revert finds its key range there through the index, where
    the packed journal would unpack the whole run again for every chunk."""
    rows = reversal.journal
    run_rows = select(rows).where(rows.c.run_id == reversal.run.run_id)
    key = [key_column(c.name, strategy) for c in reversal.target.key]
    copy = temporary_copy(connection, strategy, UNPACKED, run_rows, primary_key=key)
    strategy.analyze_stage(connection, copy)
    return copy


def _resumed_revert(
    journal: Journal,
    connection: Connection,
    info: RunInfo,
    resume: str,
    key: Sequence[Column[Any]],
) -> tuple[Any, ...] | None:
    """The checkpoint of ``resume``, a revert of run ``info`` to go on with (the
    executor checks the rest of its record as it takes it up)."""
    resumed = journal.get(connection, resume)
    if resumed.kind != Reversal.kind or resumed.reverts != info.run_id:
        what = f"it reverts run {resumed.reverts}" if resumed.reverts else f"{resumed.kind!r}"
        raise SetwiseError(
            f"run {resume} is not a revert of run {info.run_id} ({what}): resume a revert "
            "of it with resume= set to that revert's run id"
        )
    journal.refuse(resumed, "resume")
    return resumed.checkpoint_of(key)


def _refuse_conflicts(
    connection: Connection, strategy: Strategy, reversal: Reversal, span: Span
) -> None:
    """Raise ``ConflictError`` for rows in ``span`` changed since the run.

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
        return
    width = len(reversal.target.key)
    conflicts: list[RowConflict] = []
    for row in rows:
        key = row[0] if width == 1 else tuple(row[:width])
        for i, column in enumerate(reversal.columns):
            written, now = row[width + 2 * i], row[width + 2 * i + 1]
            if written != now:
                conflicts.append(RowConflict(key=key, column=column.name, written=written, now=now))
    total = connection.execute(current(reversal.conflict_count(span))).scalar_one()
    raise ConflictError(reversal.target.name, conflicts=conflicts, total=int(total))
