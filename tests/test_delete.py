"""``setwise.delete``: guarded, chunked, journaled whole rows, put back exactly by revert."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Computed,
    Engine,
    Enum,
    ForeignKey,
    Identity,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

import setwise
from setwise.journal.changes import _EXISTING, Journal
from tests.test_roundtrip import contents, make_table, rows_strategy


def filled(engine: Engine, rows: list[dict[str, Any]]) -> Table:
    table = make_table(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": i + 1, **row} for i, row in enumerate(rows)])
    return table


def simple(engine: Engine, count: int = 10) -> Table:
    rows = [
        {"qty": i, "amount": Decimal(f"{i}.125"), "label": f"r'{i}\n", "day": None, "flag": None}
        for i in range(count)
    ]
    return filled(engine, rows)


@pytest.mark.async_twin
def test_a_delete_without_where_is_refused_and_deletes_nothing(engine: Engine) -> None:
    table = simple(engine)
    with pytest.raises(setwise.UnboundedUpdateError) as refused:
        setwise.delete(engine, delete(table))
    assert refused.value.statement == "DELETE"
    assert "refusing to DELETE every row" in str(refused.value)
    assert len(contents(engine, table)) == 10
    report = setwise.delete(engine, delete(table), all_rows=True)
    assert (report.matched, report.changed) == (10, 10)
    assert contents(engine, table) == []


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=rows_strategy,
    cut=st.integers(min_value=-1, max_value=13),
    chunked=st.sampled_from([None, 1, 3]),
)
@pytest.mark.driver_twin
def test_delete_then_revert_gives_back_the_table(
    engine: Engine, rows: list[dict[str, Any]], cut: int, chunked: int | None
) -> None:
    table = filled(engine, rows)
    try:
        original = contents(engine, table)
        statement = delete(table).where((table.c.id % 2 == 0) | (table.c.id > cut))
        report = setwise.delete(engine, statement, chunk_rows=chunked)
        gone = [row for row in original if row[0] % 2 == 0 or row[0] > cut]
        assert (report.matched, report.changed) == (len(gone), len(gone))
        assert contents(engine, table) == [row for row in original if row not in gone]
        undo = setwise.revert(engine, report.run_id or "")
        assert undo.changed == len(gone)
        assert contents(engine, table) == original
        # The revert is a run of its own: reverting it deletes the rows again.
        again = setwise.revert(engine, undo.run_id or "")
        assert again.changed == len(gone)
        assert contents(engine, table) == [row for row in original if row not in gone]
    finally:
        table.drop(engine)


@pytest.mark.async_twin
def test_a_chunked_delete_gives_the_table_one_statement_gives(engine: Engine) -> None:
    one, chunked = simple(engine, 40), simple(engine, 40)
    a = setwise.delete(engine, delete(one).where(one.c.qty % 3 != 1))
    b = setwise.delete(engine, delete(chunked).where(chunked.c.qty % 3 != 1), chunk_rows=7)
    assert a.changed == b.changed == 27
    assert b.chunks > 1
    assert contents(engine, one) == contents(engine, chunked)


@pytest.mark.async_twin
def test_a_revert_over_a_key_taken_again_is_a_conflict(engine: Engine) -> None:
    table = simple(engine)
    original = contents(engine, table)
    report = setwise.delete(engine, delete(table).where(table.c.id <= 3))
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": 2, "qty": 99, "label": "new"}])
    with pytest.raises(setwise.ConflictError) as conflict:
        setwise.revert(engine, report.run_id or "")
    assert {c.key for c in conflict.value.conflicts} == {2}
    assert conflict.value.total == 1
    assert len(contents(engine, table)) == 8  # nothing written
    # Forced, the row there now is replaced by the one deleted.
    undo = setwise.revert(engine, report.run_id or "", force=True)
    assert undo.changed == 3
    assert contents(engine, table) == original
    # And reverting the forced revert gives back the row it replaced.
    setwise.revert(engine, undo.run_id or "")
    now = contents(engine, table)
    assert [row[0] for row in now] == [2, *range(4, 11)]
    assert now[0][1] == 99


@pytest.mark.async_twin
def test_max_rows_refuses_before_anything_is_deleted(engine: Engine) -> None:
    table = simple(engine)
    for chunk_rows in (None, 2):
        with pytest.raises(setwise.TooManyRowsError):
            setwise.delete(
                engine, delete(table).where(table.c.id > 2), max_rows=5, chunk_rows=chunk_rows
            )
        assert len(contents(engine, table)) == 10
    with pytest.raises(setwise.NotFoundError):
        setwise.delete(engine, delete(table).where(table.c.id > 20), expect_rows=1)
    report = setwise.delete(engine, delete(table).where(table.c.id > 2), max_rows=8)
    assert report.changed == 8


@pytest.mark.async_twin
@pytest.mark.driver_twin
def test_a_delete_a_foreign_key_refuses_names_it(engine: Engine) -> None:
    metadata = MetaData()
    parent = Table("fk_parent", metadata, Column("id", Integer, primary_key=True))
    Table(
        "fk_child",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("parent_id", Integer, ForeignKey("fk_parent.id", name="fk_child_parent")),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(parent), [{"id": i} for i in range(1, 6)])
        connection.execute(insert(metadata.tables["fk_child"]), [{"id": 1, "parent_id": 4}])
    for chunk_rows in (None, 2):
        with pytest.raises(setwise.ValidationError) as refused:
            setwise.delete(engine, delete(parent).where(parent.c.id > 1), chunk_rows=chunk_rows)
        assert refused.value.constraint == "fk_child_parent"
        assert refused.value.referenced_by == "fk_child"
        assert "fk_child_parent" in str(refused.value)
        assert "'fk_child'" in str(refused.value)
        with engine.connect() as connection:
            left = connection.execute(select(func.count()).select_from(parent)).scalar_one()
        if chunk_rows is None:
            assert left == 5  # nothing deleted
        else:
            # Chunk 1 (ids 2 and 3) stands; the chunk that met id 4 was rolled back.
            assert left == 3
            assert "chunk 2 failed" in refused.value.__notes__[0]


def test_session_objects_of_deleted_rows_are_expunged(engine: Engine) -> None:
    from tests.models import Base, Book

    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(
            [Book(id=i, isbn=f"i{i}", title=f"b{i}", price=Decimal("1.00")) for i in (1, 2, 3)]
        )
        session.commit()
        kept, gone = session.get(Book, 1), session.get(Book, 2)
        report = setwise.delete(session, delete(Book).where(Book.id >= 2))
        assert report.changed == 2
        assert gone not in session
        assert kept in session
        session.commit()
        assert session.scalars(select(Book.id)).all() == [1]


def test_a_journal_an_earlier_setwise_made_reads_as_updates_and_gets_the_marker(
    engine: Engine,
) -> None:
    table = simple(engine)
    report = setwise.update(engine, update(table).where(table.c.id <= 2).values(qty=50))
    journal = Table(f"setwise_journal_{table.name}", MetaData(), autoload_with=engine)
    columns = {c.name for c in journal.columns}
    assert "op" in columns
    # An earlier setwise made the table without it.
    with engine.begin() as connection:
        connection.exec_driver_sql(f"ALTER TABLE {journal.name} DROP COLUMN op")
    _EXISTING.clear()
    undo = setwise.revert(engine, report.run_id or "")
    assert undo.changed == 2
    assert contents(engine, table)[0][1] == 0
    # The revert ran as a run: it added the column, every earlier row an update.
    reflected = Table(journal.name, MetaData(), autoload_with=engine)
    assert "op" in reflected.c
    changes = Journal.changes(reflected)
    with engine.connect() as connection:
        marks = connection.execute(select(changes.c.op).distinct()).scalars().all()
    assert marks == ["u"]
    second = setwise.delete(engine, delete(table).where(table.c.id == 5))
    assert setwise.revert(engine, second.run_id or "").changed == 1
    assert len(contents(engine, table)) == 10


def test_a_delete_and_its_revert_inside_the_callers_transaction(engine: Engine) -> None:
    table = simple(engine)
    original = contents(engine, table)
    with engine.connect() as connection:
        with connection.begin():
            connection.execute(select(func.count()).select_from(table)).scalar_one()
            report = setwise.delete(connection, delete(table).where(table.c.id > 6))
            assert report.deleted == 4
        with connection.begin():
            connection.execute(insert(table), [{"id": 8, "qty": 80}])
            undo = setwise.revert(connection, report.run_id or "", force=True)
            assert undo.changed == 4
    assert contents(engine, table) == original


@pytest.mark.async_twin
def test_a_plan_of_a_delete_counts_what_the_delete_deletes(engine: Engine) -> None:
    table = simple(engine, 30)
    statement = delete(table).where(table.c.qty >= 12)
    planned = setwise.plan(engine, statement, chunk_rows=5)
    assert (planned.deletes, planned.matched, planned.would_change) == (True, 18, 18)
    assert planned.chunks == 4
    assert planned.sample and planned.sample[0].key == 13
    assert {c.column: c.new for c in planned.sample[0].changes}["qty"] is None
    assert len(contents(engine, table)) == 30
    with pytest.raises(setwise.UnboundedUpdateError):
        setwise.plan(engine, delete(table))
    every = setwise.plan(engine, delete(table), all_rows=True)
    assert "no-where" in {warning.kind for warning in every.warnings}
    report = setwise.delete(engine, statement, chunk_rows=5)
    assert (report.matched, report.changed, report.chunks) == (18, 18, 4)


def test_a_composite_key_an_enum_and_a_subquery_filter_come_back_exactly(
    engine: Engine,
) -> None:
    metadata = MetaData()
    kinds = Table("del_kinds", metadata, Column("name", String(10), primary_key=True))
    items = Table(
        "del_items",
        metadata,
        Column("shelf", Integer, primary_key=True, autoincrement=False),
        Column("slot", String(5), primary_key=True),
        Column("kind", String(10)),
        Column("state", Enum("new", "old", "gone", name="del_state")),
        Column("weight", Numeric(12, 4)),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(kinds), [{"name": "tool"}])
        connection.execute(
            insert(items),
            [
                {
                    "shelf": shelf,
                    "slot": slot,
                    "kind": "tool" if (shelf + len(slot)) % 2 else "toy",
                    "state": ("new", "old", None)[shelf % 3],
                    "weight": Decimal(f"{shelf}.{len(slot):04d}"),
                }
                for shelf in range(1, 8)
                for slot in ("a", "bb", "ccc")
            ],
        )
    before = contents_of(engine, items)
    statement = delete(items).where(items.c.kind.in_(select(kinds.c.name)))
    report = setwise.delete(engine, statement, chunk_rows=4)
    gone = [row for row in before if row[2] == "tool"]
    assert report.deleted == len(gone) and report.chunks > 1
    assert contents_of(engine, items) == [row for row in before if row not in gone]
    setwise.revert(engine, report.run_id or "", chunk_rows=3)
    assert contents_of(engine, items) == before


def test_a_deleted_row_with_a_generated_column_comes_back(engine: Engine) -> None:
    # The database computes a generated column and refuses a value for it: the revert
    # inserts the row without it, and the database computes it again.
    metadata = MetaData()
    table = Table(
        "del_generated",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("qty", Integer),
        Column("twice", Integer, Computed("qty * 2", persisted=True)),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": i, "qty": i * 10} for i in range(1, 6)])
    before = contents_of(engine, table)
    for chunk_rows in (None, 2):
        report = setwise.delete(engine, delete(table).where(table.c.id > 1), chunk_rows=chunk_rows)
        assert report.deleted == 4
        undo = setwise.revert(engine, report.run_id or "", chunk_rows=chunk_rows)
        assert undo.changed == 4
        assert contents_of(engine, table) == before
        # Reverting the revert deletes them again; reverting that gives them back.
        again = setwise.revert(engine, undo.run_id or "")
        assert again.changed == 4 and len(contents_of(engine, table)) == 1
        setwise.revert(engine, again.run_id or "")
        assert contents_of(engine, table) == before


@pytest.mark.backends("postgresql")
def test_a_deleted_row_with_an_always_identity_key_comes_back(engine: Engine) -> None:
    # GENERATED ALWAYS AS IDENTITY refuses a value for the key unless the INSERT says
    # OVERRIDING SYSTEM VALUE: the revert of a delete failed ("cannot insert a
    # non-DEFAULT value into column id"), and the rows could not come back.
    metadata = MetaData()
    table = Table(
        "del_identity",
        metadata,
        Column("id", Integer, Identity(always=True), primary_key=True),
        Column("qty", Integer),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"qty": i * 10} for i in range(1, 6)])
    before = contents_of(engine, table)
    reflected = Table("del_identity", MetaData(), autoload_with=engine)
    for target, chunk_rows in ((table, None), (reflected, 2)):
        report = setwise.delete(
            engine, delete(target).where(target.c.id > 1), chunk_rows=chunk_rows
        )
        assert report.deleted == 4
        undo = setwise.revert(engine, report.run_id or "", chunk_rows=chunk_rows)
        assert undo.changed == 4
        assert contents_of(engine, table) == before
    # The identity goes on from where it was: a new row takes the next value, not 1.
    with engine.begin() as connection:
        added = connection.execute(insert(table).values(qty=60).returning(table.c.id)).scalar()
    assert added == 6


def contents_of(engine: Engine, table: Table) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        ordered = select(table).order_by(*table.primary_key.columns)
        return [tuple(row) for row in connection.execute(ordered)]
