"""The staging table a changeset is loaded into, and what staging reads back from it.

One row per input row, with its row number (``setwise_row``): a temporary table, or for
a chunked run a table named for the run, which a resumed run merges without reading the
changes again. When some rows leave some columns out (JSONL, mappings), a bit mask per
row (``setwise_present``) says which columns it carries. ``writers.merge.Merge`` is a
``Stage`` with the statements that merge it into the target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Self

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Identity,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Select,
    Table,
    and_,
    func,
    insert,
    inspect,
    literal,
    select,
    types,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import DropTable

from setwise.dialects import Strategy
from setwise.dialects.compare import StoredComparison
from setwise.tables import (
    column_names,
    column_shape,
    loose_staging_type,
    shared_table,
    staging_type,
    temporary_table,
)
from setwise.target import Target

ROW = "setwise_row"
PRESENT = "setwise_present"
STAGE_NAME = "setwise_stage"
KEYED_NAME = "setwise_keyed"
BATCH_NAME = "setwise_batch"

#: The presence mask is a BIGINT: one bit per column, 63 usable bits.
MAX_SPARSE_COLUMNS = 63


@dataclass(frozen=True)
class Stage:
    """A changeset's staging table, as staged for ``target``."""

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
    ) -> Self:
        """Create the staging table on ``connection``: temporary, or with ``kept_name``
        a table of that name beside the target, kept until the run drops it. ``loose``:
        for the database's own CSV reader, with ``loose_staging_type`` columns and row
        numbers it counts itself."""
        staged = _staged_columns(
            target,
            columns,
            sparse=sparse,
            expects_version=expects_version,
            loose=loose,
            collations=strategy.key_collations(connection, target.table, target.key),
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
    ) -> Self | None:
        """The kept staging table ``kept_name`` of an earlier run, or None if it is gone
        or empty (a run stages at least one row; an unlogged table is emptied by a
        server crash)."""
        schema = target.table.schema
        inspector = inspect(connection)
        if not inspector.has_table(kept_name, schema=schema):
            return None
        # In the table's order, which is the order of the presence bits.
        names = column_names(connection, kept_name, schema)
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

    def renamed(self, kept_name: str) -> Self:
        """This merge as a chunked run would send it, through a kept staging table of
        that name (for a plan: the statements are shown, never run)."""
        columns = [Column(c.name, c.type) for c in self.stage.columns]
        stage = Table(kept_name, MetaData(), *columns, schema=self.target.table.schema)
        return replace(self, stage=stage, kept=True)

    def drop(self, connection: Connection, strategy: Strategy) -> None:
        if self.kept:
            drop_kept_stage(connection, self.target, self.stage.name)
        else:
            strategy.drop_stage(connection, self.stage)

    def keyed(self, connection: Connection, strategy: Strategy) -> Self:
        """A new, empty temporary staging table of this one's columns whose primary key
        is the key (``Strategy.keyed_stage_options``), for ``Strategy.insert_new_keys``;
        marked ``indexed``. This table stays as it is."""
        options = strategy.keyed_stage_options or {}
        columns = [Column(c.name, c.type) for c in self.stage.columns]
        key = [column.name for column in self.target.key]
        shape = ("keyed", strategy.stage_schema, column_shape(columns), tuple(key))

        def build() -> Table:
            keyed = PrimaryKeyConstraint(*key)
            schema = strategy.stage_schema
            prefixes = ["TEMPORARY"]
            return Table(
                KEYED_NAME, MetaData(), *columns, keyed, prefixes=prefixes, schema=schema, **options
            )

        keyed = shared_table(shape, build)
        strategy.drop_stage(connection, keyed)
        keyed.create(connection)
        return replace(self, stage=keyed, indexed=True, kept=False)

    def keyed_copy(self, connection: Connection, strategy: Strategy) -> Self:
        """The staged rows copied in key order into ``keyed``, this table dropped; raises
        IntegrityError, with nothing changed, when a key is staged twice."""
        keyed = self.keyed(connection, strategy)
        names = list(keyed.stage.c.keys())
        try:
            rows = select(self.stage).order_by(*self.staged_key)
            connection.execute(insert(keyed.stage).from_select(names, rows))
        except IntegrityError:
            strategy.drop_stage(connection, keyed.stage)
            raise
        self.drop(connection, strategy)
        return keyed

    def take_new_keys(self, connection: Connection, strategy: Strategy, rest: Stage) -> int:
        """Copy into this keyed table (``keyed``) the rows of ``rest`` in key order, the
        earlier row first among rows of one key, leaving out every row whose key the
        table holds already (``Strategy.insert_new_keys_from``); returns how many went in."""
        ordered = select(rest.stage).order_by(*rest.staged_key, rest.stage.c[ROW])
        return strategy.insert_new_keys_from(connection, self.stage, ordered)

    def repeats_in(
        self, connection: Connection, strategy: Strategy, columns: Sequence[Sequence[Any]]
    ) -> list[tuple[Any, ...]]:
        """``repeats_of`` the rows of a batch (staging columns: row numbers, masks,
        key…), staged apart for it and dropped again."""
        key = self.staged_key
        batched = [Column(ROW, BigInteger), *(Column(c.name, c.type) for c in key)]
        shape = ("batch", strategy.stage_schema, column_shape(batched))
        batch = shared_table(shape, lambda: temporary_table(BATCH_NAME, strategy, *batched))
        strategy.drop_stage(connection, batch)
        batch.create(connection)
        try:
            strategy.insert_batch(connection, batch, [columns[0], *columns[2 : 2 + len(key)]])
            return [tuple(row) for row in connection.execute(self.repeats_of(batch))]
        finally:
            strategy.drop_stage(connection, batch)

    def repeats_of(self, staged: Table, limit: int | None = None) -> Select[Any]:
        """(row, first row with that key, key…) for each row of ``staged`` (a table of
        row numbers and keys) whose key this keyed table (``keyed``) holds for another
        row, in input order: the rows ``Strategy.insert_new_keys`` left out."""
        given = [staged.c[column.name] for column in self.target.key]
        # The keyed column on the left: SQLite compares with the left column's collation.
        same = and_(*(kept == other for kept, other in zip(self.staged_key, given, strict=True)))
        first = self.stage.c[ROW]
        return (
            select(staged.c[ROW], first, *given)
            .select_from(staged.join(self.stage, same))
            .where(first != staged.c[ROW])
            .order_by(staged.c[ROW])
            .limit(limit)
        )

    def index_stage(
        self, connection: Connection, strategy: Strategy, *, unique: bool = False
    ) -> Self:
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

    @cached_property
    def staged_key(self) -> tuple[Column[Any], ...]:
        """The staging table's key columns: found once, asked for by every statement."""
        return tuple(self.stage.c[column.name] for column in self.target.key)

    def duplicate_rows(self, limit: int) -> Select[Any]:
        """(row, first row with that key, key…) for every repeat of a key, in input order."""
        key = self.staged_key
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
        key = self.staged_key
        groups = (
            select(func.count().label("rows"))
            .select_from(self.stage)
            .group_by(*key)
            .having(func.count() > 1)
        )
        repeats = groups.subquery()
        return select(func.coalesce(func.sum(repeats.c.rows - 1), 0))


def collated(kind: types.TypeEngine[Any], collation: str | None) -> types.TypeEngine[Any]:
    """``kind`` with ``collation``, if it is text and one is given."""
    if collation is None or not isinstance(kind, types.String):
        return kind
    copy = kind.copy()
    copy.collation = collation
    return copy


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
    collations: Mapping[str, str] | None = None,
) -> list[Column[Any]]:
    """The staging table's columns: row number, presence mask, key, values, version;
    the key's text columns in ``collations`` (by name) given that collation."""
    typed = loose_staging_type if loose else staging_type
    # Loose: rows come in input order from a reader that numbers nothing.
    staged = [Column(ROW, BigInteger, Identity()) if loose else Column(ROW, BigInteger)]
    if sparse:
        staged.append(Column(PRESENT, BigInteger))
    staged += [
        Column(c.name, collated(typed(c.type), (collations or {}).get(c.name))) for c in target.key
    ]
    staged += [Column(c.name, typed(c.type)) for c in columns]
    if expects_version and target.version is not None:
        staged.append(Column(target.version.name, typed(target.version.type)))
    return staged
