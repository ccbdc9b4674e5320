"""Keys given twice are refused with the same report however the keys arrive (issue 26).

Integer keys that come increasing need no search; keys that come in any other order,
text keys and composite keys are judged by the database (SQLite: a staging table keyed
by the key, its primary key refusing a repeat; elsewhere a GROUP BY), under the key
column's own collation, and only a refused key starts the search that lists every
repeat by row, with the row it repeats and an exact count.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text

import setwise
from setwise import ProblemKind
from setwise.problems import MAX_PROBLEMS
from setwise.staging.intake import STAGE_BATCH_ROWS
from tests.models import Book, create_books, snapshot

BOOKS = STAGE_BATCH_ROWS + 500
"""More books than one staging batch holds: repeats fall in another batch than their first."""


def shuffled_rows() -> list[dict[str, Any]]:
    """Every book once, in an order that is not the key's (odd ids down, then even up)."""
    ids = [*range(BOOKS if BOOKS % 2 else BOOKS - 1, 0, -2), *range(2, BOOKS + 1, 2)]
    return [{"id": i, "stock": i % 7} for i in ids]


def duplicates(error: setwise.ValidationError) -> list[tuple[int | None, Any, str]]:
    return [
        (p.row, p.value, p.reason) for p in error.problems if p.kind == ProblemKind.DUPLICATE_KEY
    ]


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, BOOKS)
    return engine


@pytest.mark.parametrize("chunk_rows", [None, 1_000])
def test_unordered_keys_apply_with_exact_counts(books: Engine, chunk_rows: int | None) -> None:
    rows = shuffled_rows()
    rows.append({"id": BOOKS + 7, "stock": 1})  # no such book
    report = setwise.apply(books, Book, rows, chunk_rows=chunk_rows)
    assert (report.matched, report.missing) == (BOOKS, 1)
    assert report.changed + report.unchanged == BOOKS
    assert report.missing_keys == (BOOKS + 7,)
    with books.connect() as connection:
        stocks: dict[int, int] = dict(connection.execute(text("SELECT id, stock FROM books")).all())
    assert stocks == {i: i % 7 for i in range(1, BOOKS + 1)}


@pytest.mark.parametrize("chunk_rows", [None, 1_000])
def test_repeats_in_unordered_keys_are_listed_by_row_and_counted(
    books: Engine, chunk_rows: int | None
) -> None:
    rows = shuffled_rows()
    first = {row["id"]: number for number, row in enumerate(rows, start=1)}
    # Repeats of keys first given in another batch, and more of them than are listed.
    repeats = [{"id": 1 + (j * 37) % BOOKS, "stock": 1} for j in range(MAX_PROBLEMS + 5)]
    before = snapshot(books)
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(books, Book, rows + repeats, chunk_rows=chunk_rows, chunk_seconds=0.0)
    error = caught.value
    assert error.counts == {ProblemKind.DUPLICATE_KEY: len(repeats)}
    listed = duplicates(error)
    assert len(listed) == MAX_PROBLEMS
    for number, (row, value, reason) in enumerate(listed, start=len(rows) + 1):
        assert (row, value) == (number, repeats[number - len(rows) - 1]["id"])
        assert reason == f"duplicate key: also in row {first[value]}"
    assert snapshot(books) == before
    # Nothing of the refused run is left behind: the same changes without repeats apply.
    assert setwise.apply(books, Book, rows, chunk_rows=chunk_rows).matched == BOOKS


def test_repeated_text_keys_are_found(books: Engine) -> None:
    with books.begin() as connection:
        connection.execute(text("CREATE UNIQUE INDEX books_isbn ON books (isbn)"))
    rows = [{"isbn": f"978-{i:06d}", "price": Decimal("2.00")} for i in range(BOOKS, 0, -1)]
    rows.insert(10, {"isbn": "978-000003", "price": Decimal("3.00")})
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(books, "books", rows, key="isbn")
    assert caught.value.counts == {ProblemKind.DUPLICATE_KEY: 1}
    assert duplicates(caught.value) == [(BOOKS - 1, "978-000003", "duplicate key: also in row 11")]
    report = setwise.apply(books, "books", rows[:10] + rows[11:], key="isbn")
    assert (report.matched, report.changed, report.missing) == (BOOKS, BOOKS, 0)


def test_repeated_composite_keys_are_found(books: Engine) -> None:
    rows = [{"id": i, "isbn": f"978-{i:06d}", "stock": 3} for i in range(BOOKS, 0, -1)]
    rows.append({"id": 5, "isbn": "978-000005", "stock": 4})  # repeats row BOOKS - 4
    rows.append({"id": 5, "isbn": "978-000006", "stock": 4})  # another key: no repeat
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(books, "books", rows, key=["id", "isbn"])
    assert caught.value.counts == {ProblemKind.DUPLICATE_KEY: 1}
    reason = f"duplicate key: also in row {BOOKS - 4}"
    assert duplicates(caught.value) == [(BOOKS + 1, (5, "978-000005"), reason)]


CASE_BLIND = {
    "sqlite": "CREATE TABLE codes (code VARCHAR(10) COLLATE NOCASE PRIMARY KEY, n INTEGER)",
    "mariadb": "CREATE TABLE codes (code VARCHAR(10) PRIMARY KEY, n INTEGER)"
    " DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci",
}


@pytest.mark.backends("sqlite", "mariadb")
@pytest.mark.parametrize("first", ["abc", "ABC"])
def test_keys_a_case_blind_collation_calls_equal_are_one_key(
    engine: Engine, backend: str, first: str
) -> None:
    """'abc' and 'ABC' are one key to the column: merging both would write the row
    twice in an order no one chose."""
    with engine.begin() as connection:
        connection.execute(text(CASE_BLIND[backend]))
        connection.execute(text("INSERT INTO codes VALUES ('abc', 1), ('xyz', 2)"))
    second = first.swapcase()
    rows = [{"code": "xyz", "n": 3}, {"code": first, "n": 5}, {"code": second, "n": 6}]
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(engine, "codes", rows)
    assert caught.value.counts == {ProblemKind.DUPLICATE_KEY: 1}
    assert duplicates(caught.value) == [(3, second, "duplicate key: also in row 2")]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT n FROM codes ORDER BY n")).scalars().all() == [1, 2]
    report = setwise.apply(engine, "codes", rows[:2])
    assert (report.matched, report.changed) == (2, 2)


def test_plan_and_the_row_guard_count_unordered_keys(books: Engine) -> None:
    rows = shuffled_rows()
    changing = sum(1 for row in rows if row["stock"] != row["id"] * 3)
    found = setwise.plan(books, Book, rows)
    assert (found.matched, found.would_change) == (BOOKS, changing)
    before = snapshot(books)
    with pytest.raises(setwise.TooManyRowsError):
        setwise.apply(books, Book, rows, max_rows=changing - 1)
    assert snapshot(books) == before
    assert setwise.apply(books, Book, rows, max_rows=changing).changed == changing


@pytest.mark.parametrize("chunk_rows", [None, 1_000])
def test_repeats_in_the_first_and_last_batch_of_shuffled_keys(
    books: Engine, chunk_rows: int | None
) -> None:
    rows = shuffled_rows()
    rows.insert(2, {"id": rows[0]["id"], "stock": 1})  # row 3: row 1's key, same batch
    rows.append({"id": rows[1]["id"], "stock": 2})  # last batch: row 2's key
    rows.append({"id": rows[-2]["id"], "stock": 3})  # last batch: a key of the last batch
    before = snapshot(books)
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(books, Book, rows, chunk_rows=chunk_rows, chunk_seconds=0.0)
    assert caught.value.counts == {ProblemKind.DUPLICATE_KEY: 3}
    last = len(rows)
    assert duplicates(caught.value) == [
        (3, rows[0]["id"], "duplicate key: also in row 1"),
        (last - 1, rows[1]["id"], "duplicate key: also in row 2"),
        (last, rows[-3]["id"], f"duplicate key: also in row {last - 2}"),
    ]
    assert snapshot(books) == before


@pytest.mark.parametrize("chunk_rows", [None, 1_000])
def test_repeats_where_increasing_keys_stop_increasing(
    books: Engine, chunk_rows: int | None
) -> None:
    """Keys that come increasing need no search until they stop: a repeat of the key
    just before, in the second batch, is where they stop; the rows before it are
    judged with every row after it."""
    at = STAGE_BATCH_ROWS + 200
    rows = [{"id": i, "stock": 1} for i in range(1, BOOKS + 1)]
    rows.insert(at, {"id": at, "stock": 2})  # row at + 1 repeats row at
    rows.append({"id": 10, "stock": 3})  # the last row repeats row 10, of the first batch
    before = snapshot(books)
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(books, Book, rows, chunk_rows=chunk_rows, chunk_seconds=0.0)
    assert caught.value.counts == {ProblemKind.DUPLICATE_KEY: 2}
    assert duplicates(caught.value) == [
        (at + 1, at, f"duplicate key: also in row {at}"),
        (len(rows), 10, "duplicate key: also in row 10"),
    ]
    assert snapshot(books) == before


def test_every_key_given_three_times_is_counted_exactly(books: Engine) -> None:
    rows = shuffled_rows()
    first = {row["id"]: number for number, row in enumerate(rows, start=1)}
    before = snapshot(books)
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(books, Book, rows * 3)
    assert caught.value.counts == {ProblemKind.DUPLICATE_KEY: 2 * len(rows)}
    listed = duplicates(caught.value)
    assert [row for row, _, _ in listed] == list(range(len(rows) + 1, len(rows) + MAX_PROBLEMS + 1))
    for row, value, reason in listed:
        assert value == rows[row - len(rows) - 1]["id"]
        assert reason == f"duplicate key: also in row {first[value]}"
    assert snapshot(books) == before


def test_repeats_are_listed_beside_other_problems(books: Engine) -> None:
    rows = shuffled_rows()
    rows[4] = {"id": rows[4]["id"], "stock": "many"}
    rows.append({"id": rows[4]["id"], "stock": 1})  # repeats the row with the bad value
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(books, Book, rows)
    counts = {ProblemKind.BAD_VALUE: 1, ProblemKind.DUPLICATE_KEY: 1}
    assert caught.value.counts == counts
    assert [(p.row, p.kind) for p in caught.value.problems] == [
        (5, ProblemKind.BAD_VALUE),
        (len(rows), ProblemKind.DUPLICATE_KEY),
    ]
    assert duplicates(caught.value) == [(len(rows), rows[4]["id"], "duplicate key: also in row 5")]


@pytest.mark.parametrize("chunk_rows", [None, 1_000])
def test_repeats_of_text_keys_in_order_and_after_it_ends(
    books: Engine, chunk_rows: int | None
) -> None:
    """Text keys in order for more than a batch, then not: a repeat of a key given while
    they were in order, where the order ends, and a repeat among the keys after it."""
    with books.begin() as connection:
        connection.execute(text("CREATE UNIQUE INDEX books_isbn ON books (isbn)"))
    at = STAGE_BATCH_ROWS + 200
    rows = [{"isbn": f"978-{i:06d}", "stock": 1} for i in range(1, BOOKS + 1)]
    rows.insert(at, {"isbn": "978-000010", "stock": 3})  # the order ends: repeats row 10
    rows.append({"isbn": rows[at + 50]["isbn"], "stock": 4})  # repeats row at + 51
    before = snapshot(books)
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(books, "books", rows, key="isbn", chunk_rows=chunk_rows, chunk_seconds=0.0)
    assert caught.value.counts == {ProblemKind.DUPLICATE_KEY: 2}
    assert duplicates(caught.value) == [
        (at + 1, "978-000010", "duplicate key: also in row 10"),
        (len(rows), rows[at + 50]["isbn"], f"duplicate key: also in row {at + 51}"),
    ]
    assert snapshot(books) == before
    report = setwise.apply(books, "books", rows[:at] + rows[at + 1 : -1], key="isbn")
    assert (report.matched, report.missing) == (BOOKS, 0)


@pytest.mark.backends("sqlite", "mariadb")
@pytest.mark.parametrize("in_order", [True, False], ids=["in order", "unordered"])
def test_case_blind_repeats_in_another_batch(engine: Engine, backend: str, in_order: bool) -> None:
    """'abc' and 'ABC' a batch apart, in keys that come in order as Python orders them
    ('ABC' < 'B…' < 'abc') or not."""
    with engine.begin() as connection:
        connection.execute(text(CASE_BLIND[backend]))
        connection.execute(text("INSERT INTO codes VALUES ('abc', 1), ('xyz', 2)"))
    many = range(1, STAGE_BATCH_ROWS + 1)
    if in_order:
        rows = [{"code": "ABC", "n": 5}, *({"code": f"B{i:05d}", "n": i} for i in many)]
        rows.append({"code": "abc", "n": 6})
        repeats = [(len(rows), "abc")]
    else:
        rows = [{"code": "abc", "n": 5}, *({"code": f"c{i:05d}", "n": i} for i in reversed(many))]
        rows += [{"code": "ABC", "n": 6}, {"code": "xyz", "n": 7}, {"code": "Abc", "n": 8}]
        repeats = [(len(rows) - 2, "ABC"), (len(rows), "Abc")]
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(engine, "codes", rows)
    assert caught.value.counts == {ProblemKind.DUPLICATE_KEY: len(repeats)}
    reason = "duplicate key: also in row 1"
    assert duplicates(caught.value) == [(row, code, reason) for row, code in repeats]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT n FROM codes ORDER BY n")).scalars().all() == [1, 2]
