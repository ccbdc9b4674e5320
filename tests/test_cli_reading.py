"""Changeset files as they come (issue 21, item 2), through the real ``setwise``
executable and through ``setwise.apply``, on every backend: TSV, another separator,
standard input as JSONL, another encoding, dates in another form; and the refusals
that say which option reads the file (a header of one field, an Excel serial date, a
byte that is not UTF-8)."""

from __future__ import annotations

import datetime as dt
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

import setwise
from tests.models import Book, create_books, snapshot
from tests.test_cli import SETWISE, cli_url
from tests.test_cli import setwise as run_setwise


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 5)
    return engine


def columns(engine: Engine, *names: str) -> dict[int, tuple[Any, ...]]:
    """Books 1 to 3: id → the named columns."""
    picked = [getattr(Book, name) for name in names]
    with engine.connect() as connection:
        found = connection.execute(select(Book.id, *picked).where(Book.id <= 3)).all()
    return {row[0]: tuple(row[1:]) for row in found}


def apply_file(engine: Engine, path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return run_setwise(
        "apply", "books", "--from", str(path), *options, "--yes", "--db", cli_url(engine)
    )


def test_a_tsv_file_is_read_by_its_name_with_bom_and_crlf(books: Engine, tmp_path: Path) -> None:
    changes = tmp_path / "titles.tsv"
    changes.write_bytes(b"\xef\xbb\xbfid\ttitle\r\n1\tOne, two; three\r\n2\tTwo\r\n")
    done = apply_file(books, changes)
    assert done.returncode == 0, done.stderr
    assert "Changed 2 rows" in done.stdout
    assert columns(books, "title") == {1: ("One, two; three",), 2: ("Two",), 3: ("Book 3",)}


def test_a_semicolon_file_with_delimiter_and_plan_reading_it_alike(
    books: Engine, tmp_path: Path
) -> None:
    changes = tmp_path / "export.txt"  # no name to tell the format by: --format says it
    changes.write_text('id;title;stock\n1;"A; B";7\n3;C;9\n', encoding="utf-8")
    options = ["--format", "csv", "--delimiter", ";"]
    planned = run_setwise("plan", "books", "--from", str(changes), *options, "--db", cli_url(books))
    assert planned.returncode == 0, planned.stderr
    assert "Would change 2 rows" in planned.stdout
    done = apply_file(books, changes, *options)
    assert done.returncode == 0, done.stderr
    assert columns(books, "title", "stock") == {1: ("A; B", 7), 2: ("Book 2", 6), 3: ("C", 9)}


def test_a_header_of_one_field_holding_a_semicolon_is_refused_naming_delimiter(
    books: Engine, tmp_path: Path
) -> None:
    before = snapshot(books)
    changes = tmp_path / "fixes.csv"
    changes.write_text("id;title\n1;New\n", encoding="utf-8")
    done = apply_file(books, changes)
    assert done.returncode == 2, done.stderr  # the file as given cannot be a changeset
    assert done.stderr.strip() == (
        f"error: the header of {changes} is one column, 'id;title': the file looks "
        "separated by ';', not by ',': pass --delimiter ';'"
    )
    assert "did you mean" not in done.stderr
    assert snapshot(books) == before
    # The hint, pasted, reads the file.
    assert apply_file(books, changes, "--delimiter", ";").returncode == 0
    assert columns(books, "title")[1] == ("New",)


def test_jsonl_on_standard_input_with_format(books: Engine) -> None:
    lines = '{"id": 1, "title": "Über", "price": 3.90}\n\n{"id": 2, "stock": 0}\n'
    command = [str(SETWISE), "apply", "books", "--from", "-", "--format", "jsonl", "--yes"]
    done = subprocess.run(
        [*command, "--db", cli_url(books)],
        input=lines.encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    found = columns(books, "title", "price", "stock")
    assert found[1][:2] == ("Über", Decimal("3.90")) and found[2][2] == 0


def test_a_latin1_file_with_encoding_and_without(books: Engine, tmp_path: Path) -> None:
    changes = tmp_path / "titles.csv"
    changes.write_bytes("id,title\n1,Café crème\n".encode("latin-1"))
    before = snapshot(books)
    refused = apply_file(books, changes)
    assert refused.returncode == 1
    assert "not UTF-8: byte 0xe9 at character 4" in refused.stderr
    assert refused.stderr.rstrip().endswith("or name its encoding (--encoding latin-1)")
    assert snapshot(books) == before
    done = apply_file(books, changes, "--encoding", "latin-1")
    assert done.returncode == 0, done.stderr
    assert columns(books, "title")[1] == ("Café crème",)


def test_dates_in_another_form_with_date_format(books: Engine, tmp_path: Path) -> None:
    changes = tmp_path / "published.csv"
    changes.write_text("id,published\n1,31/12/2023\n2,01/02/1999\n", encoding="utf-8")
    done = apply_file(books, changes, "--date-format", "%d/%m/%Y")
    assert done.returncode == 0, done.stderr
    found = columns(books, "published")
    assert found[1] == (dt.date(2023, 12, 31),) and found[2] == (dt.date(1999, 2, 1),)


def test_an_excel_serial_date_is_refused_naming_date_format(books: Engine, tmp_path: Path) -> None:
    changes = tmp_path / "published.csv"
    changes.write_text("id,published\n1,2023-12-30\n2,45291\n", encoding="utf-8")
    before = snapshot(books)
    done = apply_file(books, changes)
    assert done.returncode == 1
    assert (
        "row 3, column 'published', value '45291': a number, not a date: an Excel serial "
        "date? (45291 is 2023-12-31 in Excel); save the column as dates, or name their "
        "form (--date-format FORMAT)"
    ) in done.stderr
    assert snapshot(books) == before


def test_the_library_reads_alike(books: Engine, tmp_path: Path) -> None:
    changes = tmp_path / "fixes.dat"
    changes.write_bytes("id|title|published\r\n1|Noël|24.12.2020\r\n".encode("cp1252"))
    report = setwise.apply(
        books,
        Book,
        str(changes),
        format="csv",
        csv_delimiter="|",
        encoding="cp1252",
        date_format="%d.%m.%Y",
    )
    assert report.changed == 1
    assert columns(books, "title", "published")[1] == ("Noël", dt.date(2020, 12, 24))
    semicolons = tmp_path / "fixes.csv"
    semicolons.write_text("id;title\n2;X\n", encoding="utf-8")
    with pytest.raises(setwise.SchemaError, match=r"pass csv_delimiter=';'$"):
        setwise.apply(books, Book, str(semicolons))
    serial = tmp_path / "serial.csv"
    serial.write_text("id,published\n2,45291\n", encoding="utf-8")
    with pytest.raises(setwise.ValidationError, match=r"\(date_format=\)") as caught:
        setwise.apply(books, Book, str(serial))
    assert caught.value.problems[0].fix == ("date_format",)
