"""Build the statements a run sends. A dry run builds the same ones and does not send them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    Table,
    Update,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    true,
    types,
)
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.elements import BindParameter, ClauseElement

from setwise.dialects.compare import StoredComparison
from setwise.errors import SchemaError
from setwise.operations import UPDATED
from setwise.target import Target, resolve_target
from setwise.writers.keys import Span


@dataclass(frozen=True)
class SetUpdate:
    """A set-based UPDATE taken apart: which table, which assignments, which rows.

    ``assignments`` are the caller's SET clauses; ``bumps`` are columns setwise
    maintains itself (an integer version column), written only on rows that change.
    ``compare`` tells, per database, whether a value changes what a row stores
    (``with_comparison`` sets the run's own).
    """

    target: Target
    assignments: dict[Column[Any], ColumnElement[Any]]
    where: ColumnElement[bool] | None
    bumps: dict[Column[Any], ColumnElement[Any]] = field(default_factory=dict)
    compare: StoredComparison = field(default_factory=StoredComparison)

    @classmethod
    def from_statement(cls, statement: Update) -> SetUpdate:
        """Read an ORM (``update(Book)``) or Core (``update(books)``) UPDATE."""
        target, mapper = statement_target(statement.table, "setwise.update")
        table = target.table

        assignments: dict[Column[Any], ColumnElement[Any]] = {}
        for key, value in (statement._values or {}).items():
            column = _column_of(target, key)
            assignments[column] = _typed(column, value)
        if not assignments:
            raise SchemaError(f"the UPDATE of {table.fullname!r} sets no columns")

        where = with_subclass_filter(mapper, statement.whereclause)

        bumps: dict[Column[Any], ColumnElement[Any]] = {}
        version = target.version
        if (
            version is not None
            and version not in assignments
            and isinstance(version.type, types.Integer)
        ):
            bumps[version] = version + 1
        return cls(target=target, assignments=assignments, where=where, bumps=bumps)

    def with_comparison(self, compare: StoredComparison) -> SetUpdate:
        """This update, telling changed rows from unchanged ones as ``compare`` does."""
        return replace(self, compare=compare)

    @property
    def table(self) -> Table:
        return self.target.table

    def changes_row(self) -> ColumnElement[bool]:
        """True for rows where some assignment would store what the row does not hold
        yet, byte for byte (``dialects.compare``)."""
        return or_(
            *(self.compare.differs(column, value) for column, value in self.assignments.items())
        )

    def new_values(self) -> dict[Column[Any], ColumnElement[Any]]:
        """What a changed row is written: the assignments as stored, and the bumps."""
        assigned = {c: self.compare.assigned(c, v) for c, v in self.assignments.items()}
        return {**assigned, **self.bumps}

    def criteria(self, *extra: ColumnElement[bool]) -> list[ColumnElement[bool]]:
        base = [self.where] if self.where is not None else []
        return [*base, *extra]

    def update(self) -> Update:
        """The UPDATE of every matched row that would change."""
        return (
            sql_update(self.table)
            .where(*self.criteria(self.changes_row()))
            .values(self.new_values())
        )

    # -- the writer interface the executor runs (see writers.protocol.Writer) ------------

    kind = "update"
    operations = (UPDATED,)

    def written_columns(self) -> list[Column[Any]]:
        """Columns a changed row gets new values for: the journal keeps old and new."""
        return [*self.assignments, *self.bumps]

    def keys_after(self, after: tuple[Any, ...] | None, limit: int) -> Select[Any]:
        """The next ``limit`` keys of rows that would change, after ``after``, in order."""
        key = self.target.key
        return (
            select(*key)
            .where(*self.criteria(self.changes_row()), *Span(after).criteria(key))
            .order_by(*key)
            .limit(limit)
        )

    def counts(self, span: Span, *, would_change: bool = True) -> Select[Any]:
        """(matched, would change, conflicts, rows) in the span, in one scan.

        Without ``would_change`` its count is 0 and the scan a plain ``count(*)``: only
        a ``max_rows`` guard needs it, and the CASE over every assignment costs a
        seventh of the scan (benchmarks/README.md)."""
        changes = (
            func.coalesce(func.sum(case((self.changes_row(), 1), else_=0)), 0)
            if would_change
            else literal(0)
        )
        return (
            select(func.count(), changes, literal(0), func.count())
            .select_from(self.table)
            .where(*self.criteria(), *span.criteria(self.target.key))
        )

    def rows_in(self, span: Span) -> Select[Any]:
        """Rows the WHERE matches in the span."""
        return (
            select(func.count())
            .select_from(self.table)
            .where(*self.criteria(), *span.criteria(self.target.key))
        )

    def journal_rows(self, span: Span) -> Select[Any]:
        """Key, then (old, new) for each written column, of the rows that change, in key order."""
        new = self.new_values()
        pairs = [part for column in self.written_columns() for part in (column, new[column])]
        return (
            select(*self.target.key, *pairs)
            .where(*self.criteria(self.changes_row()), *span.criteria(self.target.key))
            .order_by(*self.target.key)
        )

    def direct_update(self, span: Span, stamps: dict[Column[Any], Any]) -> Update:
        """The span's UPDATE without a journal."""
        return (
            sql_update(self.table)
            .where(*self.criteria(self.changes_row()), *span.criteria(self.target.key))
            .values({**self.new_values(), **stamps})
        )

    def matched_keys(self, span: Span) -> Select[Any]:
        """Keys of every matched row in the span, in key order."""
        key = self.target.key
        return select(*key).where(*self.criteria(), *span.criteria(key)).order_by(*key)

    def missing_keys(self, span: Span, limit: int) -> None:
        return None

    def conflict_keys(self, span: Span, limit: int) -> None:
        return None


def statement_target(table: Any, function: str) -> tuple[Target, Mapper[Any] | None]:
    """The target of an ORM (``update(Book)``) or Core (``update(books)``) statement's
    ``table``, and its mapper when it names a mapped class; ``function`` is the setwise
    call that refuses anything but a single table."""
    entity = table._annotations.get("parententity")
    found = getattr(entity, "mapper", None)
    mapper = found if isinstance(found, Mapper) else None
    if mapper is not None:
        return resolve_target(mapper.class_), mapper
    if isinstance(table, Table):
        return resolve_target(table), None
    raise SchemaError(f"{function} needs a single table, got {table!r}")


def with_subclass_filter(
    mapper: Mapper[Any] | None, where: ColumnElement[bool] | None
) -> ColumnElement[bool] | None:
    """``where`` with the discriminator filter of a single-table-inheritance subclass,
    which the ORM adds and Core execution skips."""
    if mapper is not None and mapper.single and mapper._single_table_criterion is not None:
        return and_(mapper._single_table_criterion, where if where is not None else true())
    return where


def _column_of(target: Target, key: Any) -> Column[Any]:
    """The table column a SET key names: a column, an ORM attribute, or a name."""
    if isinstance(key, str):
        if target.mapper is not None and key in target.mapper.attrs:
            prop = target.mapper.attrs[key]
            columns = getattr(prop, "columns", None)
            if columns:
                return target.column(columns[0].name)
        return target.column(key)
    name = getattr(key, "name", None)
    if isinstance(name, str):
        return target.column(name)
    raise SchemaError(f"cannot tell which column of {target.name!r} {key!r} sets")


def _typed(column: Column[Any], value: Any) -> ColumnElement[Any]:
    """A SET value whose literal is bound with the column's type (Decimal stays exact)."""
    if isinstance(value, BindParameter) and isinstance(value.type, types.NullType):
        return literal(value.value, column.type)
    if isinstance(value, ClauseElement):
        return value  # type: ignore[return-value]
    return literal(value, column.type)
