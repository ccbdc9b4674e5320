"""An upsert: a changeset half of whose keys are new, applied with ``missing="insert"``.

    python benchmarks/bench_upsert.py [--rows 100000] [--backends sqlite,postgresql]

The table holds ``--rows`` books (ids 1..rows); the changeset has as many rows, ids
rows/2+1 .. rows*3/2: its first half finds books (a new title, price and stock, except
every tenth, which already holds its values), its second half is new books, whole
rows. Cases, each on a table reset to the seed (untimed), round-robin, the median of
``--repeats`` runs:

- raw: the database's own upsert through the driver, from the same mappings, skipping
  rows that already hold their values as setwise does: PostgreSQL COPY into a
  temporary table + ``INSERT … SELECT … ON CONFLICT (id) DO UPDATE … WHERE`` (the
  values differ); SQLite a temporary table (multi-row INSERTs of 500 rows, setwise's
  size) + ``UPDATE … FROM`` + ``INSERT … SELECT … WHERE NOT EXISTS``; MariaDB a
  temporary table (multi-row INSERT) + ``INSERT … SELECT … ON DUPLICATE KEY UPDATE``;
- ``setwise.apply(..., missing="insert", journal=False)``;
- ``setwise.apply(..., missing="insert")``, journaled (revertible).

setwise is imported, its engine connected and the mappings built before the clock
starts; the raw path's driver tuples are built on its clock (part of its work). An
untimed first round checks that every case leaves the same table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, text

import setwise
from bench_apply import driver_connection
from books import SEED, Book, book_row, reset, seed
from common import (
    Case,
    CpuClock,
    Timing,
    arguments,
    chosen_backends,
    fresh_database,
    per_second,
    print_table,
    publish,
    ratio,
    seconds,
    server_version,
    time_rounds,
)
from setwise.dialects.sqlite import STAGE_ROWS_PER_INSERT

NAME = "upsert"
STAGE = "raw_stage"
COLUMNS = ("id", "isbn", "title", "genre", "price", "stock")
SET_COLUMNS = ("isbn", "title", "genre", "price", "stock")
RAW = "raw"
NO_JOURNAL = "setwise, no journal"
JOURNALED = "setwise"


def changes(rows: int) -> list[dict[str, Any]]:
    """Half the changeset finds rows (every tenth of those a no-op), half is new rows."""
    found = []
    for i in range(rows // 2 + 1, rows + rows // 2 + 1):
        row = book_row(i)
        if i <= rows and i % 10:
            row |= {"title": f"Book {i} (2nd edition)", "price": Decimal(str(row["price"])) + 1}
            row["stock"] = int(str(row["stock"])) + 1
        found.append(row)
    return found


def expected(rows: int) -> tuple[int, int]:
    """(rows changed, rows inserted) by the changeset of ``changes(rows)``."""
    updated = range(rows // 2 + 1, rows + 1)
    return sum(1 for i in updated if i % 10), rows - rows // 2


# -- raw paths, through the driver --------------------------------------------------------


def as_tuples(engine: Engine, dicts: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them (SQLite stores NUMERIC as REAL, as SQLAlchemy does)."""
    convert: Callable[[Any], Any] = float if engine.dialect.name == "sqlite" else Decimal
    return [(*(r[c] for c in COLUMNS[:4]), convert(r["price"]), r["stock"]) for r in dicts]


STAGE_COLUMNS = (
    "id INTEGER, isbn VARCHAR(20), title VARCHAR(200), genre VARCHAR(30),"
    " price NUMERIC(10, 2), stock INTEGER"
)


def raw_postgresql(driver: Any, tuples: Sequence[tuple[Any, ...]]) -> None:
    differs = " OR ".join(f"books.{c} IS DISTINCT FROM excluded.{c}" for c in SET_COLUMNS)
    sets = ", ".join(f"{c} = excluded.{c}" for c in SET_COLUMNS)
    with driver.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE {STAGE} ({STAGE_COLUMNS})")
        with cursor.copy(f"COPY {STAGE} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in tuples:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO books SELECT * FROM {STAGE} ORDER BY id"
            f" ON CONFLICT (id) DO UPDATE SET {sets} WHERE {differs}"
        )
        cursor.execute(f"DROP TABLE {STAGE}")
    driver.commit()


def raw_sqlite(driver: Any, tuples: Sequence[tuple[Any, ...]]) -> None:
    cursor = driver.cursor()
    cursor.execute(f"CREATE TEMP TABLE {STAGE} ({STAGE_COLUMNS})")
    width = len(COLUMNS)
    row = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(tuples), STAGE_ROWS_PER_INSERT):
        batch = tuples[start : start + STAGE_ROWS_PER_INSERT]
        flat = [value for each in batch for value in each]
        cursor.execute(f"INSERT INTO {STAGE} VALUES {', '.join([row] * len(batch))}", flat)
    differs = " OR ".join(f"books.{c} IS NOT s.{c}" for c in SET_COLUMNS)
    sets = ", ".join(f"{c} = s.{c}" for c in SET_COLUMNS)
    cursor.execute(f"UPDATE books SET {sets} FROM {STAGE} s WHERE books.id = s.id AND ({differs})")
    cursor.execute(
        f"INSERT INTO books SELECT * FROM {STAGE} s"
        " WHERE NOT EXISTS (SELECT 1 FROM books b WHERE b.id = s.id)"
    )
    driver.commit()
    cursor.execute(f"DROP TABLE {STAGE}")
    cursor.close()


def raw_mariadb(driver: Any, tuples: Sequence[tuple[Any, ...]]) -> None:
    sets = ", ".join(f"{c} = VALUES({c})" for c in SET_COLUMNS)
    with driver.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {STAGE} ({STAGE_COLUMNS})")
        # PyMySQL sends an executemany INSERT … VALUES as multi-row INSERTs of up to 1 MB.
        cursor.executemany(f"INSERT INTO {STAGE} VALUES (%s, %s, %s, %s, %s, %s)", tuples)
        # ON DUPLICATE KEY UPDATE writes a row only where a value differs.
        cursor.execute(
            f"INSERT INTO books SELECT * FROM {STAGE} ORDER BY id ON DUPLICATE KEY UPDATE {sets}"
        )
        cursor.execute(f"DROP TEMPORARY TABLE {STAGE}")
    driver.commit()


RAW_PATHS: dict[str, Callable[[Any, Sequence[tuple[Any, ...]]], None]] = {
    "postgresql": raw_postgresql,
    "sqlite": raw_sqlite,
    "mariadb": raw_mariadb,
}


def run_setwise(engine: Engine, dicts: Sequence[dict[str, Any]], journal: bool) -> None:
    report = setwise.apply(engine, Book, dicts, missing="insert", journal=journal)
    changed, inserted = expected(len(dicts))
    if (report.changed, report.inserted) != (changed, inserted):
        raise SystemExit(f"setwise.apply reported {report}, expected {changed} and {inserted}")


# -- one backend ------------------------------------------------------------------------------


def table_state(engine: Engine) -> tuple[int, int]:
    """(books, books that differ from the seed or are not in it): what a run left."""
    differs = " OR ".join(f"b.{c} <> s.{c}" for c in ("title", "price", "stock"))
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM books")).scalar_one()
        moved = connection.execute(
            text(
                f"SELECT count(*) FROM books b LEFT JOIN {SEED} s ON s.id = b.id"
                f" WHERE s.id IS NULL OR {differs}"
            )
        ).scalar_one()
    return int(count), int(moved)


def measure(engine: Engine, rows: int, repeats: int) -> dict[str, Timing]:
    clock = CpuClock(engine)  # before any connection: it records each one's backend
    seed(engine, rows)
    dicts = changes(rows)
    dialect = engine.dialect.name
    driver = driver_connection(engine)
    engine.connect().close()  # the pool's first connection is not the work measured
    runs: dict[str, Callable[[], None]] = {
        RAW: lambda: RAW_PATHS[dialect](driver, as_tuples(engine, dicts)),
        NO_JOURNAL: lambda: run_setwise(engine, dicts, journal=False),
        JOURNALED: lambda: run_setwise(engine, dicts, journal=True),
    }
    changed, inserted = expected(rows)
    for name, run in runs.items():  # the untimed round: every case leaves the same table
        reset(engine)
        run()
        state = table_state(engine)
        if state != (rows + inserted, changed + inserted):
            raise SystemExit(f"{dialect} {name}: the table holds {state}")

    def fresh() -> None:
        reset(engine)

    timings = time_rounds({name: Case(run, fresh) for name, run in runs.items()}, repeats, clock)
    driver.close()
    return timings


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], rows=100_000, repeats=3)
    options = parser.parse_args()
    rows, repeats = options.rows, options.repeats
    servers: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    table: list[list[str]] = []
    for name in chosen_backends(options.backends):
        version = server_version(name)
        if version is None:
            continue
        servers[name] = version
        with fresh_database(name) as engine:
            timings = measure(engine, rows, repeats)
        raw = timings[RAW]
        for case, timing in timings.items():
            cpu = timing.cpu
            cpu_ratio = cpu / raw.cpu if cpu is not None and raw.cpu else None
            results.append(
                {
                    "backend": name,
                    "case": case,
                    "seconds": timing.samples,
                    "median_s": timing.median,
                    "ratio_to_raw": timing.median / raw.median,
                    "cpu_s": timing.cpu_samples,
                    "cpu_ratio_to_raw": cpu_ratio,
                }
            )
            table.append(
                [
                    name,
                    case,
                    seconds(timing.median),
                    f"{timing.spread:.0%}",
                    per_second(rows, timing.median),
                    ratio(timing.median, raw.median),
                    "-" if cpu_ratio is None else f"{cpu_ratio:.2f}x",
                ]
            )
    changed, inserted = expected(rows)
    title = (
        f"upsert of {rows:,} rows into {rows:,} ({changed:,} changed, {inserted:,} inserted),"
        f" median of {repeats}"
    )
    columns = ["backend", "case", "seconds", "spread", "rows/s", "vs raw", "CPU vs raw"]
    caption = (
        "CPU: this process and its PostgreSQL backends (MariaDB's threads cannot be told"
        " apart: -); steadier than the wall clock on a shared machine."
    )
    printed = print_table(title, columns, table, caption)
    publish(
        options,
        NAME,
        parameters={"rows": rows, "repeats": repeats, "changed": changed, "inserted": inserted},
        servers=servers,
        results=results,
        table=printed,
    )


if __name__ == "__main__":
    main()
