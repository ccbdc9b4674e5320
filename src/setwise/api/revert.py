"""``setwise.revert``: put back the values a run overwrote, as a run of its own.

A revert reads the run's journal, joined to the table on the key, and writes each
row's old values back: it is a changeset whose source is the journal. It is chunked
and journaled like any run, so a revert can be reverted. A row someone changed after
the run (any column the run wrote no longer holds what the run wrote) is a conflict:
the revert refuses before writing anything, unless ``force=True``, and skips such
rows under the lock in any case when not forced. A row another writer changes while
the revert runs (after that check) is skipped so: the revert writes the rest, then
raises ``ConflictError`` for it with its Report, and the run is ``partly-reverted``,
not reverted, so that a revert of it can write that row later.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, Unpack

from sqlalchemy import Connection, MetaData, Table

from setwise.api.runs import drop_stage_of
from setwise.dialects import Strategy
from setwise.engine.health import HealthOptions, health_of
from setwise.engine.options import RunOptions
from setwise.engine.run import run
from setwise.engine.transaction import Bind, atomic, dialect_of, reading_connection
from setwise.journal.changes import Journal, tagged
from setwise.journal.layout import layout_of
from setwise.report import ProgressCallback, Report
from setwise.target import resolve_target
from setwise.writers.keys import EVERYTHING, Span
from setwise.writers.protocol import Writer
from setwise.writers.reversal import (
    Reversal,
    conflicts,
    operations_of,
    refuse_conflicts,
    unpack_journal,
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
    **health: Unpack[HealthOptions],
) -> Report:
    """Restore the values run ``run_id`` overwrote; returns the revert's own Report.

    Rows the run updated get their old values back; rows it deleted are inserted again
    exactly as they were; rows it inserted are deleted (``setwise.operations``).
    Rows changed by someone else since the run raise ``ConflictError`` listing them
    (key, column, the value the run wrote, the value now) and nothing is written,
    unless ``force=True``; so do deleted rows whose key has been taken again since
    (a row with that key exists now), which ``force=True`` replaces with the old row.
    A row another writer changes while the revert runs is not written: the revert
    restores the rest (each chunk committed as it goes), then raises ``ConflictError``
    listing the rows so left, with its ``report`` (the revert's Report); the run is
    then ``partly-reverted``, not reverted: a revert of it refuses those rows again,
    unless ``force=True``, which writes them (and only them, with the rest restored).
    The revert is journaled: revert its ``run_id`` to redo.
    ``tag`` is kept with the revert's own run, as for ``setwise.update``. A chunked
    revert is a run like any other: ``resume=`` the revert's own run id goes on after
    its checkpoint, checking for conflicts only the rows it has not restored yet; a new
    revert is refused while one has not ended.
    ``**health``: the health signals a chunked run waits on, as for ``setwise.update``.
    """
    journal = Journal(journal_prefix)
    strategy = dialect_of(bind)
    # Causal reads: the run may have written through another node of a cluster.
    with reading_connection(bind) as connection, strategy.causal_reads(connection):
        info = journal.get(connection, run_id)
        resumed = journal.refuse_revert(connection, info, resume)
        target = resolve_target(info.table, connection)
        name = journal.changes_table(target, strategy).name
        table = Table(name, MetaData(), autoload_with=connection, schema=target.table.schema)
        changes = Journal.changes(table)
        done = operations_of(connection, changes, info.run_id)
        reversal = Reversal.of_run(
            connection, target, changes, info, strategy, force=force, done=done
        )
        unrestored = EVERYTHING  # a resumed revert's rows after its checkpoint
        if resumed is not None:
            unrestored = Span(resumed.checkpoint_of(target.key))
        if not force:
            refuse_conflicts(connection, strategy, reversal, unrestored)
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
        health=health_of(strategy, health, chunked=chunk_rows is not None or resume is not None),
    )
    unpack = options.chunked and not layout_of(table).rows_by_key

    def build(connection: Connection, strategy: Strategy) -> Reversal:
        if not unpack:
            return reversal
        return replace(reversal, journal=unpack_journal(connection, strategy, reversal))

    def cleanup(connection: Connection, strategy: Strategy, writer: Writer) -> None:
        if unpack:
            assert isinstance(writer, Reversal) and isinstance(writer.journal, Table)
            strategy.drop_stage(connection, writer.journal)

    report = run(
        bind,
        target,
        build,
        options,
        cleanup=cleanup,
        repeatable=True,
        strategy=strategy,
        journal=journal,
    )
    left = None  # rows another writer changed while the revert ran: skipped
    with reading_connection(bind) as connection, strategy.causal_reads(connection):
        # The record counts the rows skipped by every chunk, a resumed revert's too.
        if report.run_id is not None and journal.get(connection, report.run_id).conflicts:
            left = conflicts(connection, strategy, reversal, report=report)
    with atomic(bind, strategy) as scope:
        journal.mark_reverted(scope.connection, info, report.run_id, partly=left is not None)
    # An interrupted changeset run kept its staged rows for a resume that a revert
    # makes pointless.
    drop_stage_of(bind, strategy, journal, info, target)
    if left is not None:
        raise left
    return report
