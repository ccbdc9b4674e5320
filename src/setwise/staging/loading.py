"""Stage a changeset: its rows read, checked and loaded into the staging table.

Batches from ``intake`` are loaded as they come, committed on the way for a chunked
run; the keys are checked for repeats (``duplicates``): by their order when they are
integers that came increasing, else by the database, where it can by a staging table
keyed by the key. A CSV file the database can read itself
is staged by it (``filestage``). When the whole input has been read, any problem
fails the call with one ``ValidationError`` and the staging table is taken away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import replace
from itertools import chain, compress
from typing import Any, cast

from sqlalchemy import Column, Connection

from setwise.dialects import Strategy
from setwise.dialects.base import StageLoader
from setwise.errors import SchemaError
from setwise.report import READING, STAGING, Progress, ProgressCallback
from setwise.staging.duplicates import KeyedLoad, KeyOrder, refuse_duplicates
from setwise.staging.filestage import stage_csv_file
from setwise.staging.intake import STAGE_BATCH_ROWS, Intake, fields_of, in_batches
from setwise.staging.sources import Row
from setwise.staging.sources.csv import CsvRows
from setwise.staging.table import MAX_SPARSE_COLUMNS, Stage
from setwise.staging.validation import Storable
from setwise.target import Target

log = logging.getLogger("setwise")


def stage(
    connection: Connection,
    strategy: Strategy,
    target: Target,
    rows: Iterator[Row],
    lenient: bool,
    *,
    commit_seconds: float | None = None,
    done_through: tuple[Any, ...] | None = None,
    kept_name: str | None = None,
    date_format: str | None = None,
    progress: ProgressCallback | None = None,
) -> Stage | None:
    """Read, check and stage every row. Raises ValidationError listing every problem.

    With ``commit_seconds``, the staging commits whenever its transaction has run that
    long; if the staging then fails, the staging table is dropped again. Rows keyed up
    to ``done_through`` (a resumed run's checkpoint) are checked but not staged. With
    ``kept_name``, the staging table is a real table of that name (``Stage.create``).
    ``date_format``: how the text writes dates (``values.column_check``). A CSV file
    the database can read itself is staged by it (``filestage``).
    ``progress`` hears of the rows read (``READING``) and of the staging (``STAGING``)."""

    def report(phase: str, read: int) -> None:
        if progress is not None:
            progress(Progress(read, None, 0, 0, 0, 0.0, phase=phase, table=target.name))

    if done_through is None and (file := database_readable(rows, strategy)) is not None:
        intake = Intake(target, lenient, file.header, Storable.on(strategy), date_format)
        named = [(field, intake.known(field)) for field in file.header]
        if intake.columns and all(column is not None for _, column in named):
            assert file.path is not None
            report(STAGING, 0)
            merge = stage_csv_file(
                connection,
                strategy,
                target,
                file.path,
                cast(list[tuple[str, Column[Any]]], named),
                intake.columns,
                expects_version=intake.expects_version,
                commit_seconds=commit_seconds,
                kept_name=kept_name,
            )
            if merge is not None:
                file.close()  # read to its end, by the database
                return merge
    batches = in_batches(rows, STAGE_BATCH_ROWS)
    first = next(batches, None)
    if first is None:
        return None
    intake = Intake(target, lenient, fields_of(first[1]), Storable.on(strategy), date_format)
    if len(intake.columns) > MAX_SPARSE_COLUMNS:
        raise SchemaError(f"a changeset may set at most {MAX_SPARSE_COLUMNS} columns at once")
    merge = Stage.create(
        connection,
        strategy,
        target,
        intake.columns,
        expects_version=intake.expects_version,
        sparse=True,
        kept_name=kept_name,
    )
    keyed: KeyedLoad | None = None
    order = KeyOrder(target)
    try:
        if strategy.keyed_stage_options is not None and kept_name is None and not order.integers:
            keyed = KeyedLoad(connection, strategy, merge.keyed(connection, strategy), merge)

        def loader(into: Stage) -> AbstractContextManager[StageLoader]:
            if keyed is not None:
                return nullcontext(keyed)
            return strategy.stage_loader(connection, into.stage)

        with ExitStack() as loading:
            load = loading.enter_context(loader(merge))
            began = time.perf_counter()
            read = 0
            for numbers, batch in chain([first], batches):
                columns = intake.convert_batch(numbers, batch)
                read += len(numbers)
                report(READING, read)
                if done_through is not None and columns:
                    columns = keyed_after(columns, done_through, len(target.key))
                if columns:  # with problems too: the duplicate search needs every key
                    order.see(columns)
                    if keyed is not None:
                        keyed.in_order = order.ascending
                    load(columns)
                # Whether or not the batch was staged: a resumed run reads the rows up
                # to its checkpoint without staging them, and must not hold its
                # transaction open while it does.
                if commit_seconds is not None and time.perf_counter() - began > commit_seconds:
                    loading.close()
                    connection.commit()
                    # Begun here, not on the loader's first statement: a loader that
                    # writes through the driver (COPY, LOAD DATA) would leave the
                    # Connection unaware of the driver's transaction, and the next
                    # commit() a no-op.
                    connection.begin()
                    load = loading.enter_context(loader(merge))
                    began = time.perf_counter()
        report(STAGING, read)
        if keyed is not None:
            merge = keyed.finish()
            keyed.report(intake)
        elif not order.increasing:
            merge = refuse_duplicates(connection, strategy, merge, intake)
        if intake.problems:
            raise intake.problems.error(target.name)
    except BaseException:
        if commit_seconds is not None:  # rows committed on the way: take the tables away
            connection.rollback()
            # ``merge`` is one of a keyed load's two tables, before and after ``finish``.
            for each in [merge] if keyed is None else [keyed.keyed, keyed.rest]:
                each.drop(connection, strategy)
            connection.commit()
        raise
    if not intake.sparse:
        merge = replace(merge, sparse=False)
    large = strategy.index_stage_rows
    if commit_seconds is None and large is not None and read >= large:
        merge = merge.index_stage(connection, strategy)
        strategy.analyze_stage(connection, merge.stage)
    return merge


def stage_in_steps(
    connection: Connection,
    strategy: Strategy,
    target: Target,
    rows: Iterator[Row],
    lenient: bool,
    *,
    commit_seconds: float,
    done_through: tuple[Any, ...] | None,
    kept_name: str | None,
    resumed: str | None,
    date_format: str | None = None,
    progress: ProgressCallback | None = None,
) -> Stage | None:
    """Stage a chunked run's changes in transactions of about ``commit_seconds`` each,
    committed on the way, then index the staged keys for the chunks' ranges. A resumed
    run (``resumed``: its id) whose staging table ``kept_name`` is still there merges
    what it staged, without reading the changes again."""
    if resumed is not None and kept_name is not None:
        kept = Stage.reopen(connection, strategy, target, kept_name)
        if kept is not None:
            log.info("run %s: merging the changes it staged; not reading them again", resumed)
            return kept
    merge = stage(
        connection,
        strategy,
        target,
        rows,
        lenient,
        commit_seconds=commit_seconds,
        done_through=done_through,
        kept_name=kept_name,
        date_format=date_format,
        progress=progress,
    )
    if merge is not None and not merge.indexed:  # else staged, indexed and analyzed
        merge = merge.index_stage(connection, strategy)
        connection.commit()
        strategy.analyze_stage(connection, merge.stage)
    return merge


def database_readable(rows: Iterator[Row], strategy: Strategy) -> CsvRows | None:
    """The CSV file behind ``rows``, if the database could read it itself: a file, not
    standard input, with the default NULL (the empty cell), separator (a comma) and
    encoding (UTF-8), not yet read past its header."""
    if not strategy.reads_csv_files or not isinstance(rows, CsvRows):
        return None
    if rows.path is None or rows.null != "" or rows.finished or rows.reader.line_num > 1:
        return None
    if rows.delimiter != "," or rows.encoding != "utf-8-sig":
        return None
    return rows


def keyed_after(
    columns: list[list[Any]], done_through: tuple[Any, ...], width: int
) -> list[list[Any]]:
    """The staging columns (row numbers, masks, key…) of the rows keyed after
    ``done_through``; empty when none is."""
    keys = zip(*columns[2 : 2 + width], strict=True)
    keep = [key > done_through for key in keys]
    if all(keep):
        return columns
    kept = [list(compress(column, keep)) for column in columns]
    return kept if kept[0] else []
