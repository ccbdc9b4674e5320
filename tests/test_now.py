"""``NOW()`` in ``--set`` / ``--where`` text writes the database's current time, in every
dialect (sqlglot reads it as a function it does not model in MySQL's and SQLite's)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, Table, func, select, update

import setwise
from setwise.sqltext import parse_update
from tests.backends import reader
from tests.test_cli import cli_url
from tests.test_cli import setwise as run_cli

LONG_AGO = dt.datetime(2000, 1, 1)


@pytest.fixture
def events(engine: Engine) -> Table:
    table = Table(
        "events",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("updated_at", DateTime),
    )
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), [{"id": i, "updated_at": LONG_AGO} for i in (1, 2, 3)])
    return table


def stamps(engine: Engine, events: Table) -> dict[int, dt.datetime]:
    with reader(engine).connect() as connection:
        found = connection.execute(select(events.c.id, events.c.updated_at)).all()
    return dict(found)  # type: ignore[arg-type]


def assert_now_written(engine: Engine, events: Table, ids: set[int]) -> None:
    """Rows ``ids`` hold the time the database writes for its own CURRENT_TIMESTAMP now
    (row 3, which no run touches, gets it as a reference); rows 1 and 2 not in ``ids``
    are untouched."""
    with engine.begin() as connection:
        now = update(events).where(events.c.id == 3).values(updated_at=func.current_timestamp())
        connection.execute(now)
    found = stamps(engine, events)
    for i in ids:
        assert abs(found[i] - found[3]) < dt.timedelta(minutes=1), (i, found)
    assert {i: found[i] for i in {1, 2} - ids} == dict.fromkeys({1, 2} - ids, LONG_AGO)


@pytest.mark.parametrize("chunk_rows", [None, 1])
def test_set_now_writes_the_current_time(
    engine: Engine, events: Table, chunk_rows: int | None
) -> None:
    where = "updated_at < NOW() AND id <= 2"
    statement = parse_update(engine, "events", ["updated_at = NOW()"], where)
    report = setwise.update(engine, statement, chunk_rows=chunk_rows)
    assert report.changed == 2
    assert_now_written(engine, events, {1, 2})
    # The journal kept the time written: the rows have not moved since, so no force.
    setwise.revert(engine, report.run_id)
    assert {i: at for i, at in stamps(engine, events).items() if i != 3} == {
        1: LONG_AGO,
        2: LONG_AGO,
    }


def test_the_cli_sets_now(engine: Engine, events: Table) -> None:
    result = run_cli(
        "apply",
        "events",
        "--set",
        "updated_at = NOW()",
        "--where",
        "id = 1",
        "--yes",
        "--json",
        "--db",
        cli_url(engine),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["changed"] == 1
    assert_now_written(engine, events, {1})
