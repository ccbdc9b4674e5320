"""setwise.update on every backend: one statement, guardrails, session sync, transactions."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import Engine, event, func, inspect, select, update
from sqlalchemy.orm import Session

import setwise
from tests.models import Author, Book, book_row, create_books, snapshot


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


def prices(engine: Engine) -> dict[int, Decimal]:
    with engine.connect() as connection:
        return dict(connection.execute(select(Book.id, Book.price)).all())  # type: ignore[arg-type]


SENT_UPDATE = re.compile(r"\s*(?:WITH\s+\w+\s+AS\s*\(\s*)?UPDATE\s+books\b", re.IGNORECASE)


def count_updates(engine: Engine) -> list[str]:
    """Every UPDATE of the books table the engine sends from now on, also as the CTE
    that journals its rows (PostgreSQL 18: ``WITH … AS (UPDATE books …) INSERT …``)."""
    sent: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(*args: object) -> None:
        statement = str(args[2])
        if SENT_UPDATE.match(statement):
            sent.append(statement)

    return sent


@pytest.mark.async_twin
@pytest.mark.driver_twin
def test_orm_update_with_expression_runs_as_one_statement(books: Engine) -> None:
    before = prices(books)
    sent = count_updates(books)
    report = setwise.update(
        books,
        update(Book).where(Book.genre == "fiction").values(price=Book.price * Decimal("1.10")),
    )
    after = prices(books)
    fiction = {i for i in range(1, 21) if book_row(i)["genre"] == "fiction"}
    assert len(sent) == 1
    assert report.matched == report.changed == len(fiction) == 5
    assert report.unchanged == 0
    for i in range(1, 21):
        expected = (
            (before[i] * Decimal("1.10")).quantize(Decimal("0.01")) if i in fiction else before[i]
        )
        assert after[i] == expected, i


@pytest.mark.async_twin
def test_core_update_with_several_columns_and_a_subquery_filter(books: Engine) -> None:
    table = Book.__table__
    by_author_two = select(Author.id).where(Author.name == "Author 2").scalar_subquery()
    report = setwise.update(
        books,
        update(table)
        .where(table.c.author_id == by_author_two)
        .values(genre="poetry", stock=table.c.stock + 1),
    )
    with books.connect() as connection:
        rows = connection.execute(
            select(table.c.id, table.c.genre, table.c.stock).where(table.c.author_id == 2)
        ).all()
        others = connection.scalar(select(func.count()).where(table.c.genre == "poetry"))
    assert report.changed == len(rows) == 7
    assert all(genre == "poetry" and stock == book_row(i)["stock"] + 1 for i, genre, stock in rows)
    assert others == 7


@pytest.mark.async_twin
def test_update_without_where_is_refused_and_changes_nothing(books: Engine) -> None:
    before = snapshot(books)
    with pytest.raises(setwise.UnboundedUpdateError, match="no WHERE clause"):
        setwise.update(books, update(Book).values(stock=0))
    assert snapshot(books) == before


def test_update_of_every_row_needs_all_rows(books: Engine) -> None:
    report = setwise.update(books, update(Book).values(stock=0), all_rows=True)
    assert report.matched == 20
    with books.connect() as connection:
        assert connection.scalar(select(func.sum(Book.stock))) == 0


@pytest.mark.async_twin
def test_rows_already_holding_the_value_are_matched_but_not_written(books: Engine) -> None:
    setwise.update(books, update(Book).where(Book.id <= 4).values(genre="history"))
    # ids 1..8 match; 1..4 now say "history", and so does 5 from the seed (5 % 4 == 1)
    report = setwise.update(books, update(Book).where(Book.id <= 8).values(genre="history"))
    assert (report.matched, report.changed, report.unchanged) == (8, 3, 5)
    with books.connect() as connection:
        versions = dict(connection.execute(select(Book.id, Book.version).where(Book.id <= 8)).all())
    # setwise bumps the ORM version column only on rows it writes
    assert versions == {1: 1, 2: 2, 3: 2, 4: 2, 5: 1, 6: 2, 7: 2, 8: 2}


@pytest.mark.async_twin
def test_returning_gives_every_matched_row_in_key_order(books: Engine) -> None:
    setwise.update(books, update(Book).where(Book.id == 3).values(stock=100))
    report = setwise.update(
        books,
        update(Book).where(Book.id.in_([5, 3, 1])).values(stock=100),
        returning=["id", Book.stock, Book.__table__.c.title],
    )
    assert report.rows == (
        {"id": 1, "stock": 100, "title": "Book 1"},
        {"id": 3, "stock": 100, "title": "Book 3"},
        {"id": 5, "stock": 100, "title": "Book 5"},
    )
    assert (report.changed, report.unchanged) == (2, 1)


def test_returning_an_unknown_column_suggests_the_closest(books: Engine) -> None:
    with pytest.raises(setwise.SchemaError, match="Did you mean 'stock'"):
        setwise.update(books, update(Book).where(Book.id == 1).values(stock=1), returning=["stok"])


@pytest.mark.async_twin
def test_expect_rows_raises_not_found_and_rolls_back(books: Engine) -> None:
    before = snapshot(books)
    with pytest.raises(setwise.NotFoundError, match="at least 3 row") as caught:
        setwise.update(
            books, update(Book).where(Book.id.in_([1, 999])).values(stock=7), expect_rows=3
        )
    assert caught.value.matched == 1
    assert snapshot(books) == before


@pytest.mark.async_twin
def test_max_rows_refuses_before_writing(books: Engine) -> None:
    before = snapshot(books)
    sent = count_updates(books)
    with pytest.raises(setwise.TooManyRowsError) as caught:
        setwise.update(books, update(Book).where(Book.id > 10).values(stock=0), max_rows=5)
    assert caught.value.would_change == 10
    assert sent == []
    assert snapshot(books) == before


def test_bad_literals_are_all_reported_before_anything_runs(books: Engine) -> None:
    before = snapshot(books)
    sent = count_updates(books)
    statement = (
        update(Book)
        .where(Book.id == 1)
        .values(stock="many", price=12.5, title="x" * 201, isbn=None)
    )
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.update(books, statement)
    problems = {problem.column: problem for problem in caught.value.problems}
    assert set(problems) == {"stock", "price", "title", "isbn"}
    assert "expected an integer" in problems["stock"].reason
    assert "Decimal('12.5')" in problems["price"].reason
    assert "longer than the column's 200" in problems["title"].reason
    assert "NOT NULL" in problems["isbn"].reason
    assert problems["stock"].value == "many"
    assert sent == []
    assert snapshot(books) == before


def test_a_float_in_an_exact_numeric_expression_is_refused(books: Engine) -> None:
    with pytest.raises(setwise.ValidationError, match=r"Decimal\('1.1'\)"):
        setwise.update(books, update(Book).where(Book.id == 1).values(price=Book.price * 1.1))


def test_decimal_with_more_places_than_the_column_is_refused(books: Engine) -> None:
    with pytest.raises(setwise.ValidationError, match="3 decimal places"):
        setwise.update(books, update(Book).where(Book.id == 1).values(price=Decimal("1.005")))


@pytest.mark.lacks("nul_in_text")
def test_text_the_database_cannot_hold_is_refused_before_anything_is_sent(
    books: Engine,
) -> None:
    before = snapshot(books)
    statement = update(Book).where(Book.id == 1).values(title="a\0b")
    with pytest.raises(setwise.ValidationError, match="NUL character"):
        setwise.plan(books, statement)
    with pytest.raises(setwise.ValidationError, match="NUL character") as caught:
        setwise.update(books, statement)
    assert (caught.value.problems[0].column, caught.value.problems[0].value) == ("title", "a\0b")
    assert snapshot(books) == before


@pytest.mark.async_twin
def test_loaded_objects_see_new_values_and_others_stay_loaded(books: Engine) -> None:
    with Session(books) as session:
        changed = session.get(Book, 1)
        untouched = session.get(Book, 2)
        assert changed is not None and untouched is not None
        setwise.update(session, update(Book).where(Book.id == 1).values(title="Renamed", stock=0))
        # no refresh, no expire: the object already holds the new values
        assert inspect(changed).expired_attributes == set()
        assert changed.title == "Renamed" and changed.stock == 0
        assert changed.version == 2
        assert inspect(untouched).expired_attributes == set()
        assert untouched.title == "Book 2"
        session.commit()
    assert snapshot(books)[0][2] == "Renamed"


@pytest.mark.async_twin
def test_a_loaded_object_whose_key_the_update_moved_is_expired_not_stale(
    books: Engine,
) -> None:
    with Session(books) as session:
        moved = session.get(Book, 1)  # the caller's transaction: no commit expires it
        assert moved is not None
        statement = update(Book).where(Book.id == 1).values(id=100, stock=99)
        setwise.update(session, statement, journal=False)
        assert inspect(moved).expired  # not the stock of 3 its row no longer holds
        found = session.get(Book, 100)
        assert found is not None and (found.stock, found.version) == (99, 2)
        session.commit()


@pytest.mark.async_twin
def test_a_session_with_an_open_transaction_keeps_control_of_it(books: Engine) -> None:
    before = snapshot(books)
    with Session(books) as session:
        session.get(Book, 1)  # begins the caller's transaction
        setwise.update(session, update(Book).where(Book.id == 1).values(stock=0))
        assert session.in_transaction()
        session.rollback()
    assert snapshot(books) == before


@pytest.mark.async_twin
def test_a_connection_with_an_open_transaction_keeps_control_of_it(books: Engine) -> None:
    before = snapshot(books)
    with books.connect() as connection:
        connection.execute(select(Book.id)).all()  # autobegins the caller's transaction
        setwise.update(connection, update(Book).where(Book.id == 1).values(stock=0))
        assert connection.in_transaction()
        assert connection.scalar(select(Book.stock).where(Book.id == 1)) == 0
        connection.rollback()
    assert snapshot(books) == before


@pytest.mark.async_twin
@pytest.mark.driver_twin
def test_a_failure_inside_the_callers_transaction_undoes_only_setwise(books: Engine) -> None:
    with books.connect() as connection:
        connection.execute(update(Book).where(Book.id == 1).values(stock=555))
        with pytest.raises(setwise.ValidationError):
            setwise.update(  # isbn of book 3: a unique violation
                connection, update(Book).where(Book.id == 2).values(isbn="978-000003")
            )
        # the caller's own change survived and the transaction is still usable
        assert connection.scalar(select(Book.stock).where(Book.id == 1)) == 555
        connection.commit()
    assert snapshot(books)[0][5] == 555


@pytest.mark.async_twin
def test_an_idle_session_gets_its_own_committed_transaction(books: Engine) -> None:
    with Session(books) as session:
        setwise.update(session, update(Book).where(Book.id == 1).values(stock=0))
        assert not session.in_transaction()
    with books.connect() as connection:
        assert connection.scalar(select(Book.stock).where(Book.id == 1)) == 0


@pytest.mark.async_twin
def test_pending_changes_in_the_session_are_flushed_not_committed(books: Engine) -> None:
    before = snapshot(books)
    with Session(books) as session:
        book = session.get(Book, 5)
        assert book is not None
        book.stock = 1234
        session.commit()
        book.genre = "fiction"  # pending: setwise must see it and must not commit it
        report = setwise.update(
            session, update(Book).where(Book.genre == "fiction").values(stock=0)
        )
        assert report.changed == 6  # the 5 seeded fiction books and book 5
        session.rollback()
    after = snapshot(books)
    assert after[4][5] == 1234 and after[4][3] == "history"
    assert [row for i, row in enumerate(after) if i != 4] == [
        row for i, row in enumerate(before) if i != 4
    ]


@pytest.mark.async_twin
@pytest.mark.driver_twin
def test_a_unique_violation_names_the_constraint(books: Engine) -> None:
    before = snapshot(books)
    with pytest.raises(setwise.ValidationError, match="uq_books_isbn") as caught:
        setwise.update(books, update(Book).where(Book.id == 2).values(isbn="978-000003"))
    assert caught.value.constraint == "uq_books_isbn"
    assert caught.value.problems[0].column == "isbn"
    assert snapshot(books) == before
