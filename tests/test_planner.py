"""setwise.plan for set-based updates: the real run, not sent, on every backend."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

import setwise
from setwise.sqltext import parse_update
from tests.models import Book, create_books, snapshot
from tests.test_update import count_updates


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


STATEMENTS = {
    "some-already-hold-the-value": update(Book).where(Book.id <= 10).values(stock=0),
    "expression": update(Book)
    .where(Book.genre == "fiction")
    .values(price=Book.price * Decimal("1.10")),
    "nothing-matches": update(Book).where(Book.id > 100).values(stock=1),
}


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_plan_counts_equal_what_update_then_does(books: Engine, name: str) -> None:
    setwise.update(books, update(Book).where(Book.id <= 3).values(stock=0))
    statement = STATEMENTS[name]
    before = snapshot(books)
    found = setwise.plan(books, statement)
    assert snapshot(books) == before
    report = setwise.update(books, statement)
    assert (found.matched, found.would_change, found.unchanged) == (
        report.matched,
        report.changed,
        report.unchanged,
    )
    assert found.strategy == report.strategy
    if name == "some-already-hold-the-value":
        assert (found.matched, found.would_change, found.unchanged) == (10, 7, 3)


def test_plan_writes_nothing_and_sends_no_update(books: Engine) -> None:
    before = snapshot(books)
    sent = count_updates(books)
    setwise.plan(books, update(Book).where(Book.id > 5).values(title="Renamed"))
    assert sent == []
    assert snapshot(books) == before


def test_plan_sql_is_what_the_run_sends_with_placeholders_not_values(books: Engine) -> None:
    statement = (
        update(Book).where(Book.genre == "history").values(price=Book.price * Decimal("1.37"))
    )
    found = setwise.plan(books, statement, journal=False)
    select_changed, write = found.sql
    for sql in found.sql:
        assert "1.37" not in sql and "history" not in sql
        assert "?" in sql or "%(" in sql or "%s" in sql
    assert select_changed.startswith("SELECT books.id")
    assert write.startswith("UPDATE books SET price=")
    sent = count_updates(books)
    report = setwise.update(books, statement, journal=False)
    assert sent == [write]
    assert report.strategy == found.strategy


def test_plan_carries_the_databases_explain(books: Engine) -> None:
    found = setwise.plan(books, update(Book).where(Book.genre == "science").values(stock=1))
    assert found.explain
    assert "books" in "\n".join(found.explain)


def test_an_unindexed_filter_is_warned_about_and_an_indexed_one_is_not(books: Engine) -> None:
    found = setwise.plan(books, update(Book).where(Book.genre == "science").values(stock=1))
    (warning,) = [w for w in found.warnings if w.kind == "unindexed-filter"]
    assert "genre" in warning.message
    by_key = setwise.plan(books, update(Book).where(Book.id == 3).values(stock=1))
    by_isbn = setwise.plan(books, update(Book).where(Book.isbn == "978-000003").values(stock=1))
    assert by_key.warnings == by_isbn.warnings == ()


def test_a_change_to_a_unique_column_is_warned_about(books: Engine) -> None:
    found = setwise.plan(books, update(Book).where(Book.id == 3).values(isbn="978-999999"))
    (warning,) = [w for w in found.warnings if w.kind == "unique-column"]
    assert "isbn" in warning.message and "uq_books_isbn" in warning.message


def test_a_change_to_most_of_the_table_is_warned_about(books: Engine) -> None:
    statement = update(Book).where(Book.id <= 15).values(stock=1)
    (warning,) = [w for w in setwise.plan(books, statement).warnings if w.kind == "large-share"]
    assert "15 of the 20 rows" in warning.message and "75%" in warning.message
    assert not setwise.plan(books, statement, warn_share=0.9).warnings
    assert not setwise.plan(books, statement, warn_share=None).warnings


def test_no_where_needs_all_rows_and_is_warned_about(books: Engine) -> None:
    statement = update(Book).values(stock=1)
    with pytest.raises(setwise.UnboundedUpdateError):
        setwise.plan(books, statement)
    found = setwise.plan(books, statement, all_rows=True)
    assert found.matched == 20
    assert {w.kind for w in found.warnings} == {"no-where", "large-share"}


def test_guards_refuse_as_update_would(books: Engine) -> None:
    with pytest.raises(setwise.TooManyRowsError) as too_many:
        setwise.plan(books, update(Book).where(Book.id > 10).values(stock=0), max_rows=5)
    assert too_many.value.would_change == 10
    with pytest.raises(setwise.NotFoundError):
        setwise.plan(books, update(Book).where(Book.id > 18).values(stock=0), expect_rows=3)
    with pytest.raises(setwise.ValidationError, match="3 decimal places"):
        setwise.plan(books, update(Book).where(Book.id == 1).values(price=Decimal("1.005")))


def test_plan_of_something_else_than_an_update_is_a_clear_error(books: Engine) -> None:
    with pytest.raises(setwise.SetwiseError, match="UPDATE statement"):
        setwise.plan(books, [{"id": 1, "stock": 0}])  # type: ignore[arg-type]


def test_plan_inside_a_callers_transaction_sees_its_work_and_leaves_it_open(
    books: Engine,
) -> None:
    before = snapshot(books)
    with books.connect() as connection:
        connection.begin()
        connection.execute(update(Book).where(Book.id == 1).values(stock=0))
        found = setwise.plan(connection, update(Book).where(Book.id <= 2).values(stock=0))
        assert (found.matched, found.would_change) == (2, 1)
        assert connection.in_transaction()
        assert connection.scalar(select(Book.stock).where(Book.id == 1)) == 0
        connection.rollback()
    assert snapshot(books) == before


def test_plan_with_a_session_sees_its_pending_changes_and_leaves_them_pending(
    books: Engine,
) -> None:
    before = snapshot(books)
    with Session(books) as session:
        book = session.get(Book, 1)
        assert book is not None
        book.stock = 0
        found = setwise.plan(session, update(Book).where(Book.id <= 2).values(stock=0))
        assert (found.matched, found.would_change) == (2, 1)
        assert session.in_transaction() and book.stock == 0
        session.rollback()
    assert snapshot(books) == before


def test_plan_of_a_reflected_table_from_text(books: Engine) -> None:
    statement = parse_update(books, "books", ["stock = stock + 1"], "genre = 'fiction'")
    found = setwise.plan(books, statement)
    assert (found.matched, found.would_change) == (5, 5)
    # a reflected table has no ORM version column: only what --set names is written
    assert "version" not in found.sql[0]
