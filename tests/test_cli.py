"""The real ``setwise`` executable, run as a subprocess against every backend."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, make_url, select, text

from setwise import Progress
from setwise import apply as library_apply
from setwise.cli.app import app
from setwise.cli.render import sparkline
from tests import backends
from tests.models import Book, book_row, create_books, snapshot
from tests.test_planner import SIX_WAY_JOIN, write_changes
from tests.test_update import SENT_UPDATE

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
    done = setwise("plan", "books", *RAISE_FICTION, "--sql", "--db", cli_url(books))
    assert done.returncode == 0, done.stderr
    output = done.stdout
    assert output.rstrip().endswith("Would change 5 rows in 1 chunk.")
    sql = output.split("SQL, each chunk:")[1].split("EXPLAIN:")[0]
    if backends.journals_in_update(books):  # one statement: the UPDATE journals its rows
        assert re.match(r"\s*WITH setwise_changed AS\s*\(UPDATE books SET price", sql)
        assert '"old".price AS o0' in sql and "INSERT INTO setwise_journal_books" in sql
    else:
        assert sql.strip().startswith("INSERT INTO setwise_journal_books")
        assert re.search(r"SELECT books\.id( AS id)?, books\.price", sql)  # key, old value
        assert "\n  UPDATE books" in sql
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
    assert SENT_UPDATE.match(found["sql"][-1])  # PostgreSQL 18: WITH … AS (UPDATE books …)
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
    # Issue 21 item 7: a missing default database is named, and no longer created empty.
    missing = setwise("plan", "books", *RAISE_FICTION, cwd=tmp_path)
    assert missing.returncode == 2
    assert f"no database at {tmp_path / 'setwise.db'}" in missing.stderr
    assert not (tmp_path / "setwise.db").exists()
    with backends.fresh_database("sqlite", tmp_path) as engine:
        create_books(engine, 20)
    (tmp_path / "test.db").rename(tmp_path / "setwise.db")
    done = setwise("plan", "books", *RAISE_FICTION, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Plan for 'books' on sqlite:///setwise.db" in done.stdout


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


def shown_on_terminal(args: list[str]) -> tuple[int, str]:
    """Run the command with a terminal as stdin and stdout; its exit code and all the text
    it drew (colours and cursor moves left out)."""
    main, attached = pty.openpty()
    environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    process = subprocess.Popen(
        [str(SETWISE), *args], stdin=attached, stdout=attached, stderr=attached, env=environment
    )
    os.close(attached)
    drawn = b""
    try:
        while chunk := os.read(main, 65536):
            drawn += chunk
    except OSError:  # Linux reports the end of a pty whose writers all closed as EIO
        pass
    finally:
        os.close(main)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn.decode(errors="replace"))
    return process.wait(timeout=120), shown


@pytest.mark.backends("sqlite")
def test_on_a_terminal_a_chunked_run_draws_a_progress_bar(books: Engine) -> None:
    args = ["apply", "books", *RAISE_FICTION, "--chunk-rows", "1", "--throttle", "0.3"]
    code, drawn = shown_on_terminal([*args, "--yes", "--db", cli_url(books)])
    assert code == 0, drawn
    # The bar is redrawn while the five one-row chunks run, then cleared for the report.
    assert re.search(r"books: updating, chunk [2-5] of about 5", drawn), drawn
    assert re.search(r"\b[1-5]/5\b", drawn), drawn
    assert "rows/s" in drawn
    assert "Changed 5 rows in 5 chunks" in drawn


def test_help_lists_every_command() -> None:
    done = setwise("--help")
    assert done.returncode == 0
    for command in COMMANDS:
        assert command in done.stdout


COMMANDS = (
    "plan",
    "apply",
    "delete",
    "runs",
    "show",
    "revert",
    "abandon",
    "init",
    "pause",
    "continue",
    "stop",
    "tune",
    "bench",
    "demo",
)


# -- changesets from files ------------------------------------------------------------

#: Ten corrections: 1-3 already hold their values, 4-8 change, 404 and 405 are unknown.
CORRECTIONS = [
    {"id": i, "price": str(book_row(i)["price"]), "stock": book_row(i)["stock"]} for i in (1, 2, 3)
] + [{"id": i, "price": f"{i}.25", "stock": 1000 + i} for i in range(4, 9)]
CORRECTIONS += [{"id": 404, "price": "1.00", "stock": 1}, {"id": 405, "price": "1.00", "stock": 1}]


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_plan_then_apply_from_a_file(books: Engine, tmp_path: Path, kind: str) -> None:
    changes = write_changes(tmp_path, kind, CORRECTIONS)
    before = snapshot(books)
    planned = setwise("plan", "books", "--from", str(changes), "--json", "--db", cli_url(books))
    assert planned.returncode == 0, planned.stderr
    found = json.loads(planned.stdout)
    assert snapshot(books) == before
    done = setwise("apply", "books", "--from", str(changes), "-y", "--json", "--db", cli_url(books))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    counts = ("matched", "unchanged", "missing", "missing_keys", "strategy")
    assert {k: found[k] for k in counts} == {k: report[k] for k in counts}
    assert found["would_change"] == report["changed"] == 5
    assert report["missing_keys"] == [404, 405]
    after = prices(books)
    assert after[4] == Decimal("4.25") and after[1] == before[0][4]


def test_plan_from_a_file_in_tables_ends_with_what_would_change(
    books: Engine, tmp_path: Path
) -> None:
    changes = write_changes(tmp_path, "csv", CORRECTIONS)
    args = ["--from", str(changes), "--chunk-rows", "3", "--sql", "--db", cli_url(books)]
    done = setwise("plan", "books", *args)
    assert done.returncode == 0, done.stderr
    assert "Keys not in 'books': 404, 405" in done.stdout
    assert "SQL of the first chunk:" in done.stdout
    assert done.stdout.rstrip().endswith("Would change 5 rows in 4 chunks.")
    auto = setwise(
        "plan", "books", "--from", str(changes), "--chunk-rows", "auto", "--db", cli_url(books)
    )
    assert auto.stdout.rstrip().endswith("Would change 5 rows in about 1 chunk.")


def test_apply_from_stdin_keyed_by_another_column(books: Engine) -> None:
    lines = "isbn,title\n978-000002,Second\n978-000003,Third\n"
    done = subprocess.run(
        [
            str(SETWISE),
            "apply",
            "books",
            "--from",
            "-",
            "--key",
            "isbn",
            "--yes",
            "--db",
            cli_url(books),
        ],
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Changed 2 rows in 1 chunk" in done.stdout
    with books.connect() as connection:
        titles = dict(connection.execute(select(Book.id, Book.title).where(Book.id <= 3)).all())
    assert titles == {1: "Book 1", 2: "Second", 3: "Third"}


def test_csv_null_marks_null_cells(books: Engine, tmp_path: Path) -> None:
    changes = tmp_path / "genres.csv"
    changes.write_text("id,genre\n1,NULL\n2,\n")
    args = ["--from", str(changes), "--csv-null", "NULL", "-y", "--db", cli_url(books)]
    done = setwise("apply", "books", *args)
    assert done.returncode == 0, done.stderr
    with books.connect() as connection:
        genres = dict(connection.execute(select(Book.id, Book.genre).where(Book.id <= 2)).all())
    assert genres == {1: None, 2: ""}


def run_id_of(output: str) -> str:
    found = re.search(r"Run (\S+): undo it", output)
    assert found, output
    return found.group(1)


def test_chunked_apply_then_runs_show_and_revert(books: Engine, tmp_path: Path) -> None:
    before = snapshot(books)
    changes = write_changes(tmp_path, "csv", CORRECTIONS)
    db = ["--db", cli_url(books)]
    done = setwise("apply", "books", "--from", str(changes), "--chunk-rows", "3", "-y", *db)
    assert done.returncode == 0, done.stderr
    assert "Changed 5 rows in 4 chunks" in done.stdout
    run_id = run_id_of(done.stdout)

    listed = setwise("runs", "--json", *db)
    assert listed.returncode == 0, listed.stderr
    (run,) = json.loads(listed.stdout)
    assert (run["run_id"], run["status"], run["changed"], run["chunks"]) == (run_id, "done", 5, 4)
    assert run_id in setwise("runs", *db).stdout

    shown = setwise("show", run_id, *db)
    assert shown.returncode == 0, shown.stderr
    assert f"Run {run_id}: apply of 'books', done" in shown.stdout
    assert "columns      price, stock" in shown.stdout
    (spark,) = re.findall(r"Seconds per chunk: (\S+)", shown.stdout)
    assert len(spark) == 4 and set(spark) <= set("▁▂▃▄▅▆▇█")
    details = json.loads(setwise("show", run_id, "--json", *db).stdout)
    assert [c["chunk"] for c in details["chunks"]] == [1, 2, 3, 4]
    assert sum(c["changed"] for c in details["chunks"]) == 5

    undone = setwise("revert", run_id, "--chunk-rows", "2", "--actor", "ops", "--yes", *db)
    assert undone.returncode == 0, undone.stderr
    assert "Changed 5 rows in 3 chunks" in undone.stdout
    assert snapshot(books) == before
    (revert, _) = json.loads(setwise("runs", "--json", *db).stdout)
    assert (revert["kind"], revert["actor"], revert["chunks"]) == ("revert", "ops", 3)


def test_abandon_ends_an_interrupted_run_and_refuses_an_ended_one(books: Engine) -> None:
    db = ["--db", cli_url(books)]

    def interrupt(progress: Progress) -> None:
        if progress.chunk:  # after the first chunk, not while staging
            raise KeyboardInterrupt

    changes = [{"id": i, "stock": 0} for i in range(1, 11)]
    with pytest.raises(KeyboardInterrupt):
        library_apply(books, Book, changes, chunk_rows=4, progress=interrupt)
    run_id = json.loads(setwise("runs", "--json", *db).stdout)[0]["run_id"]
    done = setwise("abandon", run_id, "--yes", *db)
    assert done.returncode == 0, done.stderr
    assert f"Run {run_id} abandoned after 1 chunk;" in done.stdout
    again = setwise("abandon", run_id, "--yes", *db)
    assert again.returncode == 1
    assert f"run {run_id} is abandoned: there is nothing to abandon" in again.stderr


def test_revert_over_rows_changed_since_lists_them_and_exits_1(
    books: Engine, tmp_path: Path
) -> None:
    db = ["--db", cli_url(books)]
    done = setwise("apply", "books", "--set", "stock = 7", "--where", "id <= 2", "-y", *db)
    run_id = run_id_of(done.stdout)
    with books.begin() as connection:
        connection.execute(text("UPDATE books SET stock = 99 WHERE id = 2"))
    refused = setwise("revert", run_id, "--yes", *db)
    assert refused.returncode == 1
    assert "key 2, stock: the run wrote 7, now 99" in refused.stderr
    assert "--force" in refused.stderr
    with books.connect() as connection:
        assert connection.scalar(text("SELECT stock FROM books WHERE id = 1")) == 7
    forced = setwise("revert", run_id, "--force", "--yes", *db)
    assert forced.returncode == 0, forced.stderr
    with books.connect() as connection:
        stocks = connection.execute(text("SELECT stock FROM books WHERE id <= 2 ORDER BY id"))
        assert [s for (s,) in stocks] == [3, 6]


def test_a_failed_chunk_names_itself_and_how_to_resume(books: Engine, tmp_path: Path) -> None:
    rows = [{"id": i, "price": f"{i}.50"} for i in range(1, 7)]
    rows[4]["price"] = "-1.00"  # chunk 3 breaks ck_books_price_positive
    changes = write_changes(tmp_path, "csv", rows)
    db = ["--db", cli_url(books)]
    failed = setwise("apply", "books", "--from", str(changes), "--chunk-rows", "2", "-y", *db)
    assert failed.returncode == 1
    assert "chunk 3 failed and was rolled back" in failed.stderr
    assert "Traceback" not in failed.stderr
    (command,) = re.findall(r"Resume with:\n  (.+)", failed.stderr)
    assert "--resume" in command and "--chunk-rows 2" in command
    assert prices(books)[4] == Decimal("4.50") and prices(books)[5] != Decimal("5.50")


@pytest.mark.backends("sqlite")
def test_ctrl_c_during_apply_says_how_to_resume_and_resume_finishes(
    books: Engine, tmp_path: Path
) -> None:
    rows = [{"id": i, "stock": 500 + i} for i in range(1, 21)]
    changes = write_changes(tmp_path, "csv", rows)
    args = ["apply", "books", "--from", str(changes), "--chunk-rows", "2", "--throttle", "0.3"]
    process = subprocess.Popen(
        [str(SETWISE), *args, "-y", "--db", cli_url(books)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    # Interrupted once its first chunk is in (a fixed wait could land while the command
    # is still starting, under load).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        with books.connect() as connection:
            if connection.scalar(text("SELECT COUNT(*) FROM books WHERE stock > 500")):
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Interrupted" in stderr and "Traceback" not in stderr
    (command,) = re.findall(r"Resume with:\n  (.+)", stderr)
    with books.connect() as connection:
        written = connection.scalar(text("SELECT COUNT(*) FROM books WHERE stock > 500"))
    assert 0 < written < 20
    path = f"{SETWISE.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    resumed = subprocess.run(
        command, shell=True, capture_output=True, text=True, check=False, env={"PATH": path}
    )
    assert resumed.returncode == 0, resumed.stderr
    with books.connect() as connection:
        assert connection.scalar(text("SELECT COUNT(*) FROM books WHERE stock > 500")) == 20


CHANGESET_FAILURES = [
    (["--key", "isbm"], 2, "Did you mean 'isbn'?"),
    (["--set", "stock = 0"], 2, "not both"),
    (["--chunk-rows", "lots"], 2, "--chunk-rows takes a positive number or auto"),
    (["--resume", "nope"], 1, "nope"),
]


@pytest.mark.parametrize(
    ("extra", "code", "message"), CHANGESET_FAILURES, ids=[m for _, _, m in CHANGESET_FAILURES]
)
def test_changeset_failures_exit_with_their_code_and_a_message(
    books: Engine, tmp_path: Path, extra: list[str], code: int, message: str
) -> None:
    changes = write_changes(tmp_path, "csv", CORRECTIONS)
    before = snapshot(books)
    done = setwise("apply", "books", "--from", str(changes), *extra, "-y", "--db", cli_url(books))
    assert done.returncode == code, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(books) == before


def test_bad_values_in_a_file_are_all_named_with_their_lines(books: Engine, tmp_path: Path) -> None:
    changes = tmp_path / "bad.csv"
    changes.write_text("id,price,stock\n1,cheap,3\n2,1.00,many\n1,2.00,4\n")
    done = setwise("plan", "books", "--from", str(changes), "--db", cli_url(books))
    assert done.returncode == 1
    assert "row 2, column 'price', value 'cheap'" in done.stderr
    assert "row 3, column 'stock', value 'many'" in done.stderr


@pytest.mark.backends("sqlite")
def test_missing_file_and_revert_without_terminal_are_usage_errors(books: Engine) -> None:
    db = ["--db", cli_url(books)]
    missing = setwise("plan", "books", "--from", "nowhere.csv", *db)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    refused = setwise("revert", "20260101-000000-abcdef12", *db)
    assert refused.returncode == 2 and "pass --yes" in refused.stderr
    setwise("init", *db)
    unknown = setwise("show", "20260101-000000-abcdef12", *db)
    assert unknown.returncode == 1 and "20260101-000000-abcdef12" in unknown.stderr


def test_init_creates_the_journal_tables(books: Engine) -> None:
    done = setwise("init", "books", "--db", cli_url(books))
    assert done.returncode == 0, done.stderr
    with books.connect() as connection:
        names = set(inspect(connection).get_table_names())
    assert {"setwise_runs", "setwise_chunks", "setwise_journal_books"} <= names
    assert setwise("runs", "--db", cli_url(books)).stdout.strip() == "No runs yet."


@pytest.mark.requires("packed_journal")
def test_init_packs_a_journal_an_earlier_setwise_kept_a_row_per_change(books: Engine) -> None:
    db = ["--db", cli_url(books)]
    with books.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE setwise_journal_books (run_id varchar(40) NOT NULL,"
                " chunk integer NOT NULL, k_id integer NOT NULL, o_stock integer,"
                " n_stock integer, PRIMARY KEY (run_id, k_id))"
            )
        )
        connection.execute(
            text(
                "INSERT INTO setwise_journal_books VALUES ('20260101-000000-000000aa', 1, 3, 5, 6)"
            )
        )
    refused = setwise("apply", "books", "--set", "stock = 0", "--where", "id < 3", "--yes", *db)
    assert refused.returncode == 1 and "setwise init books" in refused.stderr
    done = setwise("init", "books", *db)
    assert done.returncode == 0, done.stderr
    with books.connect() as connection:
        packed = connection.execute(
            text("SELECT run_id, chunk, part, k_id, o_stock, n_stock FROM setwise_journal_books")
        ).all()
    assert [tuple(row) for row in packed] == [("20260101-000000-000000aa", 1, 0, [3], [5], [6])]
    again = setwise("apply", "books", "--set", "stock = 0", "--where", "id < 3", "--yes", *db)
    assert again.returncode == 0, again.stderr


def test_bench_prints_rows_per_second_and_writes_a_chart(engine: Engine, tmp_path: Path) -> None:
    chart = tmp_path / "bench.png"
    done = setwise("bench", "--rows", "300", "--chart", str(chart), "--db", cli_url(engine))
    assert done.returncode == 0, done.stderr
    for case in ("ORM loop", "ORM bulk UPDATE", "Core executemany", "setwise.apply, journaled"):
        assert case in done.stdout
    assert chart.read_bytes().startswith(b"\x89PNG")
    with engine.connect() as connection:
        assert not [n for n in inspect(connection).get_table_names() if "bench" in n]


def test_sparkline_scales_to_the_slowest_and_fits_its_width() -> None:
    assert sparkline([1.0, 2.0, 4.0, 8.0]) == "▂▃▅█"
    assert len(sparkline([0.1] * 500)) == 60
    assert sparkline([]) == ""


def test_every_command_has_help_and_is_in_the_docs() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    names = {command.name or command.callback.__name__ for command in app.registered_commands}  # type: ignore[union-attr]
    assert names == set(COMMANDS)
    for command in app.registered_commands:
        assert command.callback is not None and command.callback.__doc__
        name = command.name or command.callback.__name__
        assert f"setwise {name}" in docs, name


def test_plan_timeout_stops_a_count_that_runs_too_long(engine: Engine) -> None:
    create_books(engine, 100)
    done = setwise(
        "plan", "books", "--set", "stock = 0", "--where", SIX_WAY_JOIN,
        "--plan-timeout", "0.5", "--db", cli_url(engine),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "ran longer than 0.5 s" in done.stderr and "--plan-timeout" in done.stderr
    refused = setwise("plan", "books", "--all-rows", "--set", "stock = 0", "--plan-timeout", "-1")
    assert refused.returncode == 2 and "--plan-timeout must be 0" in refused.stderr
