"""``setwise.plan``: what a run would do, found without writing anything.

A dry run is the real run, not sent: a set-based statement is taken apart and checked
by the same code as ``update`` (``setbased.prepare``); a changeset is read, checked
and staged by the same code as ``apply`` (``changesets.stage``). Both are counted
with the run's own tally, and an ``Executor`` built with the run's options gives the
very statements its first chunk would send (compiled with placeholders, never
values) and the strategy name its Report would carry. All of it runs in a
transaction that is rolled back (``transaction.peek``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Unpack

from sqlalchemy import (
    ColumnElement,
    Connection,
    Delete,
    Select,
    Update,
    func,
    select,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable

from setwise.api import delete as deleting
from setwise.api.apply import readable_again, resolve_changes_target
from setwise.api.cascades import refuse_cascades
from setwise.api.missing import check_missing, checked_inserts
from setwise.api.plan_warnings import (
    ESTIMATED_ROWS_PER_SECOND,
    filter_warnings,
    indexes_of,
    key_warnings,
    lock_warnings,
    share_warnings,
    unique_warnings,
)
from setwise.api.sample import outside_count, sample_key, sample_rows
from setwise.api.stamps import stamp_values
from setwise.api.update import prepare
from setwise.engine.chunks import KEY_SAMPLE, Executor
from setwise.engine.guards import guard
from setwise.engine.health import HealthOptions, health_of
from setwise.engine.options import Missing, RunOptions
from setwise.engine.run import reads_on_snapshot
from setwise.engine.sizing import ChunkSizer
from setwise.engine.transaction import Bind, Scope, dialect_of, peek
from setwise.errors import InvalidArgumentError, PlanTimeoutError
from setwise.journal.changes import Journal
from setwise.operations import DELETED
from setwise.report import Plan, ProgressCallback
from setwise.staging.dates import check_date_format
from setwise.staging.loading import stage
from setwise.staging.sources import open_source
from setwise.staging.validation import Storable
from setwise.target import Target, TargetLike, key_value
from setwise.writers.delete import SetDelete
from setwise.writers.keys import EVERYTHING, Span
from setwise.writers.merge import Merge
from setwise.writers.protocol import Writer
from setwise.writers.setbased import SetUpdate

#: Share of the table past which a plan warns that a run changes most of it. Half:
#: a filter that catches more than that is more often a mistake than a targeted fix,
#: and one UPDATE over most of a table locks most of it.
DEFAULT_WARN_SHARE = 0.5

#: Seconds each statement a plan sends to count and read rows may run. An honest
#: plan's slowest statement reads the table about once: the whole plan of a
#: 1,000,000-row update took 0.3-0.5 s on SQLite and PostgreSQL and 1.0-1.4 s on
#: MariaDB (2-core VM), so half a minute leaves room for tables of tens of millions of
#: rows, while a filter that multiplies the rows it reads (issue 19: a six-way self
#: join in a subquery) is stopped before a person waiting on it gives up.
DEFAULT_TIMEOUT_SECONDS = 30.0

#: Rows a plan shows old and new values of, by default: as many as sqlite-utils'
#: ``convert --dry-run`` previews, enough to recognise a mistake at a glance.
DEFAULT_SAMPLE = 10

#: Stands in for the run's id in a plan's SQL: the id is a bound value, so the text
#: shows a placeholder whatever it is.
PLANNED_RUN_ID = "planned"


def plan(
    bind: Bind,
    statement: Update | Delete | TargetLike,
    changes: Any = None,
    key: Sequence[str] | str | None = None,
    *,
    where: ColumnElement[bool] | None = None,
    all_rows: bool = False,
    returning: Sequence[Any] = (),
    expect_rows: int | None = None,
    max_rows: int | None = None,
    version_column: str | None = None,
    csv_null: str | None = "",
    format: str | None = None,
    csv_delimiter: str | None = None,
    encoding: str = "utf-8",
    date_format: str | None = None,
    chunk_rows: int | Literal["auto"] | None = None,
    chunk_seconds: float = 0.5,
    throttle_seconds: float = 0.0,
    journal: bool = True,
    journal_prefix: str = "setwise_",
    retries: int = 5,
    progress: ProgressCallback | None = None,
    resume: str | None = None,
    actor: str | None = None,
    stamp_column: str | None = None,
    actor_column: str | None = None,
    tag: str | None = None,
    warn_share: float | None = DEFAULT_WARN_SHARE,
    timeout_seconds: float | None = DEFAULT_TIMEOUT_SECONDS,
    sample: int = DEFAULT_SAMPLE,
    missing: Missing = "report",
    **health: Unpack[HealthOptions],
) -> Plan:
    """What ``update(bind, statement, ...)``, ``delete(bind, statement, ...)`` or
    ``apply(bind, target, changes, key, ...)`` would do; nothing is written. For a
    DELETE, ``would_change`` counts the rows it would delete.

    Takes the arguments of ``update`` or ``apply`` (``returning``,
    ``throttle_seconds``, ``retries``, ``progress``, ``resume`` and ``tag`` only steer
    or label a run and change nothing here) and raises what the run would raise before
    writing: ``UnboundedUpdateError``, ``ValidationError`` (bad values, duplicate
    keys), ``TooManyRowsError``, ``NotFoundError``, ``SchemaError``. ``warn_share``:
    warn when more than this share of the table would change (None: never).
    ``timeout_seconds``: how long each statement that counts or reads rows may run
    before the plan stops with ``PlanTimeoutError`` (None: no limit; staging a
    changeset is not limited). ``sample``: how many of the rows that would change
    ``Plan.sample`` shows, old and new value per column (0: none). ``format``,
    ``csv_delimiter``, ``encoding``, ``csv_null`` and ``date_format`` read the changes as
    ``apply`` reads them. ``missing``: as for ``apply``; with "insert" the plan counts
    the rows it would insert (``Plan.would_insert``) and shows their INSERT, with "error"
    it raises the ``NotFoundError`` the run would. The health signals (``**health``) are
    checked as the run checks them, and not read.
    """
    del returning, throttle_seconds, retries, progress, tag
    health_of(dialect_of(bind), health, chunked=chunk_rows is not None or resume is not None)
    check_missing(missing, where, changeset=not isinstance(statement, Update | Delete))
    options = RunOptions(
        chunk_rows=chunk_rows,
        chunk_seconds=chunk_seconds,
        journal=journal,
        journal_prefix=journal_prefix,
        expect_rows=expect_rows,
        max_rows=max_rows,
        missing=missing,
    )
    stamps = (stamp_column, actor_column, actor)
    journal_tables = Journal(journal_prefix)
    if sample < 0:
        raise InvalidArgumentError(f"sample must be 0 or more, not {sample}", argument="sample")
    if isinstance(statement, Update | Delete) and where is not None:
        raise InvalidArgumentError(
            "where= filters a changeset; an UPDATE or DELETE carries its own .where()",
            argument="where",
        )
    if isinstance(statement, Delete):
        removal = deleting.prepare(statement, all_rows=all_rows, journal=journal)
        with peek(bind) as scope:
            snapshot = reads_on_snapshot(bind, scope.strategy, options, repeatable=True)
            with _time_limit(scope, removal.target, timeout_seconds):
                if journal:
                    refuse_cascades(scope.connection, scope.strategy, removal)
                return _plan(
                    scope, journal_tables, removal, options, warn_share, sample, snapshot=snapshot
                )
    if isinstance(statement, Update):
        storable = Storable.on(dialect_of(bind))
        update = prepare(statement, all_rows=all_rows, journal=journal, storable=storable)
        options.stamps.update(stamp_values(update.target, *stamps))
        with peek(bind) as scope:
            compare = scope.strategy.stored_comparison(scope.connection, update.table)
            snapshot = reads_on_snapshot(bind, scope.strategy, options, repeatable=True)
            update = update.with_comparison(compare)
            with _time_limit(scope, update.target, timeout_seconds):
                return _plan(
                    scope, journal_tables, update, options, warn_share, sample, snapshot=snapshot
                )
    if changes is None:
        raise InvalidArgumentError(
            "setwise.plan takes a SQLAlchemy UPDATE statement, or a target and its changes "
            f"as setwise.apply does, not a {type(statement).__name__} alone",
            argument="changes",
        )
    check_date_format(date_format)
    reading: dict[str, Any] = {
        "format": format,
        "csv_delimiter": csv_delimiter,
        "encoding": encoding,
    }
    source = open_source(changes, csv_null=csv_null, **reading)
    with peek(bind) as scope:
        connection, strategy = scope.connection, scope.strategy
        target = resolve_changes_target(connection, statement, key, version_column)
        options.stamps.update(stamp_values(target, *stamps))
        staged = stage(
            connection, strategy, target, source.rows, source.lenient, date_format=date_format
        )
        staged = checked_inserts(connection, strategy, staged, missing, journal=journal)
        if staged is None:
            return Plan(target.name, "nothing to do", 0, 0, 0, (), chunks=0)
        merge = Merge.of(staged).within(where)
        shown: Writer = merge
        if options.chunked and strategy.kept_stage_prefixes is not None:
            # The run stages into a table named for it; the plan stages into a temporary
            # one, and shows the statements as the run will send them.
            kept_name = journal_tables.stage_name(PLANNED_RUN_ID, strategy)
            shown = merge.renamed(kept_name)
        try:
            if options.chunked:
                merge.index_stage(connection, strategy)
            snapshot = reads_on_snapshot(
                bind, strategy, options, repeatable=readable_again(changes)
            )
            with _time_limit(scope, target, timeout_seconds):
                return _plan(
                    scope,
                    journal_tables,
                    merge,
                    options,
                    warn_share,
                    sample,
                    shown=shown,
                    snapshot=snapshot,
                )
        finally:
            merge.drop(connection, strategy)


@contextmanager
def _time_limit(scope: Scope, target: Target, seconds: float | None) -> Iterator[None]:
    """Within the block, each statement runs for ``seconds`` at most; one stopped is a
    ``PlanTimeoutError``."""
    if not seconds:  # None or 0: no limit, as the message says
        yield
        return
    try:
        with scope.strategy.statement_timeout(scope.connection, seconds):
            yield
    except DBAPIError as exc:
        if scope.strategy.is_timeout(exc):
            raise PlanTimeoutError(target.name, seconds=seconds) from exc
        raise


def _plan(
    scope: Scope,
    journal: Journal,
    writer: Writer,
    options: RunOptions,
    warn_share: float | None,
    sample: int,
    *,
    shown: Writer | None = None,
    snapshot: bool = False,
) -> Plan:
    """The plan of ``writer`` run with ``options``, on the scope's connection; its SQL
    as ``shown`` (the same writer by default) would send it, on a snapshot if
    ``snapshot`` (``runner.reads_on_snapshot``)."""
    connection, target = scope.connection, writer.target
    journal.refuse_own(target)
    matched, would_change, conflicted, staged = (
        int(n) for n in connection.execute(writer.counts(EVERYTHING)).one()
    )
    inserting = options.missing == "insert"
    would_insert = staged - matched if inserting else 0
    guard(
        target.name,
        matched,
        would_change + would_insert,
        expect_rows=options.expect_rows,
        max_rows=options.max_rows,
    )
    journal_table = journal.changes_table(target, scope.strategy) if options.journal else None
    executor = Executor(
        scope.strategy, shown or writer, options, journal, journal_table, on_snapshot=snapshot
    )
    span = _first_span(connection, writer, options)
    statements = executor.write.statements(span, 1, PLANNED_RUN_ID, connection)
    executor.refuse_missing(connection, EVERYTHING, (matched, would_change, 0, staged))
    if inserting:
        statements += executor.write.insert_statements(span, 1, PLANNED_RUN_ID)
    explain = scope.strategy.explain(connection, writer.direct_update(EVERYTHING, options.stamps))
    indexes = indexes_of(connection, target.table)
    total = int(connection.execute(select(func.count()).select_from(target.table)).scalar_one())
    set_based = isinstance(writer, SetUpdate | SetDelete)
    # A set-based run's chunks range over the rows that change; a changeset's over its keys.
    chunks, estimated = _chunks(would_change if set_based else staged, options)
    warnings = [
        *(filter_warnings(writer, indexes) if isinstance(writer, SetUpdate | SetDelete) else []),
        *([] if set_based else key_warnings(target, indexes)),
        *unique_warnings(writer, indexes),
        *share_warnings(target, would_change, total, warn_share),
        *lock_warnings(target, would_change, options),
    ]
    return Plan(
        table=target.name,
        strategy=executor.write.name,
        matched=matched,
        would_change=would_change,
        unchanged=matched - would_change - conflicted,
        sql=tuple(_compiled(connection, statement) for statement in statements),
        explain=explain,
        warnings=tuple(warnings),
        chunks=chunks,
        chunks_estimated=estimated,
        staged=0 if set_based else staged,
        missing=staged - matched - would_insert,
        missing_keys=_keys(
            connection, None if inserting else writer.missing_keys(EVERYTHING, KEY_SAMPLE)
        ),
        conflicts=_keys(connection, writer.conflict_keys(EVERYTHING, KEY_SAMPLE)),
        sample=sample_rows(connection, writer, sample),
        sample_key=tuple(column.name for column in sample_key(writer)),
        outside=outside_count(connection, writer),
        would_insert=would_insert,
        deletes=DELETED in writer.operations,
    )


def _first_span(connection: Connection, writer: Writer, options: RunOptions) -> Span:
    """The keys the run's first chunk covers, found as the executor finds them (one key
    past the chunk says whether another follows), so that its statements are exactly
    the first chunk's. Every row, when the run is not chunked."""
    if not options.chunked:
        return EVERYTHING
    rows = ChunkSizer(options.chunk_rows, options.chunk_seconds).rows
    keys = [tuple(k) for k in connection.execute(writer.keys_after(None, rows + 1))]
    return Span(None, keys[rows - 1] if len(keys) > rows else None)


def _chunks(rows: int, options: RunOptions) -> tuple[int, bool]:
    """How many chunks a run ranging over ``rows`` keys takes, and whether that is an
    estimate: exact for a fixed size; for "auto", the executor's own sizer fed the
    times ``ESTIMATED_ROWS_PER_SECOND`` predicts."""
    if not options.chunked:
        return 1, False
    sizer = ChunkSizer(options.chunk_rows, options.chunk_seconds)
    chunks, left = 0, rows
    while True:
        chunks += 1
        taken = min(left, sizer.rows)
        sizer.record(taken, taken / ESTIMATED_ROWS_PER_SECOND)
        left -= taken
        if left <= 0:
            return chunks, sizer.auto


def _compiled(connection: Connection, statement: Executable) -> str:
    compiled = statement.compile(  # type: ignore[attr-defined]
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    return str(compiled)


def _keys(connection: Connection, statement: Select[Any] | None) -> tuple[Any, ...]:
    if statement is None:
        return ()
    return tuple(key_value(row) for row in connection.execute(statement))


# -- warnings -------------------------------------------------------------------------
