"""Stage a CSV file through the database's own CSV reader (PostgreSQL's COPY).

Parsing, converting and re-encoding every value in Python is most of what applying a
large CSV file costs; the database reads the same bytes several times faster. This
path is taken only where the database reads the file exactly as setwise's Python
path would (strict CSV, the default NULL, columns of text, integer and exact numeric
types) and then checks the staged values as setwise's own checks would. Anything
else (a file or value it cannot vouch for, any problem at all) leaves no trace, and
the caller stages the file through Python, which names every problem.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, and_, literal, or_, select, types
from sqlalchemy.engine import NestedTransaction
from sqlalchemy.exc import IntegrityError

from setwise.dialects import Strategy
from setwise.dialects.base import FileRefused
from setwise.staging.sources.csvblocks import NotStrictCsv, header_and_blocks
from setwise.staging.table import Stage
from setwise.staging.validation import is_exact
from setwise.target import Target

log = logging.getLogger("setwise")


def can_read(column: Column[Any]) -> bool:
    """The database's CSV reader reads values of ``column``'s type as setwise does."""
    kind = column.type
    if isinstance(kind, types.Integer):
        return not isinstance(kind, types.Boolean)
    if isinstance(kind, types.String):
        return not isinstance(kind, types.Enum)
    return is_exact(kind)


def stage_csv_file(
    connection: Connection,
    strategy: Strategy,
    target: Target,
    path: str,
    fields: Sequence[tuple[str, Column[Any]]],
    columns: Sequence[Column[Any]],
    *,
    expects_version: bool,
    commit_seconds: float | None,
    kept_name: str | None,
) -> Stage | None:
    """Stage the CSV file at ``path`` (header fields → target columns: ``fields``) for a
    changeset that sets ``columns``, or return None, with nothing staged or kept, when
    the database cannot stage it as setwise would. With ``commit_seconds``, commits
    whenever its transaction has run that long, as ``loading.stage`` does."""
    named = [column for _, column in fields]
    names = [column.name for column in named]
    if not (
        strategy.reads_csv_files
        and {key.name for key in target.key} <= set(names)
        and len(set(names)) == len(names)
        and all(can_read(column) for column in named)
    ):
        return None
    version = target.version if expects_version else None
    with open(path, "rb") as stream:
        try:
            header, blocks = header_and_blocks(stream)
            read = next(csv.reader([header.decode("utf-8")]), [])
        except (NotStrictCsv, UnicodeDecodeError) as exc:
            log.info("%s: read in Python, not by the database: %s", path, exc)
            return None
        if read != [field for field, _ in fields]:
            return None
        savepoint = connection.begin_nested()
        committed: Stage | None = None
        try:
            merge = Stage.create(
                connection,
                strategy,
                target,
                columns,
                expects_version=expects_version,
                sparse=False,  # every record has every field
                kept_name=kept_name,
                loose=True,
            )
            began = time.perf_counter()

            def commit() -> None:
                nonlocal savepoint, committed, began
                savepoint.commit()
                connection.commit()
                committed = merge
                connection.begin()
                savepoint = connection.begin_nested()
                began = time.perf_counter()

            loaded = False
            with ExitStack() as loading:
                loader = strategy.csv_file_loader(connection, merge.stage, names)
                load = loading.enter_context(loader)
                for block in blocks:
                    load(block)
                    loaded = True
                    if commit_seconds is not None and time.perf_counter() - began > commit_seconds:
                        loading.close()
                        commit()
                        load = loading.enter_context(
                            strategy.csv_file_loader(connection, merge.stage, names)
                        )
            if not loaded:
                raise FileRefused("no rows after the header")
            # Unique: a key given twice fails it. The index and the statistics also give
            # the merge its plan: without them PostgreSQL joined 1,000,000 staged rows to a
            # 10,000,000-row table through a hash of the whole table (17 s, against 5 s).
            # Each step its own transaction when they should be short: about 0.3 s each
            # for 1,000,000 rows, 1.3 s together with the last COPY.
            settle = commit if commit_seconds is not None else lambda: None
            settle()
            merge = merge.index_stage(connection, strategy, unique=True)
            settle()
            strategy.analyze_stage(connection, merge.stage)
            settle()
            required = {*target.key, *([version] if version is not None else [])}
            if _any_unfit(connection, strategy, merge, columns, required, version):
                raise FileRefused("a value setwise refuses")
        except (FileRefused, NotStrictCsv, IntegrityError) as exc:
            # IntegrityError: the unique index found a key given twice.
            reason = "a key given twice" if isinstance(exc, IntegrityError) else exc
            log.info("%s: read in Python, not by the database: %s", path, reason)
            _undo(connection, strategy, savepoint, committed)
            if committed is not None:
                connection.begin()  # as the Python staging expects after a commit
            return None
        except BaseException:
            _undo(connection, strategy, savepoint, committed)
            raise
        savepoint.commit()
    log.debug("%s: staged by the database's own CSV reader", path)
    return merge


def _undo(
    connection: Connection,
    strategy: Strategy,
    savepoint: NestedTransaction,
    committed: Stage | None,
) -> None:
    """Take back what was staged: the open savepoint, and a staging table whose first
    rows were already committed."""
    savepoint.rollback()
    if committed is not None:
        committed.drop(connection, strategy)
        connection.commit()


def _any_unfit(
    connection: Connection,
    strategy: Strategy,
    merge: Stage,
    columns: Sequence[Column[Any]],
    required: set[Column[Any]],
    version: Column[Any] | None,
) -> bool:
    """Whether any staged value is one setwise's checks refuse: a NULL where a value is
    needed, text too long, a number with more places or digits than its column keeps."""
    unfit: list[ColumnElement[bool]] = []
    for column in [*merge.target.key, *columns, *([version] if version is not None else [])]:
        staged = merge.stage.c[column.name]
        if column in required or not column.nullable:
            unfit.append(staged.is_(None))
        unfit += [and_(staged.is_not(None), c) for c in strategy.unfit_staged(staged, column)]
    query = select(literal(1)).select_from(merge.stage).where(or_(*unfit)).limit(1)
    return connection.execute(query).first() is not None
