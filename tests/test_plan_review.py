"""What a plan shows a person reviewing a change (the rows that would change, old and
new value per column) and ``apply(where=...)``, on every backend."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, MetaData, Table, select, update

import setwise
from tests.models import Book, book_row, create_books, snapshot

FICTION = [i for i in range(1, 21) if book_row(i)["genre"] == "fiction"]


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


def test_a_plan_shows_the_first_rows_that_would_change_old_and_new(books: Engine) -> None:
    before = snapshot(books)
    statement = update(Book).where(Book.genre == "fiction").values(stock=Book.stock + 1)
    found = setwise.plan(books, statement)
    assert found.sample_key == ("id",)
    assert [row.key for row in found.sample] == FICTION  # 5 rows, fewer than 10
    first = found.sample[0].changes
    # The version column setwise bumps on a changed row is shown changing too.
    assert [(c.column, c.old, c.new) for c in first] == [
        ("stock", FICTION[0] * 3, FICTION[0] * 3 + 1),
        ("version", 1, 2),
    ]
    two = setwise.plan(books, statement, sample=2)
    assert [row.key for row in two.sample] == FICTION[:2]
    assert setwise.plan(books, statement, sample=0).sample == ()
    assert snapshot(books) == before


def test_a_changesets_sample_shows_only_the_columns_that_change(books: Engine) -> None:
    rows = [
        {"id": 1, "price": Decimal("99.50"), "stock": book_row(1)["stock"]},  # price only
        {"id": 2, "price": book_row(2)["price"], "stock": 7},  # stock only
        {"id": 3, "price": book_row(3)["price"], "stock": book_row(3)["stock"]},  # nothing
    ]
    found = setwise.plan(books, Book, rows)
    shown = {row.key: [(c.column, c.old, c.new) for c in row.changes] for row in found.sample}
    assert shown == {
        1: [("price", book_row(1)["price"], Decimal("99.50")), ("version", 1, 2)],
        2: [("stock", book_row(2)["stock"], 7), ("version", 1, 2)],
    }


@pytest.mark.parametrize("chunk_rows", [None, 2])
def test_apply_where_writes_only_the_rows_the_condition_holds_for(
    books: Engine, chunk_rows: int | None
) -> None:
    # A condition on a table reflected apart from the one apply resolves: matched by name.
    books_table = Table("books", MetaData(), autoload_with=books)
    where = books_table.c.genre == "fiction"
    rows = [{"id": i, "stock": 500 + i} for i in range(1, 13)] + [{"id": 404, "stock": 1}]
    found = setwise.plan(books, "books", rows, where=where, chunk_rows=chunk_rows)
    inside = [i for i in range(1, 13) if i in FICTION]
    assert (found.matched, found.would_change, found.missing) == (12, len(inside), 1)
    assert found.outside == 12 - len(inside) and found.unchanged == 12 - len(inside)
    assert [row.key for row in found.sample] == inside
    report = setwise.apply(books, "books", rows, where=where, chunk_rows=chunk_rows)
    assert (report.matched, report.changed, report.missing) == (12, len(inside), 1)
    with books.connect() as connection:
        stock = dict(connection.execute(select(Book.id, Book.stock)).all())  # type: ignore[arg-type]
    assert {i for i in range(1, 21) if stock[i] != book_row(i)["stock"]} == set(inside)
    assert all(stock[i] == 500 + i for i in inside)
    setwise.revert(books, report.run_id or "")
    with books.connect() as connection:
        back = dict(connection.execute(select(Book.id, Book.stock)).all())  # type: ignore[arg-type]
    assert back == {i: book_row(i)["stock"] for i in range(1, 21)}


def test_where_goes_with_a_changeset_not_an_update_statement(books: Engine) -> None:
    statement = update(Book).values(stock=0)
    with pytest.raises(setwise.InvalidArgumentError, match="where"):
        setwise.plan(books, statement, where=Book.genre == "fiction")


def test_a_samples_new_value_is_what_the_run_then_writes(books: Engine) -> None:
    raised = Book.price * Decimal("1.10")
    statement = update(Book).where(Book.genre == "fiction").values(price=raised)
    found = setwise.plan(books, statement, sample=3)
    promised = {row.key: row.changes[0].new for row in found.sample}
    setwise.update(books, statement)
    with books.connect() as connection:
        written = dict(connection.execute(select(Book.id, Book.price)).all())  # type: ignore[arg-type]
    for key, new in promised.items():
        assert str(new) == str(written[key])  # same value, same places: 25.60, not 25.6
