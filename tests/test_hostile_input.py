"""Hostile changeset input (issue 19, items 6-9): each reproduction of the issue, on
every backend it applies to. A value is stored exactly as meant, or refused as a
problem naming its row, column and value, collected with the others; never a hang,
a silent change, or an exception that names neither."""

from __future__ import annotations

import datetime as dt
import math
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import (
    Column,
    Date,
    Double,
    Engine,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy.dialects.mysql import LONGTEXT

import setwise
from setwise import ProblemKind
from setwise.dialects import get_strategy
from setwise.staging.sources import csv as csv_source
from tests.backends import reader

MEASURES = Table(
    "measures",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("count", Integer),
    Column("reading", Double),
    Column("amount", Numeric(10, 2)),
    # LONGTEXT on MariaDB, whose TEXT holds 65,535 bytes: the 200 KB text must fit.
    Column("note", Text().with_variant(LONGTEXT(), "mysql", "mariadb")),
    Column("day", Date),
)


@pytest.fixture
def measures(engine: Engine) -> Engine:
    MEASURES.create(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(MEASURES),
            [
                {"id": i, "count": i, "reading": i / 2, "amount": Decimal(i), "note": f"n{i}"}
                for i in range(1, 6)
            ],
        )
    return engine


def stored(engine: Engine) -> list[tuple[Any, ...]]:
    """The rows, a NaN as the text "NaN" so that rows compare equal to themselves."""
    with reader(engine).connect() as connection:
        rows = connection.execute(select(MEASURES).order_by(MEASURES.c.id))
        return [
            tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in row)
            for row in rows
        ]


def refused(engine: Engine, changes: Any) -> setwise.ValidationError:
    """The ValidationError of applying ``changes``, which must leave the table alone."""
    before = stored(engine)
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(engine, MEASURES, changes)
    assert stored(engine) == before
    for problem in caught.value.problems:
        assert problem.row is not None and problem.column is not None, problem
    return caught.value


def where(error: setwise.ValidationError) -> list[tuple[int | None, str | None]]:
    return [(p.row, p.column) for p in error.problems]


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# -- item 6: a tiny input that eats a core ---------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("jsonl", '{"id": 1, "count": 1e999999999}\n'),
        ("jsonl", '{"id": 1, "count": -1E+999999999}\n'),
        ("jsonl", '{"id": 1, "count": ' + "9" * 100_000 + "}\n"),
        ("csv", "id,count\n1,1e999999999\n"),
        ("csv", "id,count\n1," + "9" * 100_000 + "\n"),
        ("jsonl", '{"id": 1, "amount": 1e999999999, "reading": 1e999999999}\n'),
    ],
    ids=["json-exponent", "json-negative", "json-digits", "csv-exponent", "csv-digits", "others"],
)
def test_a_huge_number_is_refused_at_once(
    measures: Engine, tmp_path: Path, kind: str, text: str
) -> None:
    """The size comes from the exponent: no int() of a billion digits (480 MB, minutes)."""
    began = time.perf_counter()
    error = refused(measures, write(tmp_path / f"huge.{kind}", text))
    # Not a speed target: the refusal takes well under a second, the int() it avoids
    # minutes; the bound leaves room for a machine busy with other work.
    assert time.perf_counter() - began < 60
    reasons = {p.column: p.reason for p in error.problems}
    row = 2 if kind == "csv" else 1
    assert {p.row for p in error.problems} == {row}
    if "count" in reasons:
        assert reasons["count"] == "out of range for Integer (-2147483648 to 2147483647)"
    else:
        assert reasons["amount"] == "too large for NUMERIC(10, 2)"
        assert reasons["reading"] == "too large for a FLOAT column (at most 1.8e308)"


# -- item 7: duplicate header names ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "header", "twice"),
    [("id-twice", "id,id,note", "id"), ("note-twice", "id,note,note", "note")],
)
def test_a_csv_header_naming_a_column_twice_is_refused(
    measures: Engine, tmp_path: Path, name: str, header: str, twice: str
) -> None:
    error = refused(measures, write(tmp_path / f"{name}.csv", f"{header}\n1,2,three\n"))
    problem = error.problems[0]
    assert (problem.row, problem.column) == (1, twice)
    assert f"the header names column {twice!r} 2 times (fields" in problem.reason


def test_a_parquet_file_or_frame_with_two_columns_of_one_name_is_refused(
    measures: Engine, tmp_path: Path
) -> None:
    import pandas as pd

    table = pa.Table.from_arrays(
        [pa.array([1]), pa.array(["first"]), pa.array(["second"])], names=["id", "note", "note"]
    )
    path = tmp_path / "twice.parquet"
    pq.write_table(table, path)
    frame = pd.DataFrame([[1, "first", "second"]], columns=["id", "note", "note"])
    for changes in (path, table, frame):
        error = refused(measures, changes)
        assert where(error) == [(1, "note")]
        assert "2 columns are named 'note'" in error.problems[0].reason


def test_a_json_object_giving_a_field_twice_is_refused(measures: Engine, tmp_path: Path) -> None:
    lines = '{"id": 1, "note": "a"}\n{"id": 2, "note": "b", "note": "c"}\n{"id": 3, "id": 4}\n'
    error = refused(measures, write(tmp_path / "twice.jsonl", lines))
    assert where(error) == [(2, "note"), (3, "id")]
    assert error.problems[0].reason == "the field 'note' is given twice in the object; keep one"


# -- item 8: values changed without a word ----------------------------------------------


# Underscores, Arabic-Indic digits, full-width digits: Python's int() reads all three.
@pytest.mark.parametrize("cell", ["1_000", "\u0663\u0664", "\uff11\uff12", "1 000", "0x1A"])
def test_integer_text_python_reads_but_nobody_means_is_refused(
    measures: Engine, tmp_path: Path, cell: str
) -> None:
    """Alone in its column (the batch path) and among plain cells (the row path)."""
    alone = refused(measures, write(tmp_path / "alone.csv", f"id,count\n1,{cell}\n"))
    assert where(alone) == [(2, "count")]
    assert alone.problems[0].reason == f"not an integer: {cell!r}"
    mixed = write(tmp_path / "mixed.csv", f"id,count,amount\n1,7,1.00\n2,{cell},{cell}\n")
    error = refused(measures, mixed)
    assert where(error) == [(3, "count"), (3, "amount")]
    assert error.problems[1].reason == f"not a number: {cell!r}"


def test_whole_decimals_are_the_integers_they_are(measures: Engine, tmp_path: Path) -> None:
    """1.0 in a CSV, decimal128 5.00 in Parquet, Decimal("7.00") in a mapping: stored as
    integers on every backend (they failed in staging before)."""
    setwise.apply(measures, MEASURES, write(tmp_path / "c.csv", "id,count\n1,1.0\n2,2E+1\n"))
    table = pa.table({"id": [3], "count": pa.array([Decimal("5.00")], pa.decimal128(5, 2))})
    setwise.apply(measures, MEASURES, table)
    setwise.apply(measures, MEASURES, [{"id": 4, "count": Decimal("7.00")}])
    counts = {row[0]: row[1] for row in stored(measures)}
    assert counts == {1: 1, 2: 20, 3: 5, 4: 7, 5: 5}
    assert all(type(count) is int for count in counts.values())
    refusal = refused(measures, write(tmp_path / "f.csv", "id,count\n1,1.5\n"))
    assert refusal.problems[0].reason == "has a fractional part; the column holds integers"


@pytest.mark.parametrize("kind", ["csv", "jsonl", "mappings"])
def test_keys_1_and_1_0_are_one_key(measures: Engine, tmp_path: Path, kind: str) -> None:
    rows: list[dict[str, Any]] = [{"id": 1, "note": "a"}, {"id": Decimal("1.0"), "note": "b"}]
    changes: Any = rows
    if kind == "csv":
        changes = write(tmp_path / "k.csv", "id,note\n1,a\n1.0,b\n")
    elif kind == "jsonl":
        changes = write(tmp_path / "k.jsonl", '{"id": 1, "note": "a"}\n{"id": 1.0, "note": "b"}\n')
    error = refused(measures, changes)
    assert error.counts == {ProblemKind.DUPLICATE_KEY: 1}
    assert "duplicate key: also in row" in error.problems[0].reason


def nan_changes(tmp_path: Path) -> list[Any]:
    """NaN and the infinities for a FLOAT column, from every kind of source."""
    table = pa.table({"id": [1, 2, 3], "reading": [math.nan, math.inf, -math.inf]})
    return [
        write(tmp_path / "n.csv", "id,reading\n1,NaN\n2,Infinity\n3,-inf\n"),
        write(tmp_path / "n.jsonl", '{"id": 1, "reading": NaN}\n{"id": 2, "reading": Infinity}\n'),
        table,
        [{"id": 1, "reading": math.nan}, {"id": 2, "reading": math.inf}],
    ]


@pytest.mark.lacks("nonfinite_floats")
def test_nan_and_infinity_for_a_float_column_are_refused_where_not_stored(
    measures: Engine, tmp_path: Path
) -> None:
    """SQLite stored a NaN as NULL (exit 0); MariaDB refused it in staging, unnamed."""
    assert not get_strategy(measures.dialect).floats_hold_nonfinite
    for changes in nan_changes(tmp_path):
        error = refused(measures, changes)
        assert {p.column for p in error.problems} == {"reading"}
        assert error.problems[0].row in (1, 2)  # the CSV's first row is its line 2
        assert "not a finite number" in error.problems[0].reason
    big = refused(measures, write(tmp_path / "big.csv", "id,reading\n1,1e999\n"))
    assert big.problems[0].reason == "too large for a FLOAT column (at most 1.8e308)"


@pytest.mark.requires("nonfinite_floats")
def test_nan_and_infinity_are_stored_where_the_database_holds_them(
    measures: Engine, tmp_path: Path
) -> None:
    assert get_strategy(measures.dialect).floats_hold_nonfinite
    setwise.apply(measures, MEASURES, nan_changes(tmp_path)[0])
    readings = [row[2] for row in stored(measures)]
    assert readings[:3] == ["NaN", math.inf, -math.inf]
    # A finite number too large for a double is never made an infinity.
    big = refused(measures, write(tmp_path / "big.csv", "id,reading\n1,1e999\n"))
    assert big.problems[0].reason == "too large for a FLOAT column (at most 1.8e308)"


# -- item 9: errors that name the row and column ---------------------------------------


def test_bytes_that_are_not_utf8_are_named_by_row_and_column(
    measures: Engine, tmp_path: Path
) -> None:
    latin1 = "id,note\n1,fine\n2,café\n3,naïve\n".encode("latin-1")
    error = refused(measures, write(tmp_path / "latin1.csv", latin1))
    assert where(error) == [(3, "note"), (4, "note")]
    assert error.problems[0].reason.startswith("not UTF-8: byte 0xe9 at character 4")
    jsonl = b'{"id": 1, "note": "caf\xe9"}\n'
    assert where(refused(measures, write(tmp_path / "latin1.jsonl", jsonl))) == [(1, "note")]


def test_a_field_over_the_csv_module_limit_is_applied(measures: Engine, tmp_path: Path) -> None:
    """Python's csv module stops at 128 KiB; a 200 KB text is a legitimate value."""
    text = "x" * 200_000
    setwise.apply(measures, MEASURES, write(tmp_path / "long.csv", f'id,note\n1,"{text}"\n'))
    assert stored(measures)[0][4] == text


def test_a_field_over_the_readers_limit_names_its_row_and_column(
    measures: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the limit (64 MiB; lowered here to keep the test small) the record is a
    problem of its row and column, and the reading goes on."""
    monkeypatch.setattr(csv_source, "MAX_FIELD_CHARS", 1_000)
    text = "id,count,note\n1,1,short\n2,2," + "y" * 2_000 + "\n3,three,ok\n"
    error = refused(measures, write(tmp_path / "over.csv", text))
    assert where(error) == [(3, "note"), (4, "count")]
    assert error.problems[0].reason == "not CSV: field larger than field limit (1000)"


def test_deeply_nested_json_names_its_row_and_column(measures: Engine, tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    lines = f'{{"id": 1, "note": "ok"}}\n{{"id": 2, "note": {deep}}}\n'
    error = refused(measures, write(tmp_path / "deep.jsonl", lines))
    assert where(error) == [(2, "note")]
    assert "nested too deeply" in error.problems[0].reason


def test_a_lone_surrogate_names_its_row_and_column(measures: Engine, tmp_path: Path) -> None:
    error = refused(measures, write(tmp_path / "s.jsonl", '{"id": 1, "note": "a\\ud800b"}\n'))
    assert where(error) == [(1, "note")]
    assert (
        error.problems[0].reason
        == "a lone surrogate (U+D800) at character 2, which is no character"
    )
    mapped = refused(measures, [{"id": 2, "note": "\udfff"}])
    assert where(mapped) == [(1, "note")]


def test_parquet_dates_past_year_9999_name_their_row_and_column(
    measures: Engine, tmp_path: Path
) -> None:
    days = pa.array([dt.date(2024, 1, 2), None, 3_000_000], type=pa.date32())
    path = tmp_path / "far.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "day": days}), path)
    error = refused(measures, path)
    assert where(error) == [(3, "day")]
    assert error.problems[0].value == "10183-09-21"
    assert "years 1 to 9999" in error.problems[0].reason


def test_a_corrupt_parquet_file_is_a_problem(measures: Engine, tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"id": [1, 2], "note": ["a", "b"]}), good)
    data = good.read_bytes()
    damaged = bytearray(data)
    damaged[10:40] = b"\xff" * 30  # the first column's page header
    error = refused(measures, write(tmp_path / "damaged.parquet", bytes(damaged)))
    assert where(error) == [(1, "id")]
    assert error.problems[0].reason.startswith("a part of the file cannot be read")
    before = stored(measures)
    with pytest.raises(setwise.ValidationError) as cut:  # no footer: no column to name
        setwise.apply(measures, MEASURES, write(tmp_path / "cut.parquet", data[: len(data) // 2]))
    assert [(p.row, p.column) for p in cut.value.problems] == [(1, None)]
    assert "not a readable Parquet file" in cut.value.problems[0].reason
    assert stored(measures) == before


@pytest.mark.lacks("nul_in_text")
def test_a_nul_in_text_is_refused_where_text_cannot_hold_it(
    measures: Engine, tmp_path: Path
) -> None:
    for changes in (
        write(tmp_path / "nul.csv", "id,note\n1,a\0b\n"),
        [{"id": 1, "note": "a\0b"}],
    ):
        error = refused(measures, changes)
        assert len(error.problems) == 1 and error.problems[0].column == "note"
        assert "a NUL character at character 2" in error.problems[0].reason


@pytest.mark.requires("nul_in_text")
def test_a_nul_in_text_is_stored_where_text_holds_it(measures: Engine, tmp_path: Path) -> None:
    setwise.apply(measures, MEASURES, write(tmp_path / "nul.csv", "id,note\n1,a\0b\n"))
    assert stored(measures)[0][4] == "a\0b"


def test_nan_for_an_integer_column_says_so(measures: Engine, tmp_path: Path) -> None:
    for changes in (
        write(tmp_path / "n.jsonl", '{"id": 1, "count": NaN}\n'),
        write(tmp_path / "n.csv", "id,count\n1,NaN\n"),
        pa.table({"id": [1], "count": [math.nan]}),
    ):
        error = refused(measures, changes)
        assert error.problems[0].reason == "not a finite number; the column holds integers"


def test_every_kind_of_hostile_cell_is_collected_with_the_others(
    measures: Engine, tmp_path: Path
) -> None:
    """One file, many problems: all found in one pass, each by row and column."""
    lines = [
        b"id,count,amount,note",
        b"1,1_000,1.00,fine",  # 2: underscores
        b"2,3,1.00,caf\xe9",  # 3: not UTF-8
        b'3,4,2.00,"quoted"tail',  # 4: bad quoting
        b"4,5,\xd9\xa3.00,ok",  # 5: an Arabic-Indic digit
        b"5,6,1.00",  # 6: a field short
        b"1,7,1.00,again",  # 7: key 1 again
        b"6,1e999999999,NaN,x",  # 8: out of range, not finite
    ]
    error = refused(measures, write(tmp_path / "all.csv", b"\n".join(lines) + b"\n"))
    assert where(error) == [
        (2, "count"),
        (3, "note"),
        (4, "note"),
        (5, "amount"),
        (6, "note"),
        (8, "count"),
        (8, "amount"),
        (7, "id"),
    ]
    assert error.counts == {
        ProblemKind.BAD_VALUE: 5,
        ProblemKind.UNREADABLE: 2,
        ProblemKind.DUPLICATE_KEY: 1,
    }


def test_a_utf16_file_says_what_it_is(measures: Engine, tmp_path: Path) -> None:
    """A UTF-16 file is refused whole, at its first line (it has no column to name)."""
    before = stored(measures)
    path = write(tmp_path / "utf16.csv", "id,note\n1,x\n".encode("utf-16"))
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(measures, MEASURES, path)
    assert [(p.row, p.column) for p in caught.value.problems] == [(1, None)]
    assert "the file is UTF-16" in caught.value.problems[0].reason
    assert stored(measures) == before


def test_huge_python_integers_in_mappings_are_refused(measures: Engine) -> None:
    error = refused(measures, [{"id": 1, "count": 10**5000, "reading": 10**400}])
    reasons = {p.column: p.reason for p in error.problems}
    assert reasons["count"].startswith("out of range for Integer")
    assert reasons["reading"] == "too large for a FLOAT column (at most 1.8e308)"


def test_rows_after_a_batch_of_blank_lines_are_read(measures: Engine, tmp_path: Path) -> None:
    """A batch's worth of blank lines does not end the file: the rows after it count."""
    text = "id,count\n1,10\n" + "\n" * 12_000 + "2,20\n"
    report = setwise.apply(measures, MEASURES, write(tmp_path / "gaps.csv", text))
    assert report.changed == 2
    assert [row[1] for row in stored(measures)][:2] == [10, 20]
