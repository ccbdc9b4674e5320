"""Every problem of a changeset is found in one pass and counted exactly (issue 18).

Bad values, NULLs where a value is required, unknown columns and duplicate keys are
looked for together, whatever the source (mappings, a CSV file the database reads
itself or Python reads, the CLI) and whatever the staging path (COPY, LOAD DATA,
INSERT). The error lists a bounded sample with the first of each kind, and its
``total`` and ``counts`` are exact however many problems there are.
"""

from __future__ import annotations

import csv
import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

import setwise
from setwise import ProblemKind
from setwise.dialects.mysql_load import load_data_allowed
from setwise.messages import SHOWN_PROBLEMS
from setwise.problems import MAX_PROBLEMS
from tests.models import Book, create_books, snapshot
from tests.test_cli import cli_url
from tests.test_cli import setwise as run_cli

KEYS = 100
"""Books in the table, each given once before the repeats."""

REPEATS = 2_500
"""Rows that repeat a key given earlier: more than ``MAX_PROBLEMS``, as in the issue."""


def mixed_rows(price: Any = Decimal("1.00")) -> list[dict[str, Any]]:
    """Every key once, then ``REPEATS`` rows repeating them; one bad price, one NULL
    title and one unknown field, each on a row whose key is repeated later too."""
    rows: list[dict[str, Any]] = [
        {"id": i, "title": f"Title {i}", "price": price} for i in range(1, KEYS + 1)
    ]
    rows += [{"id": 1 + j % KEYS, "title": f"Again {j}", "price": price} for j in range(REPEATS)]
    rows[10]["price"] = "cheap" if isinstance(price, str) else 1.5  # row 11, id 11
    rows[20]["title"] = None  # row 21, id 21
    return rows


def assert_all_found(error: setwise.ValidationError, *, first_row: int, unknown: int) -> None:
    """The error of ``mixed_rows`` (rows numbered from ``first_row``): every kind found
    and counted exactly, a bounded list with each kind in it and in the message."""
    counts = {
        ProblemKind.BAD_VALUE: 1,
        ProblemKind.NULL: 1,
        ProblemKind.DUPLICATE_KEY: REPEATS,
    }
    if unknown:
        counts[ProblemKind.UNKNOWN_COLUMN] = unknown
    assert error.counts == counts
    assert error.total == sum(counts.values()) == REPEATS + 2 + unknown
    assert (error.bad_values, error.nulls, error.duplicate_keys) == (1, 1, REPEATS)
    assert error.unknown_columns == unknown
    assert len(error.problems) <= MAX_PROBLEMS
    assert {p.kind for p in error.problems} == set(counts)
    found = {(p.kind, p.row, p.column) for p in error.problems}
    assert (ProblemKind.BAD_VALUE, first_row + 10, "price") in found
    assert (ProblemKind.NULL, first_row + 20, "title") in found
    # The repeats of the keys on the bad rows are duplicates too: those rows are staged.
    duplicates = {p.row: p for p in error.problems if p.kind == ProblemKind.DUPLICATE_KEY}
    assert duplicates[first_row + KEYS].reason == f"duplicate key: also in row {first_row}"
    assert duplicates[first_row + KEYS + 10].value == 11
    assert f"also in row {first_row + 10}" in duplicates[first_row + KEYS + 10].reason
    message = str(error)
    assert message.startswith(f"{error.total} problem(s) in the values for 'books' (")
    for kind, count in counts.items():
        assert f"{kind}: {count}" in message.splitlines()[0]
    listed = [line for line in message.splitlines() if line.startswith("  - ")]
    assert len(listed) == SHOWN_PROBLEMS
    assert message.splitlines()[-1] == f"  ... and {error.total - SHOWN_PROBLEMS} more"
    assert "duplicate key: also in row" in message  # though found after the others


def write_mixed_csv(path: Path, *, unknown: bool) -> Path:
    rows = mixed_rows(price="1.00")
    header = ["id", "title", "price", *(["stok"] if unknown else [])]
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row["id"], row["title"], row["price"], *([1] if unknown else [])])
    return path


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, KEYS)
    return engine


def test_mappings_report_duplicates_bad_values_and_nulls_together(books: Engine) -> None:
    before = snapshot(books)
    rows = mixed_rows()
    rows[30]["stok"] = 1  # an unknown field, on one row only
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(books, Book, rows)
    assert_all_found(caught.value, first_row=1, unknown=1)
    unknown = [p for p in caught.value.problems if p.kind == ProblemKind.UNKNOWN_COLUMN]
    assert [(p.row, p.column) for p in unknown] == [(31, "stok")]
    assert snapshot(books) == before
    with pytest.raises(setwise.ValidationError) as planned:  # a plan finds the same
        setwise.plan(books, Book, rows)
    assert planned.value.counts == caught.value.counts


def test_a_csv_file_reports_every_kind_together(books: Engine, tmp_path: Path) -> None:
    """An unknown column in the header does not stop the search for bad values and
    duplicates, nor they the search for it. Without it, PostgreSQL's COPY reads the
    file first and refuses it; the Python reader then finds the same, counted alike."""
    before = snapshot(books)
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(books, Book, write_mixed_csv(tmp_path / "unknown.csv", unknown=True))
    assert_all_found(caught.value, first_row=2, unknown=1)  # row = line; the header is 1
    with pytest.raises(setwise.ValidationError) as plain:
        setwise.apply(books, Book, write_mixed_csv(tmp_path / "plain.csv", unknown=False))
    assert_all_found(plain.value, first_row=2, unknown=0)
    assert snapshot(books) == before


@pytest.mark.requires("csv_files")
def test_duplicates_the_database_reader_finds_are_counted_exactly(
    books: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """COPY stages a strict CSV file whose values it reads alike; the repeated keys (and
    a value with more places than the column keeps, which COPY would round) are then
    counted exactly and reported together."""
    path = tmp_path / "repeats.csv"
    lines = ["id,price"] + [f"{i},{i}.00" for i in range(1, KEYS + 1)]
    lines += [f"{1 + j % KEYS},5.00" for j in range(REPEATS)]
    lines[5] = "5,1.005"  # row 6
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (
        caplog.at_level(logging.INFO, logger="setwise"),
        pytest.raises(setwise.ValidationError) as caught,
    ):
        setwise.apply(books, Book, path)
    assert "read in Python, not by the database: a key given twice" in caplog.text
    error = caught.value
    assert error.counts == {ProblemKind.BAD_VALUE: 1, ProblemKind.DUPLICATE_KEY: REPEATS}
    assert error.total == REPEATS + 1
    first = error.problems[0]
    assert (first.row, first.column, first.value) == (6, "price", "1.005")


@pytest.mark.requires("load_data_local")
def test_load_data_staging_counts_duplicates_of_bad_rows_too(books: Engine) -> None:
    """LOAD DATA LOCAL stages the rows; duplicates and bad values come back together."""
    loading = create_engine(books.url, connect_args={"local_infile": True})
    try:
        with loading.connect() as connection:
            assert load_data_allowed(connection)
        before = snapshot(books)
        with pytest.raises(setwise.ValidationError) as caught:
            setwise.apply(loading, Book, mixed_rows())
        assert_all_found(caught.value, first_row=1, unknown=0)
        assert snapshot(books) == before
    finally:
        loading.dispose()


def test_the_cli_prints_the_counts_and_a_bounded_list(books: Engine, tmp_path: Path) -> None:
    path = write_mixed_csv(tmp_path / "mixed.csv", unknown=True)
    before = snapshot(books)
    for extra in ([], ["--json"]):
        done = run_cli(
            "apply", "books", "--from", str(path), "--yes", *extra, "--db", cli_url(books)
        )
        assert done.returncode == 1, done.stdout + done.stderr
        first, *rest = done.stderr.splitlines()
        total = REPEATS + 3
        assert first.startswith(f"error: {total} problem(s) in the values for 'books' (")
        for kind, count in (
            ("bad value", 1),
            ("NULL in NOT NULL", 1),
            ("unknown column", 1),
            ("duplicate key", REPEATS),
        ):
            assert f"{kind}: {count}" in first
        assert "row 12, column 'price', value 'cheap'" in done.stderr
        assert "row 22, column 'title', value NULL: NULL in a NOT NULL column" in done.stderr
        assert "column 'stok'" in done.stderr and "did you mean 'stock'" in done.stderr
        assert "duplicate key: also in row 2" in done.stderr
        assert sum(line.startswith("  - ") for line in rest) == SHOWN_PROBLEMS
        assert rest[-1] == f"  ... and {total - SHOWN_PROBLEMS} more"
        if not extra:
            assert done.stdout == ""
            continue
        # With --json the error is also one document on stdout, with the exact counts.
        error = json.loads(done.stdout)["error"]
        assert error["type"] == "ValidationError" and error["total"] == total
        assert error["exit_code"] == 1
    assert snapshot(books) == before


@pytest.mark.backends("sqlite", "postgresql")
def test_a_large_bad_file_keeps_a_bounded_list_and_exact_counts(
    engine: Engine, tmp_path: Path
) -> None:
    """Tens of thousands of bad values and repeated keys: ``problems`` stays bounded
    (the first of each kind among them), every count is exact."""
    create_books(engine, 10)
    rows = 40_000
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as file:
        file.write("id,stock\n")
        # Keys 1..10,000 four times over; every third row's stock is not a number.
        for n in range(rows):
            file.write(f"{1 + n % 10_000},{'x' if n % 3 == 0 else n}\n")
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(engine, Book, path)
    error = caught.value
    bad = len(range(0, rows, 3))
    assert error.counts == {ProblemKind.BAD_VALUE: bad, ProblemKind.DUPLICATE_KEY: 30_000}
    assert error.total == bad + 30_000
    assert len(error.problems) == MAX_PROBLEMS
    assert {p.kind for p in error.problems} == {ProblemKind.BAD_VALUE, ProblemKind.DUPLICATE_KEY}
