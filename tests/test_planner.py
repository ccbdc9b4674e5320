"""setwise.plan for set-based updates and changesets: the real run, not sent, on every backend."""

from __future__ import annotations

import csv
import json
import re
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.orm import Session

import setwise
from setwise.sqltext import parse_update
from tests.models import Book, create_books, snapshot
from tests.test_update import SENT_UPDATE, count_updates


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


@pytest.mark.async_twin
def test_plan_writes_nothing_and_sends_no_update(books: Engine) -> None:
    before = snapshot(books)
    sent = count_updates(books)
    setwise.plan(books, update(Book).where(Book.id > 5).values(title="Renamed"))
    assert sent == []
    assert snapshot(books) == before


def sent_statements(engine: Engine) -> list[str]:
    """Every statement the engine sends from now on, as the driver gets it."""
    sent: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(*args: object) -> None:
        sent.append(str(args[2]))

    return sent


def in_order(found: tuple[str, ...], sent: list[str]) -> bool:
    """The plan's statements were sent one after the other (a chunked changeset's kept
    staging table is named for its run, which the plan calls "planned"), leaving out the
    session settings around a statement (PostgreSQL's work_mem for packing the journal:
    ``dialects.packed.packing_memory``), which write nothing and a plan does not list."""
    sent = [
        KEPT_STAGE.sub("setwise_stage_planned", statement)
        for statement in sent
        if "set_config(" not in statement
    ]
    return any(tuple(sent[i : i + len(found)]) == found for i in range(len(sent)))


KEPT_STAGE = re.compile(r"setwise_stage_\d{8}_\d{6}_[0-9a-f]{8}")


RUNS = {
    "journaled": {},
    "no-journal": {"journal": False},
    "chunked": {"chunk_rows": 2},
    "chunked-no-journal": {"chunk_rows": 2, "journal": False},
}


@pytest.mark.parametrize("run", list(RUNS))
def test_plan_sql_is_what_the_run_sends_with_placeholders_not_values(
    books: Engine, run: str
) -> None:
    statement = (
        update(Book).where(Book.genre == "history").values(price=Book.price * Decimal("1.37"))
    )
    found = setwise.plan(books, statement, **RUNS[run])  # type: ignore[arg-type]
    for sql in found.sql:
        assert "1.37" not in sql and "history" not in sql
        assert "?" in sql or "%(" in sql or "%s" in sql
    assert SENT_UPDATE.match(found.sql[-1])  # PostgreSQL 18: WITH … AS (UPDATE books …)
    sent = sent_statements(books)
    report = setwise.update(books, statement, **RUNS[run])  # type: ignore[arg-type]
    assert in_order(found.sql, sent), (found.sql, sent)
    assert report.strategy == found.strategy
    assert (found.chunks, found.chunks_estimated) == (report.chunks, False)


def test_plan_carries_the_databases_explain(books: Engine) -> None:
    found = setwise.plan(books, update(Book).where(Book.genre == "science").values(stock=1))
    assert found.explain
    assert "books" in "\n".join(found.explain)


@pytest.mark.async_twin
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


@pytest.mark.async_twin
def test_guards_refuse_as_update_would(books: Engine) -> None:
    with pytest.raises(setwise.TooManyRowsError) as too_many:
        setwise.plan(books, update(Book).where(Book.id > 10).values(stock=0), max_rows=5)
    assert too_many.value.would_change == 10
    with pytest.raises(setwise.NotFoundError):
        setwise.plan(books, update(Book).where(Book.id > 18).values(stock=0), expect_rows=3)
    with pytest.raises(setwise.ValidationError, match="3 decimal places"):
        setwise.plan(books, update(Book).where(Book.id == 1).values(price=Decimal("1.005")))


def test_plan_of_something_else_than_an_update_is_a_clear_error(books: Engine) -> None:
    with pytest.raises(setwise.SetwiseError, match="UPDATE statement, or a target and its"):
        setwise.plan(books, [{"id": 1, "stock": 0}])  # type: ignore[arg-type]


@pytest.mark.async_twin
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


@pytest.mark.async_twin
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


# -- changesets -------------------------------------------------------------------------

CHANGES = [
    {"id": 1, "price": Decimal("11.01"), "stock": 3},  # holds these values already
    {"id": 2, "price": Decimal("99.99"), "stock": 6},  # price changes
    {"id": 3, "price": Decimal("13.03"), "stock": 0},  # stock changes
    {"id": 404, "price": Decimal("1.00"), "stock": 1},  # no such book
    {"id": 5, "price": Decimal("5.55"), "stock": 5},
    {"id": 405, "price": Decimal("1.00"), "stock": 1},  # no such book
    {"id": 6, "price": Decimal("16.06"), "stock": 18},  # holds these values already
]


def write_changes(tmp_path: Path, kind: str, rows: list[dict[str, object]]) -> Path:
    """The rows as a .csv, .jsonl or .parquet file."""
    path = tmp_path / f"changes.{kind}"
    if kind == "csv":
        with path.open("w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("options", [{}, {"chunk_rows": 2}, {"journal": False}], ids=str)
@pytest.mark.async_twin
def test_changeset_plan_counts_equal_what_apply_then_does(
    books: Engine, options: dict[str, object]
) -> None:
    before = snapshot(books)
    found = setwise.plan(books, Book, CHANGES, **options)  # type: ignore[arg-type]
    assert snapshot(books) == before
    sent = sent_statements(books)
    report = setwise.apply(books, Book, CHANGES, **options)  # type: ignore[arg-type]
    assert (found.matched, found.would_change, found.unchanged, found.missing) == (5, 3, 2, 2)
    assert (found.matched, found.would_change, found.unchanged, found.missing) == (
        report.matched,
        report.changed,
        report.unchanged,
        report.missing,
    )
    assert found.missing_keys == report.missing_keys == (404, 405)
    assert found.staged == 7
    assert (found.strategy, found.chunks) == (report.strategy, report.chunks)
    assert in_order(found.sql, sent), (found.sql, sent)


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_changeset_plan_from_a_file(books: Engine, tmp_path: Path, kind: str) -> None:
    rows = [{"isbn": f"978-{i:06d}", "title": f"Title {i}"} for i in (1, 2, 99)]
    found = setwise.plan(books, "books", write_changes(tmp_path, kind, rows), key="isbn")
    assert (found.matched, found.would_change, found.missing_keys) == (2, 2, ("978-000099",))
    assert not [w for w in found.warnings if w.kind == "key-not-unique"]


def test_changeset_plan_refuses_duplicate_keys_and_bad_values_as_apply_does(
    books: Engine,
) -> None:
    rows = [{"id": 1, "stock": 1}, {"id": 2, "stock": "many"}, {"id": 1, "stock": 2}]
    with pytest.raises(setwise.ValidationError) as planned:
        setwise.plan(books, Book, rows)
    with pytest.raises(setwise.ValidationError) as applied:
        setwise.apply(books, Book, rows)
    assert str(planned.value) == str(applied.value)
    assert "'many'" in str(planned.value)
    duplicates = [{"id": 1, "stock": 1}, {"id": 1, "stock": 2}]
    with pytest.raises(setwise.ValidationError, match="duplicate key: also in row 1"):
        setwise.plan(books, Book, duplicates)


def test_changeset_plan_warns_of_a_key_no_unique_index_backs(books: Engine) -> None:
    rows = [{"title": "Book 3", "stock": 1}]
    found = setwise.plan(books, "books", rows, key="title")
    (warning,) = [w for w in found.warnings if w.kind == "key-not-unique"]
    assert "(title)" in warning.message


def test_changeset_plan_warns_of_a_change_to_a_unique_column(books: Engine) -> None:
    found = setwise.plan(books, Book, [{"id": 3, "isbn": "978-999999"}])
    (warning,) = [w for w in found.warnings if w.kind == "unique-column"]
    assert "uq_books_isbn" in warning.message


def test_a_long_lock_is_warned_about_unless_the_run_is_chunked(books: Engine) -> None:
    rows = [{"id": i, "stock": 1000 + i} for i in range(1, 21)]
    # 20 rows at the estimated 50,000 rows/s hold their locks for 0.4 ms.
    found = setwise.plan(books, Book, rows, chunk_seconds=0.0001)
    (warning,) = [w for w in found.warnings if w.kind == "long-lock"]
    assert "20 rows" in warning.message and "0.0001 s chunk target" in warning.message
    relaxed = setwise.plan(books, Book, rows, chunk_seconds=0.001)
    assert not [w for w in relaxed.warnings if w.kind == "long-lock"]
    chunked = setwise.plan(books, Book, rows, chunk_seconds=0.0001, chunk_rows="auto")
    assert not [w for w in chunked.warnings if w.kind == "long-lock"]


def test_auto_chunks_are_an_estimate_and_fixed_ones_exact(books: Engine) -> None:
    rows = [{"id": i, "stock": 1000 + i} for i in range(1, 21)]
    auto = setwise.plan(books, Book, rows, chunk_rows="auto")
    assert (auto.chunks, auto.chunks_estimated) == (1, True)
    fixed = setwise.plan(books, Book, rows, chunk_rows=6)
    assert (fixed.chunks, fixed.chunks_estimated) == (4, False)
    assert setwise.apply(books, Book, rows, chunk_rows=6).chunks == 4


@pytest.mark.async_twin
def test_changeset_plan_lists_version_conflicts_as_apply_does(books: Engine) -> None:
    setwise.update(books, update(Book).where(Book.id == 2).values(stock=0))
    rows = [{"id": 1, "stock": 7, "version": 1}, {"id": 2, "stock": 7, "version": 1}]
    found = setwise.plan(books, Book, rows)
    report = setwise.apply(books, Book, rows)
    assert found.conflicts == report.conflicts == (2,)
    assert (found.would_change, found.unchanged) == (report.changed, report.unchanged) == (1, 0)


def test_an_empty_changeset_plans_nothing(books: Engine) -> None:
    found = setwise.plan(books, Book, [])
    assert (found.matched, found.would_change, found.chunks) == (0, 0, 0)


# -- issue 19: plan's counting statements run under a statement timeout -----------------

#: A filter that reads 100^6 rows to find none: it kept plan busy for minutes.
SIX_WAY_JOIN = (
    "EXISTS (SELECT 1 FROM books a, books b, books c, books d, books e, books f "
    "WHERE a.stock + b.stock + c.stock + d.stock + e.stock + f.stock < 0)"
)


# SQLAlchemy warns of the cartesian product the text asks for.
@pytest.mark.filterwarnings("ignore:SELECT statement has a cartesian product")
@pytest.mark.async_twin
def test_a_plan_whose_count_runs_too_long_stops_with_a_plan_timeout_error(
    engine: Engine,
) -> None:
    create_books(engine, 100)
    before = snapshot(engine)
    statement = parse_update(engine, "books", ["stock = 0"], SIX_WAY_JOIN)
    started = time.monotonic()
    with pytest.raises(
        setwise.PlanTimeoutError, match=r"longer than 0.5 s.*timeout_seconds="
    ) as caught:
        setwise.plan(engine, statement, timeout_seconds=0.5)
    assert time.monotonic() - started < 10
    assert (caught.value.table, caught.value.seconds) == ("books", 0.5)
    assert snapshot(engine) == before


@pytest.mark.filterwarnings("ignore:SELECT statement has a cartesian product")
def test_a_timed_out_plan_leaves_no_limit_on_the_callers_transaction(engine: Engine) -> None:
    create_books(engine, 100)
    statement = parse_update(engine, "books", ["stock = 0"], SIX_WAY_JOIN)
    tables = [Book.__table__.alias(name) for name in "abcde"]
    five_way = (
        select(func.count()).select_from(*tables).where(*(table.c.id <= 20 for table in tables))  # type: ignore[attr-defined]
    )
    with engine.connect() as connection, connection.begin():
        with pytest.raises(setwise.PlanTimeoutError):
            setwise.plan(connection, statement, timeout_seconds=0.05)
        started = time.monotonic()
        # 3,200,000 rows: longer than the plan's limit, which must be gone.
        assert connection.execute(five_way).scalar_one() == 20**5
        assert time.monotonic() - started > 0.05
