"""The foreign keys whose ON DELETE action writes other rows when rows of a table are
deleted (CASCADE, SET NULL, SET DEFAULT), as the database reports them.

PostgreSQL and MySQL/MariaDB are asked in one catalog query, which also finds keys of
tables in other schemas; any other database through SQLAlchemy's reflection of the
table's schema (on SQLite, with each key's action read from ``PRAGMA
foreign_key_list``, which SQLAlchemy does not reflect).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Table, inspect, text

from setwise.dialects.base import Strategy

#: ON DELETE actions that write rows a DELETE did not match. RESTRICT and NO ACTION
#: refuse the DELETE instead, and the database says so.
WRITING_ACTIONS = frozenset({"CASCADE", "SET NULL", "SET DEFAULT"})

#: What reads whether a connection carries out foreign keys at all: SQLite only on a
#: connection that turns them on, MySQL and MariaDB unless ``foreign_key_checks`` is 0.
_ENFORCED = {
    "sqlite": "PRAGMA foreign_keys",
    "mysql": "SELECT @@foreign_key_checks",
    "mariadb": "SELECT @@foreign_key_checks",
}

#: Each writing key's columns that refer to a table: (schema, table, key, action,
#: column, referred column, the referred table's schema), a row per column, in order.
#: MySQL and MariaDB measured 0.02-0.14 s with 300 tables in the database, where
#: reflecting each table took 1.1 s (a SHOW CREATE TABLE each).
_MYSQL_KEYS = """
SELECT rc.CONSTRAINT_SCHEMA, rc.TABLE_NAME, rc.CONSTRAINT_NAME, rc.DELETE_RULE,
       k.COLUMN_NAME, k.REFERENCED_COLUMN_NAME, rc.UNIQUE_CONSTRAINT_SCHEMA
FROM information_schema.REFERENTIAL_CONSTRAINTS rc
JOIN information_schema.KEY_COLUMN_USAGE k
  ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA AND k.TABLE_NAME = rc.TABLE_NAME
 AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME
WHERE rc.UNIQUE_CONSTRAINT_SCHEMA = COALESCE(:schema, DATABASE())
  AND rc.REFERENCED_TABLE_NAME = :table
  AND rc.DELETE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT')
ORDER BY rc.CONSTRAINT_SCHEMA, rc.TABLE_NAME, rc.CONSTRAINT_NAME, k.ORDINAL_POSITION
"""
_POSTGRESQL_KEYS = """
SELECT ns.nspname, rel.relname, con.conname,
       CASE con.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL'
            ELSE 'SET DEFAULT' END,
       a.attname, fa.attname, fns.nspname
FROM pg_constraint con
JOIN pg_class rel ON rel.oid = con.conrelid
JOIN pg_namespace ns ON ns.oid = rel.relnamespace
JOIN pg_class frel ON frel.oid = con.confrelid
JOIN pg_namespace fns ON fns.oid = frel.relnamespace
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(attnum, fattnum, n)
JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = k.fattnum
WHERE con.contype = 'f' AND con.confrelid = to_regclass(:table)
  AND con.confdeltype IN ('c', 'n', 'd')
ORDER BY ns.nspname, rel.relname, con.conname, k.n
"""
_CATALOG_KEYS = {"postgresql": _POSTGRESQL_KEYS, "mysql": _MYSQL_KEYS, "mariadb": _MYSQL_KEYS}


@dataclass(frozen=True)
class WritingKey:
    """A foreign key of ``table`` (in ``schema``) on ``columns`` that refers to
    ``referred`` columns and writes its rows by ``action`` when those are deleted."""

    name: str | None
    schema: str | None
    table: str
    columns: tuple[str, ...]
    referred: tuple[str, ...]
    action: str


def writing_keys(connection: Connection, strategy: Strategy, table: Table) -> list[WritingKey]:
    """The foreign keys, of any table (``table`` itself included), that a DELETE of rows
    of ``table`` sets off on ``connection``: none where the connection does not carry
    out foreign keys. ``schema`` is None for a table found where ``table`` is."""
    enforced = _ENFORCED.get(strategy.name)
    if enforced is not None and not connection.execute(text(enforced)).scalar():
        return []
    catalog = _CATALOG_KEYS.get(strategy.name)
    if catalog is not None:
        return _from_catalog(connection, strategy, catalog, table)
    return _reflected(connection, strategy, table)


def _from_catalog(
    connection: Connection, strategy: Strategy, query: str, table: Table
) -> list[WritingKey]:
    """The keys that ``query`` (of ``_CATALOG_KEYS``) lists a row per column of."""
    parameters: dict[str, Any] = {"schema": table.schema, "table": table.name}
    if strategy.name == "postgresql":  # to_regclass reads a quoted, qualified name
        parameters["table"] = connection.dialect.identifier_preparer.format_table(table)
    keys: dict[tuple[str, str, str], WritingKey] = {}
    for schema, name, key, action, column, referred, home in connection.execute(
        text(query), parameters
    ):
        shown = None if table.schema is None and schema == home else schema
        found = keys.get((schema, name, key)) or WritingKey(key, shown, name, (), (), action)
        keys[(schema, name, key)] = replace(
            found, columns=(*found.columns, column), referred=(*found.referred, referred)
        )
    return list(keys.values())


def _reflected(connection: Connection, strategy: Strategy, table: Table) -> list[WritingKey]:
    """The keys, of tables in ``table``'s schema, found by one reflection of it."""
    inspector = inspect(connection)
    default = inspector.default_schema_name
    wanted = table.schema or default
    found: list[WritingKey] = []
    for (schema, name), keys in inspector.get_multi_foreign_keys(schema=table.schema).items():
        for key in keys:
            referred_schema = key.get("referred_schema") or schema or default
            if key["referred_table"] != table.name or referred_schema != wanted:
                continue
            columns = tuple(key["constrained_columns"])
            action = (key.get("options") or {}).get("ondelete")
            if strategy.name == "sqlite":  # SQLAlchemy does not reflect it there
                action = _sqlite_action(connection, schema, name, columns)
            action = " ".join(str(action or "NO ACTION").upper().split())
            if action in WRITING_ACTIONS:
                referred = tuple(key["referred_columns"])
                found.append(WritingKey(key["name"], schema, name, columns, referred, action))
    return found


def _sqlite_action(
    connection: Connection, schema: str | None, table: str, columns: tuple[str, ...]
) -> str | None:
    """The ON DELETE action of the foreign key of ``table`` on ``columns``, as
    ``PRAGMA foreign_key_list`` gives it (one row per column of each key)."""
    quote = connection.dialect.identifier_preparer.quote
    prefix = f"{quote(schema)}." if schema else ""
    rows = connection.execute(text(f"PRAGMA {prefix}foreign_key_list({quote(table)})"))
    keys: dict[int, tuple[list[str], str]] = {}
    for row in rows.mappings():
        keys.setdefault(row["id"], ([], row["on_delete"]))[0].append(row["from"])
    for key_columns, action in keys.values():
        if tuple(key_columns) == columns:
            return action
    return None
