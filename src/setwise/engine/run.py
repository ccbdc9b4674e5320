"""Run a writer end to end: journal tables, transactions, returning rows, session sync.

``update``, ``apply`` and ``revert`` each build a writer and hand it here with their
options. A run without ``chunk_rows`` happens in one transaction under the rules of
``setwise.engine.transaction``; a chunked run needs a connection setwise may commit on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Engine, Table
from sqlalchemy.exc import DBAPIError

from setwise.dialects import Strategy
from setwise.engine.chunks import Executor
from setwise.engine.options import RunOptions
from setwise.engine.retry import retrying
from setwise.engine.session import loaded_objects, read_back, sync
from setwise.engine.transaction import Bind, atomic, dialect_of, engine_of, owned_connection
from setwise.errors import KeysTakenError
from setwise.journal.changes import Journal
from setwise.operations import DELETED
from setwise.report import Report
from setwise.target import Target
from setwise.writers.protocol import Writer

log = logging.getLogger("setwise")

Build = Callable[[Connection, Strategy], Writer | None]
"""Prepares the writer on the run's connection (staging a changeset, say); None: no rows.
In a chunked run the connection is setwise's own, and ``build`` may commit on it, so that
preparing a large writer holds no long transaction either."""

Cleanup = Callable[[Connection, Strategy, Writer], None]


def run(
    bind: Bind,
    target: Target,
    build: Build,
    options: RunOptions,
    *,
    returning: Sequence[Column[Any]] = (),
    cleanup: Cleanup | None = None,
    repeatable: bool = False,
    strategy: Strategy | None = None,
    journal: Journal | None = None,
) -> Report:
    """Run the writer ``build`` makes, and report what happened.

    ``strategy`` and ``journal``: the bind's strategy and the journal under
    ``options.journal_prefix``, when the caller has them already (else found here).

    ``repeatable``: ``build`` makes the same writer again (it reads no source that is
    gone once read). A one-transaction run in a transaction of setwise's own may then
    read on a snapshot, as chunks do, and start again whole when a row it writes
    changed under it, instead of locking every row it journals."""
    started = time.perf_counter()
    strategy = strategy if strategy is not None else dialect_of(bind)
    journal = journal if journal is not None else Journal(options.journal_prefix)
    journal.refuse_own(target)
    changes = None  # the target's journal table, where the run keeps a record
    created = False
    if options.journal or options.chunked:
        changes = journal.changes_table(target, strategy)
        if strategy.journal_ddl_apart:
            created = journal.ensure(engine_of(bind), strategy, target, changes=changes)
    if changes is not None and options.chunked:
        executor = _run_chunked(bind, target, build, options, strategy, journal, changes, cleanup)
        return _report(target, executor, started, rows=())
    snapshot = reads_on_snapshot(bind, strategy, options, repeatable=repeatable)

    def run_once(attempt: int) -> tuple[Executor | None, tuple[dict[str, Any], ...], int]:
        executor, rows = _run_once(
            bind,
            target,
            build,
            options,
            strategy,
            journal,
            changes,
            returning,
            cleanup,
            created,
            snapshot=snapshot,
        )
        return executor, rows, attempt

    # Only a run on a snapshot starts again after a rollback: any other holds its locks
    # to the end. Keys another writer took can be met by any run in a transaction of
    # setwise's own whose writer can be made again.
    own = repeatable and isinstance(bind, Engine)

    def retryable(exc: DBAPIError | KeysTakenError) -> bool:
        if isinstance(exc, KeysTakenError):
            return own
        return snapshot and strategy.is_retryable(exc)

    executor, rows, retries = retrying(
        run_once,
        retryable=retryable,
        retries=options.retries,
        rolled_back="the run's transaction was rolled back",
    )
    return _report(target, executor, started, rows=rows, retries=retries)


def reads_on_snapshot(
    bind: Bind, strategy: Strategy, options: RunOptions, *, repeatable: bool
) -> bool:
    """Whether a one-transaction journaled run reads on a snapshot (as chunks do where
    the database has them) and starts again whole when a row changed under it: setwise
    owns the transaction (an Engine), and the writer can be made again."""
    return (
        repeatable
        and options.journal
        and not options.chunked
        and strategy.snapshot_chunks is not None
        and isinstance(bind, Engine)
    )


def _run_once(
    bind: Bind,
    target: Target,
    build: Build,
    options: RunOptions,
    strategy: Strategy,
    journal: Journal,
    changes: Table | None,
    returning: Sequence[Column[Any]],
    cleanup: Cleanup | None,
    journal_just_created: bool,
    *,
    snapshot: bool = False,
) -> tuple[Executor | None, tuple[dict[str, Any], ...]]:
    with atomic(bind, strategy) as scope:
        connection = scope.connection
        if snapshot:  # first thing in the transaction: it sets the snapshot's isolation
            connection.exec_driver_sql(strategy.snapshot_chunks or "")
        journal_table = changes if options.journal else None
        if journal_table is not None and not strategy.journal_ddl_apart:
            journal.ensure(connection, strategy, target, changes=journal_table)
        writer = build(connection, strategy)
        if writer is None:
            return None, ()
        loaded = loaded_objects(scope.session, target) if scope.session is not None else {}
        executor = Executor(
            strategy,
            writer,
            options,
            journal,
            journal_table,
            on_snapshot=snapshot,
            in_callers_transaction=not scope.owns_transaction,
            write_by_key=(
                journal_just_created
                and not scope.owns_transaction
                and not strategy.sees_tables_created_later
            ),
        )
        keys = executor.run_once(connection, lock_matched=bool(returning or loaded))
        rows: tuple[dict[str, Any], ...] = ()
        if returning:
            rows = tuple(read_back(connection, target, keys, list(returning)))
        if loaded:
            deleting = DELETED in writer.operations
            sync(connection, target, loaded, [k for k in keys if k in loaded], deleting=deleting)
        if cleanup is not None:
            cleanup(connection, strategy, writer)
        return executor, rows


def _run_chunked(
    bind: Bind,
    target: Target,
    build: Build,
    options: RunOptions,
    strategy: Strategy,
    journal: Journal,
    journal_table: Table,
    cleanup: Cleanup | None,
) -> Executor | None:
    with owned_connection(bind) as (connection, session), strategy.causal_reads(connection):
        with connection.begin():
            if not strategy.journal_ddl_apart:
                journal.ensure(connection, strategy, target, changes=journal_table)
        try:
            writer = build(connection, strategy)  # may commit as it goes: short transactions
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        if writer is None:
            return None
        executor = Executor(
            strategy, writer, options, journal, journal_table if options.journal else None
        )
        try:
            executor.run_chunked(connection)
        except BaseException:
            if executor.run_id is None and cleanup is not None:
                # Refused before the run was recorded or taken up (a guard, a resume it
                # cannot be): nothing the writer prepared is kept, unless the run is still
                # live, when its staging table may be another process's, still merging it
                # (the same run resumed twice at once).
                try:
                    connection.rollback()
                    with connection.begin():
                        resumed = options.resume
                        if resumed is None or not journal.still_open(connection, resumed):
                            cleanup(connection, strategy, writer)
                except Exception:  # the refusal is what the caller needs to see
                    log.exception("could not drop what the refused run had prepared")
            raise
        if cleanup is not None:
            with connection.begin():
                cleanup(connection, strategy, writer)
        if session is not None:
            loaded = loaded_objects(session, target)
            if loaded:
                with connection.begin():
                    deleting = DELETED in writer.operations
                    sync(connection, target, loaded, list(loaded), deleting=deleting)
        return executor


def _report(
    target: Target,
    executor: Executor | None,
    started: float,
    rows: tuple[dict[str, Any], ...],
    retries: int = 0,
) -> Report:
    """The Report of ``executor``'s run; ``retries``: times the whole run started again."""
    elapsed = time.perf_counter() - started
    if executor is None:
        return Report(target.name, "nothing to do", 0, 0, 0, elapsed, chunks=0)
    return executor.report(elapsed, rows, retries)
