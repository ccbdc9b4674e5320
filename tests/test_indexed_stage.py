"""A large changeset in one transaction: its staged keys indexed and analyzed before
the count and the merge (``Strategy.index_stage_rows``), with the same exact results."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, event, select

import setwise
from setwise.dialects import get_strategy
from setwise.errors import ValidationError
from tests.models import Book, book_row, create_books


@pytest.fixture
def indexed(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every changeset counts as large; the statements the runs send."""
    create_books(engine, 20)
    monkeypatch.setattr(type(get_strategy(engine.dialect)), "index_stage_rows", 1)
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    return sent


@pytest.mark.async_twin
def test_an_indexed_stage_gives_the_same_exact_counts(engine: Engine, indexed: list[str]) -> None:
    changes = [
        {"id": 1, "price": Decimal("1.50"), "version": 1},
        {"id": 2, "price": book_row(2)["price"], "version": 1},  # already so: not written
        {"id": 3, "price": Decimal("3.50"), "stock": 0, "version": 1},  # sparse: stock here
        {"id": 4, "stock": 7, "version": 9},  # its version moved: a conflict
        {"id": 404, "price": Decimal("4.04"), "version": 1},
    ]
    report = setwise.apply(engine, Book, changes, journal=False, where=Book.id != 1)
    assert any("CREATE INDEX" in statement for statement in indexed)
    assert (report.matched, report.changed, report.unchanged) == (4, 1, 2)
    assert (report.conflicts, report.missing_keys) == ((4,), (404,))
    with engine.connect() as connection:
        rows = dict(connection.execute(select(Book.id, Book.price)).all())
        stock = dict(connection.execute(select(Book.id, Book.stock)).all())
    assert (rows[1], rows[3]) == (book_row(1)["price"], Decimal("3.50"))  # 1: outside where
    assert (stock[3], stock[4]) == (0, book_row(4)["stock"])


@pytest.mark.async_twin
def test_a_key_given_twice_is_still_reported_by_row(engine: Engine, indexed: list[str]) -> None:
    changes = [{"id": 5, "stock": 1}, {"id": 2, "stock": 2}, {"id": 5, "stock": 3}]
    with pytest.raises(ValidationError, match="duplicate key: also in row 1"):
        setwise.apply(engine, Book, changes, journal=False)
