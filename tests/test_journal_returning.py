"""PostgreSQL 18: a journaled UPDATE journals its rows in the same statement
(``RETURNING old.c, new.c``, ``ChunkWrite._in_one_statement``), and the journal holds
what the statements before 18 journal, byte for byte."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, select, update

import setwise
from setwise.dialects import get_strategy, postgresql
from setwise.journal.changes import Journal
from setwise.target import resolve_target
from tests.models import Book, book_row, create_books, snapshot
from tests.test_planner import sent_statements

pytestmark = pytest.mark.backends("postgresql")

JOURNAL_INSERT = "INSERT INTO setwise_journal_books"


@pytest.fixture
def books(engine: Engine) -> Engine:
    with engine.connect() as connection:
        number = int(connection.exec_driver_sql("SHOW server_version_num").scalar_one())
    if number < 180000:
        pytest.skip(f"server_version_num {number}: an UPDATE returns old values from 180000")
    create_books(engine, 40)
    return engine


def journal(engine: Engine, run_id: str) -> list[tuple[Any, ...]]:
    """The run's journal one row per change, every column but the run's id, by chunk and key."""
    table = Journal.changes(
        Journal().changes_table(resolve_target(Book), get_strategy(engine.dialect))
    )
    columns = [c for c in table.c if c.name != "run_id"]
    statement = (
        select(*columns).where(table.c.run_id == run_id).order_by(table.c.chunk, table.c.k_id)
    )
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(statement)]


def as_bytes(rows: list[tuple[Any, ...]]) -> list[bytes]:
    """Each row as bytes: a value's type and text (Decimal 1.5 and 1.50 differ)."""
    return [repr(row).encode() for row in rows]


def reset(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(delete(Book))
        connection.execute(insert(Book), [book_row(i) for i in range(1, 41)])


PRICES = [{"id": i, "price": Decimal(f"{i}.5"), "stock": i % 7} for i in range(1, 41, 3)]
RUNS: dict[str, Callable[[Engine], setwise.Report]] = {
    "apply": lambda e: setwise.apply(e, Book, PRICES),
    "chunked": lambda e: setwise.apply(e, Book, PRICES, chunk_rows=4),
    "sparse": lambda e: setwise.apply(
        e,
        Book,
        [{"id": 3, "stock": 1}, {"id": 5, "price": Decimal("1.25")}, {"id": 7, "title": "T"}],
    ),
    "versions": lambda e: setwise.apply(
        e, Book, [{"id": i, "stock": 0, "version": 1 + i % 2} for i in range(1, 11)]
    ),
    "where": lambda e: setwise.apply(e, Book, PRICES, where=Book.genre == "fiction"),
    "set-based": lambda e: setwise.update(
        e, update(Book).where(Book.genre == "history").values(price=Book.price * Decimal("1.1"))
    ),
    "set-based, chunked": lambda e: setwise.update(
        e, update(Book).where(Book.id > 4).values(stock=Book.stock + 1), chunk_rows=7
    ),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_the_journal_holds_what_the_statements_before_18_journal(
    books: Engine, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = sent_statements(books)
    one = RUNS[name](books)
    writes = [s for s in sent if JOURNAL_INSERT in s]
    assert writes and all(s.startswith("WITH setwise_changed AS") for s in writes)
    assert all('"old".' in s and '"new".' in s for s in writes)
    # No UPDATE of the target but the one inside the journal's statement.
    assert not [s for s in sent if s.lstrip().upper().startswith("UPDATE BOOKS")]
    table, rows = snapshot(books), journal(books, one.run_id or "")
    reset(books)
    with monkeypatch.context() as before_18:
        before_18.setattr(postgresql, "returns_old", lambda connection: False)
        sent.clear()
        two = RUNS[name](books)
    assert not [s for s in sent if s.startswith("WITH setwise_changed")]
    assert (one.changed, one.matched, one.conflicts) == (two.changed, two.matched, two.conflicts)
    assert one.changed == len(rows) > 0
    assert snapshot(books) == table
    assert as_bytes(journal(books, two.run_id or "")) == as_bytes(rows)


@pytest.mark.parametrize("name", list(RUNS))
def test_a_run_journaled_in_its_update_reverts_exactly(books: Engine, name: str) -> None:
    before = snapshot(books)
    run = RUNS[name](books)
    assert snapshot(books) != before
    setwise.revert(books, run.run_id or "")
    assert snapshot(books) == before


def test_in_a_callers_transaction_the_rows_are_locked_in_key_order_as_they_are_journaled(
    books: Engine,
) -> None:
    # Off a snapshot two runs must lock what they write in key order, never each
    # other's rows the other way round: the journal's INSERT … FOR UPDATE does, then the
    # UPDATE runs, as before 18 (a locking read before the one statement cost more).
    sent = sent_statements(books)
    with books.connect() as connection, connection.begin():
        report = setwise.apply(connection, Book, PRICES)
    (journaled,) = [s for s in sent if JOURNAL_INSERT in s]
    assert journaled.startswith(JOURNAL_INSERT)
    assert "ORDER BY books.id FOR UPDATE OF books" in journaled
    assert not [s for s in sent if s.startswith("WITH setwise_changed")]
    assert report.changed == len(journal(books, report.run_id or "")) > 0


def test_a_plan_shows_the_statement_the_run_sends(books: Engine) -> None:
    found = setwise.plan(books, Book, PRICES)
    shown = " ".join(found.sql[-1].split())
    assert shown.startswith("WITH setwise_changed AS (UPDATE books SET")
    sent = sent_statements(books)
    setwise.apply(books, Book, PRICES)
    assert found.sql[-1] in sent
