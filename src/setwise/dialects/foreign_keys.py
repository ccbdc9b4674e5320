"""The foreign keys whose ON DELETE action writes other rows when rows of a table are
deleted (CASCADE, SET NULL, SET DEFAULT), as the database reports them."""

from __future__ import annotations

from dataclasses import dataclass

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
    """The foreign keys, of any table in ``table``'s schema (itself included), that a
    DELETE of rows of ``table`` sets off on ``connection``: none where the connection
    does not carry out foreign keys. One reflection of the schema's foreign keys."""
    enforced = _ENFORCED.get(strategy.name)
    if enforced is not None and not connection.execute(text(enforced)).scalar():
        return []
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
