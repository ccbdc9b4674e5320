"""A journaled ``setwise.delete`` refuses rows that a foreign key's ON DELETE CASCADE,
SET NULL or SET DEFAULT would carry into other rows: the journal keeps only the rows the
DELETE matched, so a revert could not give the others back."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    delete,
    func,
    insert,
    select,
)

import setwise
from tests.test_cli import cli_url
from tests.test_cli import setwise as run_cli


def referring(metadata: MetaData, name: str, column: str, to: str, action: str) -> Table:
    """A table ``name`` whose ``column`` refers to ``to`` (its key ``fk_<name>_<to>``)."""
    key = ForeignKey(f"{to}.id", name=f"fk_{name}_{to}", ondelete=action)
    return Table(name, metadata, Column("id", Integer, primary_key=True), Column(column, key))


def family(engine: Engine) -> tuple[Table, Table, Table]:
    """par (ids 1..4); kid (CASCADE) refers to par 1 and 2, kid2 (SET NULL) to par 2."""
    metadata = MetaData()
    par = Table("par", metadata, Column("id", Integer, primary_key=True))
    kid = referring(metadata, "kid", "pid", "par", "CASCADE")
    kid2 = referring(metadata, "kid2", "pid", "par", "SET NULL")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(par), [{"id": i} for i in (1, 2, 3, 4)])
        connection.execute(insert(kid), [{"id": 10, "pid": 1}, {"id": 11, "pid": 2}])
        connection.execute(insert(kid2), [{"id": 20, "pid": 2}, {"id": 21, "pid": 4}])
    return par, kid, kid2


def contents(engine: Engine, *tables: Table) -> list[list[tuple[object, ...]]]:
    with engine.connect() as connection:
        return [
            [tuple(row) for row in connection.execute(select(t).order_by(t.c.id))] for t in tables
        ]


@pytest.mark.async_twin
def test_a_cascade_or_set_null_delete_is_refused_and_writes_nothing(engine: Engine) -> None:
    par, kid, kid2 = family(engine)
    before = contents(engine, par, kid, kid2)
    for chunk_rows in (None, 1):
        with pytest.raises(setwise.ValidationError) as refused:
            setwise.delete(engine, delete(par).where(par.c.id <= 2), chunk_rows=chunk_rows)
        message = str(refused.value)
        assert refused.value.total == 2
        assert "2 of the rows" in message and "'kid' (pid)" in message
        assert "'fk_kid_par' with ON DELETE CASCADE" in message
        assert "1 of the rows the DELETE would remove is referred" in message
        assert "'kid2' (pid)" in message and "ON DELETE SET NULL" in message
        assert "set their (pid) to NULL" in message
        assert "journal=False" in message
        assert contents(engine, par, kid, kid2) == before
    for parent, referring, key in ((1, "kid", "fk_kid_par"), (4, "kid2", "fk_kid2_par")):
        with pytest.raises(setwise.ValidationError) as refused:
            setwise.delete(engine, delete(par).where(par.c.id == parent))
        assert (refused.value.referenced_by, refused.value.constraint) == (referring, key)
    assert contents(engine, par, kid, kid2) == before
    assert setwise.runs(engine) == []


def test_a_cascade_that_touches_nothing_does_not_refuse(engine: Engine) -> None:
    par, *_ = family(engine)
    report = setwise.delete(engine, delete(par).where(par.c.id == 3))
    assert report.deleted == 1
    assert contents(engine, par)[0] == [(1,), (2,), (4,)]
    setwise.revert(engine, report.run_id)
    assert contents(engine, par)[0] == [(1,), (2,), (3,), (4,)]


def test_deleting_the_referring_rows_first_makes_it_revertible(engine: Engine) -> None:
    par, kid, kid2 = family(engine)
    before = contents(engine, par, kid, kid2)
    kids = setwise.delete(engine, delete(kid).where(kid.c.pid <= 2))
    parents = setwise.delete(engine, delete(par).where(par.c.id == 1))
    setwise.revert(engine, parents.run_id)
    setwise.revert(engine, kids.run_id)
    assert contents(engine, par, kid, kid2) == before


def test_without_a_journal_the_database_cascades_as_before(engine: Engine) -> None:
    par, kid, kid2 = family(engine)
    report = setwise.delete(engine, delete(par).where(par.c.id <= 2), journal=False)
    assert report.deleted == 2
    assert contents(engine, par, kid, kid2) == [[(3,), (4,)], [], [(20, None), (21, 4)]]


#: What makes a schema of its own, and drops it: MariaDB's are databases.
OTHER_SCHEMA = {
    "postgresql": ("CREATE SCHEMA {}", "DROP SCHEMA {} CASCADE"),
    "mariadb": ("CREATE DATABASE {}", "DROP DATABASE {}"),
}


@pytest.mark.backends("postgresql", "mariadb")
def test_a_cascade_from_a_table_of_another_schema_is_refused(engine: Engine, backend: str) -> None:
    par, *_ = family(engine)
    other = f"other_{uuid.uuid4().hex[:12]}"
    create, drop = OTHER_SCHEMA[backend]
    with engine.begin() as connection:
        home = connection.execute(
            select(func.current_schema() if backend == "postgresql" else func.database())
        ).scalar_one()
        connection.exec_driver_sql(create.format(other))
    try:
        metadata = MetaData()
        Table("par", metadata, Column("id", Integer, primary_key=True), schema=home)
        far = Table(
            "far",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("pid", ForeignKey(f"{home}.par.id", ondelete="CASCADE")),
            schema=other,
        )
        far.create(engine)
        with engine.begin() as connection:
            connection.execute(insert(far), [{"id": 1, "pid": 3}])
        with pytest.raises(setwise.ValidationError) as refused:
            setwise.delete(engine, delete(par).where(par.c.id == 3))
        assert refused.value.referenced_by == f"{other}.far"
        assert f"'{other}.far' (pid)" in str(refused.value)
        assert contents(engine, par)[0] == [(1,), (2,), (3,), (4,)]
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(drop.format(other))


#: What makes a connection leave foreign keys alone (PostgreSQL has no such switch).
FOREIGN_KEYS_OFF = {"sqlite": "PRAGMA foreign_keys = OFF", "mariadb": "SET foreign_key_checks = 0"}


@pytest.mark.backends("sqlite", "mariadb")
def test_where_the_connection_leaves_foreign_keys_alone_the_delete_runs(
    engine: Engine, backend: str
) -> None:
    par, kid, kid2 = family(engine)
    before = contents(engine, par, kid, kid2)
    with engine.connect() as connection:
        connection.exec_driver_sql(FOREIGN_KEYS_OFF[backend])
        connection.commit()
        report = setwise.delete(connection, delete(par).where(par.c.id <= 2))
        assert report.deleted == 2
        assert contents(engine, kid, kid2) == before[1:]  # nothing cascaded
        setwise.revert(connection, report.run_id)
    assert contents(engine, par, kid, kid2) == before


def test_a_plan_of_a_cascading_delete_raises_what_the_run_would(engine: Engine) -> None:
    par, *_ = family(engine)
    with pytest.raises(setwise.ValidationError) as refused:
        setwise.plan(engine, delete(par).where(par.c.id <= 2))
    assert refused.value.total == 2 and "'kid2' (pid)" in str(refused.value)
    planned = setwise.plan(engine, delete(par).where(par.c.id <= 2), journal=False)
    assert planned.would_change == 2
    assert setwise.plan(engine, delete(par).where(par.c.id == 3)).would_change == 1


def test_a_self_reference_that_cascades_is_refused(engine: Engine) -> None:
    metadata = MetaData()
    node = referring(metadata, "node", "up", "node", "CASCADE")
    metadata.create_all(engine)
    tree = [(1, None), (2, 1), (3, 2), (4, None), (5, 4)]
    with engine.begin() as connection:
        connection.execute(insert(node), [{"id": i, "up": up} for i, up in tree])
    with pytest.raises(setwise.ValidationError) as refused:
        setwise.delete(engine, delete(node).where(node.c.id == 1))
    assert "1 of the rows" in str(refused.value) and "'node' (up)" in str(refused.value)
    # A whole subtree too: in chunks, node 1's would cascade to 2 and 3 before theirs
    # journal them; in one statement SQLite and MariaDB cascade before the DELETE
    # reaches 2 and 3, and count them as not deleted by it.
    for chunk_rows in (None, 1):
        with pytest.raises(setwise.ValidationError) as refused:
            setwise.delete(engine, delete(node).where(node.c.id <= 3), chunk_rows=chunk_rows)
        assert "2 of the rows" in str(refused.value)
    assert contents(engine, node)[0] == tree
    report = setwise.delete(engine, delete(node).where(node.c.id == 5))  # a leaf
    assert report.deleted == 1


@pytest.mark.requires("foreign_keys_always")
def test_the_cli_refuses_a_cascading_delete_with_exit_1(engine: Engine) -> None:
    par, kid, kid2 = family(engine)
    before = contents(engine, par, kid, kid2)
    refused = run_cli("delete", "par", "--where", "id <= 2", "--yes", "--db", cli_url(engine))
    assert refused.returncode == 1
    assert "'kid' (pid)" in refused.stderr and "ON DELETE CASCADE" in refused.stderr
    assert "(--no-journal)" in refused.stderr
    assert contents(engine, par, kid, kid2) == before
