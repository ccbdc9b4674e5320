"""A key that includes an ENUM column, and an ENUM value column: PostgreSQL's own ENUM
type, SQLite's CHECK and MariaDB's ENUM.

On PostgreSQL an ENUM compares only with its own type: a staged or journaled key (kept
as text) and a chunk's key bounds must meet the column as the column's type, or the
run fails with "operator does not exist: legkind = character varying"; a value kept as
text is written to an ENUM column as the ENUM, or "column is of type legstate but
expression is of type character varying".
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
        Column("state", Enum("open", "shut", name="legstate")),
    )
    table.create(engine)
    ns = (1, 2) if composite else (1,)
    rows = [{"kind": k, "n": n, "note": f"{k}-old", "state": "open"} for n in ns for k in KINDS]
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)
    return table


def notes(engine: Engine, legs: Table) -> dict[tuple[str, int], tuple[str, str]]:
    """(note, state) by (kind, n)."""
    with reader(engine).connect() as connection:
        found = connection.execute(select(legs.c.kind, legs.c.n, legs.c.note, legs.c.state))
        return {(kind, n): (note, state) for kind, n, note, state in found}


@pytest.mark.parametrize("chunk_rows", [None, 1])
def test_apply_writes_and_reverts_rows_keyed_by_an_enum(
    engine: Engine, legs: Table, chunk_rows: int | None
) -> None:
    before = notes(engine, legs)
    n = {"n": 1} if len(legs.primary_key.columns) == 2 else {}
    changes = [
        {"kind": "arr", **n, "note": "arr-new", "state": "shut"},
        {"kind": "via", **n, "note": "via-new"},
    ]

    report = setwise.apply(engine, "legs", changes, chunk_rows=chunk_rows)

    assert (report.matched, report.changed) == (2, 2)
    assert notes(engine, legs) == before | {
        ("arr", 1): ("arr-new", "shut"),
        ("via", 1): ("via-new", "open"),
    }
    setwise.revert(engine, report.run_id, chunk_rows=chunk_rows)
    assert notes(engine, legs) == before


@pytest.mark.parametrize("chunk_rows", [None, 1])
def test_update_writes_and_reverts_rows_keyed_by_an_enum(
    engine: Engine, legs: Table, chunk_rows: int | None
) -> None:
    before = notes(engine, legs)
    statement = update(legs).where(legs.c.kind != "dep").values(note="moved", state="shut")

    report = setwise.update(engine, statement, chunk_rows=chunk_rows)

    assert report.changed == len(before) * 2 // 3
    assert notes(engine, legs) == {
        key: was if key[0] == "dep" else ("moved", "shut") for key, was in before.items()
    }
    setwise.revert(engine, report.run_id, chunk_rows=chunk_rows)
    assert notes(engine, legs) == before
