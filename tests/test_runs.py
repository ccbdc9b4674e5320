"""Chunked, journaled, resumable runs and revert, on every backend."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    Table,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

import setwise
from setwise.dialects import Strategy, get_strategy
from setwise.dialects.postgresql import PostgreSQLStrategy
from setwise.journal.changes import Journal
from tests import backends
from tests.models import Book, book_row, create_books, create_stamped_items, snapshot


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 40)
    return engine


def journal_rows(engine: Engine, run_id: str) -> list[tuple[Any, ...]]:
    """The run's journal: key, and old/new of stock and price, in key order."""
    target = setwise.target.resolve_target(Book)
    table = Journal.changes(Journal().changes_table(target, get_strategy(engine.dialect)))
    columns = [table.c.k_id, table.c.o_stock, table.c.n_stock, table.c.o_price, table.c.n_price]
    with engine.connect() as connection:
        statement = select(*columns).where(table.c.run_id == run_id).order_by(table.c.k_id)
        return [tuple(row) for row in connection.execute(statement)]


def stocks(engine: Engine) -> dict[int, int]:
    with engine.connect() as connection:
        return dict(connection.execute(select(Book.id, Book.stock)).all())  # type: ignore[arg-type]


@pytest.mark.async_twin
def test_chunks_give_the_table_one_statement_gives(books: Engine) -> None:
    # The SET changes the column the WHERE reads: each row must move exactly once.
    before = stocks(books)
    report = setwise.update(
        books,
        update(Book).where(Book.stock < 60).values(stock=Book.stock + 25),
        chunk_rows=3,
    )
    expected = {i: s + 25 if s < 60 else s for i, s in before.items()}
    assert stocks(books) == expected
    assert report.changed == sum(1 for s in before.values() if s < 60) == 19
    assert report.chunks == 7  # 19 rows in chunks of 3
    _, chunks = setwise.run_details(books, report.run_id or "")
    assert [c.chunk for c in chunks] == list(range(1, 8))


def test_a_chunked_update_that_reads_its_own_table_is_refused(books: Engine) -> None:
    average = select(func.avg(Book.stock)).scalar_subquery()
    with pytest.raises(setwise.SchemaError, match="reads 'books' itself"):
        setwise.update(
            books, update(Book).where(Book.stock > average).values(stock=0), chunk_rows=5
        )
    with pytest.raises(setwise.SchemaError, match="key column"):
        setwise.update(
            books, update(Book).where(Book.id > 30).values(id=Book.id + 100), chunk_rows=5
        )


@pytest.mark.async_twin
def test_the_journal_holds_old_and_new_values_exactly(books: Engine) -> None:
    changes = [{"id": i, "stock": 1000 + i, "price": Decimal("0.01") * i} for i in (3, 7, 11)]
    report = setwise.apply(books, Book, changes, chunk_rows=2)
    assert report.chunks == 2 and report.changed == 3
    rows = journal_rows(books, report.run_id or "")
    assert rows == [
        (i, book_row(i)["stock"], 1000 + i, book_row(i)["price"], Decimal("0.01") * i)
        for i in (3, 7, 11)
    ]
    info, _ = setwise.run_details(books, report.run_id or "")
    assert (info.kind, info.status, info.changed, info.chunks) == ("apply", "done", 3, 2)
    assert set(info.columns) == {"stock", "price", "version"}


@pytest.mark.parametrize("chunk_rows", [None, 7])
def test_the_journal_holds_the_values_a_random_set_wrote(
    books: Engine, chunk_rows: int | None
) -> None:
    # Two evaluations of random() differ: the journal must hold the values the UPDATE
    # wrote, not a second draw of them.
    name = books.dialect.name
    draw = func.rand() if name in ("mysql", "mariadb") else func.random()
    value = func.abs(draw % 1000) if name == "sqlite" else func.floor(draw * 1000)
    statement = update(Book).where(Book.id > 0).values(stock=value)
    report = setwise.update(books, statement, chunk_rows=chunk_rows)
    journal = {row[0]: row[1:3] for row in journal_rows(books, report.run_id or "")}
    now = stocks(books)
    assert len(journal) == report.changed > 30
    assert all(new == now[key] for key, (_, new) in journal.items())
    assert all(old == book_row(key)["stock"] for key, (old, _) in journal.items())


@pytest.mark.async_twin
def test_revert_restores_exactly_and_can_itself_be_reverted(books: Engine) -> None:
    original = snapshot(books)
    run = setwise.update(
        books,
        update(Book).where(Book.genre == "fiction").values(price=Book.price * Decimal("1.10")),
    )
    changed = snapshot(books)
    undo = setwise.revert(books, run.run_id or "")
    assert undo.changed == run.changed == 10
    # Values come back exactly; the version column moves on (2 → 3), it does not go back.
    assert [row[:8] for row in snapshot(books)] == [row[:8] for row in original]
    redo = setwise.revert(books, undo.run_id or "")
    assert redo.changed == 10
    assert [row[:8] for row in snapshot(books)] == [row[:8] for row in changed]
    statuses = {r.run_id: r.status for r in setwise.runs(books)}
    assert statuses[run.run_id or ""] == "reverted" and statuses[undo.run_id or ""] == "reverted"


def test_a_chunked_revert_of_a_large_run_restores_it_and_refuses_conflicts(
    engine: Engine,
) -> None:
    create_books(engine, 2_600)  # 2,500 changed rows: a PostgreSQL chunk packs 3 parts
    original = snapshot(engine)
    run = setwise.update(
        engine,
        update(Book).where(Book.id > 100).values(stock=Book.stock + 1),
        chunk_rows=1_200,
    )
    assert run.changed == 2_500
    with engine.begin() as connection:  # someone else changes row 1,500 after the run
        connection.execute(update(Book).where(Book.id == 1_500).values(stock=-1))
    with pytest.raises(setwise.ConflictError) as caught:
        setwise.revert(engine, run.run_id or "", chunk_rows=700)
    assert [(c.key, c.now) for c in caught.value.conflicts] == [(1_500, -1)]
    undo = setwise.revert(engine, run.run_id or "", chunk_rows=700, force=True)
    assert (undo.changed, undo.chunks) == (2_500, 4)
    assert [row[:8] for row in snapshot(engine)] == [row[:8] for row in original]


@pytest.mark.requires("packed_journal")
def test_the_journal_packs_each_chunk_into_parts_of_a_thousand_rows(engine: Engine) -> None:
    create_books(engine, 2_600)
    run = setwise.update(engine, update(Book).where(Book.id > 100).values(stock=Book.stock + 1))
    table = Journal().changes_table(
        setwise.target.resolve_target(Book), get_strategy(engine.dialect)
    )
    with engine.connect() as connection:
        sizes = connection.execute(
            select(func.cardinality(table.c.k_id)).where(table.c.run_id == run.run_id)
        ).scalars()
        assert sorted(sizes) == [500, 1_000, 1_000]
        compression, storage = connection.execute(
            text(
                "SELECT attcompression, attstorage FROM pg_attribute WHERE attname = 'o_stock'"
                " AND attrelid = 'setwise_journal_books'::regclass"
            )
        ).one()
        # lz4 where the server is built with it (PostgreSQL 14+), else uncompressed
        # (EXTERNAL: out of line, never compressed), not the slower default pglz.
        built_with_lz4 = connection.execute(
            text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings"
                " WHERE name = 'default_toast_compression'"
            )
        ).scalar_one()
        assert (compression, storage) == (("l", "x") if built_with_lz4 else ("", "e"))
    assert [key for key, *_ in journal_rows(engine, run.run_id or "")] == list(range(101, 2_601))


@pytest.mark.requires("packed_journal")
def test_a_table_with_an_array_column_is_journaled_a_row_per_change(engine: Engine) -> None:
    # Arrays of arrays must be rectangular in PostgreSQL: such a table's journal keeps
    # one row per changed row, and its runs revert like any other.
    tagged = Table(
        "tagged",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("tags", ARRAY(Integer)),
    )
    tagged.create(engine)
    original = [(i, list(range(i % 4))) for i in range(1, 21)]
    with engine.begin() as connection:
        connection.execute(tagged.insert(), [{"id": i, "tags": tags} for i, tags in original])
    run = setwise.update(
        engine,
        update(tagged).where(tagged.c.id > 5).values(tags=func.array_append(tagged.c.tags, 9)),
        chunk_rows=4,
    )
    assert (run.changed, run.chunks) == (15, 4)
    journal = Journal().changes_table(
        setwise.target.resolve_target(tagged), get_strategy(engine.dialect)
    )
    assert "part" not in journal.c
    setwise.revert(engine, run.run_id or "", chunk_rows=5)
    with engine.connect() as connection:
        assert [
            tuple(row) for row in connection.execute(select(tagged).order_by(tagged.c.id))
        ] == original


@pytest.mark.requires("packed_journal")
def test_a_journal_table_of_the_other_layout_is_refused_before_the_run(books: Engine) -> None:
    # A journal table an earlier setwise made, one row per changed row.
    rows_layout = Journal().changes_table(
        setwise.target.resolve_target(Book), Strategy(books.dialect)
    )
    rows_layout.create(books)
    before = snapshot(books)
    refused = r"one row per changed row.*`setwise init books`"
    with pytest.raises(setwise.SetwiseError, match=refused):
        setwise.update(books, update(Book).where(Book.id < 5).values(stock=0))
    assert snapshot(books) == before


@pytest.mark.requires("packed_journal")
def test_init_packs_a_journal_kept_a_row_per_change_and_its_runs_still_revert(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_books(engine, 1_300)
    original = snapshot(engine)
    # Two runs journaled as an earlier setwise journaled them, one row per changed row.
    monkeypatch.setattr(PostgreSQLStrategy, "packs_journal", False)
    backfill = setwise.update(
        engine, update(Book).where(Book.id > 100).values(stock=Book.stock + 1), chunk_rows=600
    )
    fix = setwise.apply(engine, Book, [{"id": 7, "price": Decimal("1.23"), "genre": None}])
    rows_before = journal_rows(engine, backfill.run_id or "")
    monkeypatch.undo()

    setwise.init(engine, Book)

    table = Journal().changes_table(
        setwise.target.resolve_target(Book), get_strategy(engine.dialect)
    )
    with engine.connect() as connection:
        parts = connection.execute(
            select(table.c.chunk, func.cardinality(table.c.k_id))
            .where(table.c.run_id == backfill.run_id)
            .order_by(table.c.chunk, table.c.part)
        ).all()
    assert [tuple(part) for part in parts] == [(1, 600), (2, 600)]
    assert journal_rows(engine, backfill.run_id or "") == rows_before
    # Runs journaled after the change go into the same packed table.
    later = setwise.update(engine, update(Book).where(Book.id < 4).values(stock=0))
    for run in (later, fix, backfill):
        setwise.revert(engine, run.run_id or "")
    assert snapshot(engine) == original


@pytest.mark.requires("packed_journal")
def test_init_will_not_pack_a_journal_holding_a_column_its_table_lost(books: Engine) -> None:
    rows_layout = Journal().changes_table(
        setwise.target.resolve_target(Book), Strategy(books.dialect)
    )
    rows_layout.create(books)
    with books.begin() as connection:
        connection.execute(text("ALTER TABLE setwise_journal_books ADD COLUMN o_gone integer"))
    with pytest.raises(setwise.SetwiseError, match=r"o_gone.*no longer has"):
        setwise.init(books, Book)
    columns = {c["name"] for c in inspect(books).get_columns("setwise_journal_books")}
    assert "o_gone" in columns and "part" not in columns  # left as it was


@pytest.mark.async_twin
def test_revert_refuses_rows_changed_since_unless_forced(books: Engine) -> None:
    run = setwise.apply(books, Book, [{"id": i, "stock": 0} for i in (1, 2, 3)])
    with books.begin() as connection:  # someone else changes row 2 after the run
        connection.execute(update(Book).where(Book.id == 2).values(stock=77))
    after_writer = snapshot(books)
    with pytest.raises(setwise.ConflictError) as caught:
        setwise.revert(books, run.run_id or "")
    stock = next(c for c in caught.value.conflicts if c.column == "stock")
    assert (stock.key, stock.written, stock.now) == (2, 0, 77)
    assert caught.value.total == 1
    assert snapshot(books) == after_writer  # nothing reverted
    forced = setwise.revert(books, run.run_id or "", force=True)
    assert forced.changed == 3
    assert stocks(books)[2] == book_row(2)["stock"]


@pytest.mark.requires("plain_reads_lag_writes")
def test_a_revert_in_an_older_snapshot_refuses_rows_changed_since(books: Engine) -> None:
    # PostgreSQL's REPEATABLE READ refuses to write rows changed since the snapshot.
    run = setwise.apply(books, Book, [{"id": i, "stock": 0} for i in (1, 2, 3)])
    with Session(books.execution_options(isolation_level="REPEATABLE READ")) as session:
        assert session.get(Book, 40) is not None  # the caller's snapshot is taken here
        with books.begin() as connection:  # someone else changes row 2 after it
            connection.execute(update(Book).where(Book.id == 2).values(stock=77))
        with pytest.raises(setwise.ConflictError) as caught:
            setwise.revert(session, run.run_id or "")
        stock = next(c for c in caught.value.conflicts if c.column == "stock")
        assert (stock.key, stock.written, stock.now) == (2, 0, 77)
        assert caught.value.total == 1
        session.commit()
    assert [stocks(books)[i] for i in (1, 2, 3)] == [0, 77, 0]  # nothing reverted
    assert setwise.runs(books)[0].reverted_by is None


def test_a_writer_between_chunks_loses_nothing(books: Engine) -> None:
    writer_done: list[int] = []

    def meddle(progress: setwise.Progress) -> None:
        if progress.chunk == 1:
            with books.begin() as connection:
                # Row 2 is done (chunk 1 covered 1..4); row 30 is still ahead.
                connection.execute(update(Book).where(Book.id.in_([2, 30])).values(stock=5000))
            writer_done.append(progress.chunk)

    run = setwise.update(
        books,
        update(Book).where(Book.id > 0).values(stock=Book.stock + 1),
        chunk_rows=4,
        progress=meddle,
    )
    assert writer_done == [1]
    now = stocks(books)
    assert now[2] == 5000  # written after the run passed it: kept
    assert now[30] == 5001  # written before the run reached it: the run built on it
    journal = {row[0]: row[1:3] for row in journal_rows(books, run.run_id or "")}
    assert journal[30] == (5000, 5001)  # the journal holds what the run overwrote
    assert journal[2] == (book_row(2)["stock"], book_row(2)["stock"] + 1)
    with pytest.raises(setwise.ConflictError) as caught:
        setwise.revert(books, run.run_id or "")
    assert {c.key for c in caught.value.conflicts} == {2}


JOURNAL_INSERT = "INSERT INTO setwise_journal_books"


@contextmanager
def a_writer_before_journal_insert(engine: Engine, nth: int) -> Iterator[list[str]]:
    """Another connection sets book 6's stock to 5000, and commits, just before the
    run's ``nth`` journal INSERT (on PostgreSQL 18, on a snapshot, the UPDATE that
    journals its rows: ``WITH … AS (UPDATE …) INSERT INTO journal …``). Yields the
    journal INSERTs the run sends."""
    journal_inserts: list[str] = []

    def meddle(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if JOURNAL_INSERT in statement:
            journal_inserts.append(statement)
            if len(journal_inserts) == nth:
                with engine.begin() as connection:
                    connection.execute(update(Book).where(Book.id == 6).values(stock=5000))

    event.listen(engine, "before_cursor_execute", meddle)
    try:
        yield journal_inserts
    finally:
        event.remove(engine, "before_cursor_execute", meddle)


@pytest.mark.lacks("single_writer")
def test_a_writer_inside_a_chunk_before_its_journal_loses_nothing(books: Engine) -> None:
    # A row of chunk 2 changes after the chunk began and before it journals: PostgreSQL's
    # snapshot makes the chunk's UPDATE fail and the chunk run again; MariaDB's locking
    # read sees the change. Either way the journal holds what the run overwrote.
    # (SQLite has one writer: the meddler could not commit while the chunk reads.)
    statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
    with a_writer_before_journal_insert(books, 2):  # chunk 2 (ids 5..8)
        run = setwise.update(books, statement, chunk_rows=4)
    assert stocks(books)[6] == 5001  # the run built on the writer's value
    journal = {row[0]: row[1:3] for row in journal_rows(books, run.run_id or "")}
    assert journal[6] == (5000, 5001)
    if get_strategy(books.dialect).snapshot_chunks is not None:
        assert run.retries == 1  # the chunk's UPDATE met the change and ran again
    setwise.revert(books, run.run_id or "")
    assert stocks(books)[6] == 5000  # revert gives the writer's value back


@pytest.mark.lacks("single_writer")
def test_a_writer_inside_a_one_transaction_run_loses_nothing(books: Engine) -> None:
    # The same writer, against a run without chunks. PostgreSQL reads the run on a
    # snapshot without locking what it journals: the UPDATE meets the change and the
    # whole transaction runs again. MariaDB's locking read waits for and sees it.
    statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
    with a_writer_before_journal_insert(books, 1) as journal_inserts:
        run = setwise.update(books, statement)
    assert stocks(books)[6] == 5001 and run.changed == 40
    journal = {row[0]: row[1:3] for row in journal_rows(books, run.run_id or "")}
    assert journal[6] == (5000, 5001) and len(journal) == 40
    snapshot = get_strategy(books.dialect).snapshot_chunks is not None
    assert (run.retries, len(journal_inserts)) == ((1, 2) if snapshot else (0, 1))
    assert [r.run_id for r in setwise.runs(books)] == [run.run_id]  # the first try left none
    setwise.revert(books, run.run_id or "")
    assert stocks(books)[6] == 5000
    # A changeset that can be read again (a list, a file, a DataFrame) runs the same way;
    # one read from an iterator cannot start over, so it locks what it journals.
    for changes, again in (([{"id": 6, "stock": 7}], True), (iter([{"id": 6, "stock": 7}]), False)):
        with a_writer_before_journal_insert(books, 1) as journal_inserts:
            run = setwise.apply(books, Book, changes)
        assert stocks(books)[6] == 7
        assert journal_rows(books, run.run_id or "")[0][1:3] == (5000, 7)
        retried = snapshot and again
        assert (run.retries, len(journal_inserts)) == ((1, 2) if retried else (0, 1))
        setwise.revert(books, run.run_id or "")


@pytest.mark.backends("postgresql")
def test_a_row_that_comes_to_match_after_the_journal_is_journaled_before_it_is_written(
    books: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # Inside the caller's transaction the run locks what it journals, then runs its own
    # UPDATE, which (READ COMMITTED) also finds book 5, made fiction by another writer
    # in between. The chunk's savepoint takes both back and the chunk is written again
    # through its journal, which now holds book 5 as well: the journal and the table agree.
    def meddle(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO setwise_journal_books") and not meddled:
            meddled.append(statement)
            with books.begin() as connection:
                connection.execute(update(Book).where(Book.id == 5).values(genre="fiction"))

    meddled: list[str] = []
    statement = update(Book).where(Book.genre == "fiction").values(price=Book.price + 1)
    event.listen(books, "after_cursor_execute", meddle)
    try:
        with books.connect() as connection, connection.begin(), caplog.at_level(logging.INFO):
            run = setwise.update(connection, statement)
    finally:
        event.remove(books, "after_cursor_execute", meddle)
    assert "chunk 1: rows changed under it; writing it through its journal" in caplog.text
    fiction = [i for i in range(1, 41) if book_row(i)["genre"] == "fiction"]
    assert meddled and run.changed == len(fiction) + 1 == 11
    journal = {row[0]: row[3:5] for row in journal_rows(books, run.run_id or "")}
    assert sorted(journal) == sorted([*fiction, 5])
    old_price = book_row(5)["price"]
    assert journal[5] == (old_price, old_price + 1)  # type: ignore[operator]
    setwise.revert(books, run.run_id or "")
    with books.connect() as connection:
        prices = dict(connection.execute(select(Book.id, Book.price)).all())  # type: ignore[arg-type]
    assert all(prices[i] == book_row(i)["price"] for i in range(1, 41))


@pytest.mark.backends("mariadb", "galera")
def test_a_savepoint_lost_with_its_transaction_retries_the_chunk(books: Engine) -> None:
    # A deadlock or a Galera certification abort between a chunk's statements rolls the
    # whole transaction back; the chunk then fails on its savepoint (1305), not on 1213.
    strategy = get_strategy(books.dialect)
    with books.connect() as connection, connection.begin():
        savepoint = connection.begin_nested()
        connection.exec_driver_sql("ROLLBACK")  # what the server's abort does
        with pytest.raises(DBAPIError) as lost:
            savepoint.commit()
    assert "SAVEPOINT" in str(lost.value) and strategy.is_retryable(lost.value)
    with books.connect() as connection, pytest.raises(DBAPIError) as other:
        connection.exec_driver_sql("SELECT * FROM no_such_table")
    assert not strategy.is_retryable(other.value)


def test_a_locked_chunk_is_retried_and_the_run_completes(books: Engine) -> None:
    setwise.init(books, Book)  # journal tables first: the lock below blocks DDL on SQLite
    books.dispose()
    backends.short_lock_waits(books)
    holder = books.connect()
    holder.begin()
    if books.dialect.name == "sqlite":
        holder.execute(text("UPDATE books SET stock = stock WHERE id = 9"))  # the write lock
    else:
        holder.execute(select(Book.id).where(Book.id == 9).with_for_update())

    class ReleaseOnRetry(logging.Handler):
        """Lets go of the lock once setwise says it will retry: no timing involved."""

        def emit(self, record: logging.LogRecord) -> None:
            if "retry" in record.getMessage() and holder.in_transaction():
                holder.rollback()

    handler = ReleaseOnRetry(level=logging.WARNING)
    logging.getLogger("setwise").addHandler(handler)
    try:
        report = setwise.apply(
            books, Book, [{"id": i, "stock": -i} for i in range(1, 21)], chunk_rows=5, retries=8
        )
    finally:
        logging.getLogger("setwise").removeHandler(handler)
        holder.close()
    assert report.retries >= 1 and report.rollbacks >= 1
    assert report.changed == 20
    assert all(stocks(books)[i] == -i for i in range(1, 21))


@pytest.mark.async_twin
def test_a_failing_chunk_is_rolled_back_and_named(books: Engine) -> None:
    changes = [{"id": i, "price": Decimal(i)} for i in range(1, 21)]
    changes[12]["price"] = Decimal("-1")  # id 13: violates the CHECK constraint, chunk 3
    with pytest.raises(setwise.RunError) as caught:
        setwise.apply(books, Book, changes, chunk_rows=5)
    assert caught.value.chunk == 3
    with books.connect() as connection:
        prices = dict(connection.execute(select(Book.id, Book.price)).all())  # type: ignore[arg-type]
    assert all(prices[i] == Decimal(i) for i in range(1, 11))  # chunks 1 and 2 committed
    assert all(prices[i] == book_row(i)["price"] for i in range(11, 21))  # chunk 3 rolled back
    info = setwise.runs(books)[0]
    assert (info.status, info.chunks, info.run_id) == ("failed", 2, caught.value.run_id)


@pytest.mark.async_twin
def test_ctrl_c_marks_the_run_interrupted_and_it_resumes(books: Engine) -> None:
    def interrupt(progress: setwise.Progress) -> None:
        if progress.chunk == 2:
            raise KeyboardInterrupt

    statement = update(Book).where(Book.id > 0).values(stock=Book.stock * 2)
    with pytest.raises(KeyboardInterrupt) as caught:
        setwise.update(books, statement, chunk_rows=10, progress=interrupt)
    info = setwise.runs(books)[0]
    assert (info.status, info.chunks) == ("interrupted", 2)
    assert any(f"resume={info.run_id!r}" in note for note in caught.value.__notes__)
    report = setwise.update(books, statement, chunk_rows=10, resume=info.run_id)
    assert report.run_id == info.run_id and report.changed == 40 and report.chunks == 4
    assert stocks(books) == {i: book_row(i)["stock"] * 2 for i in range(1, 41)}  # type: ignore[operator]


def apply_interrupted_after_two_chunks(books: Engine, changes: list[dict[str, Any]]) -> str:
    """Apply ``changes`` in chunks of 10 rows, Ctrl-C after the second; the run's id."""

    def interrupt(progress: setwise.Progress) -> None:
        if progress.chunk == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        setwise.apply(books, Book, changes, chunk_rows=10, progress=interrupt)
    return setwise.runs(books)[0].run_id


@pytest.mark.async_twin
def test_a_resumed_changeset_merges_the_rows_its_first_run_kept(
    books: Engine, backend: str
) -> None:
    # PostgreSQL keeps a chunked changeset's staging table until its run ends, so a
    # resumed run does not read the changes again; SQLite and MariaDB stage into a
    # temporary table and read them again. Even rows leave the title out: the kept
    # table's presence bits must still say stock, then title.
    changes = [
        {"id": i, "stock": -i, **({} if i % 2 == 0 else {"title": f"Kept {i}"})}
        for i in range(1, 41)
    ]
    run_id = apply_interrupted_after_two_chunks(books, changes)
    kept = Journal().stage_name(run_id, get_strategy(books.dialect))
    keeps = backends.has(backend, "kept_stage")
    assert inspect(books).has_table(kept) == keeps

    def unread() -> Iterator[dict[str, Any]]:
        raise AssertionError("the changes were read again")
        yield {}

    report = setwise.apply(
        books, Book, unread() if keeps else changes, chunk_rows=10, resume=run_id
    )
    assert (report.run_id, report.changed, report.chunks) == (run_id, 40, 4)
    with books.connect() as connection:
        titles = dict(connection.execute(select(Book.id, Book.title)).all())  # type: ignore[arg-type]
    assert stocks(books) == {i: -i for i in range(1, 41)}
    assert titles == {i: book_row(i)["title"] if i % 2 == 0 else f"Kept {i}" for i in range(1, 41)}
    assert not inspect(books).has_table(kept)


@pytest.mark.requires("kept_stage")
def test_a_kept_staging_table_found_empty_is_staged_again(books: Engine) -> None:
    # A PostgreSQL server crash empties an unlogged table: the resumed run must then read
    # the changes again rather than merge nothing.
    changes = [{"id": i, "stock": -i} for i in range(1, 41)]
    run_id = apply_interrupted_after_two_chunks(books, changes)
    with books.begin() as connection:
        connection.exec_driver_sql(
            f"DELETE FROM {Journal().stage_name(run_id, get_strategy(books.dialect))}"
        )
    report = setwise.apply(books, Book, changes, chunk_rows=10, resume=run_id)
    assert (report.changed, report.chunks) == (40, 4)
    assert stocks(books) == {i: -i for i in range(1, 41)}


@pytest.mark.async_twin
def test_reverting_an_interrupted_changeset_ends_it(books: Engine, backend: str) -> None:
    # Its kept staging table (PostgreSQL) is dropped, and it can no longer be resumed.
    run_id = apply_interrupted_after_two_chunks(
        books, [{"id": i, "stock": -i} for i in range(1, 41)]
    )
    kept = Journal().stage_name(run_id, get_strategy(books.dialect))
    assert inspect(books).has_table(kept) == backends.has(backend, "kept_stage")
    revert = setwise.revert(books, run_id)
    assert not inspect(books).has_table(kept)
    assert stocks(books) == {i: book_row(i)["stock"] for i in range(1, 41)}
    with pytest.raises(setwise.SetwiseError, match=f"reverted by run {revert.run_id}"):
        setwise.apply(books, Book, [{"id": 1, "stock": 0}], chunk_rows=10, resume=run_id)
    names = inspect(books).get_table_names()
    assert [name for name in names if name.startswith("setwise_stage")] == []


@pytest.mark.async_twin
def test_an_abandoned_run_keeps_its_chunks_and_cannot_be_resumed(
    books: Engine, backend: str
) -> None:
    changes = [{"id": i, "stock": -i} for i in range(1, 41)]
    run_id = apply_interrupted_after_two_chunks(books, changes)
    kept = Journal().stage_name(run_id, get_strategy(books.dialect))
    assert inspect(books).has_table(kept) == backends.has(backend, "kept_stage")
    info = setwise.abandon(books, run_id)
    assert (info.status, info.chunks) == ("abandoned", 2) and info.finished_at is not None
    assert not inspect(books).has_table(kept)
    assert stocks(books) == {i: -i if i <= 20 else book_row(i)["stock"] for i in range(1, 41)}
    with pytest.raises(setwise.SetwiseError, match="was abandoned"):
        setwise.apply(books, Book, changes, chunk_rows=10, resume=run_id)
    with pytest.raises(setwise.SetwiseError, match="is abandoned: there is nothing to abandon"):
        setwise.abandon(books, run_id)
    setwise.revert(books, run_id)  # its chunks can still be undone
    assert stocks(books) == {i: book_row(i)["stock"] for i in range(1, 41)}


def test_a_run_abandoned_while_it_runs_stops_before_its_next_chunk(books: Engine) -> None:
    def abandon_it(progress: setwise.Progress) -> None:
        if progress.chunk == 1:
            setwise.abandon(books, setwise.runs(books)[0].run_id)

    changes = [{"id": i, "stock": -i} for i in range(1, 41)]
    with pytest.raises(setwise.RunInUseError) as caught:
        setwise.apply(books, Book, changes, chunk_rows=10, progress=abandon_it)
    assert caught.value.chunk == 2
    info = setwise.runs(books)[0]
    assert (info.status, info.chunks) == ("abandoned", 1)
    assert stocks(books) == {i: -i if i <= 10 else book_row(i)["stock"] for i in range(1, 41)}


def test_a_chunked_changeset_refused_by_a_guard_leaves_no_staging_table(books: Engine) -> None:
    changes = [{"id": i, "stock": -i} for i in range(1, 41)]
    with pytest.raises(setwise.TooManyRowsError):
        setwise.apply(books, Book, changes, chunk_rows=10, max_rows=5)
    names = inspect(books).get_table_names()
    assert [name for name in names if name.startswith("setwise_stage")] == []
    assert stocks(books) == {i: book_row(i)["stock"] for i in range(1, 41)}


@pytest.mark.parametrize("journal", [True, False])
def test_a_run_resumed_twice_at_once_writes_each_chunk_once(books: Engine, journal: bool) -> None:
    # The outer resume lets a second resume of the same run finish it between two of
    # its chunks: its next chunk must not be written again, and the run stays done.
    statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 100)

    def interrupt(progress: setwise.Progress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        setwise.update(books, statement, chunk_rows=10, journal=journal, progress=interrupt)
    run_id = setwise.runs(books)[0].run_id
    others: list[setwise.Report] = []

    def other_process(progress: setwise.Progress) -> None:
        if not others:
            others.append(
                setwise.update(books, statement, chunk_rows=10, journal=journal, resume=run_id)
            )

    with pytest.raises(setwise.RunInUseError, match=f"run {run_id} was taken on") as caught:
        setwise.update(
            books, statement, chunk_rows=10, journal=journal, resume=run_id, progress=other_process
        )
    assert (caught.value.run_id, caught.value.chunk) == (run_id, 3)
    assert (others[0].changed, others[0].chunks) == (40, 4)  # the whole run's counts
    assert stocks(books) == {i: book_row(i)["stock"] + 100 for i in range(1, 41)}  # type: ignore[operator]
    info = setwise.runs(books)[0]
    assert (info.status, info.chunks, info.changed, info.error) == ("done", 4, 40, None)


def test_resume_refuses_a_different_statement(books: Engine) -> None:
    def interrupt(progress: setwise.Progress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        setwise.update(
            books,
            update(Book).where(Book.id > 0).values(stock=0),
            chunk_rows=10,
            progress=interrupt,
        )
    run_id = setwise.runs(books)[0].run_id
    with pytest.raises(setwise.SetwiseError, match="other arguments"):
        setwise.update(
            books, update(Book).where(Book.id > 0).values(stock=1), chunk_rows=10, resume=run_id
        )


def test_a_run_by_an_in_list_of_12000_ids_is_recorded_resumed_and_told_apart(
    books: Engine,
) -> None:
    # The list's parameters took 108 KB of the run's record: MariaDB's TEXT column for
    # it holds 64 KB, and the run failed to start ("Data too long for column").
    def statement(last: int) -> Any:
        ids = [*range(1, 41), *range(100_000, 112_000), last]
        return update(Book).where(Book.id.in_(ids)).values(stock=Book.stock + 1)

    def interrupt(progress: setwise.Progress) -> None:
        if progress.chunk == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        setwise.update(books, statement(200_000), chunk_rows=10, progress=interrupt)
    run_id = setwise.runs(books)[0].run_id
    # Two lists that differ in their last id only are two statements.
    with pytest.raises(setwise.SetwiseError, match="other arguments"):
        setwise.update(books, statement(200_001), chunk_rows=10, resume=run_id)
    report = setwise.update(books, statement(200_000), chunk_rows=10, resume=run_id)
    assert (report.run_id, report.changed) == (run_id, 40)
    assert stocks(books) == {i: book_row(i)["stock"] + 1 for i in range(1, 41)}  # type: ignore[operator]
    setwise.revert(books, run_id)
    assert stocks(books) == {i: book_row(i)["stock"] for i in range(1, 41)}


@pytest.mark.parametrize("label", ["actor", "tag"])
def test_an_actor_or_tag_longer_than_the_record_keeps_is_refused_before_any_write(
    books: Engine, label: str
) -> None:
    # PostgreSQL and MariaDB failed in the driver (value too long for varchar(255), data
    # too long for column 'arguments'), naming no argument; SQLite kept it.
    before = snapshot(books)
    statement = update(Book).where(Book.id > 0).values(stock=0)
    with pytest.raises(setwise.InvalidArgumentError, match=f"{label} is 256 characters") as e:
        setwise.update(books, statement, **{label: "x" * 256})
    assert e.value.argument == label
    assert snapshot(books) == before
    report = setwise.update(books, statement, **{label: "x" * 255})
    info = setwise.runs(books)[0]
    assert info.run_id == report.run_id
    assert (info.actor if label == "actor" else info.arguments["tag"]) == "x" * 255


def test_auto_chunks_grow_while_fast(books: Engine) -> None:
    seen: list[int] = []
    setwise.update(
        books,
        update(Book).where(Book.id > 0).values(stock=Book.stock + 1),
        chunk_rows="auto",
        progress=lambda p: seen.append(p.chunk_rows),
    )
    assert seen == [40]  # 40 rows fit in the first chunk of 1,000
    sizer = setwise.engine.sizing.ChunkSizer("auto", 0.5)
    sizes = []
    for seconds in (0.01, 0.01, 0.9, 0.2, 0.3):
        sizes.append(sizer.rows)
        sizer.record(sizer.rows, seconds)
    safety = setwise.engine.sizing.AUTO_SAFETY
    slowed = int(4000 * 0.5 / 0.9 * safety)  # shrunk at once to fit the target
    # Fast again: grows, but only towards the share of the target it aims at.
    assert sizes == [1000, 2000, 4000, slowed, int(slowed * 0.5 / 0.2 * safety)]
    assert sizer.rows == sizes[-1]  # 0.3 s is neither slow nor under half the target


@pytest.mark.async_twin
def test_progress_counts_every_row(books: Engine) -> None:
    # Ids 36..45: five of them are not in the table. They are rows of the changeset
    # all the same: the total counts them, as the chunks do.
    seen: list[setwise.Progress] = []
    report = setwise.apply(
        books,
        Book,
        [{"id": i, "stock": 0} for i in range(21, 46)],
        chunk_rows=10,
        progress=seen.append,
    )
    assert report.missing == 5
    # Reading and staging first (chunk 0, no total yet), then the chunks.
    assert [(p.phase, p.rows_done, p.chunk) for p in seen if not p.chunk] == [
        ("reading and checking", 25, 0),
        ("staging", 25, 0),
    ]
    assert [(p.rows_done, p.rows_total, p.chunk) for p in seen if p.chunk] == [
        (10, 25, 1),
        (20, 25, 2),
        (25, 25, 3),
    ]
    assert {(p.phase, p.table) for p in seen if p.chunk} == {("merging", "books")}


def test_a_resumed_run_reports_progress_from_where_it_stopped(books: Engine) -> None:
    changes = [{"id": i, "stock": -i} for i in range(1, 46)]  # 41..45 are missing
    run_id = apply_interrupted_after_two_chunks(books, changes)
    seen: list[setwise.Progress] = []
    setwise.apply(books, Book, changes, chunk_rows=10, resume=run_id, progress=seen.append)
    assert [(p.rows_done, p.rows_total, p.chunk) for p in seen if p.chunk] == [
        (30, 45, 3),
        (40, 45, 4),
        (45, 45, 5),
    ]
    statement = update(Book).where(Book.id > 10).values(stock=Book.stock - 1)

    def interrupt(progress: setwise.Progress) -> None:
        if progress.chunk == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        setwise.update(books, statement, chunk_rows=10, progress=interrupt)
    seen.clear()
    update_id = setwise.runs(books)[0].run_id
    setwise.update(books, statement, chunk_rows=10, resume=update_id, progress=seen.append)
    assert [(p.rows_done, p.rows_total) for p in seen] == [(20, 30), (30, 30)]
    seen.clear()
    setwise.revert(books, update_id, chunk_rows=25, progress=seen.append)  # 30 journal rows
    assert [(p.rows_done, p.rows_total) for p in seen] == [(25, 30), (30, 30)]


def test_a_resumed_auto_run_goes_on_at_the_pace_it_had(engine: Engine) -> None:
    create_books(engine, 3000)
    sizes: list[int] = []

    def interrupt(progress: setwise.Progress) -> None:
        sizes.append(progress.chunk_rows)
        if progress.chunk == 1:
            raise KeyboardInterrupt

    statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
    # A target no chunk of 1,000 rows comes near, even on a busy machine.
    target = 60.0
    with pytest.raises(KeyboardInterrupt):
        setwise.update(
            engine, statement, chunk_rows="auto", chunk_seconds=target, progress=interrupt
        )
    run_id = setwise.runs(engine)[0].run_id
    setwise.update(
        engine,
        statement,
        chunk_rows="auto",
        chunk_seconds=target,
        resume=run_id,
        progress=lambda p: sizes.append(p.chunk_rows),
    )
    # The first chunk took 1,000 rows in far under half the target: the resumed run
    # doubles that at once, as the uninterrupted run would have, instead of starting
    # from 1,000 rows again.
    assert sizes == [1000, 2000]


@pytest.mark.async_twin
def test_a_journaled_run_inside_an_open_caller_transaction(books: Engine) -> None:
    before = snapshot(books)
    with Session(books) as session:
        session.get(Book, 1)  # the caller's transaction (and snapshot) begins here
        report = setwise.apply(session, Book, [{"id": 1, "stock": 0}, {"id": 2, "stock": 0}])
        assert report.run_id is not None and report.changed == 2
        session.rollback()
    assert snapshot(books) == before  # the caller's rollback took data and record with it
    assert setwise.runs(books) == []
    with Session(books) as session:
        session.get(Book, 1)
        report = setwise.apply(session, Book, [{"id": 1, "stock": 0}])
        session.commit()
    assert [r.run_id for r in setwise.runs(books)] == [report.run_id]
    assert stocks(books)[1] == 0


@pytest.mark.requires("packed_journal")
def test_a_packed_journal_written_from_python_reads_back_and_reverts(
    books: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The path MySQL takes inside a caller's transaction that predates the journal
    # table (rows read, then journaled and written by key from Python), taken here by a
    # strategy that packs its journal: the parts hold the rows the run wrote.
    monkeypatch.setattr(get_strategy(books.dialect).__class__, "sees_tables_created_later", False)
    original = snapshot(books)
    with Session(books) as session:
        session.get(Book, 1)
        report = setwise.update(session, update(Book).where(Book.id <= 30).values(stock=0))
        session.commit()
    assert report.changed == 30 and "by key" in report.strategy
    journal = journal_rows(books, report.run_id or "")
    assert [row[:3] for row in journal] == [(i, book_row(i)["stock"], 0) for i in range(1, 31)]
    setwise.revert(books, report.run_id or "")
    assert [row[:8] for row in snapshot(books)] == [row[:8] for row in original]


@pytest.mark.async_twin
def test_a_chunked_run_inside_an_open_transaction_is_refused(books: Engine) -> None:
    with books.connect() as connection:
        connection.execute(select(1))
        with pytest.raises(setwise.SetwiseError, match="commits chunk by chunk"):
            setwise.update(
                connection, update(Book).where(Book.id > 0).values(stock=0), chunk_rows=5
            )


def test_stamps_and_actor_are_written_on_changed_rows_only(engine: Engine) -> None:
    create_stamped_items(engine)
    started = time.time()
    report = setwise.apply(
        engine,
        "items",
        [{"id": 1, "qty": 10}, {"id": 2, "qty": 2}],
        stamp_column="updated_at",
        actor_column="updated_by",
        actor="ops-bot",
    )
    assert report.changed == 1
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, updated_at, updated_by FROM items ORDER BY id")
        ).all()
    stamped = rows[0][1]
    if isinstance(stamped, str):  # SQLite hands back text for a raw query
        stamped = dt.datetime.fromisoformat(stamped)
    assert rows[0][2] == "ops-bot"
    assert abs(stamped.replace(tzinfo=dt.UTC).timestamp() - started) < 60  # written as UTC
    assert rows[1][1:] == (None, None) and rows[2][1:] == (None, None)
    info = setwise.runs(engine)[0]
    assert info.actor == "ops-bot"


def test_runs_with_different_keys_share_the_journal(books: Engine) -> None:
    first = setwise.apply(books, Book, [{"id": 1, "stock": 11}])
    with Session(books) as session:
        loaded = session.get(Book, 2)
        assert loaded is not None
        session.commit()
        by_isbn = setwise.apply(session, Book, [{"isbn": "978-000002", "stock": 22}], key="isbn")
        assert loaded.stock == 22  # the loaded object is found by its primary key
    assert by_isbn.changed == 1 and first.changed == 1
    setwise.revert(books, by_isbn.run_id or "")
    assert stocks(books)[2] == book_row(2)["stock"]
    assert stocks(books)[1] == 11


def test_show_on_a_database_without_a_journal_is_not_found(engine: Engine) -> None:
    with pytest.raises(setwise.NotFoundError, match="nope"):
        setwise.run_details(engine, "nope")


def test_a_table_of_the_same_name_elsewhere_keeps_a_journal_of_its_own(
    books: Engine, tmp_path: Path
) -> None:
    """setwise describes its journal and staging tables once per shape, for speed: a
    ``books`` of other columns in another database gets journal tables of its shape, and
    both runs revert."""
    other = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        with other.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE books (id INTEGER PRIMARY KEY, shelf VARCHAR(10) NOT NULL)"
            )
            connection.exec_driver_sql("INSERT INTO books VALUES (1, 'A1'), (2, 'B2')")
        before = snapshot(books)
        ours = setwise.apply(books, "books", [{"id": 1, "stock": 99}, {"id": 2, "stock": 98}])
        theirs = setwise.apply(other, "books", [{"id": 1, "shelf": "Z9"}, {"id": 2, "shelf": "Z8"}])
        assert (ours.changed, theirs.changed) == (2, 2)
        setwise.revert(books, ours.run_id or "")
        setwise.revert(other, theirs.run_id or "")
        assert snapshot(books) == before
        with other.connect() as connection:
            shelves = connection.exec_driver_sql("SELECT id, shelf FROM books ORDER BY id").all()
        assert [tuple(row) for row in shelves] == [(1, "A1"), (2, "B2")]
    finally:
        other.dispose()


def test_chunked_changesets_one_after_another_on_one_engine(books: Engine) -> None:
    """The staging table (and the index a chunked run puts on it) is made again for each
    run, whatever an earlier run on the same pooled connection made."""
    for stock in (7, 8, 9):
        report = setwise.apply(
            books, Book, [{"id": i, "stock": stock} for i in range(1, 31)], chunk_rows=10
        )
        assert (report.changed, report.chunks) == (30, 3)
    assert [stocks(books)[i] for i in range(1, 31)] == [9] * 30
