"""setwise.patch on every backend: partial updates, validation, not found, optimistic locks."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import setwise
from tests.models import Book, create_books, snapshot


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 5)
    return engine


def test_only_the_given_fields_change_and_the_version_moves(books: Engine) -> None:
    before = snapshot(books)
    with Session(books) as session:
        book = setwise.patch(session, Book, 2, {"price": Decimal("9.99")}, expected_version=1)
        assert book.price == Decimal("9.99")
        assert book.version == 2
        assert book.title == "Book 2"
    after = snapshot(books)
    assert after[1][4] == Decimal("9.99") and after[1][8] == 2
    assert [row for i, row in enumerate(after) if i != 1] == [
        row for i, row in enumerate(before) if i != 1
    ]


def test_the_returned_object_is_the_one_the_session_already_had(books: Engine) -> None:
    with Session(books) as session:
        loaded = session.get(Book, 3)
        patched = setwise.patch(session, Book, {"id": 3}, {"stock": 0})
        assert patched is loaded
        assert loaded is not None and loaded.stock == 0 and loaded.version == 2
        session.commit()


def test_none_clears_a_nullable_column(books: Engine) -> None:
    with Session(books) as session:
        book = setwise.patch(session, Book, 1, {"genre": None, "published": None})
        assert book.genre is None and book.published is None


def test_none_on_a_not_null_column_and_other_bad_values_are_refused_together(
    books: Engine,
) -> None:
    before = snapshot(books)
    with Session(books) as session, pytest.raises(setwise.ValidationError) as caught:
        setwise.patch(
            session,
            Book,
            1,
            {"title": None, "price": "cheap", "id": 7, "pricee": 1, "version": 9},
        )
    reasons = {problem.column: problem.reason for problem in caught.value.problems}
    assert "NOT NULL" in reasons["title"]
    assert "expected a number" in reasons["price"]
    assert "primary key" in reasons["id"]
    assert "did you mean 'price'" in reasons["pricee"]
    assert "version column" in reasons["version"]
    assert snapshot(books) == before


def test_a_validate_callable_rejects_before_anything_is_sent(books: Engine) -> None:
    def positive_price(changes: Any) -> dict[str, str] | None:
        if changes.get("price", 1) <= 0:
            return {"price": "price must be positive"}
        return None

    before = snapshot(books)
    with Session(books) as session, pytest.raises(setwise.ValidationError) as caught:
        setwise.patch(session, Book, 1, {"price": Decimal("0")}, validate=positive_price)
    assert caught.value.problems[0].reason == "price must be positive"
    assert caught.value.problems[0].value == Decimal("0")
    assert snapshot(books) == before


def test_a_missing_row_is_not_found(books: Engine) -> None:
    with Session(books) as session, pytest.raises(setwise.NotFoundError, match="key 404"):
        setwise.patch(session, Book, 404, {"stock": 1})


def test_a_stale_version_is_a_conflict_carrying_the_current_version(books: Engine) -> None:
    with Session(books) as session:
        setwise.patch(session, Book, 1, {"stock": 1}, expected_version=1)
        with pytest.raises(setwise.ConflictError) as caught:
            setwise.patch(session, Book, 1, {"stock": 2}, expected_version=1)
    assert caught.value.current_version == 2
    assert caught.value.expected_version == 1
    assert snapshot(books)[0][5] == 1


def test_two_writers_with_the_same_version_exactly_one_wins(books: Engine) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def writer(stock: int) -> None:
        with Session(books) as session:
            barrier.wait()
            try:
                setwise.patch(session, Book, 4, {"stock": stock}, expected_version=1)
                outcomes.append(stock)
            except setwise.ConflictError as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winners = [o for o in outcomes if isinstance(o, int)]
    losers = [o for o in outcomes if isinstance(o, setwise.ConflictError)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert losers[0].current_version == 2
    row = snapshot(books)[3]
    assert row[5] == winners[0] and row[8] == 2


def test_a_unique_violation_names_the_constraint_and_changes_nothing(books: Engine) -> None:
    before = snapshot(books)
    with Session(books) as session, pytest.raises(setwise.ValidationError) as caught:
        setwise.patch(session, Book, 1, {"isbn": "978-000002"})
    assert caught.value.constraint == "uq_books_isbn"
    assert "unique constraint 'uq_books_isbn' on (isbn)" in str(caught.value)
    assert caught.value.problems[0].value == "978-000002"
    assert snapshot(books) == before


def test_a_foreign_key_violation_names_the_constraint(books: Engine) -> None:
    with Session(books) as session, pytest.raises(setwise.ValidationError) as caught:
        setwise.patch(session, Book, 1, {"author_id": 99})
    assert caught.value.constraint == "fk_books_author"
    assert caught.value.problems[0].column == "author_id"


def test_a_check_violation_names_the_constraint(books: Engine) -> None:
    with Session(books) as session, pytest.raises(setwise.ValidationError) as caught:
        setwise.patch(session, Book, 1, {"price": Decimal("-1.00")})
    assert caught.value.constraint == "ck_books_price_positive"


def test_inside_the_callers_transaction_a_failure_leaves_earlier_work(books: Engine) -> None:
    with Session(books) as session:
        setwise.patch(session, Book, 1, {"stock": 11})  # commits: the session was idle
        book = session.get(Book, 2)
        assert book is not None
        book.stock = 22
        with pytest.raises(setwise.ValidationError):
            setwise.patch(session, Book, 3, {"isbn": "978-000001"})
        session.commit()
    rows = snapshot(books)
    assert (rows[0][5], rows[1][5]) == (11, 22)  # both of the caller's changes were kept
    assert rows[2][1] == "978-000003"  # the failed patch wrote nothing
