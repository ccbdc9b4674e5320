"""The real ``setwise`` executable, run as a subprocess against every backend."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, select, text

from tests.models import Book, book_row, create_books, snapshot

SETWISE = Path(sys.executable).parent / "setwise"
FICTION = {i for i in range(1, 21) if book_row(i)["genre"] == "fiction"}


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


def cli_url(engine: Engine) -> str:
    """The URL that reaches the test's fresh database from another process."""
    url = engine.url
    if engine.dialect.name == "postgresql":
        # The test engine selects its schema through connect_args; a URL says it so.
        with engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def setwise(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command with no terminal attached, as a script would."""
    environment = {k: v for k, v in os.environ.items() if k != "SETWISE_DB"}
    return subprocess.run(
        [str(SETWISE), *args],
        capture_output=True,
        text=True,
        env={**environment, **(env or {})},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def prices(engine: Engine) -> dict[int, Decimal]:
    with engine.connect() as connection:
        return dict(connection.execute(select(Book.id, Book.price)).all())  # type: ignore[arg-type]


RAISE_FICTION = ["--set", "price = price * 1.10", "--where", "genre = 'fiction'"]


def test_plan_shows_counts_sql_explain_and_what_would_change(books: Engine) -> None:
    before = snapshot(books)
    done = setwise("plan", "books", *RAISE_FICTION, "--db", cli_url(books))
    assert done.returncode == 0, done.stderr
    output = done.stdout
    assert output.rstrip().endswith("Would change 5 rows in 1 chunk.")
    sql = output.split("SQL, each chunk:")[1].split("EXPLAIN:")[0]
    assert sql.strip().startswith("SELECT books.id, books.price")
    assert "\n  UPDATE books SET price=" in sql
    assert "fiction" not in sql and "1.10" not in sql
    assert "EXPLAIN:" in output
    assert "no index of 'books' starts with genre" in output
    assert snapshot(books) == before


def test_plan_json_is_for_programs(books: Engine) -> None:
    done = setwise("plan", "books", *RAISE_FICTION, "--json", "--db", cli_url(books))
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert (found["matched"], found["would_change"], found["unchanged"]) == (5, 5, 0)
    assert found["chunks"] == 1 and found["explain"]
    assert found["sql"][-1].startswith("UPDATE books SET price=")
    assert [w["kind"] for w in found["warnings"]] == ["unindexed-filter"]


def test_apply_with_set_and_where_changes_exactly_those_rows(books: Engine) -> None:
    before = prices(books)
    done = setwise("apply", "books", *RAISE_FICTION, "--yes", "--db", cli_url(books))
    assert done.returncode == 0, done.stderr
    assert "Changed 5 rows in 1 chunk (" in done.stdout
    after = prices(books)
    for i, price in before.items():
        want = (price * Decimal("1.10")).quantize(Decimal("0.01")) if i in FICTION else price
        assert after[i] == want, i


def test_apply_every_row_as_json(books: Engine) -> None:
    args = ["--set", "stock = 0", "--set", "genre = UPPER(COALESCE(genre, 'none'))"]
    done = setwise("apply", "books", *args, "--all-rows", "-y", "--json", "--db", cli_url(books))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["matched"], report["changed"]) == (20, 20)
    assert "update" in report["strategy"]
    with books.connect() as connection:
        rows = connection.execute(select(Book.genre, Book.stock)).all()
    assert {genre for genre, _ in rows} == {"FICTION", "HISTORY", "SCIENCE", "NONE"}
    assert {stock for _, stock in rows} == {0}


def test_apply_without_yes_and_without_a_terminal_refuses(books: Engine) -> None:
    before = snapshot(books)
    done = setwise("apply", "books", *RAISE_FICTION, "--db", cli_url(books))
    assert done.returncode == 2
    assert "pass --yes" in done.stderr
    assert snapshot(books) == before


HOSTILE = [
    ("--where", "genre = 'fiction'; DROP TABLE books", "second statement"),
    ("--where", "DROP TABLE books", "DROP is not allowed"),
    ("--where", "authors.name = 'Author 1'", "column of another table"),
    ("--where", "genre = 'fiction", "unterminated ' quote"),
    ("--set", "price = (SELECT price FROM books FOR UPDATE)", "UPDATE is not allowed"),
]


@pytest.mark.parametrize(("option", "value", "reason"), HOSTILE, ids=[v for _, v, _ in HOSTILE])
def test_hostile_text_is_refused_with_exit_2_and_the_table_unchanged(
    books: Engine, option: str, value: str, reason: str
) -> None:
    before = snapshot(books)
    texts = {"--set": "stock = 0", "--where": "id > 0", option: value}
    args = ["--set", texts["--set"], "--where", texts["--where"], "--yes"]
    done = setwise("apply", "books", *args, "--db", cli_url(books))
    assert done.returncode == 2
    assert reason in done.stderr
    assert value in done.stderr and "^" in done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(books) == before
    with books.connect() as connection:
        assert connection.scalar(text("SELECT COUNT(*) FROM books")) == 20


FAILURES = [
    (["plan", "bookz", "--set", "stock = 0", "--all-rows"], 2, "Did you mean 'books'?"),
    (["plan", "books", "--set", "stok = 0", "--all-rows"], 2, "Did you mean 'stock'?"),
    (["plan", "books", "--set", "stock = 0"], 2, "--all-rows for every row"),
    (["plan", "books", "--set", "stock = 0", "--where", "id = 1", "--all-rows"], 2, "not both"),
    (["plan", "books", "--where", "id = 1"], 2, "--set"),
    (
        ["apply", "books", "--set", "price = 1.005", "--where", "id = 1", "-y"],
        1,
        "3 decimal places",
    ),
    (
        ["apply", "books", "--set", "price = -1", "--where", "id = 1", "-y"],
        1,
        "ck_books_price_positive",
    ),
]


@pytest.mark.parametrize(("args", "code", "message"), FAILURES, ids=[m for _, _, m in FAILURES])
def test_failures_exit_with_their_code_and_a_message(
    books: Engine, args: list[str], code: int, message: str
) -> None:
    before = snapshot(books)
    done = setwise(*args, "--db", cli_url(books))
    assert done.returncode == code, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(books) == before


@pytest.mark.backends("postgresql", "mariadb")
def test_a_password_in_the_url_is_never_printed(books: Engine) -> None:
    db = make_url(cli_url(books)).set(password="s3cr3t-pw").render_as_string(hide_password=False)
    # PostgreSQL here trusts the client and connects; MariaDB refuses the password.
    done = setwise("plan", "books", *RAISE_FICTION, "--db", db)
    assert done.returncode in (0, 1)
    assert "root:***@" in done.stdout + done.stderr
    assert "s3cr3t-pw" not in done.stdout + done.stderr
    debugged = setwise("plan", "books", *RAISE_FICTION, "--debug", "--db", db)
    assert "s3cr3t-pw" not in debugged.stdout + debugged.stderr


def test_a_server_that_does_not_answer_fails_with_exit_1_and_no_password() -> None:
    db = "postgresql+psycopg://root:s3cr3t-pw@127.0.0.1:1/nowhere"
    done = setwise("plan", "books", *RAISE_FICTION, "--db", db)
    assert done.returncode == 1
    assert "root:***@127.0.0.1:1/nowhere" in done.stderr
    assert "s3cr3t-pw" not in done.stdout + done.stderr


@pytest.mark.backends("sqlite")
def test_the_database_comes_from_setwise_db_when_no_db_is_given(books: Engine) -> None:
    done = setwise("plan", "books", *RAISE_FICTION, env={"SETWISE_DB": cli_url(books)})
    assert done.returncode == 0, done.stderr
    assert "Would change 5 rows" in done.stdout


def test_the_default_database_is_setwise_db_in_the_working_directory(tmp_path: Path) -> None:
    done = setwise("plan", "books", *RAISE_FICTION, cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown table 'books'" in done.stderr
    assert (tmp_path / "setwise.db").exists()


@pytest.mark.backends("sqlite")
def test_debug_shows_the_traceback_and_only_then(books: Engine) -> None:
    args = ["plan", "bookz", "--set", "stock = 0", "--all-rows", "--db", cli_url(books)]
    assert "Traceback" not in setwise(*args).stderr
    assert "Traceback" in setwise(*args, "--debug").stderr


def on_terminal(args: list[str], answer: str) -> subprocess.CompletedProcess[str]:
    """Run the command with a terminal on stdin, typing ``answer`` at the prompt."""
    main, attached = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(SETWISE), *args],
            stdin=attached,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(main, f"{answer}\n".encode())
        out, err = process.communicate(timeout=120)
    finally:
        os.close(attached)
        os.close(main)
    return subprocess.CompletedProcess(args, process.returncode, out, err)


@pytest.mark.backends("sqlite")
def test_on_a_terminal_apply_shows_the_plan_and_asks(books: Engine) -> None:
    args = ["apply", "books", *RAISE_FICTION, "--db", cli_url(books)]
    before = snapshot(books)
    declined = on_terminal(args, "n")
    assert declined.returncode == 1
    assert "Would change 5 rows in 1 chunk." in declined.stdout
    assert "nothing was changed" in declined.stderr
    assert snapshot(books) == before
    accepted = on_terminal(args, "y")
    assert accepted.returncode == 0, accepted.stderr
    assert "Changed 5 rows in 1 chunk (" in accepted.stdout
    assert snapshot(books) != before


def test_help_lists_every_command() -> None:
    done = setwise("--help")
    assert done.returncode == 0
    for command in ("plan", "apply", "demo"):
        assert command in done.stdout
