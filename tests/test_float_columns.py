"""FLOAT / REAL / DOUBLE columns get the checks of every number column.

SQLAlchemy 2.1 no longer makes ``Float`` a subclass of ``Numeric`` (2.0 does): a test
for ``Numeric`` alone let text and booleans through to such a column there, unchecked
(the driver's float conversion then failed mid-run, or stored ``True`` as 1.0). These
run on both versions (``make test-oldest`` runs them on SQLAlchemy 2.0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import REAL, Column, Double, Engine, Float, Integer, MetaData, Table, select, update

import setwise
from setwise.dialects import get_strategy
from tests.models import keyed_table

measures = Table(
    "measures",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("ratio", Float, nullable=False),
)


@pytest.fixture
def table(engine: Engine) -> Table:
    measures.create(engine)
    with engine.begin() as connection:
        connection.execute(measures.insert(), [{"id": 1, "ratio": 0.5}, {"id": 2, "ratio": 0.5}])
    return measures


def ratios(engine: Engine) -> dict[int, Any]:
    with engine.connect() as connection:
        return dict(connection.execute(select(measures.c.id, measures.c.ratio)).all())  # type: ignore[arg-type]


def test_text_and_booleans_for_a_float_column_are_refused_with_row_and_column(
    engine: Engine, table: Table
) -> None:
    rows = [{"id": 1, "ratio": "abc"}, {"id": 2, "ratio": True}]
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(engine, table, rows)
    problems = [(p.row, p.column, p.value, p.reason) for p in caught.value.problems]
    assert problems == [
        (1, "ratio", "abc", "expected a number, got str 'abc'"),
        (2, "ratio", True, "expected a number, got bool true"),
    ]
    assert ratios(engine) == {1: 0.5, 2: 0.5}


def test_a_float_column_reads_its_numbers_from_csv_text(
    engine: Engine, table: Table, tmp_path: Path
) -> None:
    good = tmp_path / "good.csv"
    good.write_text("id,ratio\n1,0.25\n2,1.5e0\n")
    report = setwise.apply(engine, table, good)
    assert report.changed == 2
    assert ratios(engine) == {1: 0.25, 2: 1.5}  # exact in single precision too (MariaDB FLOAT)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,ratio\n1,0.75\n2,half\n")
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(engine, table, bad)
    assert [(p.row, p.column, p.reason) for p in caught.value.problems] == [
        (3, "ratio", "not a number: 'half'")
    ]
    assert ratios(engine) == {1: 0.25, 2: 1.5}


def test_a_number_past_single_precision_is_refused_where_the_column_keeps_it(
    engine: Engine, tmp_path: Path
) -> None:
    # MariaDB's FLOAT and PostgreSQL's REAL hold at most 3.4e38: 1e39 failed mid-staging
    # in the driver ("Out of range value", "value out of range: overflow"), no row named.
    columns = (Column("plain", Float), Column("real", REAL), Column("double", Double))
    halves = {"plain": 0.5, "real": 0.5, "double": 0.5}
    floats = keyed_table(engine, "floats", *columns, rows=[halves])
    path = tmp_path / "changes.csv"
    path.write_text("id,plain,real,double\n1,1e39,-1e39,1e39\n")
    try:
        setwise.apply(engine, floats, path)
    except setwise.ValidationError as error:
        refused = [(p.row, p.column, p.reason) for p in error.problems]
    else:
        refused = []
    single = get_strategy(engine.dialect).single_precision
    expected = [
        (2, c.name, "too large for this single-precision FLOAT column (at most 3.4e38)")
        for c in (floats.c.plain, floats.c.real)
        if single(c.type)  # type: ignore[arg-type]
    ]
    assert refused == expected
    with engine.connect() as connection:
        row = connection.execute(select(floats)).one()
    assert row.double == (0.5 if refused else 1e39)
    assert single(Double()) is False  # a DOUBLE is never refused at 3.4e38


@pytest.mark.lacks("nonfinite_floats")
def test_nan_in_an_update_is_refused_where_the_database_cannot_store_it(
    engine: Engine, table: Table
) -> None:
    # SQLite stored NaN as NULL (here a NOT NULL violation, reported as one).
    statement = update(measures).where(measures.c.id == 1).values(ratio=float("nan"))
    with pytest.raises(setwise.ValidationError, match="not a finite number"):
        setwise.update(engine, statement)
    assert ratios(engine) == {1: 0.5, 2: 0.5}
