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

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
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
    case,
    cast,
    column,
    func,
    insert,
    literal,
    select,
    true,
    types,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.sql.elements import ColumnElement

from setwise.dialects.identifiers import shorten
from setwise.operations import OP, UPDATED

#: Changed rows per table row: small enough that no array nears PostgreSQL's 1 GB limit
#: on a value, however wide the rows; large enough that a chunk writes few table rows.
PART_ROWS = 1_000
#: The memory a packing INSERT may sort or hash its parts in (``packing_memory``).
PACKING_MEMORY = "32MB"


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
    op: str | None = None,
    *,
    apart: bool = False,
) -> Insert:
    """The INSERT that packs ``rows`` (one per changed row, a column for each of the
    arrays ``names``; the others stay NULL) as parts of chunk ``chunk``; it returns each
    part's row count. ``op``, when ``rows`` has no column for it, is every row's
    operation: its array is filled to the part's length rather than aggregated (5% of
    a delete's journal INSERT on PostgreSQL, benchmarks/README.md). ``apart``: a second
    set of parts of the chunk (its inserted rows, journaled after its updated ones),
    numbered below zero (-1, -2…)."""
    source = rows.subquery("journaled")
    # Parts are any PART_ROWS rows, not key ranges: numbering needs no sort, and the
    # arrays of one part are aggregated in one order, so their elements stay in step.
    part = _part(func.row_number().over(), apart=apart)
    numbered = select(*source.c, part).subquery("numbered")
    values = list(numbered.c)[: len(names)]  # the last is the part
    lead: list[ColumnElement[Any]] = [literal(run_id, String(40)), literal(chunk, Integer)]
    filled: dict[str, ColumnElement[Any]] = {}
    if op is not None:
        filled[OP] = literal(op, _element_type(table, OP))
    return _insert_parts(
        table, lead, numbered.c.part, names, values, group=[numbered.c.part], filled=filled
    )


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
    filled: dict[str, ColumnElement[Any]] | None = None,
) -> Insert:
    """INSERT … SELECT of ``lead`` (run id, chunk), ``part`` and an array of each of
    ``values`` (into the arrays ``names``) per ``group``, and of each of ``filled``
    (array name: the one value of every element); it returns each part's rows."""
    filled = filled or {}
    length = array([cast(func.count(), Integer)])
    packed = select(
        *lead,
        part,
        *(
            func.array_agg(cast(value, _element_type(table, name)))
            for name, value in zip(names, values, strict=True)
        ),
        *(func.array_fill(value, length) for value in filled.values()),
    ).group_by(*group)
    return (
        insert(table)
        .from_select(["run_id", "chunk", "part", *names, *filled], packed)
        .returning(func.cardinality(table.c[names[0]]))  # a key: never NULL
    )


@contextmanager
def packing_memory(connection: Connection) -> Iterator[None]:
    """Let the statements inside sort or hash in ``PACKING_MEMORY`` (never less than
    the session's own ``work_mem``), as ``SET LOCAL``, then put the setting back.

    The parts are grouped by a number the planner cannot know is in order: at the
    default 4 MB a chunk of 125,000 deleted rows sorted 8.8 MB on disk to group them,
    0.19 s; with room, a hash of the parts, 0.16 s (benchmarks/README.md)."""
    setting = func.current_setting("work_mem")
    wanted = literal(PACKING_MEMORY)
    roomier = case(
        (func.pg_size_bytes(setting) < func.pg_size_bytes(wanted), wanted), else_=setting
    )
    before = connection.execute(select(setting, func.set_config("work_mem", roomier, True)))
    kept = before.one()[0]
    yield
    connection.execute(select(func.set_config("work_mem", kept, True)))


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
