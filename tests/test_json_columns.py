"""A JSON column takes the JSON a file holds, on every database, and can be reverted.

A CSV cell for a JSON column holds a JSON document: ``{"a": 2}`` must be stored as an
object, not as the JSON string ``"{\\"a\\": 2}"``. A JSONL object nested in a line is
taken as it is, its fractions included; what no JSON column stores as written is
refused by row, column, value and reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Column, Engine, Table, select
from sqlalchemy.dialects.postgresql import JSONB

import setwise
from tests.backends import reader
from tests.models import keyed_table, problems_of


def documents(engine: Engine, kind: Any = JSON) -> Table:
    return keyed_table(
        engine, "documents", Column("doc", kind), rows=[{"doc": {"a": i}} for i in (1, 2, 3)]
    )


def stored(engine: Engine, table: Table) -> dict[int, Any]:
    with reader(engine).connect() as connection:
        return {row.id: row.doc for row in connection.execute(select(table.c.id, table.c.doc))}


CSV = (
    "id,doc\n"
    '1,"{""a"": 2, ""tags"": [""x"", 1.5]}"\n'  # an object, as JSON text
    '2,"""plain text"""\n'  # a JSON string: written with its quotes
    '3,"{""a"": 3}"\n'  # what row 3 holds already
)
JSONL = (
    '{"id": 1, "doc": {"a": 2, "tags": ["x", 1.5]}}\n'  # nested, with a fraction
    '{"id": 2, "doc": "\\"plain text\\""}\n'  # a JSON document in a string
    '{"id": 3, "doc": {"a": 3}}\n'
)
EXPECTED = {1: {"a": 2, "tags": ["x", 1.5]}, 2: "plain text", 3: {"a": 3}}


@pytest.mark.parametrize(
    ("name", "text"), [("changes.csv", CSV), ("changes.jsonl", JSONL)], ids=["csv", "jsonl"]
)
def test_a_json_column_takes_the_json_a_file_holds(
    engine: Engine, tmp_path: Path, name: str, text: str
) -> None:
    table = documents(engine)
    before = stored(engine, table)
    path = tmp_path / name
    path.write_text(text)
    plan = setwise.plan(engine, table, path)
    report = setwise.apply(engine, table, path)
    assert (plan.matched, plan.would_change) == (3, 2)
    assert (report.matched, report.changed, report.unchanged) == (3, 2, 1)
    assert stored(engine, table) == EXPECTED
    setwise.revert(engine, report.run_id)
    assert stored(engine, table) == before


@pytest.mark.backends("postgresql")
def test_postgresql_json_and_jsonb_columns_take_documents(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    path.write_text(JSONL)
    for kind in (JSON, JSONB):
        table = documents(engine, kind)
        report = setwise.apply(engine, table, path)
        assert (report.matched, report.changed) == (3, 2)
        assert stored(engine, table) == EXPECTED
        rows = [{"id": 1, "doc": {"a": 1}}, {"id": 2, "doc": "5"}]  # Python values as well
        assert setwise.apply(engine, table, rows).changed == 2
        assert stored(engine, table) == {1: {"a": 1}, 2: "5", 3: {"a": 3}}
        table.metadata.drop_all(engine)


def test_what_no_json_column_stores_as_written_is_refused(engine: Engine, tmp_path: Path) -> None:
    table = documents(engine)
    path = tmp_path / "changes.csv"
    path.write_text(
        "id,doc\n"
        "1,plain text\n"  # a text without its quotes is no JSON
        '2,"{""a"": 1, ""a"": 2}"\n'  # json would keep the last a silently
        "3,NaN\n"
    )
    found = problems_of(path, engine, table)
    assert set(found) == {
        (2, "doc", "plain text"),
        (3, "doc", '{"a": 1, "a": 2}'),
        (4, "doc", "NaN"),
    }
    assert found[2, "doc", "plain text"].startswith("not JSON: Expecting value at character 1")
    assert "'a' is given twice" in found[3, "doc", '{"a": 1, "a": 2}']
    assert "NaN is no JSON number" in found[4, "doc", "NaN"]
    path = tmp_path / "changes.jsonl"
    path.write_text('{"id": 1, "doc": {"n": 0.12345678901234567890123}}\n')
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(engine, table, path)
    (problem,) = caught.value.problems
    assert (problem.row, problem.column) == (1, "doc")
    assert "more digits than a JSON column keeps exactly" in problem.reason
    assert stored(engine, table) == {i: {"a": i} for i in (1, 2, 3)}
