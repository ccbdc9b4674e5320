"""Resolve what a run writes to: an ORM class, a ``Table``, or a table name to reflect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, inspect
from sqlalchemy.exc import DBAPIError, NoSuchTableError
from sqlalchemy.orm import Mapper

from setwise.errors import SchemaError

TargetLike = type[Any] | Table | str


@dataclass(frozen=True)
class Target:
    """A table to write to, with the columns that identify a row and its version."""

    table: Table
    key: tuple[Column[Any], ...]
    version: Column[Any] | None = None
    mapper: Mapper[Any] | None = None
    name: str = field(init=False, repr=False, compare=False)
    """The table's full name. Set once: every part of a run asks for it."""
    identity: tuple[Column[Any], ...] = field(init=False, repr=False, compare=False)
    """The columns that identify a row for good: the primary key, whatever ``key`` a
    run matches by (the journal and the Session use these); the key without one."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.table.fullname)
        identity = tuple(self.table.primary_key.columns) or self.key
        object.__setattr__(self, "identity", identity)

    def column(self, name: str) -> Column[Any]:
        """The column called ``name``, or a SchemaError that suggests the closest one."""
        column = self.table.columns.get(name)
        if column is None:
            raise SchemaError.unknown(
                "column", name, self.table.columns.keys(), f"table {self.name!r}"
            )
        return column

    def key_tuple(self, key: Any) -> tuple[Any, ...]:
        """A key given as a scalar, a tuple in key order, or a mapping, as a tuple."""
        names = [column.name for column in self.key]
        if isinstance(key, Mapping):
            unknown = [name for name in key if name not in names]
            if unknown or len(key) != len(names):
                raise SchemaError(
                    f"key {dict(key)!r} does not name the key columns {names} of {self.name!r}"
                )
            return tuple(key[name] for name in names)
        values = tuple(key) if isinstance(key, tuple | list) else (key,)
        if len(values) != len(names):
            raise SchemaError(
                f"key {key!r} has {len(values)} value(s); {self.name!r} is keyed by {names}"
            )
        return values


def key_value(values: Sequence[Any]) -> Any:
    """A key as reports and problems name it: a one-column key's value, else the tuple
    of its columns' values (the inverse of ``Target.key_tuple``)."""
    return values[0] if len(values) == 1 else tuple(values)


def resolve_target(
    target: TargetLike,
    connection: Connection | None = None,
    *,
    key: Sequence[str] | None = None,
    version_column: str | None = None,
) -> Target:
    """Build a Target from an ORM class, a Table, or a table name reflected on ``connection``."""
    mapper: Mapper[Any] | None = None
    if isinstance(target, Table):
        table = target
    elif isinstance(target, str):
        table = _reflect(target, connection)
    else:
        mapper = _mapper_of(target)
        local = mapper.local_table
        if not isinstance(local, Table):
            raise SchemaError(f"{target!r} is not mapped to a single table")
        table = local

    if key:
        key_columns = tuple(_column(table, name, "key column") for name in key)
    else:
        key_columns = tuple(table.primary_key.columns)

    version: Column[Any] | None = None
    if version_column is not None:
        version = _column(table, version_column, "version column")
    elif mapper is not None and mapper.version_id_col is not None:
        version = table.columns.get(mapper.version_id_col.name)
    return Target(table=table, key=key_columns, version=version, mapper=mapper)


def _mapper_of(cls: Any) -> Mapper[Any]:
    try:
        mapper = inspect(cls)
    except Exception as exc:
        raise SchemaError(f"{cls!r} is not an ORM mapped class, a Table or a table name") from exc
    if not isinstance(mapper, Mapper):
        raise SchemaError(f"{cls!r} is not an ORM mapped class, a Table or a table name")
    return mapper


def _reflect(name: str, connection: Connection | None) -> Table:
    if connection is None:
        raise SchemaError(f"table {name!r} can only be reflected with a database connection")
    schema, _, table_name = name.rpartition(".")
    try:
        return Table(table_name, MetaData(), autoload_with=connection, schema=schema or None)
    except NoSuchTableError:
        _known_schema(connection, schema)
        names = inspect(connection).get_table_names(schema=schema or None)
        raise SchemaError.unknown("table", name, names, "the database") from None
    except DBAPIError:
        # SQLite and MySQL fail a reflection in a schema they do not have outright.
        _known_schema(connection, schema)
        raise


def _known_schema(connection: Connection, schema: str) -> None:
    """Raise SchemaError when ``schema`` is given and the database has none of that name."""
    if not schema:
        return
    schemas = inspect(connection).get_schema_names()
    if schema not in schemas:
        raise SchemaError.unknown("schema", schema, schemas, "the database") from None


def _column(table: Table, name: str, kind: str) -> Column[Any]:
    column = table.columns.get(name)
    if column is None:
        raise SchemaError.unknown(kind, name, table.columns.keys(), f"table {table.fullname!r}")
    return column
