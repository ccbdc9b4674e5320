"""A key that includes an ENUM column: PostgreSQL's own ENUM type, SQLite's CHECK and
MariaDB's ENUM.

On PostgreSQL an ENUM compares only with its own type: a staged or journaled key (kept
as text) and a chunk's key bounds must meet the column as the column's type, or the
run fails with "operator does not exist: legkind = character varying".
"""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Engine, Enum, Integer, MetaData, String, Table, select, update

import setwise
from tests.backends import reader

KINDS = ("dep", "arr", "via")


@pytest.fixture(params=["single", "composite"])
def legs(request: pytest.FixtureRequest, engine: Engine) -> Table:
    """``legs`` keyed by its ENUM column ``kind`` alone, or by (``kind``, ``n``)."""
    composite = request.param == "composite"
    table = Table(
        "legs",
        MetaData(),
        Column("kind", Enum(*KINDS, name="legkind"), primary_key=True),
        Column("n", Integer, primary_key=composite, autoincrement=False),
        Column("note", String(20)),
    )
    table.create(engine)
    rows = [{"kind": kind, "n": 1, "note": f"{kind}-old"} for kind in KINDS]
    if composite:
        rows += [{"kind": kind, "n": 2, "note": f"{kind}-old"} for kind in KINDS]
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)
    return table


def notes(engine: Engine, legs: Table) -> dict[tuple[str, int], str]:
    with reader(engine).connect() as connection:
        found = connection.execute(select(legs.c.kind, legs.c.n, legs.c.note)).all()
    return {(kind, n): note for kind, n, note in found}


@pytest.mark.parametrize("chunk_rows", [None, 1])
def test_apply_writes_and_reverts_rows_keyed_by_an_enum(
    engine: Engine, legs: Table, chunk_rows: int | None
) -> None:
    before = notes(engine, legs)
    n = {"n": 1} if len(legs.primary_key.columns) == 2 else {}
    changes = [{"kind": "arr", **n, "note": "arr-new"}, {"kind": "via", **n, "note": "via-new"}]

    report = setwise.apply(engine, "legs", changes, chunk_rows=chunk_rows)

    assert (report.matched, report.changed) == (2, 2)
    assert notes(engine, legs) == before | {("arr", 1): "arr-new", ("via", 1): "via-new"}
    setwise.revert(engine, report.run_id, chunk_rows=chunk_rows)
    assert notes(engine, legs) == before


def test_a_chunked_update_writes_and_reverts_rows_keyed_by_an_enum(
    engine: Engine, legs: Table
) -> None:
    before = notes(engine, legs)
    statement = update(legs).where(legs.c.kind != "dep").values(note="moved")

    report = setwise.update(engine, statement, chunk_rows=1)

    assert report.changed == len(before) * 2 // 3
    assert notes(engine, legs) == {
        key: note if key[0] == "dep" else "moved" for key, note in before.items()
    }
    setwise.revert(engine, report.run_id, chunk_rows=1)
    assert notes(engine, legs) == before
