"""The statements that merge a staged changeset into its target table.

A changeset is loaded into a staging table by ``setwise.staging`` (``staging.table.Stage``:
one row per input row, with its row number). ``Merge`` is that stage with set-based
statements that join the staging table to the target on the key:

- ``tally``: matched, would change, version conflicts, and total, in one scan;
- ``missing_keys`` / ``conflict_keys`` / ``duplicate_rows``: bounded samples;
- ``merge``: one UPDATE … FROM (MySQL: multi-table UPDATE) of the rows that change;
- ``insert``: with ``missing="insert"``, one INSERT … SELECT of the staged rows whose
  keys have no target row (sent after the UPDATE, so no inserted row counts as
  updated), each checked beforehand by ``staging.required``.

When some rows leave some columns out (JSONL, mappings), a bit mask per row says
which columns it carries, and an absent column keeps the target's value.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Insert,
    Select,
    Table,
    Update,
    and_,
    case,
    false,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    types,
    update,
)
from sqlalchemy.sql.visitors import replacement_traverse

from setwise.operations import UPDATED
from setwise.staging.required import absent, fill_in, first_version, version_supplied
from setwise.staging.table import PRESENT, ROW, Stage
from setwise.writers.keys import EVERYTHING, Span


@dataclass(frozen=True)
class Merge(Stage):
    """A changeset's staging table and the statements that read and merge it."""

    where: ColumnElement[bool] | None = None
    """Only target rows for which this holds are written (``apply(where=...)``); a found
    row outside it counts as matched and unchanged."""

    @classmethod
    def of(cls, stage: Stage) -> Merge:
        """The merge of what ``stage`` holds."""
        return cls(**{f.name: getattr(stage, f.name) for f in fields(stage)})

    def within(self, where: ColumnElement[bool] | None) -> Merge:
        """This merge, writing only target rows for which ``where`` holds. Its columns
        are taken by name from the target's table, so a condition built on another
        reflection of the same table works as well."""
        if where is None:
            return self
        table = self.table

        def same_table(element: Any, **kw: Any) -> Any:
            owner = getattr(element, "table", None)
            if (
                isinstance(element, Column)
                and isinstance(owner, Table)
                and owner is not table
                and (owner.name, owner.schema) == (table.name, table.schema)
                and element.name in table.c
            ):
                return table.c[element.name]
            return None

        return replace(self, where=replacement_traverse(where, {}, same_table))

    def outside(self) -> Select[Any] | None:
        """How many staged keys find a target row for which ``where`` does not hold
        (false or unknown); None without ``where``."""
        if self.where is None:
            return None
        counted = func.coalesce(func.sum(case((self.where, 0), else_=1)), 0)
        return select(counted).select_from(self.stage.join(self.table, self._joined()))

    # -- pieces ---------------------------------------------------------------

    @property
    def table(self) -> Table:
        return self.target.table

    def _joined(self, span: Span = EVERYTHING) -> ColumnElement[bool]:
        """Staged row and target row by key, both inside ``span``: the same rows either
        way, but a chunk's planner then reads the target by a key range, not whole."""
        equal = [self.compare.key_match(c, self.stage.c[c.name]) for c in self.target.key]
        return and_(*equal, *span.criteria(self.target.key))

    def _present(self, index: int) -> ColumnElement[bool]:
        if not self.sparse:
            return true()
        return self.stage.c[PRESENT].op("&")(1 << index) != 0

    def _differs(self) -> ColumnElement[bool]:
        """The target row is inside ``where`` and lacks at least one value the staged
        row carries."""
        differs = or_(
            false(),
            *(
                and_(
                    self._present(i),
                    self.compare.differs(column, self.stage.c[column.name], typed=True),
                )
                for i, column in enumerate(self.columns)
            ),
        )
        return differs if self.where is None else and_(self.where, differs)

    def _version_ok(self) -> ColumnElement[bool]:
        version = self.target.version
        if not self.expects_version or version is None:
            return true()
        return version == self.stage.c[version.name]

    def _found(self) -> ColumnElement[bool]:
        return self.target.key[0].is_not(None)

    def _new_value(self, index: int, column: Column[Any]) -> ColumnElement[Any]:
        staged = self.compare.kept(column, self.stage.c[column.name])
        if not self.sparse:
            return staged
        return case((self._present(index), staged), else_=column)

    def _assignments(self) -> dict[Column[Any], ColumnElement[Any]]:
        values = {column: self._new_value(i, column) for i, column in enumerate(self.columns)}
        version = self.target.version
        if (
            version is not None
            and version not in values
            and isinstance(version.type, types.Integer)
        ):
            values[version] = version + 1
        return values

    # -- the writer interface the executor runs (see writers.protocol.Writer) ------------

    kind = "apply"
    operations = (UPDATED,)

    def written_columns(self) -> list[Column[Any]]:
        return list(self._assignments())

    def keys_after(self, after: tuple[Any, ...] | None, limit: int) -> Select[Any]:
        key = self.staged_key
        return select(*key).where(*Span(after).criteria(key)).order_by(*key).limit(limit)

    def counts(self, span: Span, *, would_change: bool = True) -> Select[Any]:
        """(matched, would change, version conflicts, staged rows) in the span; without
        ``would_change`` that count is 0 and the scan cheaper (see ``tally``)."""
        tally = self.tally(span, would_change=would_change)
        return tally.where(*span.criteria(self.staged_key))

    def rows_in(self, span: Span) -> Select[Any]:
        """Staged rows in the span, found or not: no join with the target."""
        key = self.staged_key
        return select(func.count()).select_from(self.stage).where(*span.criteria(key))

    def journal_rows(self, span: Span) -> Select[Any]:
        new = self._assignments()
        # Each new value labelled anew: a CAST (``compare.kept``) would be proxied by
        # its column's name, and a subquery of the rows read the old value twice.
        pairs = [p for c in self.written_columns() for p in (c, new[c].label(None))]
        return (
            select(*self.target.identity, *pairs)
            .select_from(self.stage.join(self.table, self._joined(span)))
            .where(self._differs(), self._version_ok(), *span.criteria(self.staged_key))
            .order_by(*self.target.identity)
        )

    def direct_update(self, span: Span, stamps: dict[Column[Any], Any]) -> Update:
        return self.merge(span).where(*span.criteria(self.staged_key)).values(stamps)

    def matched_keys(self, span: Span) -> Select[Any]:
        return (
            select(*self.target.identity)
            .select_from(self.stage.join(self.table, self._joined(span)))
            .where(*span.criteria(self.staged_key))
            .order_by(*self.target.identity)
        )

    # -- statements -----------------------------------------------------------

    def tally(self, span: Span = EVERYTHING, *, would_change: bool = True) -> Select[Any]:
        """One scan: (matched, would change, version conflicts, staged rows).

        The CASEs are left out where their count is known or not needed: conflicts
        without versions in the rows, would-change unless asked (a ``max_rows`` guard)."""
        found = self._found()
        changes = and_(found, self._differs(), self._version_ok())
        conflicts = and_(found, ~self._version_ok())
        versioned = self.expects_version and self.target.version is not None
        return select(
            func.count(self.target.key[0]),
            _count_where(changes) if would_change else literal(0),
            _count_where(conflicts) if versioned else literal(0),
            func.count(),
        ).select_from(self.stage.outerjoin(self.table, self._joined(span)))

    def missing_keys(self, span: Span, limit: int) -> Select[Any]:
        """Staged keys with no target row, in input order."""
        return (
            select(*self.staged_key)
            .select_from(self.stage.outerjoin(self.table, self._joined(span)))
            .where(~self._found(), *span.criteria(self.staged_key))
            .order_by(self.stage.c[ROW])
            .limit(limit)
        )

    def conflict_keys(self, span: Span, limit: int) -> Select[Any]:
        """Staged keys whose target version moved, in input order."""
        return (
            select(*self.staged_key)
            .select_from(self.stage.join(self.table, self._joined(span)))
            .where(~self._version_ok(), *span.criteria(self.staged_key))
            .order_by(self.stage.c[ROW])
            .limit(limit)
        )

    def merge(self, span: Span = EVERYTHING) -> Update:
        """The UPDATE of every target row in ``span`` whose staged values differ and whose
        version holds."""
        return (
            update(self.table)
            .where(self._joined(span), self._differs(), self._version_ok())
            .values(self._assignments())
        )

    # -- rows whose keys have no target row (``missing="insert"``) --------------------

    def _inserted_values(self) -> dict[Column[Any], ColumnElement[Any]]:
        """The value of each column an inserted row is given: key, the changes' columns
        (where a sparse row leaves one out, its default or NULL: ``staging.required``
        refused the rows that leave out a column neither stands in for), and the first
        version."""
        staged = self.stage.c
        values = {c: self.compare.kept(c, staged[c.name]) for c in self.target.key}
        for index, column in enumerate(self.columns):
            value = self.compare.kept(column, staged[column.name])
            fallback = fill_in(column)
            if self.sparse and fallback is not None:
                value = case((self._present(index), value), else_=fallback)
            values[column] = value
        version = self.target.version
        if version is not None and version_supplied(self.target):
            values[version] = literal(first_version(self.target), version.type)
        elif version is not None and self.expects_version:
            values[version] = self.compare.kept(version, staged[version.name])
        return values

    def inserted_columns(self) -> list[Column[Any]]:
        """The columns an INSERT of missing rows names (others get their defaults)."""
        return list(self._inserted_values())

    def insert_rows(self, span: Span) -> Select[Any]:
        """The staged rows in ``span`` whose keys have no target row: a value for each of
        ``inserted_columns``, in key order (the order the rows are written and locked)."""
        values = self._inserted_values()
        return (
            select(*(value.label(None) for value in values.values()))
            .select_from(self.stage)
            .where(absent(self), *span.criteria(self.staged_key))
            .order_by(*self.staged_key)
        )

    def inserted_journal_rows(self, span: Span) -> Select[Any]:
        """The journal rows of ``insert_rows``: the primary key, then (old, new) for each
        of ``written_columns``, old NULL (``staging.required`` refused an insert whose
        primary key the changes do not give, when journaled)."""
        values = self._inserted_values()
        key = [values[column].label(None) for column in self.target.identity]
        new = [values.get(column, null()).label(None) for column in self.written_columns()]
        return (
            select(*key, *(part for value in new for part in (null(), value)))
            .select_from(self.stage)
            .where(absent(self), *span.criteria(self.staged_key))
            .order_by(*self.staged_key)
        )

    def insert(self, span: Span, stamps: dict[Column[Any], Any]) -> Insert:
        """The INSERT … SELECT of the rows of ``insert_rows``, with the run's stamps;
        columns the rows do not name get their client defaults in the SELECT (SQLAlchemy
        calls a Python default once per statement) or their server defaults."""
        columns = self.inserted_columns()
        rows = self.insert_rows(span)
        stamped = {c: v for c, v in stamps.items() if c not in columns}
        if stamped:
            rows = rows.add_columns(*(literal(v, c.type) for c, v in stamped.items()))
        return insert(self.table).from_select([*columns, *stamped], rows)


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)
