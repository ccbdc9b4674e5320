"""How a journal table holds a chunk's changed rows: a table row each, or packed arrays.

``RowLayout`` keeps one row per changed row, keyed by run and key. ``PackedLayout``
(where the strategy ``packs_journal``: PostgreSQL) keeps a chunk's rows as arrays,
a table row per part of a chunk (``dialects.packed``). Both write a chunk's journal
rows, read them back one row per change, and shape the table, behind the same
methods: the layout is chosen once, from the strategy (``layout_for``) or from the
table (``layout_of``), and nothing else asks which it is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    Connection,
    FromClause,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Select,
    String,
    Table,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.schema import CreateColumn
from sqlalchemy.sql.elements import ColumnElement, Label, Null
from sqlalchemy.sql.expression import Executable

from setwise.dialects import Strategy
from setwise.dialects.packed import (
    can_pack,
    pack,
    pack_rows,
    pack_values,
    packed_table,
    packing_memory,
    unpacked,
)
from setwise.errors import JournalTableError
from setwise.operations import INSERTED, OP, UPDATED
from setwise.tables import temporary_copy

log = logging.getLogger("setwise")

JournalColumns = Sequence[tuple[str, Any]]
"""A journal table's value columns: name and type of each, the key's first."""

Options = dict[str, Any]
"""A journal table's dialect options (``Table`` keyword arguments)."""


class JournalLayout(Protocol):
    """What every layout does: shape the table, write a chunk's rows, read them back."""

    description: str
    """The layout in words, for messages."""
    rows_by_key: bool
    """Each changed row is a row of the table, found by run and key: a key range of a
    run reads its journal rows through the primary key."""
    converts: bool
    """A journal kept in the other layout can be converted to this one (``convert``)."""

    def table(
        self, name: str, schema: str | None, columns: JournalColumns, keys: int, options: Options
    ) -> Table: ...
    def changes(self, table: Table) -> FromClause: ...
    def copy(
        self,
        table: Table,
        rows: Select[Any],
        names: Sequence[str],
        run_id: str,
        chunk: int,
        op: str = UPDATED,
    ) -> Executable: ...
    def copied(self, connection: Connection, copy: Executable, *, writes: bool = False) -> int: ...
    def insert(
        self,
        connection: Connection,
        table: Table,
        rows: Sequence[tuple[Any, ...]],
        names: Sequence[str],
        run_id: str,
        chunk: int,
        op: str = UPDATED,
    ) -> None: ...
    def convert(self, connection: Connection, table: Table, strategy: Strategy) -> None: ...


class RowLayout:
    """One journal row per changed row: ``run_id``, ``chunk``, the key, old and new."""

    description = "one row per changed row"
    rows_by_key = True
    converts = False

    def table(
        self, name: str, schema: str | None, columns: JournalColumns, keys: int, options: Options
    ) -> Table:
        """The journal table ``name``: ``columns`` (the first ``keys`` of them the key's),
        with the dialect ``options`` (``Strategy.journal_options``)."""
        key = [column_name for column_name, _ in columns[:keys]]
        return Table(
            name,
            MetaData(),
            Column("run_id", String(40), nullable=False),
            Column("chunk", Integer, nullable=False),
            *(Column(n, kind) for n, kind in columns),
            Column(OP, String(1), nullable=False, server_default=UPDATED),
            # No index on (run_id, chunk): a chunk's rows are found by key range within
            # the run, through this primary key, and the index cost a tenth of a
            # journaled write (benchmarks/README.md).
            PrimaryKeyConstraint("run_id", *key),
            schema=schema,
            **options,
        )

    def changes(self, table: Table) -> FromClause:
        """The journal ``table`` one row per changed row: ``run_id``, ``chunk``, then
        ``k_``, ``o_`` and ``n_`` columns, and ``op``. A table an earlier setwise made,
        read before anything added its ``op``, reads as every row updated."""
        if OP in table.c:
            return table
        return select(table, literal(UPDATED, String(1)).label(OP)).subquery(f"{table.name}_u")

    def copy(
        self,
        table: Table,
        rows: Select[Any],
        names: Sequence[str],
        run_id: str,
        chunk: int,
        op: str = UPDATED,
    ) -> Executable:
        """The INSERT … SELECT that journals ``rows`` (a value for each column of
        ``names``) as chunk ``chunk`` of run ``run_id``, each row's operation ``op``
        unless ``names`` has the rows' own ``op``."""
        lead: list[ColumnElement[Any]] = [literal(run_id), literal(chunk)]
        if OP not in names:
            lead.append(literal(op, String(1)))
        source = rows.add_columns(*lead)
        into = [*names, "run_id", "chunk", *([] if OP in names else [OP])]
        return insert(table).from_select(into, source)

    def copied(self, connection: Connection, copy: Executable, *, writes: bool = False) -> int:
        """Run ``copy`` (from ``copy``); the changed rows it journaled. ``writes``: the
        statement also writes the target (``Strategy.journaling_update``)."""
        # SQLAlchemy keeps an INSERT's rowcount only when asked to.
        return int(connection.execute(copy.execution_options(preserve_rowcount=True)).rowcount)

    def insert(
        self,
        connection: Connection,
        table: Table,
        rows: Sequence[tuple[Any, ...]],
        names: Sequence[str],
        run_id: str,
        chunk: int,
        op: str = UPDATED,
    ) -> None:
        """Journal ``rows`` read into Python (a value for each of ``names``), each row's
        operation ``op`` unless ``names`` has the rows' own."""
        params = [dict(zip(names, row, strict=True)) for row in rows]
        lead = {"run_id": run_id, "chunk": chunk} | ({} if OP in names else {OP: op})
        connection.execute(insert(table).values(**lead), params)

    def convert(self, connection: Connection, table: Table, strategy: Strategy) -> None:
        """Rebuild the journal table of ``table``'s name, kept in the other layout, in
        this one; only where ``converts``: setwise never unpacks a journal into rows,
        so this refuses."""
        raise JournalTableError(
            f"the journal {table.name!r} is not converted to {self.description}: setwise "
            "packs a journal kept a row per change, never the other way",
            table=table.name,
            layout=self.description,
        )


class PackedLayout:
    """A chunk's journal rows as arrays, a table row per part (``dialects.packed``)."""

    description = "packed arrays"
    rows_by_key = False
    converts = True

    def table(
        self, name: str, schema: str | None, columns: JournalColumns, keys: int, options: Options
    ) -> Table:
        """The journal table ``name``: run, chunk, part, an array per column of ``columns``."""
        return packed_table(name, schema, columns)

    def changes(self, table: Table) -> FromClause:
        """The journal ``table`` one row per changed row, with the row layout's columns."""
        return unpacked(table)

    def copy(
        self,
        table: Table,
        rows: Select[Any],
        names: Sequence[str],
        run_id: str,
        chunk: int,
        op: str = UPDATED,
    ) -> Executable:
        """The INSERT … SELECT that packs ``rows`` as parts of chunk ``chunk``. Inserted
        rows are journaled after a chunk's updated rows, by a statement of their own
        (``ChunkWrite.insert``): their parts are numbered apart.

        A column ``rows`` selects as a plain NULL (a deleted row's new values, an
        inserted row's old ones) is left out: its array stays NULL, which ``unpacked``
        reads as NULL in every row, and a delete's chunk aggregates half the arrays
        (the journal INSERT took 0.6 s of a 1.4 s delete of 250,000 rows on PostgreSQL
        with them; benchmarks/bench_delete.py)."""
        kept = [
            (name, value)
            for name, value in zip(names, rows.selected_columns, strict=True)
            if not isinstance(_unlabelled(value), Null)
        ]
        if len(kept) < len(names):
            names = [name for name, _ in kept]
            rows = rows.with_only_columns(*(value for _, value in kept), maintain_column_froms=True)
        # Without a column of its own, every row's operation is ``op``.
        return pack(
            table, rows, names, run_id, chunk, None if OP in names else op, apart=op == INSERTED
        )

    def copied(self, connection: Connection, copy: Executable, *, writes: bool = False) -> int:
        """Run ``copy``; the changed rows it journaled (it returns each part's).

        The parts are grouped in ``packing_memory``, unless the statement also writes
        the target (``writes``: PostgreSQL 18's journaling UPDATE): given that memory,
        the planner hashes the whole staged changeset for the UPDATE's join instead of
        merging the two key indexes as the journal-off UPDATE does, and at 1,000,000
        rows the statement took 2.47-2.53 s instead of 2.20-2.22 s."""
        if writes:
            return sum(connection.execute(copy).scalars())
        with packing_memory(connection):
            return sum(connection.execute(copy).scalars())

    def insert(
        self,
        connection: Connection,
        table: Table,
        rows: Sequence[tuple[Any, ...]],
        names: Sequence[str],
        run_id: str,
        chunk: int,
        op: str = UPDATED,
    ) -> None:
        """Journal ``rows`` read into Python, packed in parts."""
        if OP not in names:
            rows, names = [(*row, op) for row in rows], [*names, OP]
        parts = pack_values(rows, names, run_id, chunk, apart=op == INSERTED)
        connection.execute(insert(table), parts)

    def convert(self, connection: Connection, table: Table, strategy: Strategy) -> None:
        """Rebuild the journal table of ``table``'s name, kept one row per changed row,
        packed, in the caller's transaction: its rows move through a temporary table, the
        old table is dropped and the packed one created and filled."""
        old = Table(table.name, MetaData(), autoload_with=connection, schema=table.schema)
        lost = [c.name for c in old.columns if c.name not in table.c]
        if lost:
            raise JournalTableError(
                f"journal table {table.name!r} keeps {', '.join(lost)}, which the table it"
                " journals no longer has: it cannot be packed without losing them; rename it"
                " (its runs can still be read) or drop it",
                table=table.name,
                layout=ROWS.description,
            )
        held_name = strategy.identifier(f"{table.name}_held")
        held = temporary_copy(connection, strategy, held_name, select(old))
        old.drop(connection)
        table.create(connection)
        strategy.journal_created(connection, table)
        moved = pack_rows(connection, held, table)
        strategy.drop_stage(connection, held)
        log.info("journal table %s packed: %d row(s) of its runs", table.name, moved)


def _unlabelled(value: Any) -> Any:
    """``value`` without the label a SELECT gave it."""
    return getattr(value, "element", value) if isinstance(value, Label) else value


def add_marker(connection: Connection, table: Table) -> None:
    """Add the ``op`` column to the journal ``table`` an earlier setwise made without it
    (``table``: as setwise builds it now): ALTER TABLE … ADD COLUMN with its default, so
    every row it holds reads as updated, which is what the run did."""
    column = table.c[OP]
    dialect = connection.dialect
    spec = CreateColumn(column).compile(dialect=dialect)
    # DDL: the default is part of the column's definition, not a value to bind.
    connection.execute(
        text(f"ALTER TABLE {dialect.identifier_preparer.format_table(table)} ADD {spec}")
    )
    log.info("journal table %s: added its %s column", table.name, OP)


ROWS: JournalLayout = RowLayout()
PACKED: JournalLayout = PackedLayout()


def layout_for(strategy: Strategy, columns: Iterable[Column[Any]]) -> JournalLayout:
    """The layout setwise keeps a journal of a table with ``columns`` in."""
    return PACKED if strategy.packs_journal and can_pack(columns) else ROWS


def layout_of(table: Table) -> JournalLayout:
    """The layout of a journal table, built or reflected."""
    return layout_named(table.c.keys())


def layout_named(columns: Iterable[str]) -> JournalLayout:
    """The layout of a journal table with the columns ``columns`` (as a database lists them)."""
    return PACKED if "part" in columns else ROWS
