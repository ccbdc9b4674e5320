"""MariaDB stages a changeset byte for byte, whichever way its rows go to the server.

Rows go as INSERT text setwise lays out a column at a time (dialects/mysql_values.py),
through the driver's executemany when the session reads no backslash escapes
(NO_BACKSLASH_ESCAPES), or by LOAD DATA LOCAL when the connection allows it; each
with PyMySQL and, as a driver twin, mysqlclient. Hostile text (quotes, backslashes,
NUL, CR/LF, Ctrl-Z, printf markers, emoji), a latin1 column and binary columns must
come back exactly as given, and a revert must bring back exactly what was there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Column, Double, Engine, MetaData, Table, create_engine, event, select, text

import setwise
from setwise.dialects.mysql_load import load_data_allowed

pytestmark = [pytest.mark.backends("mariadb"), pytest.mark.driver_twin]

DDL = (
    "CREATE TABLE awkward (id INT PRIMARY KEY, txt VARCHAR(200) COLLATE utf8mb4_bin,"
    " lat VARCHAR(200) CHARACTER SET latin1 COLLATE latin1_bin, bin VARBINARY(300),"
    " doc BLOB, price DECIMAL(14, 4), at DATETIME(6), day DATE, tm TIME(6), flag BOOL,"
    " ratio DOUBLE, n BIGINT) DEFAULT CHARSET utf8mb4"
)

TEXTS = [
    "O'Brien",
    'say "hi"',
    "back\\slash\\",
    "\\N",
    "\\'; DROP TABLE awkward; -- ",
    "nul\0byte\0",
    "line\nbreak\r\nand\rreturn",
    "tab\there",
    "ctrl-z \x1a end",
    "emoji 🦆 and 𝄞",
    "%s %d %(x)s %%",
    "",
    " trailing ",
    "\\\\0 \\Z \\n",
]
LATIN = ["café naïve ÿ", "O'Brien\\", "£ ¤ ¥ §", "tab\tnul\0", ""]
BINARY = [bytes(range(256)), b"", b"'\\\0\"", b"\xff\xfe\x00\x1a", b"%s"]


def changes() -> list[dict[str, Any]]:
    rows = []
    for i, txt in enumerate(TEXTS, start=1):
        rows.append(
            {
                "id": i,
                "txt": txt,
                "lat": LATIN[i % len(LATIN)],
                "bin": BINARY[i % len(BINARY)],
                "doc": BINARY[(i + 1) % len(BINARY)] * 3,
                "price": Decimal(f"-{i}.0001") if i % 2 else Decimal("12345678.9999"),
                "at": dt.datetime(2026, 1, i, 23, 59, 59, i if i % 3 else 0),
                "day": dt.date(1000 + i, 2, 28),
                "tm": dt.time(i, 0, 1, 999999),
                "flag": i % 2,
                "ratio": 0.1 * i if i % 4 else -1e-300,
                "n": -(2**63) if i == 1 else 2**63 - i,
            }
        )
    # A row of NULLs: None beside values in every column of the batch.
    rows.append(dict.fromkeys(rows[0], None) | {"id": len(rows) + 1})
    return rows


def before() -> list[dict[str, Any]]:
    return [
        {"id": row["id"], "txt": "old", "lat": "old", "bin": b"old", "price": Decimal(1)}
        for row in changes()
    ]


@pytest.fixture
def awkward(engine: Engine) -> Table:
    with engine.begin() as connection:
        connection.execute(text(DDL))
    # DOUBLE read back as a float, not reflected as a Decimal of ten places.
    table = Table("awkward", MetaData(), Column("ratio", Double()), autoload_with=engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), before())
    return table


def stored(engine: Engine, table: Table) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        found = connection.execute(select(table).order_by(table.c.id)).mappings()
        return [dict(row) for row in found]


def with_defaults(row: dict[str, Any]) -> dict[str, Any]:
    return dict.fromkeys(("doc", "at", "day", "tm", "flag", "ratio", "n"), None) | row


def no_backslash_escapes(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
    cursor.close()


@pytest.fixture(params=["laid out", "no backslash escapes", "load data"])
def staging(request: pytest.FixtureRequest, engine: Engine) -> Iterator[tuple[str, Engine]]:
    """An engine on the test's database whose changesets stage the way named."""
    way = request.param
    options: dict[str, Any] = {"local_infile": True} if way == "load data" else {}
    staged = create_engine(engine.url, connect_args=options)
    if way == "no backslash escapes":
        event.listen(staged, "connect", no_backslash_escapes)
    with staged.connect() as connection:
        allowed = load_data_allowed(connection)
    if way == "load data" and not allowed:
        pytest.skip("the server does not allow LOAD DATA LOCAL (local_infile off)")
    try:
        yield way, staged
    finally:
        staged.dispose()


def test_hostile_values_are_staged_and_reverted_byte_for_byte(
    engine: Engine, awkward: Table, staging: tuple[str, Engine]
) -> None:
    way, staged = staging
    inserts: list[str] = []

    @event.listens_for(staged, "before_cursor_execute")
    def seen(*args: Any) -> None:
        statement = args[2]
        if statement.startswith("INSERT INTO setwise_stage"):
            inserts.append(statement)

    given = changes()
    report = setwise.apply(staged, "awkward", given)
    assert report.changed == len(given)
    assert stored(engine, awkward) == given
    if way == "laid out":
        # The values went as text setwise wrote, not as the driver's parameters.
        assert inserts and all("VALUES (%s" not in statement for statement in inserts)
    if way == "no backslash escapes":
        assert inserts and all("VALUES (%s" in statement for statement in inserts)
    setwise.revert(staged, report.run_id)
    assert stored(engine, awkward) == [with_defaults(row) for row in before()]


def test_a_run_in_the_callers_transaction_writes_what_it_read_exactly(engine: Engine) -> None:
    # The caller's transaction began before setwise created its journal table, which
    # MariaDB's snapshot cannot read (1412): the rows are read into Python, journaled and
    # written by key. A FLOAT came back with 6 digits, a DOUBLE through a Decimal of 10
    # places (1e300 as 1e65, 2.5e-320 as 0), a TIME as a time of day (-00:00:01 as
    # 23:59:59): the run wrote those, and the revert put them back.
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE exact (id INT PRIMARY KEY, fl FLOAT, db DOUBLE, tm TIME(6),"
                " at DATETIME(6), n INT)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO exact VALUES (1, 1234567, 1.5e300, '-00:00:01', "
                "'2024-02-29 23:59:59.000001', 0), (2, 0.1, 2.5e-320, '-838:59:59', NULL, 0),"
                " (3, NULL, 4.25, '838:59:59.999999', '1000-01-01 00:00:00', 0)"
            )
        )
    table = Table("exact", MetaData(), autoload_with=engine)
    shown = text(
        "SELECT id, CAST(CAST(fl AS DOUBLE) AS CHAR), CAST(db AS CHAR), CAST(tm AS CHAR),"
        " CAST(at AS CHAR), n FROM exact ORDER BY id"
    )

    def contents() -> list[tuple[Any, ...]]:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(shown)]

    before = contents()
    with engine.begin() as connection:
        connection.execute(select(1))  # the caller's snapshot begins here
        statement = (
            table.update()
            .where(table.c.id > 0)
            .values(n=1, fl=table.c.fl, db=table.c.db * 2, tm=table.c.tm, at=table.c.at)
        )
        report = setwise.update(connection, statement)
    assert report.changed == 3 and report.strategy.endswith("by key")
    doubled = {1: "3e300", 2: "5e-320", 3: "8.5"}
    assert contents() == [(*row[:2], doubled[row[0]], *row[3:5], 1) for row in before]
    setwise.revert(engine, report.run_id or "")
    assert contents() == before


@pytest.mark.parametrize("collation", ["utf8mb4_unicode_ci", "utf8mb4_bin"])
def test_a_table_of_another_collation_than_the_database_is_journaled_and_reverted(
    engine: Engine, collation: str
) -> None:
    # The journal's and the staging table's key columns took the database's collation
    # (utf8mb4_general_ci), not the table's: a revert's join of a utf8mb4_unicode_ci key
    # failed (1267, "Illegal mix of collations") after the run had written, so did a
    # changeset, and under utf8mb4_bin the keys 'a' and 'A' were one key of the journal
    # (the run refused as a duplicate).
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE tagged (name VARCHAR(10) PRIMARY KEY, note VARCHAR(10))"
                f" DEFAULT CHARSET utf8mb4 COLLATE {collation}"
            )
        )
        names = ["a", "b ", "é"] + (["A"] if collation.endswith("_bin") else [])
        connection.execute(
            text("INSERT INTO tagged VALUES (:name, :note)"),
            [{"name": name, "note": f"n{i}"} for i, name in enumerate(names)],
        )
    table = Table("tagged", MetaData(), autoload_with=engine)
    shown = text("SELECT HEX(name), HEX(note) FROM tagged ORDER BY HEX(name)")

    def contents() -> list[tuple[Any, ...]]:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(shown)]

    before = contents()
    for chunk_rows in (None, 2):
        report = setwise.update(
            engine,
            table.update().where(table.c.note != "x").values(note="x"),
            chunk_rows=chunk_rows,
        )
        assert report.changed == len(names)
        setwise.revert(engine, report.run_id or "", chunk_rows=chunk_rows)
        assert contents() == before
        gone = setwise.delete(engine, table.delete().where(table.c.note != "x"))
        assert gone.deleted == len(names)
        setwise.revert(engine, gone.run_id or "")
        assert contents() == before
        # A changeset's staging table takes the key's collation too.
        rows = [{"name": name, "note": "y"} for name in names]
        applied = setwise.apply(engine, "tagged", rows, chunk_rows=chunk_rows)
        assert applied.changed == len(names)
        setwise.revert(engine, applied.run_id or "")
        assert contents() == before
