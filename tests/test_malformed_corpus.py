"""A corpus of malformed changeset files, applied on every backend: each is refused
with one ValidationError whose every problem names its row and, where the file has
one to name, its column; never another exception, never a row written."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

import setwise
from setwise.dialects import get_strategy
from tests.test_hostile_input import MEASURES, stored


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _damaged_parquet() -> bytes:
    data = bytearray(_parquet(pa.table({"id": [1, 2], "note": ["a", "b"]})))
    data[10:40] = b"\xff" * 30  # the first column's page header
    return bytes(data)


GOOD_PARQUET = _parquet(pa.table({"id": [1, 2], "note": ["a", "b"]}))


@dataclass(frozen=True)
class Case:
    name: str
    suffix: str
    content: bytes
    no_column: bool = False
    """The file, or a line, cannot be read as fields at all: its problem names the row
    and no column."""
    refused_where: Callable[[Any], bool] = lambda strategy: True
    """On which databases (by strategy) the file is refused; elsewhere it is applied."""


def _csv(name: str, text: str | bytes, **options: Any) -> Case:
    content = text.encode("utf-8") if isinstance(text, str) else text
    return Case(name, "csv", content, **options)


def _jsonl(name: str, text: str | bytes, **options: Any) -> Case:
    content = text.encode("utf-8") if isinstance(text, str) else text
    return Case(name, "jsonl", content, **options)


def _pq(name: str, content: bytes, **options: Any) -> Case:
    return Case(name, "parquet", content, **options)


CORPUS: list[Case] = [
    # CSV
    _csv("csv-truncated-in-a-quote", 'id,note\n1,"unclosed\n2,x\n'),
    _csv("csv-truncated-mid-record", "id,count,note\n1,2,a\n2,3"),
    _csv("csv-latin1", "id,note\n1,café\n".encode("latin-1")),
    _csv("csv-cp1252-quotes", "id,note\n1,\u201cquoted\u201d\n".encode("cp1252")),
    _csv("csv-utf16", "id,note\n1,x\n".encode("utf-16"), no_column=True),
    _csv("csv-utf16-be-no-bom", "id,note\n1,x\n".encode("utf-16-be")),
    _csv("csv-bom-then-bad-value", "\ufeffid,count\n1,x\n"),
    _csv("csv-two-boms", "\ufeff\ufeffid,count\n1,2\n"),
    _csv("csv-ragged-long", "id,note\n1,a,b\n2,c\n"),
    _csv("csv-ragged-short", "id,count,note\n1,2\n"),
    _csv("csv-header-twice", "id,note,note\n1,a,b\n"),
    _csv("csv-key-twice-in-header", "id,id,note\n1,2,a\n"),
    _csv("csv-quote-then-text", 'id,note\n1,"a"b\n'),
    _csv("csv-blank-lines-then-bad", "\n\nid,count\n1,many\n"),
    _csv("csv-many-blank-lines-then-bad", "id,count\n" + "\n" * 12_000 + "1,many\n"),
    _csv("csv-no-key-column", "note\nx\n"),
    _csv("csv-empty-header-name", "id,,note\n1,2,3\n"),
    _csv("csv-json-inside", '{"id": 1, "note": "x"}\n{"id": 2}\n'),
    _csv("csv-binary-garbage", bytes(range(256)) * 4),
    _csv("csv-huge-exponent", "id,count\n1,1e999999999\n"),
    _csv("csv-huge-digits", "id,count\n1," + "9" * 50_000 + "\n"),
    _csv("csv-underscores", "id,count\n1,1_000\n"),
    _csv("csv-arabic-indic-digits", "id,count\n1,\u0663\u0664\n"),
    _csv("csv-full-width-digits", "id,count,amount\n1,\uff11\uff12,\uff15.00\n"),
    _csv("csv-nan-integer", "id,count\n1,NaN\n"),
    _csv("csv-fraction-integer", "id,count\n1,1.5\n"),
    _csv("csv-too-many-places", "id,amount\n1,1.005\n"),
    _csv("csv-date-not-iso", "id,day\n1,31/12/2024\n"),
    _csv("csv-date-past-9999", "id,day\n1,10000-01-01\n"),
    _csv(
        "csv-nan-float",
        "id,reading\n1,NaN\n2,-Infinity\n",
        refused_where=lambda strategy: not strategy.floats_hold_nonfinite,
    ),
    _csv("csv-float-overflow", "id,reading\n1,1e999\n"),
    _csv(
        "csv-nul-in-text",
        "id,note\n1,a\0b\n",
        refused_where=lambda strategy: not strategy.text_holds_nul,
    ),
    _csv("csv-key-1-and-1.0", "id,note\n1,a\n1.0,b\n"),
    # JSONL
    _jsonl("jsonl-truncated", '{"id": 1, "note": "a"}\n{"id": 2, "no'),
    _jsonl("jsonl-not-an-object", '{"id": 1}\n[1, 2]\n', no_column=True),
    _jsonl("jsonl-field-twice", '{"id": 1, "note": "a", "note": "b"}\n'),
    _jsonl("jsonl-nested-deep", '{"id": 1, "note": ' + "[" * 50_000 + "]" * 50_000 + "}\n"),
    _jsonl("jsonl-lone-surrogate", '{"id": 1, "note": "\\udc80"}\n'),
    _jsonl("jsonl-latin1", '{"id": 1, "note": "café"}\n'.encode("latin-1")),
    _jsonl("jsonl-bom-then-bad-value", '\ufeff{"id": 1, "count": "x"}\n'),
    _jsonl("jsonl-huge-exponent", '{"id": 1, "count": 1e999999999}\n'),
    _jsonl("jsonl-huge-digits", '{"id": 1, "count": ' + "9" * 50_000 + "}\n"),
    _jsonl("jsonl-nan-integer", '{"id": 1, "count": NaN}\n'),
    _jsonl("jsonl-trailing-garbage", '{"id": 1} x\n', no_column=True),
    _jsonl("jsonl-empty-object", "{}\n"),
    _jsonl("jsonl-object-for-text", '{"id": 1, "note": {"a": 1}}\n'),
    _jsonl("jsonl-utf16", '{"id": 1, "note": "x"}\n'.encode("utf-16"), no_column=True),
    _jsonl("jsonl-string-key", '{"id": "one"}\n'),
    # Parquet
    _pq(
        "parquet-name-twice",
        _parquet(
            pa.Table.from_arrays(
                [pa.array([1]), pa.array(["a"]), pa.array(["b"])], names=["id", "note", "note"]
            )
        ),
    ),
    _pq(
        "parquet-date-past-9999",
        _parquet(pa.table({"id": [1], "day": pa.array([3_000_000], pa.date32())})),
    ),
    _pq("parquet-damaged-page", _damaged_parquet()),
    _pq("parquet-truncated", GOOD_PARQUET[: len(GOOD_PARQUET) // 2], no_column=True),
    _pq("parquet-not-parquet", b"id,note\n1,x\n", no_column=True),
    _pq("parquet-empty-file", b"", no_column=True),
    _pq("parquet-nan-integer", _parquet(pa.table({"id": [1], "count": [float("nan")]}))),
    _pq(
        "parquet-fraction-integer",
        _parquet(pa.table({"id": [1], "count": pa.array([Decimal("1.50")], pa.decimal128(5, 2))})),
    ),
    _pq("parquet-text-key", _parquet(pa.table({"id": ["one"], "note": ["x"]}))),
]

#: Files that are well formed but hold no rows: nothing to do, nothing written.
EMPTY: list[Case] = [
    _csv("csv-empty", b""),
    _csv("csv-header-only", "id,note\n"),
    _jsonl("jsonl-empty", b""),
    _jsonl("jsonl-blank-lines", "\n  \n"),
    _pq("parquet-no-rows", _parquet(pa.table({"id": pa.array([], pa.int64())}))),
]


@dataclass
class Outcome:
    case: Case
    named: bool = False
    """Refused with a ValidationError naming row and column of every problem."""
    row_only: bool = False
    """Refused with a ValidationError naming every problem's row, some no column."""
    applied: bool = False
    other: BaseException | None = None


def run_corpus(engine: Engine, tmp_path: Path, cases: list[Case]) -> list[Outcome]:
    outcomes = []
    for case in cases:
        path = tmp_path / f"{case.name}.{case.suffix}"
        path.write_bytes(case.content)
        outcome = Outcome(case)
        try:
            setwise.apply(engine, MEASURES, path)
            outcome.applied = True
        except setwise.ValidationError as error:
            problems = error.problems
            if all(p.row is not None and p.column is not None for p in problems):
                outcome.named = True
            elif all(p.row is not None for p in problems):
                outcome.row_only = True
            else:
                outcome.other = error
        except Exception as exc:  # the outcome under test: any other exception is a failure
            outcome.other = exc
        outcomes.append(outcome)
    return outcomes


def test_every_malformed_file_is_refused_by_row_and_column(engine: Engine, tmp_path: Path) -> None:
    MEASURES.create(engine)
    strategy = get_strategy(engine.dialect)
    outcomes = run_corpus(engine, tmp_path, CORPUS)
    assert stored(engine) == [], "a malformed file wrote rows"  # every key is new: none match
    problems = []
    for outcome in outcomes:
        case = outcome.case
        if outcome.other is not None:
            problems.append(f"{case.name}: {type(outcome.other).__name__}: {outcome.other}")
        elif not case.refused_where(strategy):
            if not outcome.applied:
                problems.append(f"{case.name}: refused, though this database stores it")
        elif outcome.applied:
            problems.append(f"{case.name}: applied without a word")
        elif outcome.row_only and not case.no_column:
            problems.append(f"{case.name}: a problem names no column")
        elif outcome.named and case.no_column:
            problems.append(f"{case.name}: names a column of a file it cannot read")
    assert problems == []


def test_empty_files_do_nothing(engine: Engine, tmp_path: Path) -> None:
    MEASURES.create(engine)
    for outcome in run_corpus(engine, tmp_path, EMPTY):
        assert outcome.applied, (outcome.case.name, outcome.other)
