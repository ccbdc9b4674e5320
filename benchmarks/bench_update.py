"""A uniform change to a quarter of the rows, three ways, on every backend.

    python benchmarks/bench_update.py [--rows 100000] [--backends sqlite,postgresql]

1. loop:    load the fiction books through a Session, raise each price, commit
            (the ORM flushes one UPDATE per row);
2. setwise: ``setwise.update(engine, update(Book).where(...).values(...))``, as called
            by default (with its journal) and with ``journal=False`` (the bare
            set-based UPDATE and the count that reports matched/unchanged);
3. raw:     the UPDATE a person would type, through the driver, in one transaction.

Each timed run starts from a freshly reset table, so all do the same work; the runs go
round-robin and the median is reported. ``loop/case`` is what a case saves over the
loop; ``case/raw`` what it costs over hand-written SQL (target for setwise: <= 1.10).
"""

from __future__ import annotations

import inspect
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

import setwise
from books import GENRES, Book, changed_rows, reset, seed
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

NAME = "update"
GENRE = "fiction"  # a quarter of the rows (books.GENRES)
FACTOR = Decimal("1.10")
RAW_SQL = f"UPDATE books SET price = price * {FACTOR} WHERE genre = '{GENRE}'"
# The loop is the slow case by an order of magnitude: fewer runs keep the benchmark
# short, and its spread hardly moves a ratio that large.
LOOP_REPEATS = 3
# setwise.update's options that change the work it does, when this setwise has them:
# the default run (with a journal, when journals exist) and the bare set-based UPDATE.
JOURNAL_OFF = {"journal": False}


def run_loop(engine: Engine) -> None:
    with Session(engine) as session:
        for book in session.scalars(select(Book).where(Book.genre == GENRE)):
            book.price = book.price * FACTOR
        session.commit()


def run_setwise(engine: Engine, options: dict[str, Any]) -> None:
    statement = update(Book).where(Book.genre == GENRE).values(price=Book.price * FACTOR)
    setwise.update(engine, statement, **options)


def run_raw(driver: Any) -> None:
    cursor = driver.cursor()
    cursor.execute(RAW_SQL)
    cursor.close()
    driver.commit()


def setwise_variants() -> dict[str, dict[str, Any]]:
    """The setwise.update calls to time: as called by default, and without a journal."""
    variants: dict[str, dict[str, Any]] = {"setwise": {}}
    if "journal" in inspect.signature(setwise.update).parameters:
        variants["setwise, no journal"] = JOURNAL_OFF
    return variants


def measure(engine: Engine, rows: int, repeats: int, loop_repeats: int) -> dict[str, Timing]:
    """Timings per case, after one untimed round that checks they do equal work."""
    clock = CpuClock(engine)
    seed(engine, rows)
    pooled = engine.raw_connection()
    driver = pooled.driver_connection
    pooled.detach()  # the driver's own connection, outside SQLAlchemy's pool

    def fresh() -> None:
        reset(engine)

    cases = {"loop": Case(lambda: run_loop(engine), fresh, loop_repeats)}
    for label, options in setwise_variants().items():
        cases[label] = Case(lambda options=options: run_setwise(engine, options), fresh)
    cases["raw"] = Case(lambda: run_raw(driver), fresh)
    try:
        expected = changed_count(rows)
        for name, case in cases.items():
            fresh()
            case.run()
            wrote = changed_rows(engine)
            if wrote != expected:
                raise SystemExit(f"{name} changed {wrote} rows, expected {expected}")
        return time_rounds(cases, repeats, clock)
    finally:
        pooled.close()


def changed_count(rows: int) -> int:
    return rows // len(GENRES)  # ids 4, 8, 12, ... are fiction


LABELS = {
    "loop": "loop (ORM flush)",
    "raw": "raw driver",
}


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], rows=100_000, repeats=15)
    parser.add_argument(
        "--loop-repeats",
        type=int,
        default=LOOP_REPEATS,
        help=f"timed runs of the ORM loop (default {LOOP_REPEATS})",
    )
    options = parser.parse_args()
    changed = changed_count(options.rows)

    servers: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    lines: list[list[str]] = []
    for backend in chosen_backends(options.backends):
        version = server_version(backend)
        if version is None:
            continue
        servers[backend] = version
        with fresh_database(backend) as engine:
            timings = measure(engine, options.rows, options.repeats, options.loop_repeats)
        loop, raw = timings["loop"].median, timings["raw"].median
        raw_cpu = timings["raw"].cpu
        for number, (case, timing) in enumerate(timings.items()):
            cpu = timing.cpu
            cpu_ratio = cpu / raw_cpu if cpu is not None and raw_cpu else None
            lines.append(
                [
                    backend if number == 0 else "",
                    LABELS.get(case, f"{case}.update" if case == "setwise" else case),
                    seconds(timing.median),
                    f"{timing.spread:.0%}",
                    per_second(changed, timing.median),
                    ratio(loop, timing.median),
                    ratio(timing.median, raw),
                    seconds(cpu) if cpu is not None else "-",
                    f"{cpu_ratio:.2f}x" if cpu_ratio is not None else "-",
                ]
            )
            results.append(
                {
                    "backend": backend,
                    "case": case,
                    "rows": options.rows,
                    "changed": changed,
                    "median_s": timing.median,
                    "rows_per_s": changed / timing.median,
                    "loop_over_case": loop / timing.median,
                    "case_over_raw": timing.median / raw,
                    "cpu_s": cpu,
                    "cpu_case_over_raw": cpu_ratio,
                    "samples_s": timing.samples,
                    "cpu_samples_s": timing.cpu_samples,
                }
            )

    columns = [
        "backend",
        "case",
        "seconds",
        "spread",
        "rows changed/s",
        "loop/case",
        "case/raw",
        "CPU s",
        "CPU case/raw",
    ]
    caption = (
        f"{changed:,} of {options.rows:,} rows: price * {FACTOR} WHERE genre = '{GENRE}'."
        f" Median of {options.repeats} runs ({options.loop_repeats} for the loop), each on a"
        " freshly reset table; spread = (max - min) / median. CPU: this process and the"
        " PostgreSQL backends serving it (- where it cannot be told apart)."
    )
    table = print_table("setwise.update vs ORM loop vs raw SQL", columns, lines, caption)
    publish(
        options,
        NAME,
        parameters={
            "rows": options.rows,
            "changed": changed,
            "repeats": options.repeats,
            "loop_repeats": options.loop_repeats,
            "raw_sql": RAW_SQL,
        },
        servers=servers,
        results=results,
        table=table,
    )


if __name__ == "__main__":
    main()
