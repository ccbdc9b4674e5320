"""``setwise.apply``: per-row changes keyed by id, at the speed of the database's bulk path.

The input is read as a stream and staged in batches into a temporary table, every
value checked on the way. Problems are collected, not raised one by one; when the
whole input has been read, any problem (a bad value, an unknown column, a missing or
duplicate key) fails the call with one ``ValidationError`` and nothing is written.
Otherwise the staged rows are counted against the target and merged in one
set-based UPDATE that skips rows already holding the new values.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal, Unpack

from sqlalchemy import ColumnElement, Connection, types
from sqlalchemy.exc import DBAPIError

from setwise.api.missing import check_missing, checked_inserts, missing_argument
from setwise.api.stamps import stamp_values
from setwise.dialects import Strategy
from setwise.dialects.integrity import integrity_to_validation
from setwise.engine.health import HealthOptions, health_of
from setwise.engine.options import Missing, RunOptions
from setwise.engine.run import run
from setwise.engine.transaction import Bind, dialect_of, reading_connection
from setwise.engine.verify import refuse_unjournaled, verified
from setwise.errors import SchemaError, SetwiseError
from setwise.journal.changes import Journal, tagged
from setwise.journal.records import new_run_id
from setwise.report import ProgressCallback, Report
from setwise.staging.dates import check_date_format
from setwise.staging.loading import stage, stage_in_steps
from setwise.staging.sources import open_source
from setwise.staging.sources.described import described
from setwise.staging.table import Stage
from setwise.target import Target, TargetLike, resolve_target
from setwise.writers.merge import Merge


def apply(
    bind: Bind,
    target: TargetLike,
    changes: Any,
    key: Sequence[str] | str | None = None,
    *,
    where: ColumnElement[bool] | None = None,
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
    missing: Missing = "report",
    verify: bool = False,
    **health: Unpack[HealthOptions],
) -> Report:
    """Apply per-row ``changes`` to ``target``, matching rows by ``key``.

    ``target``: an ORM class, a Table, or a table name reflected from the database.
    ``key``: the primary key by default, or any unique column(s). ``changes``: see
    ``setwise.staging.sources``. Only the columns present in the changes are written, and only
    on rows where a value differs. With a version column on the target and versions in
    the rows, a row whose version moved is not written and is listed in ``conflicts``.
    ``where``: a condition on the target's columns (``books.c.genre == "poetry"``); only
    rows for which it holds are written, a found row outside it counts as matched and
    unchanged (``plan`` counts them as ``outside``).
    ``missing``: what rows whose keys have no row do. "report" (the default): nothing,
    they are counted in ``Report.missing`` and listed in ``missing_keys``. "error":
    ``NotFoundError`` listing them, before anything is written (in a chunked run, before
    the first chunk). "insert": they are inserted, in the chunks and transactions of
    their keys, after the chunk's updates; ``Report.inserted`` counts them, and a revert
    deletes them. Each must carry every NOT NULL column without a default, or the call
    fails with a ``ValidationError`` naming row and column before anything is written.
    An inserted row with a version column starts at version 1 (as the ORM starts it).
    Not with ``where`` (it says which found rows are written, not which new ones).
    Chunking, journal, resume, progress, stamps, ``tag`` and ``verify`` work as for
    ``setwise.update``. On PostgreSQL a chunked run stages into a table named for the run
    (``{journal_prefix}stage_…``), dropped when the run finishes, so a resumed run
    merges what its first run staged without reading ``changes`` again. Elsewhere (a
    temporary staging table), a resumed changeset is read and checked again and
    continues after the checkpoint; with an integer key, the rows up to it are not
    staged again.

    Reading a file (or ``"-"``, standard input): ``format`` (``"csv"``, ``"tsv"``,
    ``"jsonl"``, ``"parquet"``; default: told by the file's name, and CSV for standard
    input); ``csv_delimiter``, the one character between the fields of CSV (default a
    comma, a tab for TSV); ``encoding``, the text's (default UTF-8; a byte-order mark
    is skipped); ``csv_null``, the cell text that means NULL (default: the empty cell);
    ``date_format``, the ``strptime`` form of the dates and timestamps in the text
    when they are not ISO 8601 (``"%d/%m/%Y"``). A bare number in a date column (an
    Excel serial date) is refused as a bad value.
    ``**health``: the health signals a chunked run waits on, as for ``setwise.update``.
    """
    refuse_unjournaled(verify, journal)
    check_missing(missing, where)
    strategy = dialect_of(bind)
    journal_tables = Journal(journal_prefix)
    with reading_connection(bind) as connection:
        resolved = resolve_changes_target(connection, target, key, version_column)
        done_through = None
        if resume is not None:
            done_through = _resumed_through(connection, journal_tables, resume, resolved)
    reading: dict[str, Any] = {
        "csv_null": csv_null,
        "format": format,
        "csv_delimiter": csv_delimiter,
        "encoding": encoding,
    }
    check_date_format(date_format)
    source = open_source(changes, **reading)
    recorded = {**reading, "date_format": date_format}
    options = RunOptions(
        chunk_rows=chunk_rows,
        chunk_seconds=chunk_seconds,
        throttle_seconds=throttle_seconds,
        journal=journal,
        journal_prefix=journal_prefix,
        retries=retries,
        progress=progress,
        resume=resume,
        actor=actor,
        expect_rows=expect_rows,
        max_rows=max_rows,
        stamps=stamp_values(resolved, stamp_column, actor_column, actor),
        arguments=tagged(missing_argument({"key": [c.name for c in resolved.key]}, missing), tag),
        run_id=new_run_id() if chunk_rows is not None and resume is None else None,
        health=health_of(strategy, health, chunked=chunk_rows is not None or resume is not None),
        missing=missing,
    )
    returned = [resolved.column(_name_of(ref)) for ref in returning]
    if returned and options.chunked:
        raise SchemaError("returning rows needs a single-transaction run; drop chunk_rows")

    reads = 0

    def build(connection: Connection, strategy: Strategy) -> Merge | None:
        nonlocal source, reads
        reads += 1
        if reads > 1:  # the whole run again (``engine.run.reads_on_snapshot``): read them anew
            source.close()
            source = open_source(changes, **reading)
        if not options.chunked:
            staged = stage(
                connection,
                strategy,
                resolved,
                source.rows,
                source.lenient,
                date_format=date_format,
                progress=progress,
            )
            options.arguments["source"] = described(changes, source.label, options=recorded)
            merge = _merge(checked_inserts(connection, strategy, staged, missing, journal=journal))
            return None if merge is None else merge.within(where)
        run_id = options.resume or options.run_id
        assert run_id is not None
        kept_name = None
        if strategy.kept_stage_prefixes is not None:
            kept_name = journal_tables.stage_name(run_id, strategy)
        staged = stage_in_steps(
            connection,
            strategy,
            resolved,
            source.rows,
            source.lenient,
            commit_seconds=options.chunk_seconds,
            done_through=done_through,
            kept_name=kept_name,
            resumed=options.resume,
            date_format=date_format,
            progress=progress,
        )
        # Recorded as the run starts, after its changes were read and staged (a resume
        # keeps the record its run started with).
        options.arguments["source"] = described(changes, source.label, options=recorded)
        merge = _merge(
            checked_inserts(connection, strategy, staged, missing, journal=journal, committed=True)
        )
        return None if merge is None else merge.within(where)

    def cleanup(connection: Connection, strategy: Strategy, writer: Any) -> None:
        writer.drop(connection, strategy)

    try:
        report = run(
            bind,
            resolved,
            build,
            options,
            returning=returned,
            cleanup=cleanup,
            repeatable=readable_again(changes),
            strategy=strategy,
            journal=journal_tables,
        )
    except DBAPIError as exc:
        if not strategy.is_integrity_error(exc):
            raise
        raise integrity_to_validation(exc, resolved.table, strategy, {}) from exc
    finally:
        source.close()
    return verified(bind, report, journal_prefix=journal_prefix) if verify else report


def _merge(staged: Stage | None) -> Merge | None:
    """The writer that merges what was staged; None when nothing was."""
    return None if staged is None else Merge.of(staged)


def readable_again(changes: Any) -> bool:
    """Whether ``changes`` can be read a second time: not an iterator, not stdin."""
    return not isinstance(changes, Iterator) and not (isinstance(changes, str) and changes == "-")


def resolve_changes_target(
    connection: Connection,
    target: TargetLike,
    key: Sequence[str] | str | None,
    version_column: str | None,
) -> Target:
    """The target of a changeset, keyed by ``key`` (default: its primary key)."""
    key_names = (key,) if isinstance(key, str) else key
    resolved = resolve_target(target, connection, key=key_names, version_column=version_column)
    if not resolved.key:
        raise SchemaError(f"{resolved.name!r} has no primary key", argument="key")
    return resolved


def _resumed_through(
    connection: Connection, journal: Journal, run_id: str, target: Target
) -> tuple[Any, ...] | None:
    """The checkpoint of the changeset run being resumed, when its rows up to there need
    not be staged again: integer keys only, whose order Python and the database agree
    on (see ``staging.duplicates.KeyOrder``). None otherwise, or when the run is not such
    a run: the executor then says what is wrong with it."""
    if not all(isinstance(column.type, types.Integer) for column in target.key):
        return None
    try:
        info = journal.get(connection, run_id)
    except SetwiseError:
        return None
    same_key = info.arguments.get("key") == [column.name for column in target.key]
    if info.kind != Merge.kind or info.table != target.name or not same_key:
        return None
    return info.checkpoint_of(target.key)


def _name_of(ref: Any) -> str:
    return ref if isinstance(ref, str) else str(getattr(ref, "name", None) or ref.key)
