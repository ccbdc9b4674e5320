"""``--set`` and ``--where`` texts as an UPDATE of a table reflected from the database,
or as one condition or assignment on a given table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Delete, Engine, Table, Update
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Dialect
from sqlglot import exp

from setwise.dialects import get_strategy
from setwise.errors import SQLTextError
from setwise.sqltext.builder import Builder
from setwise.sqltext.names import TableLookup
from setwise.sqltext.nodes import NOT_LITERAL, literal_value
from setwise.target import resolve_target


def parse_where(
    text: str,
    table: Table,
    dialect: Dialect,
    *,
    tables: TableLookup | None = None,
    label: str = "--where",
) -> ColumnElement[bool]:
    """The filter ``text`` as a condition on ``table``'s columns.

    ``tables`` finds the other tables a subquery reads; by default, the tables of
    ``table``'s MetaData.
    """
    builder = Builder(text, table, get_strategy(dialect), tables, label)
    node = builder.parse()
    return builder.condition(node, builder.top)


def parse_assignment(
    text: str,
    table: Table,
    dialect: Dialect,
    *,
    tables: TableLookup | None = None,
    label: str = "--set",
) -> tuple[Column[Any], ColumnElement[Any]]:
    """``"column = expression"`` as the column of ``table`` and the value to give it."""
    builder = Builder(text, table, get_strategy(dialect), tables, label)
    node = builder.parse()
    if not isinstance(node, exp.EQ) or not isinstance(node.this, exp.Column):
        builder.fail(node, "expected an assignment: column = expression")
    column = builder.column(node.this, builder.top)
    if not isinstance(column, Column) or column.table is not table:
        builder.fail(node.this, f"only a column of {table.fullname!r} can be set")
    value = node.expression
    if literal_value(value) is not NOT_LITERAL:
        # A plain value is bound with the column's own type, so it is checked against
        # the column (length, scale, range) like any value given to setwise.update.
        return column, builder.bind(value, column.type, store=True)
    return column, builder.expression(value, builder.top, hint=column.type)


def parse_update(
    bind: Engine | Connection,
    table: str,
    assignments: Sequence[str],
    where: str | None = None,
) -> Update:
    """An UPDATE of ``table``, reflected from the database, from ``--set`` texts and a
    ``--where`` text. Tables a subquery names are reflected too."""
    with _connection(bind) as connection:
        target = resolve_target(table, connection).table
        lookup = _reflecting(connection)
        values: dict[Column[Any], ColumnElement[Any]] = {}
        for text in assignments:
            column, value = parse_assignment(text, target, connection.dialect, tables=lookup)
            if column in values:
                position = text.find(column.name)
                raise SQLTextError(
                    text,
                    f"column {column.name!r} is set twice",
                    position=max(position, 0),
                    end=max(position, 0) + len(column.name) - 1,
                    label="--set",
                )
            values[column] = value
        statement = sql_update(target).values(values)
        if where is not None:
            statement = statement.where(
                parse_where(where, target, connection.dialect, tables=lookup)
            )
    return statement


def parse_delete(bind: Engine | Connection, table: str, where: str | None = None) -> Delete:
    """A DELETE of ``table``, reflected from the database, from a ``--where`` text (none:
    every row, which ``setwise.delete`` refuses without ``all_rows``)."""
    with _connection(bind) as connection:
        target = resolve_target(table, connection).table
        statement = sql_delete(target)
        if where is not None:
            lookup = _reflecting(connection)
            statement = statement.where(
                parse_where(where, target, connection.dialect, tables=lookup)
            )
    return statement


def parse_filter(bind: Engine | Connection, table: str, where: str) -> ColumnElement[bool]:
    """A ``--where`` text as a condition on ``table``, reflected from the database, for
    ``setwise.apply(where=...)``: which of the rows a changeset finds it may write."""
    with _connection(bind) as connection:
        target = resolve_target(table, connection).table
        lookup = _reflecting(connection)
        return parse_where(where, target, connection.dialect, tables=lookup)


@contextmanager
def _connection(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as connection:
            yield connection


def _reflecting(connection: Connection) -> TableLookup:
    """Reflect the tables a subquery reads, each once."""
    seen: dict[str, Table] = {}

    def lookup(name: str, schema: str | None) -> Table:
        qualified = f"{schema}.{name}" if schema else name
        if qualified not in seen:
            seen[qualified] = resolve_target(qualified, connection).table
        return seen[qualified]

    return lookup
