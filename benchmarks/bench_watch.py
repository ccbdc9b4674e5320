"""What ``setwise.watch`` costs a program: the same statements, watched and not.

    python benchmarks/bench_watch.py [--statements 10000] [--backends sqlite,postgresql]

Each workload sends ``--statements`` statements through one connection, in one
transaction, with statement objects built once (the cheapest way SQLAlchemy sends a
statement, so the hook's share is as large as it gets):

1. reads:  point SELECTs by key;
2. mixed:  an ordinary program's statements in turn: a point read, a range read, an
           INSERT into a log table, a set-based UPDATE of a few rows by range;
3. loop:   single-row UPDATEs by key, the loop the watch is there to find. Here the
           hook does its real work (where from, what changed); shown for information.

"watched" runs the workload inside ``setwise.watch(engine)``; the two alternate within
each round. The watch sends nothing and works on this process's CPU only, so what it
adds is measured as CPU time: the best watched run minus the best unwatched one. Best,
not median: other processes on a shared machine only ever add time (wall-clock runs
there swing by half), so the fastest run is the closest to the cost of the work itself,
as Python's timeit reasons. Overhead = added CPU time over the best unwatched wall-clock
time. Target: under 10% for the ordinary workloads (reads, mixed). Medians are saved too.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)

import setwise
from books import Book, reset, seed
from common import (
    arguments,
    chosen_backends,
    fresh_database,
    print_table,
    publish,
    seconds,
    server_version,
)
from setwise.detector.watch import Watch

NAME = "watch"
STATEMENTS = 10_000
TARGET = 0.10  # the bound for ordinary statements
books = Book.__table__
log = Table(
    "watch_log",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("book_id", Integer),
    Column("note", String(40)),
)

POINT_READ = select(books).where(books.c.id == bindparam("key"))
RANGE_READ = select(books.c.id, books.c.price).where(
    books.c.id.between(bindparam("lo"), bindparam("hi"))
)
LOG_INSERT = insert(log).values(book_id=bindparam("key"), note=bindparam("note"))
RANGE_UPDATE = (
    update(books)
    .where(books.c.id.between(bindparam("lo"), bindparam("hi")))
    .values(stock=books.c.stock + 1)
)
ROW_UPDATE = update(books).where(books.c.id == bindparam("key")).values(stock=books.c.stock + 1)


def reads(connection: Connection, count: int, rows: int) -> None:
    for i in range(count):
        connection.execute(POINT_READ, {"key": 1 + i % rows}).one()


def mixed(connection: Connection, count: int, rows: int) -> None:
    for i in range(count):
        key = 1 + i % (rows - 4)
        step = i % 4
        if step == 0:
            connection.execute(POINT_READ, {"key": key}).one()
        elif step == 1:
            connection.execute(RANGE_READ, {"lo": key, "hi": key + 4}).all()
        elif step == 2:
            connection.execute(LOG_INSERT, {"key": key, "note": f"seen {i}"})
        else:
            connection.execute(RANGE_UPDATE, {"lo": key, "hi": key + 4})


def loop(connection: Connection, count: int, rows: int) -> None:
    for i in range(count):
        connection.execute(ROW_UPDATE, {"key": 1 + i % rows})


WORKLOADS: dict[str, Callable[[Connection, int, int], None]] = {
    "reads": reads,
    "mixed": mixed,
    "loop": loop,
}


def run(engine: Engine, workload: str, count: int, rows: int, *, watched: bool) -> None:
    body = WORKLOADS[workload]
    watching = setwise.watch(engine, log=False) if watched else contextlib.nullcontext()
    with watching, engine.connect() as connection, connection.begin():
        body(connection, count, rows)
    if isinstance(watching, Watch):
        found = sum(finding.count for finding in watching.findings)
        expected = count if workload == "loop" else 0
        if found != expected:
            raise SystemExit(f"{workload}: the watch found {found} row-by-row rows, not {expected}")


@dataclass
class Pairs:
    """Wall-clock and CPU seconds of each round's unwatched and watched run."""

    wall: dict[bool, list[float]] = field(default_factory=lambda: {False: [], True: []})
    cpu: dict[bool, list[float]] = field(default_factory=lambda: {False: [], True: []})

    def time(self, run: Callable[[], None], *, watched: bool) -> None:
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        self.cpu[watched].append(time.process_time() - cpu)
        self.wall[watched].append(time.perf_counter() - wall)

    def added_cpu(self) -> float:
        """The CPU time the watch added: best watched run minus best unwatched run."""
        return min(self.cpu[True]) - min(self.cpu[False])


def measure(engine: Engine, count: int, rows: int, repeats: int) -> list[dict[str, Any]]:
    """Time every workload unwatched and watched, back to back in each round (see the
    module docstring for why CPU time and best runs)."""
    seed(engine, rows)
    reset(engine)
    log.create(engine)
    pairs = {workload: Pairs() for workload in WORKLOADS}
    for workload in WORKLOADS:  # warm the pool, the compiled cache and the server's caches
        for watched in (False, True):
            run(engine, workload, count, rows, watched=watched)
    for round_number in range(repeats):
        for workload, timed in pairs.items():
            # Alternate which goes first, so that neither always runs on a warmer cache.
            for watched in (False, True) if round_number % 2 else (True, False):
                timed.time(
                    lambda w=workload, m=watched: run(engine, w, count, rows, watched=m),
                    watched=watched,
                )
    results = []
    for workload, timed in pairs.items():
        best = min(timed.wall[False])
        results.append(
            {
                "workload": workload,
                "statements": count,
                "unwatched_s": best,
                "watched_s": min(timed.wall[True]),
                "added_cpu_s": timed.added_cpu(),
                "overhead": timed.added_cpu() / best,
                "unwatched_median_s": statistics.median(timed.wall[False]),
                "watched_median_s": statistics.median(timed.wall[True]),
            }
        )
    return results


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], rows=10_000, repeats=15)
    parser.add_argument(
        "--statements",
        type=int,
        default=STATEMENTS,
        help=f"statements per workload (default {STATEMENTS:,})",
    )
    options = parser.parse_args()

    servers: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    for backend in chosen_backends(options.backends):
        version = server_version(backend)
        if version is None:
            continue
        servers[backend] = version
        with fresh_database(backend) as engine:
            found = measure(engine, options.statements, options.rows, options.repeats)
        results += [{"backend": backend, **result} for result in found]

    columns = ["backend", "workload", "unwatched s", "watched s", "µs/stmt added", "overhead"]
    lines = []
    for result in results:
        added = result["added_cpu_s"] / result["statements"] * 1e6
        lines.append(
            [
                result["backend"],
                result["workload"],
                seconds(result["unwatched_s"]),
                seconds(result["watched_s"]),
                f"{added:.2f}",
                f"{result['overhead'] * 100:+.1f}%",
            ]
        )
    ordinary = [r["overhead"] for r in results if r["workload"] != "loop"]
    verdict = (
        f"worst ordinary overhead {max(ordinary) * 100:+.1f}% (target < {TARGET * 100:.0f}%)"
        if ordinary
        else ""
    )
    caption = (
        f"{options.statements:,} statements per workload on one connection, {options.rows:,}"
        f" books; best wall-clock time of {options.repeats} rounds. Added = CPU time the watch"
        f" added per statement (best runs); overhead = added / unwatched. {verdict}"
    )
    table = print_table("setwise.watch overhead", columns, lines, caption)
    publish(
        options,
        NAME,
        parameters={
            "statements": options.statements,
            "rows": options.rows,
            "repeats": options.repeats,
            "target_overhead": TARGET,
        },
        servers=servers,
        results=results,
        table=table,
    )


if __name__ == "__main__":
    main()
