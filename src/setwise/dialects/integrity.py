"""Turn a database's IntegrityError into a ValidationError that names the constraint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Index, Table, inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.schema import ColumnCollectionConstraint

from setwise.dialects import IntegrityFacts, Strategy
from setwise.errors import ValidationError
from setwise.problems import Problem, ProblemKind


def integrity_to_validation(
    error: DBAPIError,
    table: Table,
    strategy: Strategy,
    values: Mapping[str, Any],
) -> ValidationError:
    """A ValidationError naming the violated constraint, its columns and the values sent."""
    facts = strategy.describe_integrity_error(error.orig)
    name, columns = _complete(facts, table, set(values))
    label = f"{facts.kind} constraint {name!r}" if name else f"a {facts.kind} constraint"
    if columns:
        label += f" on ({', '.join(columns)})"
    reason = f"violates {label}"
    column = columns[0] if len(columns) == 1 else (", ".join(columns) or None)
    if len(columns) == 1:
        value = values.get(columns[0])
    else:
        value = {c: values[c] for c in columns if c in values} or None
    problem = Problem(column=column, value=value, reason=reason, kind=ProblemKind.CONSTRAINT)
    return ValidationError(table.fullname, [problem], constraint=name)


def violated_columns(facts: IntegrityFacts, table: Table) -> tuple[str, ...]:
    """The columns of the constraint ``facts`` describe, named or found by its name."""
    return _complete(facts, table, set())[1]


def _complete(
    facts: IntegrityFacts, table: Table, sent: set[str]
) -> tuple[str | None, tuple[str, ...]]:
    """Fill in the constraint's name from its columns, or its columns from its name.

    When the database said neither (SQLite's "FOREIGN KEY constraint failed"), the
    constraint of that kind over the columns the call sent is the one, if it is alone.
    """
    name, columns = facts.constraint, facts.columns
    candidates: list[ColumnCollectionConstraint | Index] = [
        c for c in table.constraints if isinstance(c, ColumnCollectionConstraint)
    ]
    candidates += [index for index in table.indexes if index.unique]
    if name and not columns:
        for candidate in candidates:
            if candidate.name == name:
                columns = tuple(column.name for column in candidate.columns)
        if not columns and name in table.columns:
            # MariaDB names an unnamed UNIQUE after its first column.
            columns = (name,)
    if not name and not columns and facts.kind == "foreign key":
        suspects = [
            fk for fk in table.foreign_key_constraints if {c.name for c in fk.columns} <= sent
        ]
        if len(suspects) == 1:
            columns = tuple(column.name for column in suspects[0].columns)
    if columns and not name:
        for candidate in candidates:
            candidate_columns = tuple(column.name for column in candidate.columns)
            if candidate_columns == columns and isinstance(candidate.name, str):
                name = candidate.name
    return name, columns


def delete_refused(
    error: DBAPIError, table: Table, strategy: Strategy, connection: Connection
) -> ValidationError:
    """A ValidationError for a DELETE of rows of ``table`` the database refused: for a
    foreign key, naming it and the referring table. Where the database names neither
    (SQLite), the foreign keys of other tables that refer to ``table`` are looked up on
    ``connection``: the one there is, or each of them."""
    facts = strategy.describe_integrity_error(error.orig)
    if facts.kind != "foreign key":
        return integrity_to_validation(error, table, strategy, {})
    found = [(facts.constraint, facts.table, facts.columns)]
    if facts.table is None:
        found = referring_keys(connection, table) or found
    named = [
        (f"foreign key {name!r}" if name else "an unnamed foreign key")
        + (f" of table {referring!r}" if referring else "")
        + (f" ({', '.join(columns)})" if columns else "")
        for name, referring, columns in found
    ]
    reason = (
        f"rows of {table.fullname!r} that the DELETE would remove are still referred to"
        f" through {' or '.join(named)}: delete or repoint the referring rows first"
    )
    problem = Problem(column=None, value=None, reason=reason, kind=ProblemKind.CONSTRAINT)
    name, referring, _ = found[0] if len(found) == 1 else (None, None, ())
    return ValidationError(table.fullname, [problem], constraint=name, referenced_by=referring)


def referring_keys(
    connection: Connection, table: Table
) -> list[tuple[str | None, str | None, tuple[str, ...]]]:
    """The foreign keys of other tables (in ``table``'s schema) that refer to ``table``:
    name, table and columns of each."""
    inspector = inspect(connection)
    found: list[tuple[str | None, str | None, tuple[str, ...]]] = []
    for name in inspector.get_table_names(schema=table.schema):
        for key in inspector.get_foreign_keys(name, schema=table.schema):
            if key.get("referred_table") == table.name:
                columns = tuple(key.get("constrained_columns") or ())
                found.append((key.get("name"), name, columns))
    return found
