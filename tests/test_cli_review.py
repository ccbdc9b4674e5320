"""The ``setwise`` executable's guards and reviewed plans (issue 21, items 3 and 4), run
as a subprocess against every backend: --max-rows, --expect-rows, --stamp-column,
--actor-column, --from with --where, --sample, --sql and apply --dry-run."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from tests.models import Book, book_row, create_books, create_stamped_items, snapshot
from tests.test_cli import cli_url, setwise
from tests.test_planner import write_changes

FICTION = [i for i in range(1, 21) if book_row(i)["genre"] == "fiction"]
RESTOCK_FICTION = ["--set", "stock = stock + 1", "--where", "genre = 'fiction'"]


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


def test_plan_shows_changed_rows_old_and_new_and_hides_sql(books: Engine) -> None:
    before = snapshot(books)
    done = setwise("plan", "books", *RESTOCK_FICTION, "--db", cli_url(books))
    assert done.returncode == 0, done.stderr
    first = FICTION[0]
    assert f"Rows that would change (all {len(FICTION)} rows):" in done.stdout
    assert f"\n  id {first}  stock: {first * 3} → {first * 3 + 1}\n" in done.stdout
    assert "SQL" not in done.stdout and "EXPLAIN" not in done.stdout
    assert done.stdout.rstrip().endswith(f"Would change {len(FICTION)} rows in 1 chunk.")
    assert snapshot(books) == before


def test_plan_sample_and_sql_options(books: Engine) -> None:
    done = setwise(
        "plan", "books", *RESTOCK_FICTION, "--sample", "2", "--sql", "--db", cli_url(books)
    )
    assert done.returncode == 0, done.stderr
    assert f"(the first 2 of {len(FICTION)}, by key):" in done.stdout
    shown = [line for line in done.stdout.splitlines() if line.startswith("  id ")]
    assert [line.split()[1] for line in shown] == [str(i) for i in FICTION[:2]]
    sql = done.stdout.split("SQL, each chunk:\n")[1].split("EXPLAIN:")[0]
    # PostgreSQL 18: the UPDATE journals its rows, "WITH setwise_changed AS\n  (UPDATE".
    assert re.search(r"^  (WITH setwise_changed AS\n  \()?UPDATE books", sql, re.M), sql
    assert "EXPLAIN:" in done.stdout
    none = setwise("plan", "books", *RESTOCK_FICTION, "--sample", "0", "--db", cli_url(books))
    assert "Rows that would change" not in none.stdout


def test_apply_dry_run_is_the_plan_and_writes_nothing(books: Engine) -> None:
    before = snapshot(books)
    planned = setwise("plan", "books", *RESTOCK_FICTION, "--db", cli_url(books))
    dry = setwise("apply", "books", *RESTOCK_FICTION, "--dry-run", "--db", cli_url(books))
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == planned.stdout
    assert snapshot(books) == before


@pytest.mark.parametrize(
    ("guard", "message"),
    [
        (["--max-rows", "3"], "3"),
        (["--expect-rows", "50"], "50"),
    ],
    ids=["max-rows", "expect-rows"],
)
def test_guards_refuse_with_exit_1_and_the_table_unchanged(
    books: Engine, guard: list[str], message: str
) -> None:
    before = snapshot(books)
    done = setwise("apply", "books", *RESTOCK_FICTION, *guard, "--yes", "--db", cli_url(books))
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stderr
    assert snapshot(books) == before
    fine = setwise(
        "apply",
        "books",
        *RESTOCK_FICTION,
        "--max-rows",
        str(len(FICTION)),
        "--expect-rows",
        str(len(FICTION)),
        "--yes",
        "--db",
        cli_url(books),
    )
    assert fine.returncode == 0, fine.stderr
    assert f"Changed {len(FICTION)} rows" in fine.stdout


def test_stamp_and_actor_columns_are_written(engine: Engine, tmp_path: Path) -> None:
    create_stamped_items(engine)
    changes = tmp_path / "items.csv"
    changes.write_text("id,qty\n1,10\n2,2\n")
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    done = setwise(
        "apply",
        "items",
        "--from",
        str(changes),
        "--stamp-column",
        "updated_at",
        "--actor-column",
        "updated_by",
        "--actor",
        "ops-bot",
        "--yes",
        "--db",
        cli_url(engine),
    )
    assert done.returncode == 0, done.stderr
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, updated_at, updated_by FROM items ORDER BY id")
        ).all()
    stamped = rows[0][1]
    if isinstance(stamped, str):  # SQLite hands back text for a raw query
        stamped = dt.datetime.fromisoformat(stamped)
    assert rows[0][2] == "ops-bot"
    assert abs((stamped.replace(tzinfo=None) - started).total_seconds()) < 60
    assert rows[1][1:] == (None, None) and rows[2][1:] == (None, None)
    stamps = ["--stamp-column", "updated_at", "--actor-column", "updated_by"]
    by_set = setwise(
        "apply", "items", "--set", "qty = 30", "--where", "id = 3", *stamps, "--yes",
        "--db", cli_url(engine),
    )  # fmt: skip
    assert by_set.returncode == 0, by_set.stderr
    with engine.connect() as connection:
        third = connection.execute(
            text("SELECT updated_at, updated_by FROM items WHERE id = 3")
        ).one()
    assert third[0] is not None and third[1]  # the OS user, with no --actor
    misspelt = setwise(
        "plan",
        "items",
        "--from",
        str(changes),
        "--stamp-column",
        "updated",
        "--db",
        cli_url(engine),
    )
    assert misspelt.returncode != 0 and "updated" in misspelt.stderr


def test_from_with_where_writes_only_the_matching_rows(books: Engine, tmp_path: Path) -> None:
    rows = [{"id": i, "stock": 500 + i} for i in range(1, 13)]
    changes = write_changes(tmp_path, "csv", rows)
    args = ["--from", str(changes), "--where", "genre = 'fiction'", "--db", cli_url(books)]
    inside = [i for i in range(1, 13) if i in FICTION]
    planned = setwise("plan", "books", *args)
    assert planned.returncode == 0, planned.stderr
    assert f"│ outside --where │ {12 - len(inside):>5} │" in planned.stdout
    assert planned.stdout.rstrip().endswith(f"Would change {len(inside)} rows in 1 chunk.")
    done = setwise("apply", "books", *args, "--yes")
    assert done.returncode == 0, done.stderr
    with books.connect() as connection:
        stock = dict(connection.execute(select(Book.id, Book.stock)).all())  # type: ignore[arg-type]
    assert {i for i in range(1, 21) if stock[i] != book_row(i)["stock"]} == set(inside)


REVIEW_FAILURES = [
    (["--all-rows"], "--all-rows goes with --set"),
    (["--where", "genr = 'fiction'"], "Did you mean 'genre'?"),
    (["--where", "genre = 'fiction'; DROP TABLE books"], "second statement"),
    (["--sample", "-1"], "--sample"),
    (["--max-rows", "-5"], "--max-rows"),
]


@pytest.mark.parametrize(("extra", "message"), REVIEW_FAILURES, ids=[m for _, m in REVIEW_FAILURES])
def test_a_changeset_with_a_wrong_option_is_a_usage_error(
    books: Engine, tmp_path: Path, extra: list[str], message: str
) -> None:
    changes = write_changes(tmp_path, "csv", [{"id": 1, "stock": 9}])
    before = snapshot(books)
    done = setwise("apply", "books", "--from", str(changes), *extra, "-y", "--db", cli_url(books))
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert snapshot(books) == before
