"""What a delete writes: the rows a DELETE's WHERE matches, journaled whole, then deleted.

``SetDelete`` takes an ORM (``delete(Book)``) or Core (``delete(books)``) DELETE apart
into its table and WHERE, and gives the executor what it needs to run it in key
ranges (``writers.protocol.Writer``), like ``SetUpdate``: each chunk journals the old
value of every column of the rows it deletes (``setwise.operations.DELETED``), so that
a revert inserts them again exactly, then deletes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Delete,
    Select,
    Table,
    func,
    literal,
    null,
    select,
)
from sqlalchemy import delete as sql_delete

from setwise.operations import DELETED
from setwise.target import Target
from setwise.writers.keys import Span
from setwise.writers.setbased import statement_target, with_subclass_filter


@dataclass(frozen=True)
class SetDelete:
    """A set-based DELETE taken apart: which table, which rows."""

    target: Target
    where: ColumnElement[bool] | None

    @classmethod
    def from_statement(cls, statement: Delete) -> SetDelete:
        """Read an ORM (``delete(Book)``) or Core (``delete(books)``) DELETE."""
        target, mapper = statement_target(statement.table, "setwise.delete")
        return cls(target=target, where=with_subclass_filter(mapper, statement.whereclause))

    @property
    def table(self) -> Table:
        return self.target.table

    def criteria(self, *extra: ColumnElement[bool]) -> list[ColumnElement[bool]]:
        base = [self.where] if self.where is not None else []
        return [*base, *extra]

    def delete(self) -> Delete:
        """The DELETE of every matched row, as one statement."""
        return sql_delete(self.table).where(*self.criteria())

    # -- the writer interface the executor runs (see writers.protocol.Writer) ------------

    kind = "delete"
    operations = (DELETED,)

    def written_columns(self) -> list[Column[Any]]:
        """Every column but the key's: the journal keeps a deleted row whole."""
        key = {column.name for column in self.target.identity}
        return [column for column in self.table.columns if column.name not in key]

    def keys_after(self, after: tuple[Any, ...] | None, limit: int) -> Select[Any]:
        """The next ``limit`` keys of matched rows after ``after``, in order."""
        key = self.target.key
        return (
            select(*key)
            .where(*self.criteria(*Span(after).criteria(key)))
            .order_by(*key)
            .limit(limit)
        )

    def counts(self, span: Span, *, would_change: bool = True) -> Select[Any]:
        """(matched, would change, conflicts, rows) in the span: every matched row is
        deleted, so the first two are one count."""
        matched: ColumnElement[Any] = func.count()
        return (
            select(matched, matched, literal(0), matched)
            .select_from(self.table)
            .where(*self.criteria(*span.criteria(self.target.key)))
        )

    def rows_in(self, span: Span) -> Select[Any]:
        """Rows the WHERE matches in the span."""
        return (
            select(func.count())
            .select_from(self.table)
            .where(*self.criteria(*span.criteria(self.target.key)))
        )

    def journal_rows(self, span: Span) -> Select[Any]:
        """Key, then (old, new) for every other column, of the rows to delete, in key
        order: the old value is the row's, the new one NULL."""
        pairs = [part for column in self.written_columns() for part in (column, null())]
        return (
            select(*self.target.identity, *pairs)
            .where(*self.criteria(*span.criteria(self.target.key)))
            .order_by(*self.target.key)
        )

    def direct_update(self, span: Span, stamps: dict[Column[Any], Any]) -> Delete:
        """The span's DELETE (a delete stamps nothing: the rows are gone)."""
        return sql_delete(self.table).where(*self.criteria(*span.criteria(self.target.key)))

    def matched_keys(self, span: Span) -> Select[Any]:
        """Keys of every matched row in the span, in key order."""
        key = self.target.key
        return select(*key).where(*self.criteria(*span.criteria(key))).order_by(*key)

    def missing_keys(self, span: Span, limit: int) -> None:
        return None

    def conflict_keys(self, span: Span, limit: int) -> None:
        return None
