"""CSV text as setwise reads it, and the blocks a database may read itself: NULL and the
empty cell, quoting, line ends, byte-order marks. Pure functions; the files are plain
CSV files in a temporary folder, no database."""

from __future__ import annotations

import codecs
import io
from pathlib import Path
from typing import Any

import pytest

from setwise.staging.sources.csv import CsvRows, read_csv
from setwise.staging.sources.csvblocks import NotStrictCsv, header_and_blocks
from setwise.staging.sources.rows import NOT_UTF16, Unreadable


def rows(text: str, null: str | None = "") -> list[tuple[int, Any]]:
    return list(CsvRows(io.StringIO(text, newline=""), null, close=True))


def file_rows(tmp_path: Path, data: bytes, null: str | None = "") -> list[tuple[int, Any]]:
    path = tmp_path / "changes.csv"
    path.write_bytes(data)
    return list(read_csv(str(path), null))


def test_an_empty_cell_is_null_unless_told_otherwise() -> None:
    text = 'id,note\n1,\n2,""\n3,NULL\n'
    assert rows(text) == [
        (2, {"id": "1", "note": None}),
        (3, {"id": "2", "note": None}),  # quoted or not, an empty cell reads alike
        (4, {"id": "3", "note": "NULL"}),
    ]
    assert [fields["note"] for _, fields in rows(text, null="NULL")] == ["", "", None]
    assert [fields["note"] for _, fields in rows(text, null=None)] == ["", "", "NULL"]


def test_quoted_commas_quotes_newlines_tabs_and_backslashes_are_text() -> None:
    text = 'id,note\n1,"a,b"\n2,"say ""hi"""\n3,"two\nlines"\n4,tab\there\\n\n'
    assert rows(text) == [
        (2, {"id": "1", "note": "a,b"}),
        (3, {"id": "2", "note": 'say "hi"'}),
        (5, {"id": "3", "note": "two\nlines"}),  # numbered by the line the record ends on
        (6, {"id": "4", "note": "tab\there\\n"}),  # no escapes in CSV: a backslash is text
    ]


def test_crlf_line_ends_and_blank_lines() -> None:
    assert rows('id,note\r\n\r\n1,x\r\n2,"a\r\nb"\r\n') == [
        (3, {"id": "1", "note": "x"}),
        (5, {"id": "2", "note": "a\r\nb"}),  # a line end inside quotes is kept as written
    ]


def test_a_batch_is_read_as_columns_with_nulls() -> None:
    numbers, batch = CsvRows(io.StringIO("id,note\n1,\n2,b\n"), "", close=True).take(10)
    assert numbers == [2, 3]
    assert list(batch) == [{"id": "1", "note": None}, {"id": "2", "note": "b"}]


def test_records_with_another_number_of_fields_name_the_column() -> None:
    found = rows("id,note\n1,x,y\n2\n")
    assert found == [
        (
            2,
            Unreadable(
                "3 fields where the header has 2: the fields after 'note' have no column "
                "(an unquoted comma in a value?)",
                column="note",
                value="y",
            ),
        ),
        (3, Unreadable("1 fields where the header has 2: no value for 'note'", column="note")),
    ]


def test_a_header_naming_a_column_twice_is_refused() -> None:
    assert rows("id,id\n1,2\n")[0] == (
        1,
        Unreadable(
            "the header names column 'id' 2 times (fields 1, 2); rename or remove all but one",
            column="id",
            value="id",
        ),
    )


def test_a_utf8_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    data = codecs.BOM_UTF8 + "id,note\r\n1,café\r\n".encode()
    assert file_rows(tmp_path, data) == [(2, {"id": "1", "note": "café"})]


def test_utf16_is_refused_and_bytes_not_utf8_are_kept_for_the_value_check(
    tmp_path: Path,
) -> None:
    utf16 = codecs.BOM_UTF16_LE + "id,note\n1,x\n".encode("utf-16-le")
    assert file_rows(tmp_path, utf16)[0] == (1, Unreadable(NOT_UTF16, value="\udcff\udcfe"))
    # Latin-1 "é" is no UTF-8: kept as a surrogate, which the value check names.
    assert file_rows(tmp_path, b"id,note\n1,caf\xe9\n") == [(2, {"id": "1", "note": "caf\udce9"})]


def test_bad_quoting_is_refused_naming_the_field(tmp_path: Path) -> None:
    found = file_rows(tmp_path, b'id,note\n1,"a"b\n2,ok\n')
    assert found == [
        (2, Unreadable("not CSV: ',' expected after '\"'", column="note", value='"a"b')),
        (3, {"id": "2", "note": "ok"}),  # the reading goes on after it
    ]


# -- blocks of whole records, for a database's own CSV reader (csvblocks) -----------------


def blocks(data: bytes, block_bytes: int = 1 << 20) -> tuple[bytes, list[bytes]]:
    header, found = header_and_blocks(io.BytesIO(data), block_bytes)
    return header, list(found)


def test_blocks_hold_whole_records_and_every_byte() -> None:
    data = b'id,note\r\n1,x\r\n2,"a""b"\r\n3,"multi\nline"\r\n4,last'
    header, found = blocks(codecs.BOM_UTF8 + data, block_bytes=8)
    assert header == b"id,note"  # the byte-order mark and the line end left out
    assert b"".join(found) == data[len(b"id,note\r\n") :]
    assert all(block.endswith(b"\n") for block in found[:-1])
    assert found[-1].endswith(b"4,last")  # the last record may lack its line end
    assert blocks(b'id,note\n1,"tab\tback\\slash"\n')[1] == [b'1,"tab\tback\\slash"\n']


@pytest.mark.parametrize(
    "record",
    [
        b'1,5" floppy\n',  # a quote inside an unquoted field
        b'1,"a"b\n',  # a quoted field followed by more
        b'1,"never closed\n2,x\n',
    ],
)
def test_text_another_reader_may_read_otherwise_is_refused(record: bytes) -> None:
    with pytest.raises(NotStrictCsv, match="not strict CSV"):
        blocks(b"id,note\n" + record)


def test_a_record_longer_than_two_blocks_is_refused() -> None:
    data = b'id,note\n1,"' + b"x" * 40 + b'"\n'
    assert blocks(data, block_bytes=32)[1] == [data[8:]]
    with pytest.raises(NotStrictCsv):
        blocks(data, block_bytes=8)
    with pytest.raises(NotStrictCsv, match="no strict CSV header"):
        header_and_blocks(io.BytesIO(b'"id,note\n'), 4)
