"""setwise's own tables (journal, runs, staging), described once per shape, and the
temporary tables and column types they are built of: a module below ``journal/``,
``staging/`` and ``writers/``, which all build such tables.

SQLAlchemy's compiled cache keys a statement by the Table objects in it, by identity. A
Table built anew on every call made every statement on it a cache miss, compiled again
each time (a ten-row journaled ``setwise.apply`` on SQLite took 12.2 ms, now 5.2 ms;
benchmarks/README.md). Here one Table stands for each shape (its name, schema and
columns' names and types), so statements built on it again are found in the cache. Two
databases whose target tables share a name but not their columns get two Tables. The
registry is never emptied: it holds one small Table per shape the process has met.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    PrimaryKeyConstraint,
    Select,
    String,
    Table,
    insert,
    select,
    table,
    text,
    types,
)
from sqlalchemy.schema import SchemaItem

from setwise.dialects import Strategy

_TABLES: dict[Hashable, Table] = {}
_LOCK = threading.Lock()


def shared_table(shape: Hashable, build: Callable[[], Table]) -> Table:
    """The Table described by ``shape``: built by ``build`` the first time, the same
    object every time after. ``shape`` must tell apart every Table ``build`` could make."""
    found = _TABLES.get(shape)
    if found is None:
        with _LOCK:
            found = _TABLES.get(shape)
            if found is None:
                found = _TABLES[shape] = build()
    return found


def column_names(connection: Connection, name: str, schema: str | None = None) -> list[str]:
    """The names of table ``name``'s columns, in the table's order, read from an empty
    SELECT: one statement, without the types, defaults and comments that
    ``Inspector.get_columns`` reflects (8-9 ms of a fresh process on PostgreSQL,
    against about 1 ms; benchmarks/README.md)."""
    empty = select(text("*")).select_from(table(name, schema=schema)).limit(0)
    return list(connection.execute(empty).keys())


def column_shape(columns: Iterable[Column[Any]]) -> tuple[tuple[str, str], ...]:
    """Columns by name and type, as far as a table built from them can differ."""
    return tuple((column.name, repr(column.type)) for column in columns)


def temporary_table(name: str, strategy: Strategy, *items: SchemaItem) -> Table:
    """A temporary table ``name`` of ``items`` (columns, constraints) in ``strategy``'s
    staging schema."""
    return Table(name, MetaData(), *items, prefixes=["TEMPORARY"], schema=strategy.stage_schema)


def temporary_copy(
    connection: Connection,
    strategy: Strategy,
    name: str,
    rows: Select[Any],
    primary_key: Sequence[str] = (),
) -> Table:
    """A temporary table ``name`` (``temporary_table``, replacing one left there) holding
    ``rows``, its columns named and typed as they are selected."""
    keyed = [PrimaryKeyConstraint(*primary_key)] if primary_key else []
    # str(): a selected column's name is SQLAlchemy's label, which a statement on the
    # copy would cut to the dialect's label length (PostgreSQL: past 57 characters,
    # "o_…_1") and so name a column the table does not have.
    columns = [Column(str(c.name), c.type) for c in rows.selected_columns]
    copy = temporary_table(name, strategy, *columns, *keyed)
    strategy.drop_stage(connection, copy)
    copy.create(connection)
    connection.execute(insert(copy).from_select([c.name for c in copy.columns], rows))
    return copy


def staging_type(kind: types.TypeEngine[Any]) -> types.TypeEngine[Any]:
    """The type a staging or journal column holds ``kind``'s values in."""
    # A database ENUM type would need a CREATE TYPE; its values stage fine as text.
    if isinstance(kind, types.Enum):
        return String(max((len(v) for v in kind.enums), default=1))
    return kind


def loose_staging_type(kind: types.TypeEngine[Any]) -> types.TypeEngine[Any]:
    """A staging type that keeps every value a database's CSV reader reads for ``kind``
    as it was written: text of any length, decimals with all their places (a
    NUMERIC(10, 2) column would round 1.005 on the way in), so that setwise's checks
    can still see them (``Strategy.unfit_staged``)."""
    if isinstance(kind, types.String) and not isinstance(kind, types.Enum):
        return types.Text()
    if isinstance(kind, types.Numeric) and not isinstance(kind, types.Integer | types.Float):
        return types.Numeric(asdecimal=True)
    return staging_type(kind)
