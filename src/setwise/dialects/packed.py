"""The packed journal layout (PostgreSQL): a chunk's journal rows as arrays, one table row
per part of up to ``PART_ROWS`` changed rows.

One journal row per changed row cost PostgreSQL a heap tuple and a primary-key entry
each: 2.5-3.6 µs a row, more than half the time of a journaled backfill. Packed, a
chunk writes a few rows of arrays, which TOAST compresses: a 50,000-row chunk's journal
took 0.12 s instead of 0.25-0.28 s, and a twentieth of the WAL (benchmarks/README.md).

Everything that reads the journal reads it through ``unpacked``: the same columns
(``run_id``, ``chunk``, ``k_…``, ``o_…``, ``n_…``), one row per changed row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    Column,
    Connection,
    Insert,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Select,
    String,
    Subquery,
    Table,
    cast,
    column,
    func,
    insert,
    literal,
    select,
    true,
    types,
)
from sqlalchemy.sql.elements import ColumnElement

from setwise.dialects.base import shorten
from setwise.operations import OP, UPDATED

#: Changed rows per table row: small enough that no array nears PostgreSQL's 1 GB limit
#: on a value, however wide the rows; large enough that a chunk writes few table rows.
PART_ROWS = 1_000


def can_pack(columns: Iterable[Column[Any]]) -> bool:
    """Whether values of ``columns`` can be packed: an array column's values would make
    an array of arrays, which PostgreSQL only builds from arrays of one shape."""
    return not any(isinstance(c.type, types.ARRAY) for c in columns)


def packed_table(
    name: str,
    schema: str | None,
    columns: Sequence[tuple[str, types.TypeEngine[Any]]],
) -> Table:
    """The journal table: run, chunk, part, then an array per journal column (``columns``:
    name and element type of each, keys first)."""
    return Table(
        name,
        MetaData(),
        Column("run_id", String(40), nullable=False),
        Column("chunk", Integer, nullable=False),
        Column("part", Integer, nullable=False),
        *(Column(n, ARRAY(kind)) for n, kind in columns),
        # Each row's operation (``setwise.operations``), an array like the others; NULL in
        # parts an earlier setwise packed, which ``unpacked`` reads as every row updated.
        Column(OP, ARRAY(String(1))),
        PrimaryKeyConstraint("run_id", "chunk", "part"),
        schema=schema,
    )


def _element_type(table: Table, name: str) -> types.TypeEngine[Any]:
    kind = table.c[name].type
    assert isinstance(kind, types.ARRAY)
    return kind.item_type


def _names(table: Table) -> list[str]:
    return [c.name for c in table.columns if c.name not in ("run_id", "chunk", "part")]


def pack(
    table: Table,
    rows: Select[Any],
    names: Sequence[str],
    run_id: str,
    chunk: int,
    *,
    apart: bool = False,
) -> Insert:
    """The INSERT that packs ``rows`` (one per changed row, a column for each of the
    arrays ``names``; the others stay NULL) as parts of chunk ``chunk``; it returns each
    part's row count. ``apart``: a second set of parts of the chunk (its inserted rows,
    journaled after its updated ones), numbered below zero (-1, -2…)."""
    source = rows.subquery("journaled")
    # Parts are any PART_ROWS rows, not key ranges: numbering needs no sort, and the
    # arrays of one part are aggregated in one order, so their elements stay in step.
    part = _part(func.row_number().over(), apart=apart)
    numbered = select(*source.c, part).subquery("numbered")
    values = list(numbered.c)[: len(names)]  # the last is the part
    lead: list[ColumnElement[Any]] = [literal(run_id, String(40)), literal(chunk, Integer)]
    return _insert_parts(table, lead, numbered.c.part, names, values, group=[numbered.c.part])


def pack_rows(connection: Connection, rows: Table, table: Table) -> int:
    """Copy a journal kept one row per changed row (``rows``: ``run_id``, ``chunk``,
    then journal columns that ``table`` has too) into the packed ``table``: each
    chunk's rows in parts of up to ``PART_ROWS``, in key order. Returns the rows copied."""
    names = [c.name for c in rows.columns if c.name not in ("run_id", "chunk")]
    keys = [rows.c[n] for n in names if n.startswith("k_")]
    number = func.row_number().over(partition_by=[rows.c.run_id, rows.c.chunk], order_by=keys)
    numbered = select(rows, _part(number)).subquery("numbered")
    lead, part = [numbered.c.run_id, numbered.c.chunk], numbered.c.part
    values = [numbered.c[n] for n in names]
    copy = _insert_parts(table, lead, part, names, values, group=[*lead, part])
    return sum(connection.execute(copy).scalars())


def _part(row_number: ColumnElement[Any], *, apart: bool = False) -> ColumnElement[Any]:
    # PostgreSQL divides integers as integers: (0..999) / 1000 is part 0.
    part = (row_number - 1).self_group().op("/")(PART_ROWS)
    return (-1 - part if apart else part).label("part")


def _insert_parts(
    table: Table,
    lead: Sequence[ColumnElement[Any]],
    part: ColumnElement[Any],
    names: Sequence[str],
    values: Sequence[ColumnElement[Any]],
    *,
    group: Sequence[ColumnElement[Any]],
) -> Insert:
    """INSERT … SELECT of ``lead`` (run id, chunk), ``part`` and an array of each of
    ``values`` (into the arrays ``names``) per ``group``; it returns each part's rows."""
    packed = select(
        *lead,
        part,
        *(
            func.array_agg(cast(value, _element_type(table, name)))
            for name, value in zip(names, values, strict=True)
        ),
    ).group_by(*group)
    return (
        insert(table)
        .from_select(["run_id", "chunk", "part", *names], packed)
        .returning(func.cardinality(table.c[names[0]]))  # a key: never NULL
    )


def pack_values(
    rows: Sequence[Sequence[Any]],
    names: Sequence[str],
    run_id: str,
    chunk: int,
    *,
    apart: bool = False,
) -> list[dict[str, Any]]:
    """Rows read into Python (a value for each of the arrays ``names``), as the
    parameters of an INSERT of their parts (``apart``: see ``pack``)."""
    parts = []
    for number, start in enumerate(range(0, len(rows), PART_ROWS)):
        part = rows[start : start + PART_ROWS]
        arrays = {name: [row[i] for row in part] for i, name in enumerate(names)}
        numbered = -1 - number if apart else number
        parts.append({"run_id": run_id, "chunk": chunk, "part": numbered, **arrays})
    return parts


def unpacked(table: Table) -> Subquery:
    """The journal one row per changed row, with the columns of the row layout. Filters
    on ``run_id`` and ``chunk`` reach the table's primary key."""
    names = _names(table)
    elements = (
        func.unnest(*(table.c[n] for n in names))
        .table_valued(*(column(n, _element_type(table, n)) for n in names))
        .render_derived(name="changed")
    )
    values = [c for c in elements.c if c.name != OP]
    # A part packed before the operation was kept (its ``op`` NULL, or no such column in
    # a table read before anything added it) is a part of updated rows.
    op = func.coalesce(elements.c[OP], UPDATED) if OP in names else literal(UPDATED)
    marked = [*values, op.label(OP)]
    rows = select(table.c.run_id, table.c.chunk, *marked).join_from(table, elements, true())
    # Named within the statement only: the shortest limit serves every database.
    return rows.subquery(shorten(f"{table.name}_rows"))
