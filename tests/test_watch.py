"""setwise.watch on every backend: the row-by-row loops it finds, and what it leaves alone."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    Table,
    bindparam,
    delete,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

import setwise
from setwise.detector.findings import Finding
from setwise.detector.watch import DEFAULT_THRESHOLD
from tests.models import Author, Book, book_row, create_books, snapshot

books = Book.__table__


@pytest.fixture
def shop(engine: Engine) -> Engine:
    create_books(engine, 30)
    return engine


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, "\n\n".join(str(finding) for finding in findings)
    return findings[0]


def line_of(marker: str) -> int:
    """The line of this file that holds ``marker``: where a finding must point."""
    with open(__file__, encoding="utf-8") as source:
        for number, line in enumerate(source, start=1):
            if marker in line and "line_of" not in line:
                return number
    raise AssertionError(marker)


# -- the loops it must find --------------------------------------------------------------


def test_orm_loop_with_a_flush_per_row_suggests_apply(shop: Engine) -> None:
    with setwise.watch(shop) as seen, Session(shop) as session:
        for book in session.scalars(select(Book).where(Book.id <= 20).order_by(Book.id)):
            book.price = book.price + Decimal("1.00")
            session.flush()  # flush-per-row
        session.commit()

    found = only(seen.findings)
    assert (found.table, found.kind, found.count, found.executions) == ("books", "UPDATE", 20, 20)
    assert found.transactions == 1
    function = test_orm_loop_with_a_flush_per_row_suggests_apply.__name__
    assert found.location == f"tests/test_watch.py:{line_of('# flush-per-row')} in {function}"
    assert not found.same_values
    assert found.statement == (
        "UPDATE books SET price = ?, version = ? WHERE books.id = ? AND books.version = ?"
    )
    first_price = book_row(1)["price"] + Decimal("1.00")  # type: ignore[operator]
    assert found.suggestion == (
        f"setwise.apply(bind, books, [{{'id': 1, 'price': {first_price!r}}}, ...])"
        "  # 20 rows keyed by id"
    )
    assert found.elapsed_s > 0


def test_orm_loop_that_commits_every_row_suggests_update_and_counts_transactions(
    shop: Engine,
) -> None:
    with setwise.watch(shop) as seen, Session(shop) as session:
        for book in session.scalars(select(Book).where(Book.id <= 12).order_by(Book.id)).all():
            book.genre = "poetry"
            session.commit()

    found = only(seen.findings)
    assert (found.count, found.executions, found.transactions) == (12, 12, 12)
    assert found.same_values
    assert found.suggestion == (
        "setwise.update(bind, update(books).where(books.c.id.in_([1, 2, 3, ...]))"
        ".values(genre='poetry'))"
    )


def test_one_flush_of_many_dirty_objects_counts_every_row(shop: Engine) -> None:
    with shop.begin() as connection:
        connection.execute(insert(Author), [{"id": i, "name": f"Author {i}"} for i in range(4, 41)])
    with setwise.watch(shop) as seen, Session(shop) as session:
        for author in session.scalars(select(Author)):
            author.name = author.name.upper()
        session.commit()

    found = only(seen.findings)
    # Authors have no version column, so the ORM sends all 40 UPDATEs in one executemany.
    assert (found.table, found.count, found.executions) == ("authors", 40, 1)
    assert not found.same_values
    assert found.suggestion.startswith(
        "setwise.apply(bind, authors, [{'id': 1, 'name': 'AUTHOR 1'}"
    )


def test_core_execute_in_a_python_loop_with_one_expression(shop: Engine) -> None:
    with setwise.watch(shop) as seen, shop.begin() as connection:
        for i in range(1, 16):
            connection.execute(update(books).where(books.c.id == i).values(stock=books.c.stock - 1))

    found = only(seen.findings)
    assert (found.count, found.executions, found.same_values) == (15, 15, True)
    assert found.statement == "UPDATE books SET stock = (books.stock - ?) WHERE books.id = ?"
    assert found.suggestion == (
        "setwise.update(bind, update(books).where(books.c.id.in_([1, 2, 3, ...]))"
        ".values(stock=books.c.stock - 1))"
    )


def test_core_executemany_counts_each_parameter_set(shop: Engine) -> None:
    statement = update(books).where(books.c.id == bindparam("key")).values(title=bindparam("t"))
    rows = [{"key": i, "t": f"Title {i}"} for i in range(1, 26)]
    with setwise.watch(shop) as seen, shop.begin() as connection:
        connection.execute(statement, rows)

    found = only(seen.findings)
    assert (found.count, found.executions, found.same_values) == (25, 1, False)
    assert found.suggestion == (
        "setwise.apply(bind, books, [{'id': 1, 'title': 'Title 1'}, ...])  # 25 rows keyed by id"
    )


def test_a_unique_key_pins_one_row_too(shop: Engine) -> None:
    with setwise.watch(shop) as seen, shop.begin() as connection:
        for i in range(1, 11):
            isbn = str(book_row(i)["isbn"])
            connection.execute(update(books).where(books.c.isbn == isbn).values(stock=0))

    found = only(seen.findings)
    assert found.suggestion == (
        "setwise.update(bind, update(books).where(books.c.isbn.in_("
        "['978-000001', '978-000002', '978-000003', ...])).values(stock=0))"
    )


def test_a_composite_key_must_be_pinned_whole(shop: Engine) -> None:
    shelves = Table(
        "shelves",
        MetaData(),
        Column("shop", Integer, primary_key=True, autoincrement=False),
        Column("slot", Integer, primary_key=True, autoincrement=False),
        Column("book_id", Integer),
    )
    shelves.create(shop)
    with shop.begin() as connection:
        connection.execute(insert(shelves), [{"shop": 1, "slot": i} for i in range(1, 11)])
    with setwise.watch(shop) as seen, shop.begin() as connection:
        for i in range(1, 11):
            connection.execute(
                update(shelves).where(shelves.c.shop == 1, shelves.c.slot == i).values(book_id=i)
            )
        for _ in range(10):  # a whole shop at a time: set-based
            connection.execute(update(shelves).where(shelves.c.shop == 1).values(book_id=None))

    found = only(seen.findings)
    assert found.suggestion == (
        "setwise.apply(bind, shelves, [{'shop': 1, 'slot': 1, 'book_id': 1}, ...])"
        "  # 10 rows keyed by shop, slot"
    )


def test_text_statements_in_a_loop_are_found_by_the_reflected_key(shop: Engine) -> None:
    with setwise.watch(shop) as seen, shop.begin() as connection:
        for i in range(1, 13):
            connection.execute(
                text("UPDATE books SET title = :title WHERE id = :id"), {"title": f"T{i}", "id": i}
            )

    found = only(seen.findings)
    assert (found.statement, found.count) == ("UPDATE books SET title = ? WHERE id = ?", 12)
    assert found.suggestion == (
        "setwise.apply(bind, books, [{'id': 1, 'title': 'T1'}, ...])  # 12 rows keyed by id"
    )


def test_driver_sql_with_values_written_inline_is_one_shape(shop: Engine) -> None:
    with setwise.watch(shop) as seen, shop.begin() as connection:
        for i in range(1, 11):
            connection.exec_driver_sql(f"UPDATE books SET stock = 7 WHERE id = {i}")

    found = only(seen.findings)
    assert (found.statement, found.count, found.same_values) == (
        "UPDATE books SET stock = ? WHERE id = ?",
        10,
        True,
    )
    assert found.suggestion == (
        "setwise.update(bind, update(books).where(books.c.id.in_([1, 2, 3, ...])).values(stock=7))"
    )


def test_a_delete_loop_suggests_one_delete(shop: Engine) -> None:
    with setwise.watch(shop) as seen, Session(shop) as session:
        for book in session.scalars(select(Book).where(Book.id > 15)).all():
            session.delete(book)
            session.flush()
        session.commit()

    found = only(seen.findings)
    assert (found.kind, found.count) == ("DELETE", 15)
    assert found.suggestion == (
        "setwise.delete(bind, delete(books).where(books.c.id.in_([16, 17, 18, ...])))"
    )


def test_watching_a_session_or_a_connection(shop: Engine) -> None:
    with Session(shop) as session:
        with setwise.watch(session) as seen:
            for i in range(1, 11):
                session.execute(update(Book).where(Book.id == i).values(stock=i))
        session.commit()
    assert only(seen.findings).count == 10

    with shop.connect() as connection:
        with setwise.watch(connection) as seen:
            for i in range(1, 11):
                connection.execute(delete(books).where(books.c.id == i))
        connection.rollback()
    assert only(seen.findings).count == 10


def test_watching_every_engine(shop: Engine) -> None:
    with setwise.watch() as seen, shop.begin() as connection:
        for i in range(1, 11):
            connection.execute(update(books).where(books.c.id == i).values(stock=i))
    assert only(seen.findings).count == 10


# -- what it must leave alone ------------------------------------------------------------


def test_a_loop_under_the_threshold_is_not_a_finding(shop: Engine) -> None:
    def loop() -> list[Finding]:
        with setwise.watch(shop, threshold=DEFAULT_THRESHOLD) as seen, Session(shop) as session:
            for book in session.scalars(select(Book).where(Book.id < DEFAULT_THRESHOLD)):
                book.stock += 1
                session.flush()
            session.commit()
        return seen.findings

    assert loop() == []
    with setwise.watch(shop, threshold=DEFAULT_THRESHOLD - 1) as seen, shop.begin() as c:
        for i in range(1, DEFAULT_THRESHOLD):
            c.execute(update(books).where(books.c.id == i).values(stock=0))
    assert only(seen.findings).count == DEFAULT_THRESHOLD - 1


def test_set_based_updates_and_deletes_are_not_findings(shop: Engine) -> None:
    with setwise.watch(shop, threshold=1) as seen, shop.begin() as connection:
        connection.execute(update(books).where(books.c.genre == "fiction").values(stock=0))
        connection.execute(update(books).where(books.c.id.in_([1, 2, 3])).values(stock=1))
        connection.execute(update(books).where(books.c.id > 20).values(stock=2))
        connection.execute(delete(books).where(books.c.id.between(25, 30)))
    assert seen.findings == []


def test_loops_over_a_non_key_column_are_not_findings(shop: Engine) -> None:
    with setwise.watch(shop, threshold=2) as seen, shop.begin() as connection:
        for author in (1, 2, 3, 1, 2, 3):
            connection.execute(update(books).where(books.c.author_id == author).values(stock=0))
            connection.execute(
                text("UPDATE books SET stock = 1 WHERE author_id = :a"), {"a": author}
            )
    assert seen.findings == []


def test_reads_are_not_findings(shop: Engine) -> None:
    with setwise.watch(shop, threshold=2) as seen, Session(shop) as session:
        for i in range(1, 21):
            session.get(Book, i)
    assert seen.findings == []


def test_setwise_own_statements_are_never_findings(shop: Engine) -> None:
    with setwise.watch(shop, threshold=2) as seen:
        with Session(shop) as session:
            setwise.patch(session, Book, 1, {"stock": 1})
            session.commit()
        setwise.update(shop, update(Book).where(Book.genre == "history").values(stock=0))
        setwise.apply(shop, Book, [{"id": i, "title": f"Applied {i}"} for i in range(1, 21)])
    assert seen.findings == []
    assert [row[2] for row in snapshot(shop)[:20]] == [f"Applied {i}" for i in range(1, 21)]


def test_a_loop_of_patch_calls_is_the_callers_loop(shop: Engine) -> None:
    # patch writes one record per call by design; twenty calls in a loop are twenty
    # single-row UPDATEs, reported at the line that calls patch, with apply suggested.
    with setwise.watch(shop) as seen, Session(shop) as session:
        for i in range(1, 21):
            setwise.patch(session, Book, i, {"stock": i})  # the loop's line
        session.commit()
    finding = only(seen.findings)
    assert finding.count == 20
    assert finding.table == "books"
    assert "test_watch.py" in finding.location
    assert "in test_a_loop_of_patch_calls_is_the_callers_loop" in finding.location
    assert finding.suggestion.startswith("setwise.apply(")
    assert [row[5] for row in snapshot(shop)[:20]] == list(range(1, 21))


def test_nothing_is_counted_after_the_block(shop: Engine) -> None:
    with setwise.watch(shop) as seen, shop.begin() as connection:
        for i in range(1, 11):
            connection.execute(update(books).where(books.c.id == i).values(stock=0))
    with shop.begin() as connection:
        for i in range(1, 31):
            connection.execute(update(books).where(books.c.id == i).values(stock=1))
    assert only(seen.findings).count == 10


# -- the report ----------------------------------------------------------------------------


def test_report_lists_findings_worst_first_and_is_logged_at_the_end(
    shop: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="setwise.watch")
    with setwise.watch(shop) as seen, shop.begin() as connection:
        for i in range(1, 11):
            connection.execute(delete(books).where(books.c.id == i))
        for i in range(11, 31):
            for _ in range(5):
                connection.execute(update(books).where(books.c.id == i).values(stock=i))

    worst, other = seen.findings
    # Worst first is by time, which the machine's load can reorder for loops this short:
    # the order is checked on the times, the loops by what they did.
    assert {(worst.kind, worst.count), (other.kind, other.count)} == {
        ("UPDATE", 100),
        ("DELETE", 10),
    }
    assert worst.elapsed_s >= other.elapsed_s
    report = seen.report()
    assert report.startswith("setwise.watch: 2 row-by-row loop(s), worst first")
    listed = sorted(("UPDATE books SET", "DELETE FROM books"), key=report.index)
    assert listed == (
        ["UPDATE books SET", "DELETE FROM books"]
        if worst.kind == "UPDATE"
        else ["DELETE FROM books", "UPDATE books SET"]
    )
    assert f"1. {worst.suggestion}" in report
    assert f"2. {other.suggestion}" in report
    assert [record.getMessage() for record in caplog.records] == [report]


def test_a_block_without_findings_logs_nothing(
    shop: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="setwise.watch")
    with setwise.watch(shop) as seen, shop.begin() as connection:
        connection.execute(update(books).where(books.c.genre == "fiction").values(stock=0))
    assert seen.report() == "setwise.watch: no row-by-row loops (threshold 10 rows)"
    assert caplog.records == []


def test_a_threshold_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold must be at least 1, got 0"):
        setwise.watch(threshold=0)


def test_a_loops_time_covers_its_commits_not_only_its_statements(shop: Engine) -> None:
    def slow_commit(connection: object) -> None:
        time.sleep(SLOW_COMMIT_S)  # a commit that waits for the disk or a cluster

    event.listen(shop, "commit", slow_commit)
    try:
        with setwise.watch(shop) as seen, shop.connect() as connection:
            for i in range(1, 21):
                connection.execute(update(books).where(books.c.id == i).values(stock=0))
                connection.commit()
    finally:
        event.remove(shop, "commit", slow_commit)
    found = only(seen.findings)
    assert found.transactions == 20
    # The 19 commits between the loop's first statement and its last are in its time.
    assert found.elapsed_s >= 19 * SLOW_COMMIT_S
    assert f"{found.elapsed_s * 1000:.1f}" in seen.report()


#: Long enough that 19 of them outweigh twenty one-row UPDATEs on any backend here.
SLOW_COMMIT_S = 0.02

JOB = """
import setwise
from sqlalchemy import create_engine, text

engine = create_engine({url!r})
with engine.begin() as connection:
    connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)")
    connection.exec_driver_sql("INSERT INTO t VALUES " + ",".join(f"({{i}}, 1)" for i in range(30)))
with setwise.watch(engine) as seen, engine.connect() as connection:
    for i in range(30):
        connection.execute(text("UPDATE t SET n = 0 WHERE id = :id"), {{"id": i}})
        connection.commit()
print(seen.report())
"""


def test_a_program_that_prints_the_report_shows_it_once(tmp_path: Path) -> None:
    job = tmp_path / "job.py"
    job.write_text(JOB.format(url=f"sqlite:///{tmp_path / 'job.db'}"))
    done = subprocess.run(
        [sys.executable, str(job)], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("setwise.watch: 1 row-by-row loop(s)") == 1
    assert done.stderr == ""  # no second copy from the logger's fallback
