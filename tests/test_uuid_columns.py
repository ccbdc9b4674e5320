"""A UUID column takes a UUID however a file writes it, and finds its row by it.

Files write UUIDs in upper case, in braces or without dashes; every database must
read them as the same UUID: SQLite failed in the driver on text for a ``Uuid``
column, and keyed by a ``Uuid(as_uuid=False)`` column it stored the text as written,
so a key in upper case missed its row.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, MetaData, String, Table, Uuid, insert, select

import setwise
from tests.backends import reader

IDS = [uuid.UUID(int=10), uuid.UUID(int=11)]


def tokens(engine: Engine, as_uuid: bool) -> Table:
    table = Table(
        "tokens",
        MetaData(),
        Column("uid", Uuid(as_uuid=as_uuid), primary_key=True),
        Column("owner", Uuid(as_uuid=as_uuid)),
        Column("name", String(20)),
    )
    table.metadata.create_all(engine)
    written = IDS if as_uuid else [str(i) for i in IDS]
    with engine.begin() as connection:
        connection.execute(insert(table), [{"uid": i, "owner": i, "name": "x"} for i in written])
    return table


def stored(engine: Engine, table: Table) -> list[tuple[Any, ...]]:
    with reader(engine).connect() as connection:
        return [tuple(row) for row in connection.execute(select(table).order_by(table.c.uid))]


@pytest.mark.parametrize("as_uuid", [True, False], ids=["as_uuid", "as_text"])
def test_a_uuid_in_any_form_finds_its_row(engine: Engine, tmp_path: Path, as_uuid: bool) -> None:
    table = tokens(engine, as_uuid)
    path = tmp_path / "changes.csv"
    path.write_text(
        "uid,owner,name\n"
        "00000000-0000-0000-0000-00000000000A,{00000000-0000-0000-0000-00000000000B},y\n"
        "0000000000000000000000000000000b,00000000-0000-0000-0000-00000000000a,z\n"
    )
    report = setwise.apply(engine, table, path)
    assert (report.matched, report.changed, report.missing) == (2, 2, 0)
    a, b = IDS if as_uuid else [str(i) for i in IDS]
    assert stored(engine, table) == [(a, b, "y"), (b, a, "z")]


def test_what_is_no_uuid_is_refused_by_row_and_column(engine: Engine, tmp_path: Path) -> None:
    table = tokens(engine, True)
    path = tmp_path / "changes.csv"
    path.write_text(f"uid,owner\n{IDS[0]},not-a-uuid\n")
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(engine, table, path)
    (problem,) = caught.value.problems
    assert (problem.row, problem.column, problem.value) == (2, "owner", "not-a-uuid")
    assert problem.reason == "not a UUID: 'not-a-uuid'"
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(engine, table, [{"uid": IDS[0], "owner": str(IDS[1])}])
    (problem,) = caught.value.problems
    assert (problem.column, problem.reason) == ("owner", f"expected a UUID, got str '{IDS[1]}'")
    assert [row[2] for row in stored(engine, table)] == ["x", "x"]
