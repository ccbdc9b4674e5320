"""What health signals cost a chunked run: every signal on against none, same run.

    python benchmarks/bench_health.py [--rows 100000] [--chunk-rows 1000] [--no-replicas]

One write, ``setwise.update(engine, update(Book).where(Book.genre == 'fiction')
.values(price=Book.price * 1.10), chunk_rows=N)`` (a quarter of the rows), three ways,
each on a freshly reset table, round-robin:

- none: no signal;
- signals: every signal the database reports, none of them ever saying wait, read at
  most once a second (``check_interval``'s default): a throttle query, a flag file
  that does not exist, a callable, and where the database reports them active
  sessions (PostgreSQL, MariaDB), autovacuum on the table and replica lag as the
  primary sees it (PostgreSQL), and ``max_wait``;
- signals, every chunk: the same read before every chunk (``check_interval=0``).

On the shared servers no replica streams from the test database; with replicas (the
default), each run is also made on a primary + replica pair started for it
(``tests/replicas.py``), the signals reading the replica's lag through its URL.
Target: signals / none <= 1.1.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, update

import setwise
from books import Book, reset, seed
from common import (
    Case,
    arguments,
    chosen_backends,
    fresh_database,
    print_table,
    publish,
    seconds,
    server_version,
    time_rounds,
)
from setwise.dialects import get_strategy

NAME = "health"
CHUNK_ROWS = 1_000
#: Limits no run here comes near: the signals are read, and never say wait.
NEVER = {"max_lag_seconds": 3600.0, "max_active_sessions": 100_000, "max_wait": 3600.0}
PAIRS = ("postgresql", "mariadb")


def signals(engine: Engine, flag: Path, replica: str | None) -> dict[str, Any]:
    """Every signal the database of ``engine`` reports, none of which will say wait."""
    found: dict[str, Any] = {
        "throttle_query": "SELECT 0",
        "throttle_file": flag,
        "throttle_check": lambda: None,
        "max_wait": NEVER["max_wait"],
    }
    reported = get_strategy(engine.dialect).health_signals
    if "sessions" in reported:
        found["max_active_sessions"] = NEVER["max_active_sessions"]
    if "autovacuum" in reported:
        found["wait_for_autovacuum"] = True
    if replica is not None:
        found |= {"max_lag_seconds": NEVER["max_lag_seconds"], "replica_urls": [replica]}
    elif "replicas" in reported:
        found["max_lag_seconds"] = NEVER["max_lag_seconds"]
    return found


class Run:
    """The write with some options; keeps the chunk count of its last run."""

    def __init__(self, engine: Engine, options: dict[str, Any]) -> None:
        self.engine, self.options = engine, options
        self.chunks = 0

    def __call__(self) -> None:
        statement = (
            update(Book).where(Book.genre == "fiction").values(price=Book.price * Decimal("1.10"))
        )
        self.chunks = setwise.update(self.engine, statement, **self.options).chunks


def measure(
    engine: Engine, rows: int, repeats: int, chunk_rows: int, replica: str | None
) -> dict[str, tuple[float, float, int, list[float]]]:
    """Per case: median seconds, spread, chunks, samples."""
    seed(engine, rows)
    with tempfile.TemporaryDirectory(prefix="setwise-bench-health-") as folder:
        on = signals(engine, Path(folder) / "no-such-flag", replica)
        runs = {
            "none": Run(engine, {"chunk_rows": chunk_rows}),
            "signals": Run(engine, {"chunk_rows": chunk_rows, **on}),
            "signals, every chunk": Run(
                engine, {"chunk_rows": chunk_rows, "check_interval": 0, **on}
            ),
        }
        reset(engine)  # an untimed first run creates the journal tables
        runs["none"]()
        cases = {name: Case(run, lambda: reset(engine)) for name, run in runs.items()}
        timings = time_rounds(cases, repeats)
    return {
        name: (timings[name].median, timings[name].spread, runs[name].chunks, timings[name].samples)
        for name in runs
    }


@contextmanager
def on_pair(backend: str) -> Iterator[tuple[Engine, str] | None]:
    """An engine on the primary of a new pair and the replica's URL; None (with a notice)
    where the servers cannot be started here."""
    # The tests' helpers import once common.py has put the repository on sys.path.
    from tests.replicas import Unavailable, mariadb_pair, postgresql_pair

    start = postgresql_pair if backend == "postgresql" else mariadb_pair
    try:
        with start() as pair:
            engine = create_engine(pair.primary)
            try:
                yield engine, pair.replica
            finally:
                engine.dispose()
    except Unavailable as exc:
        print(f"NOTICE: no {backend} replica pair: {exc}")
        yield None


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], rows=100_000, repeats=5)
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=CHUNK_ROWS,
        help=f"rows per chunk (default {CHUNK_ROWS})",
    )
    parser.add_argument(
        "--no-replicas", action="store_true", help="skip the runs on started replica pairs"
    )
    options = parser.parse_args()

    servers: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    lines: list[list[str]] = []

    def record(label: str, measured: dict[str, tuple[float, float, int, list[float]]]) -> None:
        none = measured["none"][0]
        for number, (case, (median, spread, chunks, samples)) in enumerate(measured.items()):
            lines.append(
                [
                    label if number == 0 else "",
                    case,
                    seconds(median),
                    f"{spread:.0%}",
                    str(chunks),
                    f"{median / none:.3f}x",
                ]
            )
            results.append(
                {
                    "backend": label,
                    "case": case,
                    "median_s": median,
                    "samples_s": samples,
                    "chunks": chunks,
                    "over_none": median / none,
                }
            )

    for backend in chosen_backends(options.backends):
        version = server_version(backend)
        if version is None:
            continue
        servers[backend] = version
        with fresh_database(backend) as engine:
            record(
                backend, measure(engine, options.rows, options.repeats, options.chunk_rows, None)
            )
        if options.no_replicas or backend not in PAIRS:
            continue
        with on_pair(backend) as paired:
            if paired is not None:
                engine, replica = paired
                measured = measure(
                    engine, options.rows, options.repeats, options.chunk_rows, replica
                )
                record(f"{backend} + replica", measured)

    columns = ["backend", "case", "seconds", "spread", "chunks", "over none"]
    caption = (
        f"{options.rows:,} rows; update: price * 1.10 of the fiction books (a quarter) in "
        f"chunks of {options.chunk_rows:,} rows. Median of {options.repeats} runs, each on a "
        "freshly reset table. signals: every signal the database reports, none saying "
        "wait, read at most once a second; every chunk: read before each chunk. "
        "Target: signals / none <= 1.1."
    )
    table = print_table("Health signals: all on against none", columns, lines, caption)
    publish(
        options,
        NAME,
        parameters={
            "rows": options.rows,
            "repeats": options.repeats,
            "chunk_rows": options.chunk_rows,
        },
        servers=servers,
        results=results,
        table=table,
    )


if __name__ == "__main__":
    main()
