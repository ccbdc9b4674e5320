"""apply(..., missing=...) on every backend: keys with no row reported, refused, or inserted."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Enum,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

import setwise
from setwise.alembic_offline import print_apply
from setwise.dialects import get_strategy
from tests import backends
from tests.models import Base, Book, book_row, create_books, snapshot


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


def new_book(i: int, **values: Any) -> dict[str, Any]:
    """A whole row for a book the table does not have yet."""
    row = {k: v for k, v in book_row(i).items() if k != "version"}
    return row | values


def book_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Book)).scalar_one())


UPSERT = [
    {**new_book(30), "price": Decimal("30.30")},
    {"id": 2, "isbn": "978-000002", "title": "Book 2", "price": Decimal("2.22")},
    {"id": 3, **{k: v for k, v in book_row(3).items() if k in ("isbn", "title", "price")}},
    {**new_book(25)},
    {"id": 5, "isbn": "978-000005", "title": "Renamed", "price": book_row(5)["price"]},
]


@pytest.mark.parametrize("chunk_rows", [None, 2])
def test_an_upsert_inserts_new_keys_and_updates_old_ones(
    books: Engine, chunk_rows: int | None
) -> None:
    changes = [
        {k: v for k, v in row.items() if k in ("id", "isbn", "title", "price")} for row in UPSERT
    ]
    report = setwise.apply(books, Book, changes, missing="insert", chunk_rows=chunk_rows)
    assert (report.matched, report.changed, report.unchanged) == (3, 2, 1)
    assert (report.inserted, report.missing, report.missing_keys) == (2, 0, ())
    assert book_count(books) == 22
    with books.connect() as connection:
        rows = {r.id: r for r in connection.execute(select(Book.__table__)).all()}
    assert rows[30].title == "Book 30" and rows[30].price == Decimal("30.30")
    assert rows[30].stock == 0  # the model's default
    assert rows[30].genre is None  # not in the changes: NULL, as the column allows
    assert rows[30].version == 1  # a new row starts at the first version, as the ORM's
    assert rows[25].isbn == "978-000025"
    assert rows[2].price == Decimal("2.22") and rows[2].version == 2
    assert rows[5].title == "Renamed"
    assert rows[3].version == 1  # unchanged: not written


def test_missing_report_is_the_default_and_inserts_nothing(books: Engine) -> None:
    before = snapshot(books)
    report = setwise.apply(books, Book, [{"id": 404, "price": Decimal("4.04")}])
    assert (report.missing, report.missing_keys, report.inserted) == (1, (404,), 0)
    assert snapshot(books) == before


@pytest.mark.parametrize("chunk_rows", [None, 3])
def test_missing_error_lists_the_keys_and_writes_nothing(
    books: Engine, chunk_rows: int | None
) -> None:
    before = snapshot(books)
    # Chunk 1 (ids 1-3) changes rows and finds every key; the missing ones come later.
    changes = [{"id": i, "price": Decimal("1.11")} for i in range(1, 8)]
    changes += [{"id": 100 + i, "price": Decimal("1.11")} for i in range(30)]
    with pytest.raises(setwise.NotFoundError) as raised:
        setwise.apply(books, Book, changes, missing="error", chunk_rows=chunk_rows)
    assert raised.value.count == 30
    assert raised.value.keys == tuple(100 + i for i in range(30))
    assert raised.value.table == "books"
    message = str(raised.value)
    assert "30 key(s)" in message and "nothing was written" in message
    assert "... and 10 more" in message
    assert snapshot(books) == before
    with books.connect() as connection:
        assert setwise.runs(connection) == []


def test_an_unknown_missing_mode_is_refused(books: Engine) -> None:
    with pytest.raises(setwise.InvalidArgumentError, match="missing must be one of"):
        setwise.apply(books, Book, [{"id": 1, "price": 1}], missing="upsert")  # type: ignore[arg-type]


def test_insert_with_where_is_refused(books: Engine) -> None:
    with pytest.raises(setwise.InvalidArgumentError, match="where"):
        setwise.apply(
            books, Book, [{"id": 1}], missing="insert", where=Book.__table__.c.genre == "x"
        )


@pytest.mark.parametrize("chunk_rows", [None, 2])
def test_an_inserted_row_lacking_a_not_null_column_is_refused(
    books: Engine, chunk_rows: int | None
) -> None:
    before = snapshot(books)
    changes = [
        {"id": 1, "price": Decimal("9.99")},
        {"id": 40, "price": Decimal("4.00")},  # new: lacks isbn and title
        {"id": 2, "price": Decimal("9.99")},
        {"id": 41, "price": Decimal("4.10")},
    ]
    with pytest.raises(setwise.ValidationError) as raised:
        setwise.apply(books, Book, changes, missing="insert", chunk_rows=chunk_rows)
    found = {(p.row, p.column) for p in raised.value.problems}
    assert found == {(2, "isbn"), (2, "title"), (4, "isbn"), (4, "title")}
    assert raised.value.total == 4
    assert "would be inserted" in str(raised.value)
    assert snapshot(books) == before
    with books.connect() as connection:
        assert setwise.runs(connection) == []


def test_a_sparse_row_leaving_out_a_required_column_is_refused(books: Engine) -> None:
    before = snapshot(books)
    changes = [
        {"id": 40, "isbn": "978-040", "title": "Forty", "price": Decimal("4")},
        {"id": 41, "isbn": "978-041", "price": Decimal("4")},  # no title
        {"id": 3, "stock": 5},  # found: may leave anything out
    ]
    with pytest.raises(setwise.ValidationError) as raised:
        setwise.apply(books, Book, changes, missing="insert")
    assert [(p.row, p.column) for p in raised.value.problems] == [(2, "title")]
    assert snapshot(books) == before


def test_a_null_in_a_not_null_column_of_a_new_row_is_refused(books: Engine) -> None:
    before = snapshot(books)
    changes = [new_book(40, title=None)]
    with pytest.raises(setwise.ValidationError) as raised:
        setwise.apply(books, Book, changes, missing="insert")
    assert [(p.row, p.column) for p in raised.value.problems] == [(1, "title")]
    assert snapshot(books) == before


def test_chunked_upsert_equals_unchunked(engine: Engine) -> None:
    create_books(engine, 40)
    changes = [new_book(i, price=Decimal(i)) for i in range(30, 60)]
    changes = [{k: v for k, v in row.items() if k != "author_id"} for row in changes]
    setwise.apply(engine, Book, changes, missing="insert")
    once = snapshot(engine)
    Base.metadata.drop_all(engine)
    create_books(engine, 40)
    chunked = setwise.apply(engine, Book, changes, missing="insert", chunk_rows=7)
    assert snapshot(engine) == once
    assert (chunked.inserted, chunked.changed, chunked.matched) == (19, 11, 11)
    assert chunked.chunks == 5


def test_a_journaled_insert_needs_the_primary_key(books: Engine) -> None:
    before = snapshot(books)
    changes = [{"isbn": "978-777", "title": "New", "price": Decimal("7")}]
    with pytest.raises(setwise.SchemaError, match=r"primary key.*journal=False"):
        setwise.apply(books, Book, changes, key="isbn", missing="insert")
    assert snapshot(books) == before


def test_an_unjournaled_insert_by_another_key_lets_the_database_fill_the_rest(
    engine: Engine,
) -> None:
    table = Table(
        "tagged",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("code", String(10), nullable=False, unique=True),
        Column("label", String(20), nullable=False, server_default="none"),
        Column("qty", Integer, nullable=False),
    )
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"code": "a", "label": "A", "qty": 1}])
    changes = [{"code": "a", "qty": 2}, {"code": "b", "qty": 3}]
    report = setwise.apply(engine, table, changes, key="code", missing="insert", journal=False)
    assert (report.changed, report.inserted, report.run_id) == (1, 1, None)
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).all()
    # The database numbers the new row (Galera steps its auto-increment by node count).
    assert [tuple(row)[1:] for row in rows] == [("a", "A", 2), ("b", "none", 3)]
    assert rows[0].id == 1 and rows[1].id > 1


@pytest.mark.parametrize("chunk_rows", [None, 2])
def test_max_rows_counts_the_rows_to_insert(books: Engine, chunk_rows: int | None) -> None:
    before = snapshot(books)
    changes = [
        {"id": 1, "price": Decimal("1.01")},
        {"id": 2, "price": Decimal("1.02")},
        new_book(30),
        new_book(31),
    ]
    with pytest.raises(setwise.TooManyRowsError) as raised:
        setwise.apply(books, Book, changes, missing="insert", max_rows=3, chunk_rows=chunk_rows)
    assert raised.value.would_change == 4
    assert snapshot(books) == before
    plan = setwise.plan(books, Book, changes, missing="insert", max_rows=4)
    assert (plan.would_change, plan.would_insert) == (2, 2)


@pytest.mark.parametrize("chunk_rows", [None, 2])
def test_an_upsert_reverted_gives_back_the_original_table(
    books: Engine, chunk_rows: int | None
) -> None:
    before = snapshot(books)
    changes = [{k: v for k, v in row.items() if k != "author_id"} for row in UPSERT]
    report = setwise.apply(books, Book, changes, missing="insert", chunk_rows=chunk_rows)
    assert (report.changed, report.inserted) == (2, 2)
    assert snapshot(books) != before
    with books.connect() as connection:
        info = setwise.run_details(connection, report.run_id or "")[0]
    assert (info.inserted, info.changed, info.missing) == (2, 2, 0)
    undo = setwise.revert(books, report.run_id or "", chunk_rows=chunk_rows)
    assert undo.changed == 4  # two rows put back, two deleted
    assert snapshot(books) == before


def test_reverting_an_inserted_row_changed_since_is_a_conflict(books: Engine) -> None:
    before = snapshot(books)
    report = setwise.apply(books, Book, [new_book(30), new_book(31)], missing="insert")
    with books.begin() as connection:
        connection.execute(Book.__table__.update().where(Book.id == 31).values(title="Mine"))
    with pytest.raises(setwise.ConflictError) as raised:
        setwise.revert(books, report.run_id or "")
    assert [(c.key, c.column, c.written, c.now) for c in raised.value.conflicts] == [
        (31, "title", "Book 31", "Mine")
    ]
    assert book_count(books) == 22  # nothing reverted
    setwise.revert(books, report.run_id or "", force=True)
    assert snapshot(books) == before


def test_an_upsert_in_the_callers_transaction(books: Engine) -> None:
    """In the caller's transaction, where the journal table is created on the way (on
    MariaDB the rows are then journaled from Python, by key)."""
    before = snapshot(books)
    changes = [{k: v for k, v in row.items() if k != "author_id"} for row in UPSERT]
    with books.begin() as connection:
        report = setwise.apply(connection, Book, changes, missing="insert")
        assert (report.changed, report.inserted) == (2, 2)
        if not get_strategy(books.dialect).sees_tables_created_later:
            assert report.strategy.endswith("by key")
    assert book_count(books) == 22
    setwise.revert(books, report.run_id or "")
    assert snapshot(books) == before


def test_an_offline_migration_refuses_missing_it_cannot_write() -> None:
    """Offline, setwise.alembic writes UPDATEs by key: it cannot tell new keys, so it
    refuses rather than leave them out of the script unsaid."""
    context = MigrationContext.configure(dialect_name="sqlite", opts={"as_sql": True})
    for mode in ("insert", "error"):
        with pytest.raises(setwise.SchemaError, match=f"missing='{mode}'.*online"):
            print_apply(context, Book, [new_book(1)], None, "t", "", {"missing": mode})


def test_inserted_rows_get_the_runs_stamps(engine: Engine) -> None:
    table = Table(
        "stamped",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("qty", Integer, nullable=False),
        Column("changed_at", DateTime),
        Column("changed_by", String(20)),
    )
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": 1, "qty": 1}])
    report = setwise.apply(
        engine,
        table,
        [{"id": 1, "qty": 2}, {"id": 2, "qty": 3}],
        missing="insert",
        stamp_column="changed_at",
        actor_column="changed_by",
        actor="ops",
    )
    assert (report.changed, report.inserted) == (1, 1)
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).all()
    assert [(r.id, r.qty, r.changed_by) for r in rows] == [(1, 2, "ops"), (2, 3, "ops")]
    assert rows[0].changed_at is not None and rows[1].changed_at == rows[0].changed_at


def test_an_upsert_writes_and_reverts_enum_values(engine: Engine) -> None:
    """ENUM values are staged as text and go back through the column's type when
    inserted (PostgreSQL has no implicit cast from text to an enum)."""
    table = Table(
        "legs",
        MetaData(),
        Column("kind", Enum("bus", "rail", name="upsert_kind"), primary_key=True),
        Column("state", Enum("open", "shut", name="upsert_state"), nullable=False),
    )
    table.create(engine)
    try:
        with engine.begin() as connection:
            connection.execute(insert(table), [{"kind": "bus", "state": "open"}])
        changes = [{"kind": "bus", "state": "shut"}, {"kind": "rail", "state": "open"}]
        report = setwise.apply(engine, table, changes, missing="insert")
        assert (report.changed, report.inserted) == (1, 1)
        with engine.connect() as connection:
            rows = connection.execute(select(table).order_by(table.c.kind)).all()
        assert [tuple(r) for r in rows] == [("bus", "shut"), ("rail", "open")]
        setwise.revert(engine, report.run_id or "")
        with engine.connect() as connection:
            assert [tuple(r) for r in connection.execute(select(table))] == [("bus", "open")]
    finally:
        table.drop(engine)


OTHER_ROW = {**new_book(30), "title": "By another writer"}
OUR_ROW = {**new_book(30), "title": "By setwise"}


@contextmanager
def another_writer_inserts_key_30(engine: Engine) -> Iterator[list[bool]]:
    """Between a chunk's count and its first INSERT of rows of books (journal or table),
    another connection inserts ``OTHER_ROW`` and commits. Yields a list that then holds
    whether it could: False when the run held a lock on the key, where no race can be."""
    writer = create_engine(engine.url, poolclass=NullPool)
    backends.short_lock_waits(writer)  # where the run holds a lock on the key, give up
    schema = inspect(engine).default_schema_name  # PostgreSQL's tests: a search_path
    other = writer.execution_options(schema_translate_map={None: schema})
    written: list[bool] = []
    counted: list[str] = []

    def insert_first(_c: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        head = sql.split("(", maxsplit=1)[0].lstrip().upper()
        if head.startswith("SELECT COUNT") and "BOOKS" in sql.upper():
            counted.append(sql)
        if written or not counted or not head.startswith("INSERT INTO") or "BOOKS" not in head:
            return
        try:
            with other.begin() as connection:
                connection.execute(insert(Book).values(**OTHER_ROW))
            written.append(True)
        except OperationalError:
            written.append(False)

    event.listen(engine, "before_cursor_execute", insert_first)
    try:
        yield written
    finally:
        event.remove(engine, "before_cursor_execute", insert_first)
        writer.dispose()


def title_30(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return connection.execute(select(Book.title).where(Book.id == 30)).scalar()


@pytest.mark.lacks("single_writer")
@pytest.mark.parametrize("journal", [True, False])
@pytest.mark.parametrize("chunk_rows", [None, 10])
def test_a_key_another_writer_inserts_mid_run_is_updated_not_refused(
    books: Engine, chunk_rows: int | None, journal: bool
) -> None:
    # PostgreSQL failed on the primary key (a ValidationError blaming the values, or a
    # RunError); MariaDB with a WriteCheckError ("0 journaled as inserted"). The run now
    # starts that transaction again, finds the row and updates it.
    with another_writer_inserts_key_30(books) as written:
        report = setwise.apply(
            books, Book, [OUR_ROW], missing="insert", chunk_rows=chunk_rows, journal=journal
        )
    raced = written[0]
    assert (report.inserted, report.changed) == ((0, 1) if raced else (1, 0))
    assert report.retries == (1 if raced else 0)
    assert title_30(books) == "By setwise"
    if journal:
        setwise.revert(books, report.run_id)
        assert title_30(books) == ("By another writer" if raced else None)


@pytest.mark.lacks("single_writer")
def test_a_key_taken_in_the_callers_transaction_is_a_keys_taken_error(books: Engine) -> None:
    # setwise cannot start the caller's transaction again: it says what happened, where
    # PostgreSQL reported a WriteCheckError ("were to be inserted, but ... reported 0").
    with (
        another_writer_inserts_key_30(books) as written,
        books.connect() as connection,
        connection.begin(),
    ):
        try:
            report = setwise.apply(connection, Book, [OUR_ROW], missing="insert")
        except setwise.KeysTakenError as error:
            assert (error.table, error.expected, error.found) == ("books", 1, 0)
            assert "another writer inserted 1 of the 1 key(s)" in str(error)
            report = None
    if written[0]:
        assert report is None
        assert title_30(books) == "By another writer"
    else:
        assert report is not None and report.inserted == 1
        assert title_30(books) == "By setwise"


@pytest.mark.parametrize("chunk_rows", [None, 10])
def test_a_new_row_whose_other_unique_column_is_taken_is_a_validation_error(
    books: Engine, chunk_rows: int | None
) -> None:
    # A unique constraint on another column than the key is the values' fault, not a
    # race: it is refused as before, not retried as keys another writer took.
    before = snapshot(books)
    taken_isbn = {**new_book(30), "isbn": book_row(3)["isbn"]}
    # One transaction: a ValidationError naming the constraint; a chunk: a RunError.
    refused = setwise.ValidationError if chunk_rows is None else setwise.RunError
    with pytest.raises(refused, match="isbn"):
        setwise.apply(books, Book, [taken_isbn], missing="insert", chunk_rows=chunk_rows)
    assert snapshot(books) == before
