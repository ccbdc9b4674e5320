"""The statements that merge a staged changeset into its target table.

A changeset is loaded into a staging table (one row per input row, with its row
number): a temporary table, or for a chunked run a table named for the run, which a
resumed run merges without reading the changes again. It is then counted and merged
with set-based statements that join the staging table to the target on the key:

- ``tally``: matched, would change, version conflicts, and total, in one scan;
- ``missing_keys`` / ``conflict_keys`` / ``duplicate_rows``: bounded samples;
- ``merge``: one UPDATE … FROM (MySQL: multi-table UPDATE) of the rows that change.

When some rows leave some columns out (JSONL, mappings), a bit mask per row says
which columns it carries, and an absent column keeps the target's value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Identity,
    Index,
    MetaData,
    Select,
    String,
    Table,
    Update,
    and_,
    case,
    false,
    func,
    inspect,
    literal,
    or_,
    select,
    true,
    types,
    update,
)
from sqlalchemy.schema import DropTable
from sqlalchemy.sql.visitors import replacement_traverse

from setwise.dialects import Strategy
from setwise.dialects.compare import StoredComparison
from setwise.journal.schema import column_shape, shared_table, temporary_table
from setwise.target import Target
from setwise.writers.keys import EVERYTHING, Span

ROW = "setwise_row"
PRESENT = "setwise_present"
STAGE_NAME = "setwise_stage"

#: The presence mask is a BIGINT: one bit per column, 63 usable bits.
MAX_SPARSE_COLUMNS = 63


@dataclass(frozen=True)
class Merge:
    """A changeset's staging table and the statements that read and merge it."""

    target: Target
    stage: Table
    columns: tuple[Column[Any], ...]
    """Target columns the changeset sets, in the order of the presence bits."""
    expects_version: bool
    """Rows carry the version they were read at; a row whose version moved is a conflict."""
    sparse: bool
    """Rows may leave columns out; ``setwise_present`` says which they carry."""
    kept: bool = False
    """The staging table is a real table named for its run, not a temporary one: it
    outlives the process, so a resumed run merges it without reading the changes again."""
    indexed: bool = False
    """The staged keys have their index (``index_stage``)."""
    compare: StoredComparison = field(default_factory=StoredComparison)
    """Tells whether a staged value changes what the target row stores, byte for byte."""
    where: ColumnElement[bool] | None = None
    """Only target rows for which this holds are written (``apply(where=...)``); a found
    row outside it counts as matched and unchanged."""

    @classmethod
    def create(
        cls,
        connection: Connection,
        strategy: Strategy,
        target: Target,
        columns: Sequence[Column[Any]],
        *,
        expects_version: bool,
        sparse: bool,
        kept_name: str | None = None,
        loose: bool = False,
    ) -> Merge:
        """Create the staging table on ``connection``: temporary, or with ``kept_name``
        a table of that name beside the target, kept until the run drops it. ``loose``:
        for the database's own CSV reader, with ``loose_staging_type`` columns and row
        numbers it counts itself."""
        staged = _staged_columns(
            target, columns, sparse=sparse, expects_version=expects_version, loose=loose
        )
        if kept_name is not None:
            stage = Table(
                kept_name,
                MetaData(),
                *staged,
                prefixes=list(strategy.kept_stage_prefixes or ()),
                schema=target.table.schema,
            )
            connection.execute(DropTable(stage, if_exists=True))
        else:
            shape = ("stage", strategy.stage_schema, loose, column_shape(staged))
            stage = shared_table(shape, lambda: temporary_table(STAGE_NAME, strategy, *staged))
            strategy.drop_stage(connection, stage)
        stage.create(connection)
        compare = strategy.stored_comparison(connection, target.table)
        kept = kept_name is not None
        return cls(target, stage, tuple(columns), expects_version, sparse, kept, compare=compare)

    @classmethod
    def reopen(
        cls, connection: Connection, strategy: Strategy, target: Target, kept_name: str
    ) -> Merge | None:
        """The kept staging table ``kept_name`` of an earlier run, or None if it is gone
        or empty (a run stages at least one row; an unlogged table is emptied by a
        server crash)."""
        schema = target.table.schema
        inspector = inspect(connection)
        if not inspector.has_table(kept_name, schema=schema):
            return None
        # In the table's order, which is the order of the presence bits.
        names = [column["name"] for column in inspector.get_columns(kept_name, schema=schema)]
        version = target.version
        expects_version = version is not None and version.name in names
        skipped = {ROW, PRESENT, *(column.name for column in target.key)}
        if version is not None:
            skipped.add(version.name)
        if any(name not in target.table.c for name in names if name not in skipped):
            return None  # the target lost a column since: the rows no longer fit it
        columns = [target.table.c[name] for name in names if name not in skipped]
        sparse = PRESENT in names
        staged = _staged_columns(target, columns, sparse=sparse, expects_version=expects_version)
        stage = Table(kept_name, MetaData(), *staged, schema=schema)
        if connection.execute(select(literal(1)).select_from(stage).limit(1)).first() is None:
            return None
        compare = strategy.stored_comparison(connection, target.table)
        return cls(target, stage, tuple(columns), expects_version, sparse, True, compare=compare)

    def renamed(self, kept_name: str) -> Merge:
        """This merge as a chunked run would send it, through a kept staging table of
        that name (for a plan: the statements are shown, never run)."""
        columns = [Column(c.name, c.type) for c in self.stage.columns]
        stage = Table(kept_name, MetaData(), *columns, schema=self.target.table.schema)
        return replace(self, stage=stage, kept=True)

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

    def drop(self, connection: Connection, strategy: Strategy) -> None:
        if self.kept:
            drop_kept_stage(connection, self.target, self.stage.name)
        else:
            strategy.drop_stage(connection, self.stage)

    def index_stage(
        self, connection: Connection, strategy: Strategy, *, unique: bool = False
    ) -> Merge:
        """Index the staged keys, so that each chunk finds its key range without a sort;
        ``unique``: a key staged twice raises IntegrityError. Returns the merge, marked
        ``indexed``; a merge already indexed is returned as it is."""
        if self.indexed:
            return self
        # Named after the table: a kept table's index lives in the target's schema.
        # Built on a copy of the table: an Index on the shared Table would attach to it,
        # and every later CREATE of that table would create the index too.
        copy = self.stage.to_metadata(MetaData())
        key = [copy.c[column.name] for column in self.target.key]
        name = strategy.identifier(f"{self.stage.name}_key")
        Index(name, *key, unique=unique).create(connection)
        return replace(self, indexed=True)

    # -- pieces ---------------------------------------------------------------

    @property
    def table(self) -> Table:
        return self.target.table

    def _joined(self, span: Span = EVERYTHING) -> ColumnElement[bool]:
        """Staged row and target row by key, both inside ``span``: the same rows either
        way, but a chunk's planner then reads the target by a key range, not whole."""
        equal = [c == self.compare.kept(c, self.stage.c[c.name]) for c in self.target.key]
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

    def staged_key(self) -> list[Column[Any]]:
        return [self.stage.c[column.name] for column in self.target.key]

    # -- the writer interface the executor runs (see writers.protocol.Writer) ------------

    kind = "apply"

    def written_columns(self) -> list[Column[Any]]:
        return list(self._assignments())

    def keys_after(self, after: tuple[Any, ...] | None, limit: int) -> Select[Any]:
        key = self.staged_key()
        return select(*key).where(*Span(after).criteria(key)).order_by(*key).limit(limit)

    def counts(self, span: Span, *, would_change: bool = True) -> Select[Any]:
        """(matched, would change, version conflicts, staged rows) in the span; without
        ``would_change`` that count is 0 and the scan cheaper (see ``tally``)."""
        tally = self.tally(span, would_change=would_change)
        return tally.where(*span.criteria(self.staged_key()))

    def rows_in(self, span: Span) -> Select[Any]:
        """Staged rows in the span, found or not: no join with the target."""
        key = self.staged_key()
        return select(func.count()).select_from(self.stage).where(*span.criteria(key))

    def journal_rows(self, span: Span) -> Select[Any]:
        new = self._assignments()
        # Each new value labelled anew: a CAST (``compare.kept``) would be proxied by
        # its column's name, and a subquery of the rows read the old value twice.
        pairs = [p for c in self.written_columns() for p in (c, new[c].label(None))]
        return (
            select(*self.target.identity, *pairs)
            .select_from(self.stage.join(self.table, self._joined(span)))
            .where(self._differs(), self._version_ok(), *span.criteria(self.staged_key()))
            .order_by(*self.target.identity)
        )

    def direct_update(self, span: Span, stamps: dict[Column[Any], Any]) -> Update:
        return self.merge(span).where(*span.criteria(self.staged_key())).values(stamps)

    def matched_keys(self, span: Span) -> Select[Any]:
        return (
            select(*self.target.identity)
            .select_from(self.stage.join(self.table, self._joined(span)))
            .where(*span.criteria(self.staged_key()))
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
            select(*self.staged_key())
            .select_from(self.stage.outerjoin(self.table, self._joined(span)))
            .where(~self._found(), *span.criteria(self.staged_key()))
            .order_by(self.stage.c[ROW])
            .limit(limit)
        )

    def conflict_keys(self, span: Span, limit: int) -> Select[Any]:
        """Staged keys whose target version moved, in input order."""
        return (
            select(*self.staged_key())
            .select_from(self.stage.join(self.table, self._joined(span)))
            .where(~self._version_ok(), *span.criteria(self.staged_key()))
            .order_by(self.stage.c[ROW])
            .limit(limit)
        )

    def duplicate_rows(self, limit: int) -> Select[Any]:
        """(row, first row with that key, key…) for every repeat of a key, in input order."""
        key = self.staged_key()
        # A window, not a join of the rows to their GROUP BY: SQLite joined 40,000 staged
        # rows to 10,000 repeated keys by a nested loop (80 s; the window sorts once).
        numbered = select(
            self.stage.c[ROW],
            func.min(self.stage.c[ROW]).over(partition_by=key).label("first_row"),
            *key,
        ).subquery()
        return (
            select(numbered.c[ROW], numbered.c.first_row, *(numbered.c[k.name] for k in key))
            .where(numbered.c[ROW] != numbered.c.first_row)
            .order_by(numbered.c[ROW])
            .limit(limit)
        )

    def duplicate_count(self) -> Select[Any]:
        """How many staged rows repeat a key an earlier row has (each repeat once)."""
        key = self.staged_key()
        groups = (
            select(func.count().label("rows"))
            .select_from(self.stage)
            .group_by(*key)
            .having(func.count() > 1)
        )
        repeats = groups.subquery()
        return select(func.coalesce(func.sum(repeats.c.rows - 1), 0))

    def merge(self, span: Span = EVERYTHING) -> Update:
        """The UPDATE of every target row in ``span`` whose staged values differ and whose
        version holds."""
        return (
            update(self.table)
            .where(self._joined(span), self._differs(), self._version_ok())
            .values(self._assignments())
        )


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def drop_kept_stage(connection: Connection, target: Target, kept_name: str) -> None:
    """Drop the staging table ``kept_name`` a run kept beside ``target``, if it is there."""
    stage = Table(kept_name, MetaData(), schema=target.table.schema)
    connection.execute(DropTable(stage, if_exists=True))


def _staged_columns(
    target: Target,
    columns: Sequence[Column[Any]],
    *,
    sparse: bool,
    expects_version: bool,
    loose: bool = False,
) -> list[Column[Any]]:
    """The staging table's columns: row number, presence mask, key, values, version."""
    typed = loose_staging_type if loose else staging_type
    # Loose: rows come in input order from a reader that numbers nothing.
    staged = [Column(ROW, BigInteger, Identity()) if loose else Column(ROW, BigInteger)]
    if sparse:
        staged.append(Column(PRESENT, BigInteger))
    staged += [Column(c.name, typed(c.type)) for c in target.key]
    staged += [Column(c.name, typed(c.type)) for c in columns]
    if expects_version and target.version is not None:
        staged.append(Column(target.version.name, typed(target.version.type)))
    return staged


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


def staging_type(kind: types.TypeEngine[Any]) -> types.TypeEngine[Any]:
    # A database ENUM type would need a CREATE TYPE; its values stage fine as text.
    if isinstance(kind, types.Enum):
        return String(max((len(v) for v in kind.enums), default=1))
    return kind
