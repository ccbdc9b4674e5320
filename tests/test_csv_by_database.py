"""A CSV file PostgreSQL reads itself (COPY) gives what setwise's Python reader gives.

Only strict CSV with values both readers take alike goes to the database; anything
else is read in Python, so results and problems never depend on the path taken.
"""

from __future__ import annotations

import io
import logging
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, Numeric, select

import setwise
from setwise.dialects import get_strategy
from setwise.staging.sources.csvblocks import NotStrictCsv, header_and_blocks
from setwise.staging.validation import check_decimal_fits
from tests.models import Book, create_books, snapshot

BY_DATABASE = "staged by the database's own CSV reader"
IN_PYTHON = "read in Python, not by the database"


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


def titles_and_prices(engine: Engine) -> dict[int, tuple[str, str | None, Decimal]]:
    with engine.connect() as connection:
        rows = connection.execute(select(Book.id, Book.title, Book.genre, Book.price))
        return {row.id: (row.title, row.genre, row.price) for row in rows}


def apply_file(
    engine: Engine, path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> setwise.Report:
    path.write_bytes(text.encode("utf-8"))
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="setwise"):
        return setwise.apply(engine, Book, path)


@pytest.mark.requires("csv_files")
def test_strict_csv_is_staged_by_the_database_exactly(
    books: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = (
        "\ufeffid,title,genre,price\r\n"  # a byte-order mark, CRLF line ends
        '1,"Quotes ""inside"", a comma",,1.50\r\n'  # empty cell: NULL
        '2,"Two\nlines and a \\ backslash","",2\r\n'  # quoted empty cell: NULL too
        "3,Tab\there and ünïcødé ✓,history, 3.25 \r\n"  # spaces around a number
        "4,  spaces kept  ,science,0E+5"  # zero however written; no final line end
    )
    report = apply_file(books, tmp_path / "changes.csv", text, caplog)
    assert BY_DATABASE in caplog.text
    assert (report.matched, report.changed) == (4, 4)
    found = titles_and_prices(books)
    assert found[1] == ('Quotes "inside", a comma', None, Decimal("1.50"))
    assert found[2] == ("Two\nlines and a \\ backslash", None, Decimal("2.00"))
    assert found[3] == ("Tab\there and ünïcødé ✓", "history", Decimal("3.25"))
    assert found[4] == ("  spaces kept  ", "science", Decimal("0.00"))


@pytest.mark.requires("csv_files")
@pytest.mark.parametrize(
    ("record", "title"),
    [
        ('1,5" floppy,1.00', '5" floppy'),  # a quote inside an unquoted field
        ('1,"Ends with\n\\.\nthree lines",1.00', "Ends with\n\\.\nthree lines"),  # COPY's end
        ("1,0x1A and more,1.00", "0x1A and more"),  # an integer from PostgreSQL 16
    ],
)
def test_csv_the_database_could_read_otherwise_is_read_in_python(
    books: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture, record: str, title: str
) -> None:
    apply_file(books, tmp_path / "changes.csv", f"id,title,price\n{record}\n", caplog)
    assert titles_and_prices(books)[1][0] == title
    if "0x" not in record:  # refused only by a server that reads 0x… as a number
        assert IN_PYTHON in caplog.text and BY_DATABASE not in caplog.text


@pytest.mark.requires("csv_files")
@pytest.mark.parametrize(
    ("record", "column", "value", "reason"),
    [
        ("1,Fine,1.005", "price", "1.005", "3 decimal places"),  # COPY would round it
        ("1,Fine,NaN", "price", "NaN", "not a finite number"),
        ("1,Fine,Infinity", "price", "Infinity", "not a finite number"),
        ("1,Fine,123456789", "price", "123456789", "too large"),
        (f"1,{'x' * 199}   ,1.00", "title", f"{'x' * 199}   ", "202 characters"),  # COPY: cut
        ("1,,1.00", "title", None, "NULL in a NOT NULL column"),
        ("1,Fine,", "price", None, "NULL in a NOT NULL column"),
    ],
)
def test_values_the_database_takes_and_setwise_refuses_are_refused(
    books: Engine,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    record: str,
    column: str,
    value: str | None,
    reason: str,
) -> None:
    before = snapshot(books)
    with pytest.raises(setwise.ValidationError) as caught:
        apply_file(books, tmp_path / "changes.csv", f"id,title,price\n{record}\n", caplog)
    (problem,) = caught.value.problems
    assert (problem.row, problem.column, problem.value) == (2, column, value)
    assert reason in problem.reason
    assert IN_PYTHON in caplog.text
    assert snapshot(books) == before


@pytest.mark.requires("csv_files")
def test_a_key_given_twice_is_named_by_its_lines(
    books: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = snapshot(books)
    text = "id,title\n1,One\n2,Two\n1,One again\n"
    with pytest.raises(setwise.ValidationError) as caught:
        apply_file(books, tmp_path / "changes.csv", text, caplog)
    (problem,) = caught.value.problems
    assert (problem.row, problem.value) == (4, 1)
    assert "also in row 2" in problem.reason
    assert snapshot(books) == before


@pytest.mark.requires("csv_files")
def test_a_chunked_run_from_a_file_the_database_read(
    books: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "changes.csv"
    path.write_text(
        "id,price\n" + "".join(f"{i},{i}.{i:02d}\n" for i in range(20, 0, -1)), encoding="utf-8"
    )
    with caplog.at_level(logging.DEBUG, logger="setwise"):
        report = setwise.apply(books, Book, path, chunk_rows=3)
    assert BY_DATABASE in caplog.text
    assert (report.changed, report.chunks) == (20, 7)
    assert {i: p for i, (_, _, p) in titles_and_prices(books).items()} == {
        i: Decimal(f"{i}.{i:02d}") for i in range(1, 21)
    }
    # The run's journal reverts what the database staged, like any run.
    setwise.revert(books, report.run_id or "")
    assert titles_and_prices(books)[7][2] != Decimal("7.07")


def blocks_of(data: bytes, size: int) -> tuple[bytes, list[bytes]]:
    header, blocks = header_and_blocks(io.BytesIO(data), size)
    return header, list(blocks)


def test_blocks_are_whole_records_whatever_their_size() -> None:
    data = b'\xef\xbb\xbfid,title\r\n1,"a,\r\nb"\r\n2,"say ""hi"""\r\n3,plain'
    for size in (16, 64, 1 << 20):  # records of up to 17 bytes: some span two reads
        header, blocks = blocks_of(data, size)
        assert header == b"id,title"
        assert b"".join(blocks) == data[len(b"\xef\xbb\xbfid,title\r\n") :]
        assert all(b.endswith(b"\n") for b in blocks[:-1])


@pytest.mark.parametrize(
    "body",
    [b'1,5" floppy\n', b'1,a"b"c\n', b'1,"x"y\n', b'1,"never closed\n2,x\n', b"1,bare\rreturn\n"],
)
def test_loose_csv_is_refused(body: bytes) -> None:
    with pytest.raises(NotStrictCsv):
        blocks_of(b"id,title\n" + body, 1 << 20)


def test_zero_fits_every_numeric_column_however_written() -> None:
    assert check_decimal_fits(Numeric(2, 2), Decimal("0")) is None
    assert check_decimal_fits(Numeric(10, 2), Decimal("0E+5")) is None
    assert "too large" in (check_decimal_fits(Numeric(10, 2), Decimal("1E+8")) or "")


def test_zeros_past_the_scale_round_nothing_away(
    books: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A NUMERIC(10, 2) column stores 1.500 as 1.50 exactly: refused, with "3 decimal
    # places ... would round it", every value of a decimal(p, 3) export was refused.
    text = "id,price\n1,1.500\n2,0.000\n3,12345678.990000\n"
    report = apply_file(books, tmp_path / "changes.csv", text, caplog)
    assert report.changed == 3
    prices = {i: found[2] for i, found in titles_and_prices(books).items() if i <= 3}
    assert prices == {1: Decimal("1.50"), 2: Decimal("0.00"), 3: Decimal("12345678.99")}
    if get_strategy(books.dialect).reads_csv_files:
        assert BY_DATABASE in caplog.text
    values = pa.array([Decimal("4.100"), Decimal("5.120")], pa.decimal128(10, 3))
    pq.write_table(pa.table({"id": [1, 2], "price": values}), tmp_path / "changes.parquet")
    assert setwise.apply(books, Book, tmp_path / "changes.parquet").changed == 2
    assert titles_and_prices(books)[2][2] == Decimal("5.12")
