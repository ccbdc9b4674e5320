"""Changesets with new keys from the command line and in plans: --missing, would insert."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

import setwise
from tests.models import Book, book_row, create_books, snapshot
from tests.test_cli import cli_url
from tests.test_cli import setwise as run_setwise
from tests.test_planner import write_changes

#: Two rows that change, one that holds its values already, two new books: whole rows, as
#: a table reflected by name (no model's defaults) needs them for an insert.
ROWS: list[dict[str, object]] = [
    {"id": 1, "isbn": "978-000001", "title": "Book 1", "price": "1.25"},
    {"id": 2, "isbn": "978-000002", "title": "Book 2", "price": str(book_row(2)["price"])},
    {"id": 3, "isbn": "978-000003", "title": "Retitled", "price": str(book_row(3)["price"])},
    {"id": 50, "isbn": "978-000050", "title": "Fifty", "price": "50.00"},
    {"id": 51, "isbn": "978-000051", "title": "Fifty-one", "price": "51.00"},
]
ROWS = [row | {"stock": book_row(int(str(row["id"])))["stock"], "version": 1} for row in ROWS]


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


@pytest.mark.parametrize("chunk_rows", [None, 2])
def test_a_plan_counts_the_rows_it_would_insert(
    books: Engine, tmp_path: Path, chunk_rows: int | None
) -> None:
    path = write_changes(tmp_path, "csv", ROWS)
    before = snapshot(books)
    plan = setwise.plan(books, Book, str(path), missing="insert", chunk_rows=chunk_rows)
    assert (plan.matched, plan.would_change, plan.unchanged) == (3, 2, 1)
    assert (plan.would_insert, plan.missing, plan.missing_keys) == (2, 0, ())
    assert any(sql.lstrip().upper().startswith("INSERT INTO BOOKS") for sql in plan.sql)
    report = setwise.apply(books, Book, str(path), missing="insert", chunk_rows=chunk_rows)
    assert (report.matched, report.changed, report.inserted) == (3, 2, 2)
    assert snapshot(books) != before


def test_a_plan_with_missing_error_raises_as_the_run_would(books: Engine, tmp_path: Path) -> None:
    path = write_changes(tmp_path, "csv", ROWS)
    with pytest.raises(setwise.NotFoundError) as raised:
        setwise.plan(books, Book, str(path), missing="error")
    assert (raised.value.keys, raised.value.count) == ((50, 51), 2)


def test_plan_and_apply_missing_insert_on_the_command_line(books: Engine, tmp_path: Path) -> None:
    path = write_changes(tmp_path, "csv", ROWS)
    url = cli_url(books)
    planned = run_setwise("plan", "books", "--from", str(path), "--missing", "insert", "--db", url)
    assert planned.returncode == 0, planned.stderr
    assert "would insert" in planned.stdout
    assert "Would change 2 rows and insert 2 in 1 chunk." in planned.stdout
    done = run_setwise(
        "apply", "books", "--from", str(path), "--missing", "insert", "--yes", "--json", "--db", url
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["changed"], report["inserted"], report["missing"]) == (2, 2, 0)
    shown = run_setwise("show", report["run_id"], "--db", url)
    assert shown.returncode == 0, shown.stderr
    assert "inserted" in shown.stdout
    with books.connect() as connection:
        info = setwise.run_details(connection, report["run_id"])[0]
    assert (info.inserted, info.missing, info.arguments["missing"]) == (2, 0, "insert")


def test_missing_error_on_the_command_line_writes_nothing(books: Engine, tmp_path: Path) -> None:
    path = write_changes(tmp_path, "csv", ROWS)
    before = snapshot(books)
    url = cli_url(books)
    done = run_setwise(
        "apply", "books", "--from", str(path), "--missing", "error", "--chunk-rows", "2",
        "--yes", "--db", url,
    )  # fmt: skip
    assert done.returncode == 1
    assert "2 key(s) of the changes have no row in 'books'" in done.stderr
    assert "--missing insert" in done.stderr
    assert snapshot(books) == before


def test_missing_goes_with_from_and_takes_three_words(books: Engine, tmp_path: Path) -> None:
    url = cli_url(books)
    with_set = run_setwise(
        "apply", "books", "--set", "stock = 1", "--where", "id = 1", "--missing", "insert",
        "--yes", "--db", url,
    )  # fmt: skip
    assert with_set.returncode == 2
    assert "--missing goes with --from" in with_set.stderr
    path = write_changes(tmp_path, "csv", ROWS)
    wrong = run_setwise("plan", "books", "--from", str(path), "--missing", "upsert", "--db", url)
    assert wrong.returncode == 2
    assert "--missing upsert: say insert, error or report" in wrong.stderr


def test_an_upsert_refused_for_a_not_null_column_names_row_and_column(
    books: Engine, tmp_path: Path
) -> None:
    path = write_changes(tmp_path, "csv", [{"id": 1, "price": "2.00"}, {"id": 60, "price": "6"}])
    before = snapshot(books)
    done = run_setwise(
        "apply", "books", "--from", str(path), "--missing", "insert", "--yes", "--db",
        cli_url(books),
    )  # fmt: skip
    assert done.returncode == 1
    # By the key: where the database reads the file itself, its rows have no line numbers.
    for column in ("isbn", "title"):
        assert re.search(
            rf"column '{column}', .* the row would be inserted \(key 60\)", done.stderr
        )
    assert snapshot(books) == before
    assert Decimal(str(book_row(1)["price"])) != Decimal("2.00")
