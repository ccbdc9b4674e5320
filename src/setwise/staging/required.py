"""What a changeset's rows must carry to be inserted (``apply(..., missing="insert")``).

A staged row whose key has no target row is inserted, and checked like any other
before anything is written: every NOT NULL column the database or the model cannot
fill itself (no server or client default, not autoincrement, not computed) must be
among the changeset's columns, and the row must carry it. A row of a sparse changeset
(JSONL, mappings) that leaves out a column with a default is a problem too: one
INSERT … SELECT cannot use a column's default for some rows only. Each problem names
the row and the column; the rows are read by a bounded query, the counts are exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    and_,
    exists,
    func,
    literal,
    null,
    select,
    types,
)
from sqlalchemy.sql.schema import ColumnDefault

from setwise.problems import MAX_PROBLEMS, Problem, ProblemKind
from setwise.shown import shown
from setwise.staging.intake import ProblemLog
from setwise.staging.table import PRESENT, ROW, Stage
from setwise.target import Target, key_value


def absent(stage: Stage) -> ColumnElement[bool]:
    """The staged row's key has no row in the target: the row a run would insert."""
    table, staged = stage.target.table, stage.stage
    equal = [c == stage.compare.kept(c, staged.c[c.name]) for c in stage.target.key]
    return ~exists().where(and_(*equal)).select_from(table)


def has_default(column: Column[Any]) -> bool:
    """The database or the model fills ``column`` in a row inserted without it: a server
    or client default, an identity or autoincrement, a computed column."""
    table = column.table
    autoincrement = getattr(table, "autoincrement_column", None) is column
    return bool(
        column.default is not None
        or column.server_default is not None
        or column.identity is not None
        or column.computed is not None
        or autoincrement
    )


def fill_in(column: Column[Any]) -> ColumnElement[Any] | None:
    """What an inserted row that leaves ``column`` out gets in an INSERT that names the
    column: its client default when that is a value or a SQL expression, NULL when the
    column has no default and takes NULL; None when neither can stand in (a server
    default, a Python function, an identity: only an INSERT without the column uses them)."""
    default = column.default
    if default is None:
        return null() if column.nullable and not has_default(column) else None
    if column.server_default is not None or column.identity is not None:
        return None
    if not isinstance(default, ColumnDefault):
        return None
    if default.is_scalar:
        return literal(default.arg, column.type)
    if default.is_clause_element:
        return cast("ColumnElement[Any]", default.arg)
    return None


def version_supplied(target: Target) -> bool:
    """An inserted row gets its version from setwise, as the ORM gives a new object one:
    an integer version starts at 1, a mapper's own generator gives the first value."""
    version = target.version
    if version is None:
        return False
    generator = target.mapper.version_id_generator if target.mapper is not None else None
    if generator is False:  # the server keeps the versions (a trigger, a default)
        return False
    return callable(generator) or isinstance(version.type, types.Integer)


def first_version(target: Target) -> Any:
    """The version an inserted row starts at (see ``version_supplied``)."""
    generator = target.mapper.version_id_generator if target.mapper is not None else None
    if callable(generator):
        return generator(None)
    return 1


def required(target: Target, columns: Sequence[Column[Any]]) -> list[Column[Any]]:
    """The columns of ``target`` an inserted row must carry and ``columns`` (a
    changeset's) lack: NOT NULL, no default, not the key, not a version setwise gives."""
    given = {c.name for c in (*target.key, *columns)}
    if version_supplied(target):
        assert target.version is not None
        given.add(target.version.name)
    return [
        column
        for column in target.table.columns
        if not column.nullable and not has_default(column) and column.name not in given
    ]


def insert_problems(connection: Connection, stage: Stage) -> ProblemLog:
    """Every problem of the staged rows that would be inserted: a problem per row and
    column, the first ``MAX_PROBLEMS`` kept, all of them counted."""
    problems = ProblemLog()
    target = stage.target
    lacking = required(target, stage.columns)
    if lacking:
        reason = (
            "NOT NULL without a default, and not among the changes' columns: the row's key "
            "has no row, and the row would be inserted"
        )
        _log(connection, stage, absent(stage), lacking, reason, problems)
    if stage.sparse:
        for index, column in enumerate(stage.columns):
            if fill_in(column) is not None:
                continue  # left out of a row: inserted with its default, or NULL
            left_out = and_(absent(stage), stage.stage.c[PRESENT].op("&")(1 << index) == 0)
            if has_default(column):
                why = (
                    "left out of this row, which would be inserted; the column's default "
                    "(the server's, or a function's) is not used for some rows of a "
                    "changeset only: give its value"
                )
            else:
                why = "NOT NULL without a default, left out of this row, which would be inserted"
            _log(connection, stage, left_out, [column], why, problems)
    return problems


def _log(
    connection: Connection,
    stage: Stage,
    condition: ColumnElement[bool],
    columns: Sequence[Column[Any]],
    reason: str,
    problems: ProblemLog,
) -> None:
    """A problem for each staged row where ``condition`` holds and each of ``columns``:
    the first rows (by row number) listed, every one counted."""
    staged = stage.stage
    key = [staged.c[column.name] for column in stage.target.key]
    limit = max(MAX_PROBLEMS // len(columns), 1)
    listed = select(staged.c[ROW], *key).select_from(staged).where(condition)
    rows = connection.execute(listed.order_by(staged.c[ROW]).limit(limit)).all()
    if not rows:
        return
    counting = select(func.count()).select_from(staged).where(condition)
    total = int(connection.execute(counting).scalar_one())
    kind = ProblemKind.NULL
    # Rows the database's own CSV reader staged are numbered by it, not by their lines
    # in the file (``filestage``): the key alone names them.
    numbered = staged.c[ROW].identity is None
    for number, *values in rows:
        value = key_value(values)
        row = number if numbered else None
        for column in columns:
            problems.add(Problem(column.name, None, f"{reason} (key {shown(value)})", row, kind))
    problems.count(kind, (total - len(rows)) * len(columns))
