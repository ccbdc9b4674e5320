"""A change is written exactly when it changes what the row stores, byte for byte.

Case-insensitive collations (SQLite NOCASE, MariaDB's default utf8mb4_general_ci, a
PostgreSQL nondeterministic ICU collation, citext) and PAD SPACE comparisons call
'Boeing' equal to 'BOEING' and 'a' equal to 'a '; a NUMERIC(5, 2) stores 20.001 as
20.00. Neither may decide whether a row changes.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    Engine,
    MetaData,
    Table,
    create_engine,
    delete,
    literal,
    select,
    text,
    types,
    update,
)
from sqlalchemy.exc import DBAPIError

import setwise
from tests import backends
from tests.backends import reader
from tests.test_cli import cli_url
from tests.test_cli import setwise as run_cli

ROWS = [
    {"id": 1, "name": "BOEING", "ci_name": "BOEING", "temp": Decimal("20.00"), "code": "ab"},
    {"id": 2, "name": "AIRBUS", "ci_name": "AIRBUS", "temp": Decimal("21.50"), "code": "cd"},
    {"id": 3, "name": "AIRBUS", "ci_name": "AIRBUS", "temp": Decimal("-3.25"), "code": "ef"},
]

# Per backend: the table, with a column of the database's default collation (name) and
# one of a case-insensitive collation (ci_name).
DDL = {
    "sqlite": [
        "CREATE TABLE planes (id INTEGER PRIMARY KEY, name VARCHAR(40),"
        " ci_name VARCHAR(40) COLLATE NOCASE, temp NUMERIC(5, 2), ratio REAL,"
        " code CHAR(5), seen TIMESTAMP)"
    ],
    "postgresql": [
        "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
        "CREATE TABLE planes (id INTEGER PRIMARY KEY, name VARCHAR(40),"
        " ci_name VARCHAR(40) COLLATE ci, temp NUMERIC(5, 2), ratio REAL,"
        " code CHAR(5), seen TIMESTAMP(0))",
    ],
    "mariadb": [
        "CREATE TABLE planes (id INT PRIMARY KEY, name VARCHAR(40),"
        " ci_name VARCHAR(40) COLLATE utf8mb4_unicode_ci, temp DECIMAL(5, 2), ratio FLOAT,"
        " code CHAR(5), seen DATETIME(0), latin VARCHAR(40) CHARACTER SET latin1)"
        " DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci"
    ],
}
DDL["galera"] = DDL["mariadb"]


@pytest.fixture
def planes(engine: Engine, backend: str, request: pytest.FixtureRequest) -> Table:
    statements = DDL[backend]
    if backend == "postgresql" and not has_icu(engine):
        # A nondeterministic collation needs ICU; a build without it (the embedded
        # PostgreSQL 18) has no case-insensitive collation to test.
        if "ci_name" in request.node.name or "collation" in request.node.name:
            pytest.skip("this PostgreSQL is built without ICU: no case-insensitive collation")
        statements = [s.replace(" COLLATE ci", "") for s in statements[1:]]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    table = Table("planes", MetaData(), autoload_with=engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), ROWS)
        connection.execute(table.update().values(ratio=literal(0.1, types.Float())))
    return table


def has_icu(engine: Engine) -> bool:
    """Whether the PostgreSQL server is built with ICU: it lists ICU collations either
    way, so create one and roll back."""
    with engine.connect() as connection:
        try:
            connection.execute(text("CREATE COLLATION icu_probe (provider = icu, locale = 'und')"))
        except DBAPIError:
            return False
        finally:
            connection.rollback()
        return True


def stored(engine: Engine, table: Table, column: str) -> dict[int, Any]:
    with reader(engine).connect() as connection:
        return dict(connection.execute(select(table.c.id, table.c[column])).all())  # type: ignore[arg-type]


@pytest.mark.parametrize("column", ["name", "ci_name"])
def test_a_case_only_correction_is_written(engine: Engine, planes: Table, column: str) -> None:
    report = setwise.apply(engine, "planes", [{"id": 1, column: "Boeing"}])
    assert (report.matched, report.changed, report.unchanged) == (1, 1, 0)
    assert stored(engine, planes, column)[1] == "Boeing"

    again = setwise.apply(engine, "planes", [{"id": 1, column: "Boeing"}])
    assert (again.changed, again.unchanged) == (0, 1)

    setwise.revert(engine, report.run_id)
    assert stored(engine, planes, column)[1] == "BOEING"


@pytest.mark.parametrize("column", ["name", "ci_name"])
def test_a_trailing_space_correction_is_written(engine: Engine, planes: Table, column: str) -> None:
    report = setwise.apply(engine, "planes", [{"id": 2, column: "AIRBUS "}])
    assert (report.changed, report.unchanged) == (1, 0)
    assert stored(engine, planes, column)[2] == "AIRBUS "
    setwise.revert(engine, report.run_id)
    assert stored(engine, planes, column)[2] == "AIRBUS"


@pytest.mark.parametrize("column", ["name", "ci_name"])
@pytest.mark.parametrize("chunk_rows", [None, 1])
def test_a_case_only_set_based_update_is_written(
    engine: Engine, planes: Table, column: str, chunk_rows: int | None
) -> None:
    statement = update(planes).where(planes.c.id >= 2).values({column: "Airbus"})
    plan = setwise.plan(engine, statement, chunk_rows=chunk_rows)
    assert (plan.matched, plan.would_change) == (2, 2)
    report = setwise.update(engine, statement, chunk_rows=chunk_rows)
    assert (report.matched, report.changed, report.unchanged) == (2, 2, 0)
    assert stored(engine, planes, column) == {1: "BOEING", 2: "Airbus", 3: "Airbus"}


def test_the_key_match_keeps_the_column_collation(engine: Engine, planes: Table) -> None:
    # A WHERE on the case-insensitive column finds 'AIRBUS' by 'airbus', as the
    # database's own rules say; only the no-op test is byte for byte.
    statement = update(planes).where(planes.c.ci_name == "airbus").values(ci_name="Airbus")
    report = setwise.update(engine, statement)
    assert report.changed == 2
    assert stored(engine, planes, "ci_name")[3] == "Airbus"


@pytest.mark.parametrize("column", ["name", "ci_name"])
def test_the_cli_writes_a_case_only_change(engine: Engine, planes: Table, column: str) -> None:
    result = run_cli(
        "apply",
        "planes",
        "--set",
        f"{column} = 'Airbus'",
        "--where",
        f"{column} = 'AIRBUS'",
        "--yes",
        "--json",
        "--db",
        cli_url(engine),
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert (counts["changed"], counts["unchanged"]) == (2, 0)
    assert stored(engine, planes, column) == {1: "BOEING", 2: "Airbus", 3: "Airbus"}


def test_a_change_rounded_away_by_the_scale_writes_and_journals_nothing(
    engine: Engine, planes: Table
) -> None:
    before = stored(engine, planes, "temp")
    statement = update(planes).where(planes.c.id > 0).values(temp=planes.c.temp + Decimal("0.001"))
    assert setwise.plan(engine, statement).would_change == 0
    report = setwise.update(engine, statement)
    assert (report.matched, report.changed, report.unchanged) == (3, 0, 3)
    assert stored(engine, planes, "temp") == before
    assert setwise.runs(engine)[0].changed == 0

    chunked = setwise.update(engine, statement, chunk_rows=1)
    assert chunked.changed == 0
    assert stored(engine, planes, "temp") == before


def test_a_change_the_scale_keeps_is_written_rounded(engine: Engine, planes: Table) -> None:
    statement = update(planes).where(planes.c.id == 1).values(temp=planes.c.temp + Decimal("0.006"))
    report = setwise.update(engine, statement)
    assert report.changed == 1
    assert stored(engine, planes, "temp")[1] == Decimal("20.01")
    again = setwise.update(
        engine, update(planes).where(planes.c.id == 1).values(temp=Decimal("20.01"))
    )
    assert again.changed == 0


def test_a_changeset_value_with_more_places_than_the_column_is_refused(
    engine: Engine, planes: Table
) -> None:
    with pytest.raises(setwise.ValidationError, match="decimal places"):
        setwise.apply(engine, "planes", [{"id": 1, "temp": Decimal("20.001")}])
    assert stored(engine, planes, "temp")[1] == Decimal("20.00")


def test_a_float_stored_at_its_own_precision_is_unchanged(engine: Engine, planes: Table) -> None:
    # A REAL (PostgreSQL) or FLOAT (MariaDB) column keeps 0.1 in single precision: the
    # double 0.1 stores the very same bytes. SQLite's REAL is a double.
    statement = update(planes).where(planes.c.id > 0).values(ratio=literal(0.1, types.Float()))
    report = setwise.update(engine, statement)
    assert (report.changed, report.unchanged) == (0, 3)


@pytest.mark.requires("typed_storage")
def test_padding_and_fractions_the_column_drops_change_nothing(
    engine: Engine, planes: Table
) -> None:
    # CHAR(5) stores 'ab' and 'ab ' alike; TIMESTAMP(0) / DATETIME(0) drops the fraction.
    padded = update(planes).where(planes.c.id == 1).values(code="ab ")
    assert setwise.update(engine, padded).changed == 0
    moved = update(planes).where(planes.c.id == 1).values(code="AB")
    assert setwise.update(engine, moved).changed == 1

    second = dt.datetime(2024, 5, 1, 10, 0, 0)
    stamp = update(planes).where(planes.c.id == 1).values(seen=second)
    assert setwise.update(engine, stamp).changed == 1
    fraction = (
        update(planes)
        .where(planes.c.id == 1)
        .values(seen=dt.datetime(2024, 5, 1, 10, 0, 0, 400_000))
    )
    assert setwise.update(engine, fraction).changed == 0
    assert stored(engine, planes, "seen")[1] == second


@pytest.mark.requires("column_charsets")
def test_a_latin1_column_compares_in_its_own_character_set(engine: Engine, planes: Table) -> None:
    first = setwise.apply(engine, "planes", [{"id": 1, "latin": "café"}])
    assert first.changed == 1
    same = setwise.apply(engine, "planes", [{"id": 1, "latin": "café"}])
    assert (same.changed, same.unchanged) == (0, 1)
    same_set = update(planes).where(planes.c.id == 1).values(latin="café")
    assert setwise.update(engine, same_set).changed == 0
    accent = setwise.apply(engine, "planes", [{"id": 1, "latin": "CAFÉ"}])
    assert accent.changed == 1
    assert stored(engine, planes, "latin")[1] == "CAFÉ"
    setwise.revert(engine, accent.run_id)
    assert stored(engine, planes, "latin")[1] == "café"


@pytest.mark.backends("postgresql")
def test_a_citext_column_takes_a_case_only_change(engine: Engine) -> None:
    with engine.begin() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS citext SCHEMA public"))
    # The extension's type lives in public: a search path that reaches it, as an
    # application's would.
    both = create_engine(engine.url, connect_args={"options": f"-csearch_path={schema},public"})
    try:
        with both.begin() as connection:
            connection.execute(text("CREATE TABLE tags (id INTEGER PRIMARY KEY, tag citext)"))
            connection.execute(text("INSERT INTO tags VALUES (1, 'SQL'), (2, 'db')"))
        rows = [{"id": 1, "tag": "sql"}, {"id": 2, "tag": "db"}]
        report = setwise.apply(both, "tags", rows)
        assert (report.changed, report.unchanged) == (1, 1)
        tags = Table("tags", MetaData(), autoload_with=both)
        statement = update(tags).where(tags.c.tag == "DB").values(tag="Db")
        assert setwise.update(both, statement).changed == 1
        with both.connect() as connection:
            found = connection.execute(text("SELECT id, tag::text FROM tags ORDER BY id")).all()
        assert [tuple(row) for row in found] == [(1, "sql"), (2, "Db")]
        setwise.revert(both, report.run_id)
    finally:
        both.dispose()


def test_a_changeset_value_the_column_stores_as_it_is_changes_nothing(
    engine: Engine, planes: Table, backend: str
) -> None:
    # 0.1 staged into a REAL/FLOAT column is the float the row holds; a timestamp's
    # fraction is dropped by a TIMESTAMP(0) column as it is staged.
    moment = dt.datetime(2024, 5, 1, 10, 0, 0)
    setwise.apply(engine, "planes", [{"id": 1, "seen": moment}])
    rows = [{"id": 1, "ratio": 0.1}, {"id": 2, "ratio": 0.1}]
    # SQLite keeps a timestamp as the text it is given
    if backends.has(backend, "typed_storage"):
        rows.append({"id": 1, "seen": moment.replace(microsecond=300_000)})
    report = setwise.apply(engine, "planes", rows[:2])
    assert (report.changed, report.unchanged) == (0, 2)
    if backends.has(backend, "typed_storage"):
        again = setwise.apply(engine, "planes", [rows[2]])
        assert (again.changed, again.unchanged) == (0, 1)
        assert stored(engine, planes, "seen")[1] == moment


@pytest.mark.backends("postgresql")
def test_json_arrays_and_intervals_compare_as_they_are_stored(engine: Engine) -> None:
    # JSONB and arrays call 1.0 equal to 1 and an INTERVAL '1 day' equal to '24 hours',
    # though each keeps what it was given; JSON has no equality at all (an error).
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE docs (id INTEGER PRIMARY KEY, doc JSONB, raw JSON,"
                " amounts NUMERIC[], wait INTERVAL)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO docs VALUES (1, '{\"a\": 1}', '{\"a\": 1}', '{1.5}', '1 day'),"
                " (2, '{\"a\": 1}', '{\"a\": 1}', '{1.5}', '1 day')"
            )
        )
    shown = text("SELECT doc::text, raw::text, amounts::text, wait::text FROM docs ORDER BY id")

    def contents() -> list[tuple[Any, ...]]:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(shown)]

    before = contents()
    # A JSON column takes a Python value as SQLAlchemy's JSON type does (a str is a JSON
    # string); a file's text is read as a JSON document (tests/test_json_columns.py).
    changes = {"doc": {"a": 1.0}, "raw": {"a": 1.0}, "amounts": "{1.50}", "wait": "24 hours"}
    rows = [{"id": 1, **changes}, {"id": 2, "doc": {"a": 1}, "raw": {"a": 1}}]
    report = setwise.apply(engine, "docs", rows)
    assert (report.changed, report.unchanged) == (1, 1)
    assert contents() == [('{"a": 1.0}', '{"a": 1.0}', "{1.50}", "24:00:00"), before[1]]
    # A row changed since the run only in a way that equality ignores is a conflict.
    with engine.begin() as connection:
        connection.execute(text("UPDATE docs SET doc = '{\"a\": 1.00}' WHERE id = 1"))
    with pytest.raises(setwise.ConflictError):
        setwise.revert(engine, report.run_id or "")
    with engine.begin() as connection:
        connection.execute(text("UPDATE docs SET doc = '{\"a\": 1.0}' WHERE id = 1"))
    setwise.revert(engine, report.run_id or "")
    assert contents() == before
    docs = Table("docs", MetaData(), autoload_with=engine)
    gone = setwise.delete(engine, delete(docs).where(docs.c.id == 2))
    setwise.revert(engine, gone.run_id or "")
    assert contents() == before
