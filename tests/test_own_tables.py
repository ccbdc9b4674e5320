"""setwise's own tables are never a run's target, and a user's table is never its journal."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, MetaData, Table, inspect, select, text, update

import setwise
from setwise.journal.changes import Journal
from setwise.target import resolve_target
from tests.models import Book, create_books, snapshot
from tests.test_cli import cli_url
from tests.test_cli import setwise as run_cli


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 10)
    setwise.update(engine, update(Book).where(Book.id <= 2).values(stock=Book.stock + 1))
    return engine


def statuses(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(text("SELECT status FROM setwise_runs")))


def test_the_run_records_are_refused_as_a_target(books: Engine) -> None:
    runs = Table("setwise_runs", MetaData(), autoload_with=books)
    with pytest.raises(setwise.SchemaError, match="one of setwise's own tables"):
        setwise.update(books, update(runs).values(status="bogus"), all_rows=True)
    with pytest.raises(setwise.SchemaError, match="one of setwise's own tables"):
        setwise.plan(books, update(runs).values(status="bogus"), all_rows=True)
    assert statuses(books) == ["done"]


def test_the_cli_refuses_the_run_records_as_a_target(books: Engine) -> None:
    args = ["--set", "status = 'bogus'", "--all-rows", "--yes", "--db", cli_url(books)]
    result = run_cli("apply", "setwise_runs", *args)
    assert result.returncode != 0
    assert "one of setwise's own tables" in result.stderr
    assert statuses(books) == ["done"]


def test_a_journal_is_refused_as_a_changeset_target(books: Engine, backend: str) -> None:
    del backend
    with pytest.raises(setwise.SchemaError, match="one of setwise's own tables"):
        setwise.apply(books, "setwise_journal_books", [{"run_id": "x", "chunk": 1}])


def test_a_users_table_with_a_journals_name_is_not_used_as_one(engine: Engine) -> None:
    create_books(engine, 5)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE setwise_journal_books (id INTEGER, note TEXT)"))
        connection.execute(text("INSERT INTO setwise_journal_books VALUES (1, 'mine')"))
    before = snapshot(engine)
    with pytest.raises(setwise.SchemaError, match="has the name of setwise's journal"):
        setwise.apply(engine, Book, [{"id": 1, "stock": 99}])
    assert snapshot(engine) == before
    with engine.connect() as connection:
        mine = connection.execute(text("SELECT id, note FROM setwise_journal_books")).all()
    assert [tuple(row) for row in mine] == [(1, "mine")]
    # Without a journal there is nothing to mistake: the change goes through.
    assert setwise.apply(engine, Book, [{"id": 1, "stock": 99}], journal=False).changed == 1


@pytest.mark.requires("kept_stage")
def test_init_drops_staging_tables_no_run_can_resume(books: Engine) -> None:
    journal = Journal()
    old_orphan = "20200101-000000-00000000"
    interrupted = "20200101-000001-00000000"
    young = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S-00000000")
    with books.begin() as connection:
        target = resolve_target(Book)
        journal.start(
            connection,
            target=target,
            kind="apply",
            columns=["stock"],
            arguments={},
            actor="test",
            run_id=interrupted,
            status="interrupted",
        )
        for run_id in (old_orphan, interrupted, young):
            name = f"setwise_stage_{run_id.replace('-', '_')}"
            connection.execute(text(f"CREATE UNLOGGED TABLE {name} (id INTEGER)"))
    dropped = setwise.init(books)
    assert dropped == ["setwise_stage_20200101_000000_00000000"]
    left = {n for n in inspect(books).get_table_names() if n.startswith("setwise_stage_")}
    assert left == {
        "setwise_stage_20200101_000001_00000000",
        f"setwise_stage_{young.replace('-', '_')}",
    }
    with books.connect() as connection:
        assert connection.scalar(select(Book.stock).where(Book.id == 1)) is not None
