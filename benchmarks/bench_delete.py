"""A chunked, journaled setwise.delete of a quarter of the rows vs the raw DELETE.

    python benchmarks/bench_delete.py [--rows 1000000] [--backends sqlite,postgresql]

1. setwise: ``setwise.delete(engine, delete(Book).where(genre == 'fiction'),
            chunk_rows="auto")``: chunks of about ``chunk_seconds``, each journaling
            the rows it deletes whole, then deleting them, in its own transaction;
2. setwise, no journal: the same chunks with ``journal=False``: what the chunking
            costs apart from the journal;
3. raw copy + DELETE: ``INSERT INTO books_gone SELECT * … WHERE genre = 'fiction'``
            (a plain table with the same columns and key), then the raw DELETE, in
            one transaction: what keeping the deleted rows at all costs, the floor of
            any journal that copies them before deleting;
4. raw:     the DELETE a person would type, through the driver, in one transaction,
            with no journal.

Each timed run starts from a freshly reset table; the runs go round-robin and the
median is reported. ``case/raw`` is what setwise costs over the raw DELETE (target:
<= 1.5); ``slowest chunk`` is the longest chunk of the setwise runs against its
``chunk_seconds`` target (target: <= 2x).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, MetaData, delete, func, select, text

import setwise
from books import GENRES, Book, reset, seed
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

NAME = "delete"
GENRE = "fiction"  # a quarter of the rows (books.GENRES)
RAW_SQL = f"DELETE FROM books WHERE genre = '{GENRE}'"
KEPT = "books_gone"
COPY_SQL = f"INSERT INTO {KEPT} SELECT * FROM books WHERE genre = '{GENRE}'"
CHUNK_SECONDS = 0.5  # setwise's default target per chunk


def run_setwise(engine: Engine, reports: list[setwise.Report], *, journal: bool = True) -> None:
    statement = delete(Book).where(Book.genre == GENRE)
    reports.append(
        setwise.delete(
            engine, statement, chunk_rows="auto", chunk_seconds=CHUNK_SECONDS, journal=journal
        )
    )


def run_raw(driver: Any, *, keep: bool = False) -> None:
    cursor = driver.cursor()
    if keep:
        cursor.execute(COPY_SQL)
    cursor.execute(RAW_SQL)
    cursor.close()
    driver.commit()


def left(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Book)).scalar_one())


def measure(
    engine: Engine, rows: int, repeats: int
) -> tuple[dict[str, Timing], list[setwise.Report]]:
    """Timings per case, after one untimed round that checks they do equal work; and
    the Reports of the timed setwise runs."""
    clock = CpuClock(engine)
    seed(engine, rows)
    pooled = engine.raw_connection()
    driver = pooled.driver_connection
    pooled.detach()  # the driver's own connection, outside SQLAlchemy's pool
    reports: list[setwise.Report] = []
    unjournaled: list[setwise.Report] = []

    kept = Book.__table__.to_metadata(MetaData(), name=KEPT)
    kept.drop(engine, checkfirst=True)
    kept.create(engine)

    def fresh() -> None:
        reset(engine)

    def fresh_kept() -> None:
        # TRUNCATE (where there is one) leaves no dead rows for the next copy to pass.
        empty = "DELETE FROM" if engine.dialect.name == "sqlite" else "TRUNCATE TABLE"
        with engine.begin() as connection:
            connection.execute(text(f"{empty} {KEPT}"))
        reset(engine)

    cases = {
        "setwise": Case(lambda: run_setwise(engine, reports), fresh),
        "setwise, no journal": Case(lambda: run_setwise(engine, unjournaled, journal=False), fresh),
        "raw copy + DELETE": Case(lambda: run_raw(driver, keep=True), fresh_kept),
        "raw": Case(lambda: run_raw(driver), fresh),
    }
    try:
        expected = rows - deleted_count(rows)
        for name, case in cases.items():
            fresh()
            case.run()
            if left(engine) != expected:
                raise SystemExit(f"{name} left {left(engine)} rows, expected {expected}")
        reports.clear()
        return time_rounds(cases, repeats, clock), reports
    finally:
        pooled.close()


def deleted_count(rows: int) -> int:
    return rows // len(GENRES)  # ids 4, 8, 12, ... are fiction


LABELS = {
    "setwise": "setwise.delete, chunked, journaled",
    "setwise, no journal": "setwise.delete, chunked, no journal",
    "raw copy + DELETE": "raw copy of the rows + DELETE",
    "raw": "raw DELETE",
}


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], rows=1_000_000, repeats=3)
    parser.set_defaults(backends="sqlite,postgresql")
    options = parser.parse_args()
    deleted = deleted_count(options.rows)

    servers: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    lines: list[list[str]] = []
    for backend in chosen_backends(options.backends):
        version = server_version(backend)
        if version is None:
            continue
        servers[backend] = version
        with fresh_database(backend) as engine:
            timings, reports = measure(engine, options.rows, options.repeats)
        raw = timings["raw"].median
        slowest = max(report.slowest_chunk_s for report in reports)
        chunks = max(report.chunks for report in reports)
        for number, (case, timing) in enumerate(timings.items()):
            mine = case == "setwise"
            lines.append(
                [
                    backend if number == 0 else "",
                    LABELS[case],
                    seconds(timing.median),
                    f"{timing.spread:.0%}",
                    per_second(deleted, timing.median),
                    ratio(timing.median, raw),
                    str(chunks) if mine else "-",
                    f"{seconds(slowest)} ({slowest / CHUNK_SECONDS:.2f}x)" if mine else "-",
                ]
            )
            results.append(
                {
                    "backend": backend,
                    "case": case,
                    "rows": options.rows,
                    "deleted": deleted,
                    "median_s": timing.median,
                    "rows_per_s": deleted / timing.median,
                    "case_over_raw": timing.median / raw,
                    "samples_s": timing.samples,
                    "chunks": chunks if mine else None,
                    "slowest_chunk_s": slowest if mine else None,
                    "slowest_over_target": slowest / CHUNK_SECONDS if mine else None,
                }
            )

    columns = [
        "backend",
        "case",
        "seconds",
        "spread",
        "rows deleted/s",
        "case/raw",
        "chunks",
        "slowest chunk (/target)",
    ]
    caption = (
        f"{deleted:,} of {options.rows:,} rows: WHERE genre = '{GENRE}'. Median of"
        f" {options.repeats} runs, each on a freshly reset table; spread = (max - min) /"
        f" median. setwise: chunk_rows='auto', chunk_seconds={CHUNK_SECONDS}, journal on."
    )
    table = print_table("setwise.delete vs raw DELETE", columns, lines, caption)
    publish(
        options,
        NAME,
        parameters={
            "rows": options.rows,
            "deleted": deleted,
            "repeats": options.repeats,
            "chunk_seconds": CHUNK_SECONDS,
            "raw_sql": RAW_SQL,
            "copy_sql": COPY_SQL,
        },
        servers=servers,
        results=results,
        table=table,
    )


if __name__ == "__main__":
    main()
