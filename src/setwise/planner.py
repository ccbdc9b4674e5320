"""``setwise.plan``: what a run would do, found without writing anything.

A dry run is the real run, not sent: the statement is taken apart and checked by the
same code as ``update`` (``setbased.prepare``), counted with the same tally, and the
very UPDATE a run would send is compiled for the database (placeholders, never
values) and handed to the database's EXPLAIN. All of it runs in a transaction that
is rolled back (``transaction.peek``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, Update, func, inspect, select
from sqlalchemy.sql.elements import ClauseElement, ColumnClause
from sqlalchemy.sql.selectable import ScalarSelect, SelectBase, TableClause

from setwise.dialects import Strategy
from setwise.errors import NotFoundError, SetwiseError, TooManyRowsError
from setwise.plan import EVERYTHING, SetUpdate
from setwise.report import Plan, PlanWarning
from setwise.setbased import prepare
from setwise.transaction import Bind, peek

#: Share of the table past which a plan warns that a run changes most of it. Half:
#: a filter that catches more than that is more often a mistake than a targeted fix,
#: and one UPDATE over most of a table locks most of it.
DEFAULT_WARN_SHARE = 0.5


@dataclass(frozen=True)
class _Index:
    """An index or constraint that orders rows by ``columns``."""

    name: str
    columns: tuple[str, ...]
    unique: bool


def plan(
    bind: Bind,
    statement: Update,
    *,
    all_rows: bool = False,
    expect_rows: int | None = None,
    max_rows: int | None = None,
    journal: bool = True,
    warn_share: float | None = DEFAULT_WARN_SHARE,
) -> Plan:
    """What ``setwise.update(bind, statement, ...)`` would do; nothing is written.

    Takes the options of ``update`` and raises what it would raise before writing
    (``UnboundedUpdateError``, ``ValidationError``, ``TooManyRowsError``,
    ``NotFoundError``). ``warn_share``: warn when more than this share of the table
    would change (None: never).
    """
    if not isinstance(statement, Update):
        raise SetwiseError(
            f"setwise.plan takes a SQLAlchemy UPDATE statement, got {type(statement).__name__}; "
            "plans of changesets (rows keyed by id) are not available yet"
        )
    return _plan_update(
        bind,
        prepare(statement, all_rows=all_rows),
        expect_rows=expect_rows,
        max_rows=max_rows,
        journal=journal,
        warn_share=warn_share,
    )


def _plan_update(
    bind: Bind,
    update: SetUpdate,
    *,
    expect_rows: int | None,
    max_rows: int | None,
    journal: bool,
    warn_share: float | None,
) -> Plan:
    table = update.table
    with peek(bind) as scope:
        connection, strategy = scope.connection, scope.strategy
        # The very statements a run sends for a chunk of every row: the read of the rows
        # that change, with old and new values, under lock (the journal's record), and
        # the UPDATE that writes them.
        statements = [
            strategy.lock_rows(update.journal_rows(EVERYTHING), table),
            update.direct_update(EVERYTHING, {}),
        ]
        counted = connection.execute(update.counts(EVERYTHING)).one()
        matched, would_change = int(counted[0]), int(counted[1])
        if max_rows is not None and would_change > max_rows:
            raise TooManyRowsError(table.fullname, limit=max_rows, would_change=would_change)
        if expect_rows is not None and matched < expect_rows:
            raise NotFoundError(table.fullname, expected=expect_rows, matched=matched)
        explain = strategy.explain(connection, statements[-1])
        indexes = _indexes(connection, table)
        total = matched
        if update.where is not None and warn_share is not None and would_change:
            total = int(connection.execute(select(func.count()).select_from(table)).scalar_one())
        sql = tuple(
            str(
                statement.compile(
                    dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
                )
            )
            for statement in statements
        )

    warnings = [
        *_filter_warnings(update, indexes),
        *_unique_warnings(update, indexes),
    ]
    if warn_share is not None and total and would_change > warn_share * total:
        warnings.append(
            PlanWarning(
                "large-share",
                f"would change {would_change:,} of the {total:,} rows of {table.fullname!r} "
                f"({would_change / total:.0%}), more than {warn_share:.0%}",
            )
        )
    return Plan(
        table=table.fullname,
        strategy=_strategy_name(strategy, update.kind, journal),
        matched=matched,
        would_change=would_change,
        unchanged=matched - would_change,
        sql=sql,
        explain=explain,
        warnings=tuple(warnings),
    )


def _strategy_name(strategy: Strategy, kind: str, journal: bool) -> str:
    """The name ``Report.strategy`` gives a one-transaction run (see ``runner``)."""
    parts = [strategy.name, kind, "journaled" if journal else "no journal"]
    if not strategy.supports_update_from:
        parts.append("by key")
    return " / ".join(parts)


def _filter_warnings(update: SetUpdate, indexes: Iterable[_Index]) -> list[PlanWarning]:
    table = update.table.fullname
    if update.where is None:
        return [PlanWarning("no-where", f"no WHERE clause: every row of {table!r} is matched")]
    names = _columns_of(update.where, update.table)
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


def _unique_warnings(update: SetUpdate, indexes: Iterable[_Index]) -> list[PlanWarning]:
    warnings = []
    for column in update.assignments:
        for index in indexes:
            if index.unique and column.name in index.columns:
                warnings.append(
                    PlanWarning(
                        "unique-column",
                        f"{column.name!r} is in the unique {index.name} "
                        f"({', '.join(index.columns)}): if two rows end up equal, "
                        "the whole update fails",
                    )
                )
    return warnings


def _indexes(connection: Connection, table: Table) -> list[_Index]:
    """The indexes the database has on ``table`` (primary key and unique constraints
    included), as it reports them rather than as a model declares them."""
    inspector = inspect(connection)
    name, schema = table.name, table.schema
    # By columns: PostgreSQL lists a unique constraint's index as an index too.
    found: dict[tuple[tuple[str, ...], bool], _Index] = {}

    def add(label: str | None, columns: Iterable[Any], unique: bool, kind: str) -> None:
        names = tuple(str(column) for column in columns if column)
        title = f"{kind} {label!r}" if label else kind
        if names:
            found.setdefault((names, unique), _Index(title, names, unique))

    primary = inspector.get_pk_constraint(name, schema)
    add(None, primary.get("constrained_columns") or (), True, "primary key")
    for index in inspector.get_indexes(name, schema):
        add(index.get("name"), index.get("column_names") or (), bool(index.get("unique")), "index")
    for constraint in inspector.get_unique_constraints(name, schema):
        add(constraint.get("name"), constraint.get("column_names") or (), True, "constraint")
    return list(found.values())


def _columns_of(where: ClauseElement, table: Table) -> list[str]:
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
