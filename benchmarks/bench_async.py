"""setwise.asyncio.apply against setwise.apply: a changeset of every row, same database.

    python benchmarks/bench_async.py [--rows 100000] [--backends sqlite,postgresql]

The changeset gives every book (``--rows`` of them) a new price and stock, applied
journaled as called by default, on a table reset from its seed before each run:

- sync:   ``setwise.apply(engine, Book, rows)`` on the tests' sync driver (pysqlite,
          psycopg, PyMySQL);
- async:  ``await setwise.asyncio.apply(async_engine, Book, rows)`` on each asyncio
          driver of the backend (aiosqlite; psycopg's AsyncConnection and asyncpg;
          aiomysql), on one event loop kept for the whole benchmark, as a service has.

Both start from the same list of mappings, built once; each engine's connections are
opened by an untimed first round, which also checks that every case changed every row.
Cases run round-robin; the table shows the median, and each async driver's ratio to
the sync one (the issue's bound: within 1.2x), in wall-clock time and in CPU time (this
process and, on PostgreSQL, the server processes serving it: steadier on a busy machine).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.ext.asyncio import AsyncEngine

import setwise
import setwise.asyncio
from books import Book, changed_rows, reset, seed
from common import (
    Case,
    CpuClock,
    Timing,
    arguments,
    backends,
    each_database,
    print_table,
    publish,
    time_rounds,
)

NAME = "async"
TARGET = 1.2  # the bound: async apply within 1.2x of the sync apply


def changes(rows: int) -> list[dict[str, Any]]:
    """Every book a new price and stock (never the values the seed gives it)."""
    return [
        {"id": i, "price": Decimal(f"{100 + i % 900}.25"), "stock": 50 + i % 7}
        for i in range(1, rows + 1)
    ]


def async_engine(engine: Engine, backend: str, driver: str) -> AsyncEngine:
    """An AsyncEngine with ``driver`` on the database (the schema) ``engine`` is on."""
    args: dict[str, Any] = {}
    if backend == "postgresql":
        with engine.connect() as connection:
            schema = connection.scalar(text("SELECT current_schema()"))
        args = {"options": f"-csearch_path={schema}"}
    return AsyncEngine(backends.engine_on(engine.url, driver, args))


def measure(engine: Engine, backend: str, rows: int, repeats: int) -> dict[str, Timing]:
    clock = CpuClock(engine)  # before the engine's first connection: it counts them all
    seed(engine, rows)
    given = changes(rows)
    loop = asyncio.new_event_loop()
    drivers = backends.ASYNC_DRIVERS[backend]
    engines = {driver: async_engine(engine, backend, driver) for driver in drivers}
    for face in engines.values():  # the async engines' server processes count too
        clock.follow(face.sync_engine)

    def fresh() -> None:
        reset(engine)

    cases = {"sync": Case(lambda: setwise.apply(engine, Book, given), fresh)}
    for driver, face in engines.items():
        cases[driver] = Case(
            lambda face=face: loop.run_until_complete(setwise.asyncio.apply(face, Book, given)),
            fresh,
        )
    try:
        for name, case in cases.items():  # untimed: connects, and checks the work
            fresh()
            case.run()
            written = changed_rows(engine)
            if written != rows:
                raise SystemExit(f"{name} changed {written} rows, expected {rows}")
        return time_rounds(cases, repeats, clock)
    finally:
        for face in engines.values():
            loop.run_until_complete(face.dispose())
        loop.close()


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], rows=100_000, repeats=5)
    options = parser.parse_args()
    servers: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    lines: list[list[str]] = []
    for backend, engine in each_database(options.backends, servers):
        timings = measure(engine, backend, options.rows, options.repeats)
        sync = timings["sync"].median
        for name, timing in timings.items():
            ratio = timing.median / sync
            cpu = timing.cpu
            sync_cpu = timings["sync"].cpu
            cpu_ratio = cpu / sync_cpu if cpu is not None and sync_cpu else None
            driver = engine.dialect.driver if name == "sync" else name
            results.append(
                {
                    "backend": backend,
                    "case": name,
                    "driver": driver,
                    "median_s": round(timing.median, 4),
                    "samples_s": [round(s, 4) for s in timing.samples],
                    "ratio_to_sync": round(ratio, 3),
                    "cpu_s": None if cpu is None else round(cpu, 4),
                    "cpu_ratio_to_sync": None if cpu_ratio is None else round(cpu_ratio, 3),
                    "within_target": ratio <= TARGET,
                }
            )
            lines.append(
                [
                    backend,
                    f"{name} ({driver})" if name == "sync" else name,
                    f"{timing.median:.3f}",
                    f"{timing.spread:.0%}",
                    f"{options.rows / timing.median:,.0f}",
                    f"{ratio:.2f}x",
                    "-" if cpu is None else f"{cpu:.3f}",
                    "-" if cpu_ratio is None else f"{cpu_ratio:.2f}x",
                ]
            )
    table = print_table(
        f"setwise.asyncio.apply vs setwise.apply, {options.rows:,} rows, journaled",
        ["backend", "case", "median s", "spread", "rows/s", "vs sync", "CPU s", "CPU vs sync"],
        lines,
        caption=f"target: each async driver within {TARGET}x of the sync apply. CPU: this "
        "process and the PostgreSQL backends serving it (none for MariaDB: CpuClock)",
    )
    publish(
        options,
        NAME,
        parameters={"rows": options.rows, "repeats": options.repeats, "target": TARGET},
        servers=servers,
        results=results,
        table=table,
    )


if __name__ == "__main__":
    main()
