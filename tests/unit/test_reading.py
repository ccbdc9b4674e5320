"""How a changeset file is read when it is not UTF-8 CSV with ISO dates (issue 21, item
2): the format told by name or given, the separator, the encoding, a header of one
field that shows another separator, dates in a ``strptime`` form, and Excel serial
dates refused. Pure functions on files in a temporary folder; no database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Date, DateTime, MetaData, Table, Text

from setwise.errors import InvalidArgumentError, SchemaError
from setwise.messages import as_argument
from setwise.problems import Problem
from setwise.staging.dates import check_date_format, dated, excel_serial
from setwise.staging.sources import Unreadable, open_source, reading
from setwise.staging.validation import Unfit
from setwise.staging.values import coercer_for

_TABLE = Table(
    "reading_dates",
    MetaData(),
    Column("day", Date, nullable=True),
    Column("at", DateTime, nullable=True),
)
DAY, AT = _TABLE.c.day, _TABLE.c.at


def read_all(path: Path, **options: Any) -> list[tuple[int, Any]]:
    source = open_source(str(path), **options)
    try:
        return list(source.rows)
    finally:
        source.close()


def refusal(column: Column[Any], value: Any, date_format: str | None = None) -> Unfit:
    with pytest.raises(Unfit) as caught:
        coercer_for(column, lenient=True, date_format=date_format)(value)
    return caught.value


@pytest.mark.parametrize(
    ("name", "given", "found"),
    [
        ("fixes.csv", None, ("csv", ",")),
        ("fixes.tsv", None, ("tsv", "\t")),
        ("fixes.TAB", None, ("tsv", "\t")),
        ("fixes.ndjson", None, ("jsonl", ",")),
        ("-", None, ("csv", ",")),
        ("-", "jsonl", ("jsonl", ",")),
        ("fixes.txt", "CSV", ("csv", ",")),
        ("fixes.csv", "tsv", ("tsv", "\t")),
    ],
)
def test_the_format_is_told_by_the_name_unless_given(
    name: str, given: str | None, found: tuple[str, str]
) -> None:
    assert reading(name, given, None, "utf-8") == found


def test_a_format_or_separator_that_cannot_be_used_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="the format 'xlsx' is none of csv, tsv"):
        reading("fixes.xlsx", "xlsx", None, "utf-8")
    with pytest.raises(SchemaError, match=r"cannot tell the format of 'fixes.txt'.*format='csv'"):
        reading("fixes.txt", None, None, "utf-8")
    with pytest.raises(InvalidArgumentError, match="read as jsonl"):
        reading("fixes.jsonl", None, ";", "utf-8")
    with pytest.raises(InvalidArgumentError, match="not one character"):
        reading("fixes.csv", None, ";;", "utf-8")
    with pytest.raises(InvalidArgumentError, match="no encoding Python knows") as caught:
        reading("fixes.csv", None, None, "klingon")
    assert caught.value.argument == "encoding"


def test_a_tsv_file_and_a_semicolon_file_read_as_csv_does(tmp_path: Path) -> None:
    tsv = tmp_path / "fixes.tsv"
    tsv.write_bytes(b"\xef\xbb\xbfid\tnote\r\n1\ta, b; c\r\n\r\n2\t\r\n")
    assert read_all(tsv) == [(2, {"id": "1", "note": "a, b; c"}), (4, {"id": "2", "note": None})]
    semi = tmp_path / "fixes.csv"
    semi.write_text('id;note\n1;"x;y"\n', encoding="utf-8")
    assert read_all(semi, csv_delimiter=";") == [(2, {"id": "1", "note": "x;y"})]


@pytest.mark.parametrize(
    ("header", "fix", "library", "shown"),
    [
        ("year;month;tailnum", ("csv_delimiter", ";"), "csv_delimiter=';'", "';'"),
        ("year|month|tailnum", ("csv_delimiter", "|"), "csv_delimiter='|'", "'|'"),
        ("year\tmonth\ttailnum", ("format", "tsv"), "format='tsv'", "a tab"),
    ],
)
def test_a_header_of_one_field_holding_a_separator_is_refused(
    tmp_path: Path, header: str, fix: tuple[str, str], library: str, shown: str
) -> None:
    path = tmp_path / "flights.csv"
    path.write_text(f"{header}\n2013,1,N1\n", encoding="utf-8")
    with pytest.raises(SchemaError) as caught:
        read_all(path)
    assert caught.value.argument == fix
    assert str(caught.value) == (
        f"the header of {path} is one column, {header!r}: the file looks separated by "
        f"{shown}, not by ',': pass {library}"
    )


def test_a_header_of_one_plain_field_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id\n1\n", encoding="utf-8")
    assert read_all(path) == [(2, {"id": "1"})]


def test_a_latin1_file_is_read_in_its_encoding(tmp_path: Path) -> None:
    path = tmp_path / "fixes.csv"
    path.write_bytes("id,note\r\n1,café\r\n".encode("latin-1"))
    assert read_all(path, encoding="latin-1") == [(2, {"id": "1", "note": "café"})]
    [(_, fields)] = read_all(path)  # as UTF-8: the byte is kept, and refused by the checks
    assert fields["note"] == "caf\udce9"


def test_a_byte_that_is_not_utf8_names_the_encoding_argument(tmp_path: Path) -> None:
    note = Column("note", Text)
    unfit = refusal(note, "caf\udce9")
    assert unfit.fix == ("encoding", "latin-1")
    problem = Problem("note", "caf\udce9", unfit.reason, 2, fix=unfit.fix)
    assert str(problem).endswith("or name its encoding (encoding='latin-1')")
    assert problem.explain(lambda name, *value: f"--{name} {value[0]}").endswith(
        "or name its encoding (--encoding latin-1)"
    )


@pytest.mark.parametrize(
    ("column", "text", "form", "value"),
    [
        (DAY, "31/12/2023", "%d/%m/%Y", dt.date(2023, 12, 31)),
        (DAY, " 20231231 ", "%Y%m%d", dt.date(2023, 12, 31)),
        (AT, "31/12/2023 18:05", "%d/%m/%Y %H:%M", dt.datetime(2023, 12, 31, 18, 5)),
        (AT, "31/12/2023 18:05 +0100", "%d/%m/%Y %H:%M %z", dt.datetime(2023, 12, 31, 17, 5)),
    ],
)
def test_dates_are_read_in_the_form_given(
    column: Column[Any], text: str, form: str, value: Any
) -> None:
    assert coercer_for(column, lenient=True, date_format=form)(text) == value


def test_a_date_not_in_the_form_given_is_refused_with_the_form() -> None:
    assert refusal(DAY, "2023-12-31", "%d/%m/%Y").reason == (
        "not a date in the format '%d/%m/%Y': '2023-12-31'"
    )
    assert refusal(DAY, "31/12/2023 10:00", "%d/%m/%Y %H:%M").reason == (
        "'31/12/2023 10:00' has a time of day; the column holds dates"
    )
    # Not ISO 8601 and no form given: the message names the argument that reads it.
    unfit = refusal(DAY, "31/12/2023")
    assert unfit.fix == ("date_format",)
    assert Problem("day", "31/12/2023", unfit.reason, 2, fix=unfit.fix).explain(as_argument) == (
        "row 2, column 'day', value '31/12/2023': not an ISO 8601 date (YYYY-MM-DD): "
        "'31/12/2023' (date_format=)"
    )


@pytest.mark.parametrize("value", ["45291", " 45291 ", 45291, "45291.0"])
def test_an_excel_serial_date_is_refused_naming_the_date_format(value: Any) -> None:
    unfit = refusal(DAY, value)
    assert unfit.reason.startswith(
        "a number, not a date: an Excel serial date? (45291"
    ) and unfit.reason.endswith(
        "is 2023-12-31 in Excel); save the column as dates, or name their form"
    )
    assert unfit.fix == ("date_format",)


def test_an_excel_serial_timestamp_and_one_under_a_form() -> None:
    assert "(45291.75 is 2023-12-31 18:00 in Excel)" in refusal(AT, "45291.75").reason
    # Under a form that does not read it: refused, and no argument to name (one was given).
    unfit = refusal(DAY, "45291", "%d/%m/%Y")
    assert unfit.reason.startswith("a number, not a date in the format '%d/%m/%Y'")
    assert unfit.fix == ()
    # A number the form reads is a date, not a serial.
    assert coercer_for(DAY, lenient=True, date_format="%Y%m%d")("20231231") == dt.date(2023, 12, 31)
    assert excel_serial("2023-12-31", None) is None
    assert excel_serial(True, None) is None
    assert excel_serial("12", None) is not None  # no date Excel writes, and no date


def test_a_date_format_with_no_code_is_refused() -> None:
    check_date_format("%d/%m/%Y")
    check_date_format(None)
    with pytest.raises(InvalidArgumentError, match="holds no strptime code") as caught:
        check_date_format("dd/mm/yyyy")
    assert caught.value.argument == "date_format"


def test_a_date_read_from_parquet_is_left_as_it_is() -> None:
    parse = dated("%d/%m/%Y", timestamp=False)
    assert parse(dt.date(2023, 12, 31)) == dt.date(2023, 12, 31)
    with pytest.raises(Unfit, match="Excel serial"):
        parse(45291)


def test_a_trailing_separator_still_shows_it_and_bytes_do_not(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("id;title;\n1;A;\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="looks separated by ';'"):
        read_all(path)
    path.write_bytes(b"\x00\x01;\x02\x03\n1\n")  # a binary file: its rows are refused instead
    assert read_all(path) == [(2, {"\x00\x01;\x02\x03": "1"})]


def test_a_utf16_file_names_its_encoding_and_is_read_with_it(tmp_path: Path) -> None:
    path = tmp_path / "fixes.csv"
    path.write_bytes("id,title\n1,Zoë\n".encode("utf-16"))
    [(_, unreadable)] = read_all(path)
    assert isinstance(unreadable, Unreadable) and unreadable.fix == ("encoding", "utf-16")
    assert read_all(path, encoding="utf-16") == [(2, {"id": "1", "title": "Zoë"})]
