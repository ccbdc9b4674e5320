"""The history says what each run did (issue 21 item 8), and the progress bar says
where a run is (item 9): what a run read, kept with it; runs listed by table, status
and time; the bar drawn on a terminal."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

import setwise
from setwise import Progress
from setwise.errors import InvalidArgumentError
from tests.models import Book, book_row, create_books
from tests.test_cli import RAISE_FICTION, cli_url, shown_on_terminal
from tests.test_cli import setwise as run_cli
from tests.test_planner import write_changes

#: Five books repriced; book 404 is not in the table.
REPRICED = [{"id": i, "price": f"{i}.75"} for i in range(1, 6)] + [{"id": 404, "price": "1.00"}]


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the library records the source ---------------------------------------------------


@pytest.mark.parametrize("chunk_rows", [None, 2])
def test_a_changeset_run_records_the_file_it_read(
    books: Engine, tmp_path: Path, chunk_rows: int | None
) -> None:
    changes = write_changes(tmp_path, "csv", REPRICED)
    report = setwise.apply(
        books, Book, str(changes), csv_null="NULL", encoding="latin-1", chunk_rows=chunk_rows
    )
    assert report.run_id is not None
    info, _ = setwise.run_details(books, report.run_id)
    assert info.source == {
        "path": str(changes.resolve()),
        "size": changes.stat().st_size,
        "sha256": sha256_of(changes),
        "format": "csv",
        "options": {"csv_null": "NULL", "encoding": "latin-1", "csv_delimiter": ","},
    }


def test_a_parquet_run_and_a_run_of_rows_say_what_they_read(books: Engine, tmp_path: Path) -> None:
    changes = write_changes(tmp_path, "parquet", REPRICED)
    report = setwise.apply(books, Book, changes)
    assert report.run_id is not None
    source = setwise.run_details(books, report.run_id)[0].source
    assert source is not None
    assert (source["format"], source["sha256"]) == ("parquet", sha256_of(changes))
    report = setwise.apply(books, Book, [{"id": 1, "price": Decimal("9.50")}])
    assert report.run_id is not None
    assert setwise.run_details(books, report.run_id)[0].source == {"rows": "the rows given"}


def test_an_update_records_its_sql_and_the_text_it_was_written_as(books: Engine) -> None:
    statement = Book.__table__.update().where(Book.genre == "fiction").values(stock=Book.stock + 1)
    written = "--set 'stock = stock + 1' --where \"genre = 'fiction'\""
    report = setwise.update(books, statement, source=written, chunk_rows=2)
    assert report.run_id is not None
    source = setwise.run_details(books, report.run_id)[0].source
    assert source is not None
    assert source["text"] == written
    # The SQL keeps its placeholders' names; the values are not in it.
    assert "fiction" not in source["sql"]
    assert re.search(r"UPDATE books SET stock=\(?books.stock \+ :\w+", source["sql"]), source


def test_a_resumed_changeset_run_keeps_the_source_it_started_with(
    books: Engine, tmp_path: Path
) -> None:
    changes = write_changes(tmp_path, "csv", REPRICED)
    stop_after = 1

    def interrupt(step: Progress) -> None:
        if step.chunk == stop_after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as stopped:
        setwise.apply(books, Book, str(changes), chunk_rows=1, progress=interrupt)
    run_id = stopped.value.run_id  # type: ignore[attr-defined]
    first = setwise.run_details(books, run_id)[0].source
    changes.write_text(changes.read_text() + "\n")  # other bytes, the same rows
    stop_after = -1
    setwise.apply(books, Book, str(changes), chunk_rows=1, resume=run_id)
    info = setwise.run_details(books, run_id)[0]
    assert info.status == "done"
    assert info.source == first


def test_runs_are_listed_by_table_status_and_time(books: Engine) -> None:
    with books.begin() as connection:
        connection.execute(insert(Book.__table__), [book_row(99)])
    first = setwise.apply(books, Book, [{"id": 1, "price": Decimal("9.50")}])
    second = setwise.apply(books, "authors", [{"id": 1, "name": "Ann"}])
    setwise.revert(books, first.run_id or "")
    listed = {info.run_id: info for info in setwise.runs(books)}
    assert len(listed) == 3
    on_books = setwise.runs(books, table="books")
    assert {info.table for info in on_books} == {"books"} and len(on_books) == 2
    assert [info.run_id for info in setwise.runs(books, status="reverted")] == [first.run_id]
    done = setwise.runs(books, table="authors", status="done")
    assert [info.run_id for info in done] == [second.run_id]
    assert len(setwise.runs(books, since=dt.timedelta(minutes=5))) == 3
    assert setwise.runs(books, since=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)) == []
    with pytest.raises(InvalidArgumentError) as refused:
        setwise.runs(books, status="finished")
    assert (refused.value.argument, refused.value.value) == ("status", "finished")


# -- the command line shows and filters them ------------------------------------------


def test_show_names_the_file_a_run_read(books: Engine, tmp_path: Path) -> None:
    changes = write_changes(tmp_path, "csv", REPRICED)
    db = cli_url(books)
    done = run_cli("apply", "books", "--from", str(changes), "--yes", "--json", "--db", db)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    shown = run_cli("show", run_id, "--db", db)
    assert shown.returncode == 0, shown.stderr
    facts = [line.split(None, 1) for line in shown.stdout.splitlines() if line.startswith("  ")]
    lines = dict(facts)
    assert lines["source"] == str(changes.resolve())
    assert lines["size"] == f"{changes.stat().st_size:,} bytes"
    assert lines["sha256"] == sha256_of(changes)
    assert lines["format"] == "csv (csv_null='', encoding='utf-8', csv_delimiter=',')"
    as_json = json.loads(run_cli("show", run_id, "--json", "--db", db).stdout)
    assert as_json["run"]["arguments"]["source"]["sha256"] == sha256_of(changes)


def test_show_gives_the_set_and_where_an_update_was_written_with(books: Engine) -> None:
    db = cli_url(books)
    done = run_cli("apply", "books", *RAISE_FICTION, "--yes", "--json", "--db", db)
    assert done.returncode == 0, done.stderr
    shown = run_cli("show", json.loads(done.stdout)["run_id"], "--db", db)
    assert """source       --set 'price = price * 1.10' --where "genre = 'fiction'\"""" in (
        shown.stdout
    ), shown.stdout
    assert "sql          UPDATE books SET price=" in shown.stdout


def test_runs_filters_by_table_status_and_since(books: Engine, tmp_path: Path) -> None:
    db = cli_url(books)
    changes = write_changes(tmp_path, "csv", REPRICED)
    applied = run_cli("apply", "books", "--from", str(changes), "--yes", "--json", "--db", db)
    authors = write_changes(tmp_path, "jsonl", [{"id": 1, "name": "Ann"}])
    renamed = run_cli("apply", "authors", "--from", str(authors), "--yes", "--json", "--db", db)
    first, second = (json.loads(done.stdout)["run_id"] for done in (applied, renamed))
    assert run_cli("revert", first, "--yes", "--db", db).returncode == 0

    def listed(*options: str) -> list[str]:
        done = run_cli("runs", *options, "--json", "--db", db)
        assert done.returncode == 0, done.stderr
        return [run["run_id"] for run in json.loads(done.stdout)]

    assert set(listed()) == {first, second, *listed("--status", "done", "--table", "books")}
    assert listed("--table", "authors") == [second]
    assert listed("--status", "reverted") == [first]
    assert len(listed("--since", "2h")) == 3
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
    assert listed("--since", tomorrow) == []
    empty = run_cli("runs", "--since", tomorrow, "--db", db)
    assert empty.stdout.strip() == "No runs match."
    wrong = run_cli("runs", "--since", "last tuesday", "--db", db)
    assert wrong.returncode == 2
    assert "--since last tuesday: give a date or time" in wrong.stderr
    unknown = run_cli("runs", "--status", "finished", "--db", db)
    assert unknown.returncode == 2 and "--status finished: give one of running," in unknown.stderr


# -- the progress bar on a terminal ---------------------------------------------------

#: Rows in the changeset the progress bar is drawn for: about a second or two of reading
#: and staging on SQLite.
MANY = 150_000


@pytest.mark.backends("sqlite", "mariadb")  # MariaDB's bar sat at 0/? while staging
@pytest.mark.lacks("csv_files")  # read by the database: staging reports no rows
def test_on_a_terminal_the_bar_names_the_table_the_phase_and_counts(
    books: Engine, tmp_path: Path
) -> None:
    with books.begin() as connection:
        connection.execute(insert(Book.__table__), [book_row(i) for i in range(21, MANY + 1)])
    changes = tmp_path / "stock.csv"
    changes.write_text("id,stock\n" + "".join(f"{i},{i % 97}\n" for i in range(1, MANY + 1)))
    args = ["apply", "books", "--from", str(changes), "--chunk-rows", "20000", "--yes"]
    code, drawn = shown_on_terminal([*args, "--db", cli_url(books)])
    assert code == 0, drawn
    # What a person saw while the run went: the table, what it was doing, counts with
    # thousands separators (the bar is cleared for the report at the end).
    assert "books: reading and checking" in drawn, drawn
    assert re.search(r"books: merging, chunk [2-8] of about [5-9]", drawn), drawn
    assert re.search(r"\b\d{1,3},\d{3}(/150,000)? rows\b", drawn), drawn
    assert "Changed" in drawn
