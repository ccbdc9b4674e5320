"""The warnings of a plan: a filter no index serves, a key without a unique index, a
run that changes most of a table or locks it long."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Table, inspect
from sqlalchemy.sql.elements import ClauseElement, ColumnClause
from sqlalchemy.sql.selectable import ScalarSelect, SelectBase, TableClause

from setwise.engine.options import RunOptions
from setwise.operations import DELETED
from setwise.report import PlanWarning
from setwise.target import Target
from setwise.writers.delete import SetDelete
from setwise.writers.protocol import Writer
from setwise.writers.setbased import SetUpdate

#: Rows per second a journaled run writes, for estimates made before anything runs: how
#: long one transaction would hold its locks, and how many chunks an "auto" run takes.
#: 50,000 is about the slowest journaled rate benchmarks/bench_update.py measured
#: (PostgreSQL, 46,000 rows changed/s on the 2-core VM under load), so an estimate
#: errs towards a longer lock rather than a shorter one.
ESTIMATED_ROWS_PER_SECOND = 50_000


@dataclass(frozen=True)
class Index:
    """An index or constraint that orders rows by ``columns``."""

    name: str
    columns: tuple[str, ...]
    unique: bool


def filter_warnings(update: SetUpdate | SetDelete, indexes: Iterable[Index]) -> list[PlanWarning]:
    table = update.table.fullname
    if update.where is None:
        return [PlanWarning("no-where", f"no WHERE clause: every row of {table!r} is matched")]
    names = columns_of(update.where, update.table)
    leading = {index.columns[0] for index in indexes if index.columns}
    if leading & set(names):
        return []
    if not names:
        message = f"the filter names no column of {table!r}: every row is read to find matches"
    else:
        message = (
            f"no index of {table!r} starts with {', '.join(names)}: "
            "every row is read to find matches"
        )
    return [PlanWarning("unindexed-filter", message)]


def key_warnings(target: Target, indexes: Iterable[Index]) -> list[PlanWarning]:
    """A changeset's key with no unique index behind it may match several rows each."""
    key = {column.name for column in target.key}
    if any(index.unique and set(index.columns) <= key for index in indexes):
        return []
    names = ", ".join(column.name for column in target.key)
    return [
        PlanWarning(
            "key-not-unique",
            f"no primary key or unique index of {target.name!r} is on ({names}): a key may "
            "match several rows, and each of them would be written",
        )
    ]


def unique_warnings(writer: Writer, indexes: Iterable[Index]) -> list[PlanWarning]:
    warnings: list[PlanWarning] = []
    if DELETED in writer.operations:  # a delete makes no two rows equal
        return warnings
    key = {column.name for column in writer.target.key}
    columns: list[Column[Any]] = writer.written_columns()
    for column in columns:
        for index in indexes:
            if index.unique and column.name in index.columns and column.name not in key:
                warnings.append(
                    PlanWarning(
                        "unique-column",
                        f"{column.name!r} is in the unique {index.name} "
                        f"({', '.join(index.columns)}): if two rows end up equal, "
                        "the whole run fails",
                    )
                )
    return warnings


def share_warnings(
    target: Target, would_change: int, total: int, warn_share: float | None
) -> list[PlanWarning]:
    if warn_share is None or not total or would_change <= warn_share * total:
        return []
    return [
        PlanWarning(
            "large-share",
            f"would change {would_change:,} of the {total:,} rows of {target.name!r} "
            f"({would_change / total:.0%}), more than {warn_share:.0%}",
        )
    ]


def lock_warnings(target: Target, would_change: int, options: RunOptions) -> list[PlanWarning]:
    """One transaction holds the lock of every row it writes until it commits: its
    length is estimated from the rows it writes at ``ESTIMATED_ROWS_PER_SECOND``."""
    seconds = would_change / ESTIMATED_ROWS_PER_SECOND
    if options.chunked or seconds <= options.chunk_seconds:
        return []
    return [
        PlanWarning(
            "long-lock",
            f"one transaction would write {would_change:,} rows of {target.name!r}, holding "
            f"their locks for about {seconds:.1f} s (at {ESTIMATED_ROWS_PER_SECOND:,} rows/s), "
            f"over the {options.chunk_seconds:g} s chunk target: chunk the run "
            "(chunk_rows='auto', --chunk-rows auto) to keep each lock short",
        )
    ]


def indexes_of(connection: Connection, table: Table) -> list[Index]:
    """The indexes the database has on ``table`` (primary key and unique constraints
    included), as it reports them rather than as a model declares them."""
    inspector = inspect(connection)
    name, schema = table.name, table.schema
    # By columns: PostgreSQL lists a unique constraint's index as an index too.
    found: dict[tuple[tuple[str, ...], bool], Index] = {}

    def add(label: str | None, columns: Iterable[Any], unique: bool, kind: str) -> None:
        names = tuple(str(column) for column in columns if column)
        title = f"{kind} {label!r}" if label else kind
        if names:
            found.setdefault((names, unique), Index(title, names, unique))

    primary = inspector.get_pk_constraint(name, schema)
    add(None, primary.get("constrained_columns") or (), True, "primary key")
    for index in inspector.get_indexes(name, schema):
        add(index.get("name"), index.get("column_names") or (), bool(index.get("unique")), "index")
    for constraint in inspector.get_unique_constraints(name, schema):
        add(constraint.get("name"), constraint.get("column_names") or (), True, "constraint")
    return list(found.values())


def columns_of(where: ClauseElement, table: Table) -> list[str]:
    """The columns of ``table`` the filter reads itself, not inside subqueries."""
    names: list[str] = []
    pending = [where]
    while pending:
        element = pending.pop()
        if isinstance(element, SelectBase | ScalarSelect):
            continue
        if isinstance(element, ColumnClause) and element.name not in names:
            owner = element.table
            if isinstance(owner, TableClause) and owner.name == table.name:
                names.append(element.name)
        pending.extend(element.get_children())
    return sorted(names)
