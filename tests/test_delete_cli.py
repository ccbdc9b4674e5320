"""``setwise delete`` and ``setwise plan --delete`` through the real executable."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, func, select

from tests.models import Author, Book, create_books, snapshot
from tests.test_cli import cli_url, setwise


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


def test_plan_delete_counts_the_rows_and_deletes_nothing(books: Engine) -> None:
    before = snapshot(books)
    url = cli_url(books)
    shown = setwise(
        "plan", "books", "--delete", "--where", "id > 15", "--chunk-rows", "2", "--db", url
    )
    assert shown.returncode == 0, shown.stderr
    assert "Would delete 5 rows in 3 chunks." in shown.stdout
    done = setwise("plan", "books", "--delete", "--where", "id > 15", "--json", "--db", url)
    planned = json.loads(done.stdout)
    assert (planned["would_change"], planned["deletes"]) == (5, True)
    assert snapshot(books) == before
    refused = setwise("plan", "books", "--delete", "--set", "stock = 1", "--db", url)
    assert refused.returncode == 2


def test_delete_then_revert_from_the_command_line(books: Engine) -> None:
    before = snapshot(books)
    url = cli_url(books)
    unbounded = setwise("delete", "books", "--yes", "--db", url)
    assert unbounded.returncode == 2 and "--where EXPR, or --all-rows" in unbounded.stderr
    too_many = setwise(
        "delete", "books", "--where", "id > 5", "--max-rows", "3", "--yes", "--db", url
    )
    assert too_many.returncode == 1 and "refusing" in too_many.stderr
    assert snapshot(books) == before
    done = setwise(
        "delete", "books", "--where", "id > 5", "--chunk-rows", "4", "--yes", "--json", "--db", url
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["matched"], report["changed"], report["chunks"]) == (15, 15, 4)
    assert report["deleted"] == 15
    assert [row[0] for row in snapshot(books)] == [1, 2, 3, 4, 5]
    undone = setwise("revert", report["run_id"], "--yes", "--db", url)
    assert undone.returncode == 0, undone.stderr
    assert snapshot(books) == before


@pytest.mark.requires("foreign_keys_always")
def test_a_delete_a_foreign_key_refuses_exits_1_naming_it(books: Engine) -> None:
    url = cli_url(books)
    refused = setwise("delete", "authors", "--where", "id = 1", "--yes", "--db", url)
    assert refused.returncode == 1
    assert "fk_books_author" in refused.stderr and "'books'" in refused.stderr
    with books.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Author)).scalar_one() == 3
        assert connection.execute(select(func.count()).select_from(Book)).scalar_one() == 20
