"""Times and timestamps from a file are stored as the file says, or refused.

Python's ``fromisoformat`` reads a fraction of a second of more than six digits by
cutting it (``.1234567`` → ``.123456``), and a time with an offset for a column
without a time zone lost its offset on the way to every database (``01:00+02:00``
stored as 01:00, two hours from the time given). A timestamp with an offset is
converted to UTC for such a column; a time now is too, and a finer fraction is refused.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Column, DateTime, Engine, Table, Time, select

import setwise
from tests.backends import reader
from tests.models import keyed_table, problems_of

START = dt.datetime(2000, 1, 1, 12, 0)


def shifts(engine: Engine) -> Table:
    columns = (Column("starts", Time), Column("seen", DateTime))
    return keyed_table(
        engine, "shifts", *columns, rows=[{"starts": START.time(), "seen": START}] * 3
    )


def stored(engine: Engine, table: Table) -> dict[int, dt.time]:
    with reader(engine).connect() as connection:
        return {row.id: row.starts for row in connection.execute(select(table))}


def test_a_time_with_an_offset_is_converted_to_utc(engine: Engine, tmp_path: Path) -> None:
    table = shifts(engine)
    path = tmp_path / "changes.csv"
    path.write_text("id,starts\n1,01:02:03+02:00\n2,23:30:00-01:00\n3,06:00:00Z\n")
    report = setwise.apply(engine, table, path)
    assert report.changed == 3
    assert stored(engine, table) == {1: dt.time(23, 2, 3), 2: dt.time(0, 30), 3: dt.time(6)}
    offset = dt.timezone(dt.timedelta(hours=2))
    with pytest.raises(setwise.ValidationError) as caught:  # from Python: refused
        setwise.apply(engine, table, [{"id": 1, "starts": dt.time(1, tzinfo=offset)}])
    (problem,) = caught.value.problems
    assert problem.column == "starts"
    assert problem.reason.startswith("a time with an offset, and the column stores none")


def test_a_fraction_finer_than_a_microsecond_is_refused(engine: Engine, tmp_path: Path) -> None:
    table = shifts(engine)
    path = tmp_path / "changes.csv"
    path.write_text(
        "id,starts,seen\n"
        "1,10:00:00.1234567,2020-02-29T10:00:00.9999999\n"
        '2,10:00:00.123456000,"2020-02-29T10:00:00,5+01:00"\n'  # zeros past the sixth: exact
    )
    found = problems_of(path, engine, table)
    assert set(found) == {
        (2, "starts", "10:00:00.1234567"),
        (2, "seen", "2020-02-29T10:00:00.9999999"),
    }
    assert found[2, "starts", "10:00:00.1234567"].startswith(
        "7 digits of a fraction of a second; setwise reads microseconds (6 digits)"
    )
    assert stored(engine, table) == {i: START.time() for i in (1, 2, 3)}


def test_parquet_nanoseconds_are_kept_whole_or_refused(engine: Engine, tmp_path: Path) -> None:
    # pyarrow hands a time64[ns] over cut to microseconds, and a timestamp[ns] as a
    # pandas Timestamp each database cut or rounded otherwise (.123456789: SQLite
    # .123456, PostgreSQL .123457).
    table = shifts(engine)
    path = tmp_path / "changes.parquet"
    at = dt.datetime(2020, 2, 29, 10, 0)
    nanos = (at - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1) * 1000
    times = pa.array([36_000_123_456_000, 36_000_123_456_789], pa.time64("ns"))
    seen = pa.array([nanos + 123_456_789, nanos + 1_000], pa.timestamp("ns"))
    pq.write_table(pa.table({"id": [1, 2], "starts": times, "seen": seen}), path)
    found = problems_of(path, engine, table)
    assert found == {
        (1, "seen", "2020-02-29 10:00:00.123456789"): "a time in nanoseconds; setwise keeps "
        "microseconds and would cut the rest: round it first",
        (2, "starts", "10:00:00.123456789"): "a time in nanoseconds; setwise keeps "
        "microseconds and would cut the rest: round it first",
    }
    whole = pa.array([nanos + 123_456_000, nanos + 1_000], pa.timestamp("ns"))
    pq.write_table(pa.table({"id": [1, 2], "starts": times[:1].take([0, 0]), "seen": whole}), path)
    assert setwise.apply(engine, table, path).changed == 2
    with reader(engine).connect() as connection:
        starts, seen = connection.execute(
            select(table.c.starts, table.c.seen).where(table.c.id == 1)
        ).one()
    # Whole microseconds, as written (MariaDB's TIME and DATETIME keep whole seconds).
    assert (starts.microsecond, seen.microsecond) in {(123_456, 123_456), (0, 0)}
    assert (starts.replace(microsecond=0), seen.replace(microsecond=0)) == (dt.time(10), at)
