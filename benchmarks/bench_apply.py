"""A changeset keyed by id, applied every way there is, on every backend and size.

    python benchmarks/bench_apply.py [--sizes 10000,100000,1000000] [--backends sqlite]

The changeset gives half the books (the even ids) a new title, price and stock; a
tenth of those rows (ids divisible by 20) carry the values the row already holds, so
45% of the table changes. Cases, each on a freshly reset table, round-robin:

- loop:         ``session.get``, set the attributes, one commit (skipped above
                ``--loop-max`` rows: it runs at a few thousand rows/s);
- ORM bulk:     ``session.execute(update(Book), list_of_dicts)``: SQLAlchemy's bulk
                UPDATE by primary key;
- executemany:  Core ``connection.execute(update(...).where(id == bindparam), dicts)``;
- CASE WHEN:    one ``UPDATE … SET col = CASE id WHEN … END WHERE id IN (…)`` per
                1,000 rows (Django's ``bulk_update``; skipped above ``--case-max``);
- raw:          the database's bulk path driven through the driver, without setwise
                (PostgreSQL: COPY into a temporary table + UPDATE … FROM; SQLite:
                multi-row INSERTs of 500 rows into a temporary table + UPDATE … FROM,
                and an executemany UPDATE by id; MariaDB: multi-row INSERT staging + UPDATE … JOIN,
                and LOAD DATA LOCAL INFILE + UPDATE … JOIN); the best is "raw best";
- setwise's SQL alone (SQLite): the statements ``setwise.apply(journal=False)`` sends
                (staging 500 rows a statement, the count, the UPDATE … FROM, the
                DROP), through the driver without setwise's checks: the ceiling of its
                strategy there, shown but never a raw path;
- setwise.apply with ``journal=False`` and as called by default (journaled); on
  MariaDB also ``journal=False`` through an engine connected with ``local_infile=True``
  (the raw LOAD DATA path's own client option), where setwise stages by LOAD DATA.

Every run of every case is a process of its own (a fresh interpreter that builds the
mappings, opens its connections, then is timed), as a program that calls setwise
once would be; the parent resets the table between runs. Every case starts from the
same list of mappings (the raw paths build their driver tuples from it inside the
timing). Every raw UPDATE skips rows already holding their
values (NULL-safe), as setwise does, so both write the same rows; on SQLite the
executemany UPDATE is also shown without that filter (writing the no-op rows too),
but not counted as a raw path setwise is measured against. An untimed first
round checks that each case changed exactly the expected rows and records its peak
Python memory (tracemalloc); a case run once is timed in that round instead. Then, on
each backend at the largest size of at least ``--csv-rows``, ``setwise.apply`` of a
``--csv-rows``-row CSV file runs in a process of its own, whose peak resident memory
(VmHWM) is reported.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, case, create_engine, update
from sqlalchemy.orm import Session

import setwise
from books import Book, book_row, changed_rows, reset, seed
from common import (
    Case,
    CpuClock,
    Sample,
    Timing,
    arguments,
    chosen_backends,
    fresh_database,
    peak_memory,
    per_second,
    print_table,
    publish,
    seconds,
    server_version,
    time_once,
    time_rounds,
)
from setwise.dialects.sqlite import STAGE_ROWS_PER_INSERT

NAME = "apply"
SIZES = (10_000, 100_000, 1_000_000)
# The naive loop runs at a few thousand rows/s: 1,000,000 rows would take many minutes.
LOOP_MAX_ROWS = 100_000
# CASE WHEN runs at 2,000-5,000 rows/s here (PostgreSQL plans each 1,000-branch CASE
# anew): 1,000,000 rows would take 4-5 minutes a run on each backend.
CASE_MAX_ROWS = 100_000
# Rows per CASE WHEN statement: Django's usual batch size for bulk_update.
CASE_BATCH = 1_000
# Above this size the slow baselines (ORM bulk, executemany, CASE WHEN) run once: they
# are 3-10x off the fast paths, so their spread cannot change a conclusion, and each
# run takes a minute on MariaDB.
SLOW_ONCE_ABOVE = 100_000
CSV_ROWS = 1_000_000
STAGE = "raw_stage"
FAST = ("raw best", "setwise, no journal", "setwise")
# MariaDB: setwise.apply(journal=False) through an engine made with
# connect_args={"local_infile": True}, as the raw LOAD DATA path connects.
LOCAL_INFILE = "setwise, no journal, local_infile"
# SQLite: the executemany UPDATE without the no-op filter, which writes 10% more rows.
EVERY_ROW = "raw executemany UPDATE, no-ops written"
# SQLite: the statements setwise.apply(journal=False) sends, through the driver, without
# its checks: the most its strategy can reach. Shown, never counted as a raw path.
SETWISE_SQL = "setwise's SQL alone, no checks"


def changes(rows: int) -> list[dict[str, Any]]:
    """The changeset: every even id; ids divisible by 20 keep their values (no-ops)."""
    found = []
    for i in range(2, rows + 1, 2):
        row = book_row(i)
        if i % 20:
            row = {
                "id": i,
                "title": f"Book {i} (2nd edition)",
                "price": row["price"] + Decimal("1.00"),
                "stock": row["stock"] + 1,
            }
        else:
            row = {name: row[name] for name in ("id", "title", "price", "stock")}
        found.append(row)
    return found


def expected_changes(rows: int) -> int:
    return len(range(2, rows + 1, 2)) - len(range(20, rows + 1, 20))


# -- the cases ------------------------------------------------------------------------------


def run_loop(engine: Engine, dicts: Sequence[dict[str, Any]]) -> None:
    with Session(engine) as session:
        for row in dicts:
            book = session.get(Book, row["id"])
            assert book is not None
            book.title, book.price, book.stock = row["title"], row["price"], row["stock"]
        session.commit()


def run_orm_bulk(engine: Engine, dicts: Sequence[dict[str, Any]]) -> None:
    with Session(engine) as session:
        session.execute(update(Book), list(dicts))
        session.commit()


def run_executemany(engine: Engine, dicts: Sequence[dict[str, Any]]) -> None:
    books = Book.__table__
    statement = (
        update(books)
        .where(books.c.id == bindparam("b_id"))
        .values(title=bindparam("title"), price=bindparam("price"), stock=bindparam("stock"))
    )
    params = [
        {"b_id": r["id"], "title": r["title"], "price": r["price"], "stock": r["stock"]}
        for r in dicts
    ]
    with engine.begin() as connection:
        connection.execute(statement, params)


def run_case_when(engine: Engine, dicts: Sequence[dict[str, Any]]) -> None:
    books = Book.__table__
    with engine.begin() as connection:
        for start in range(0, len(dicts), CASE_BATCH):
            batch = dicts[start : start + CASE_BATCH]
            ids = [r["id"] for r in batch]
            values = {
                name: case({r["id"]: r[name] for r in batch}, value=books.c.id)
                for name in ("title", "price", "stock")
            }
            connection.execute(update(books).where(books.c.id.in_(ids)).values(values))


def run_setwise(
    engine: Engine, dicts: Sequence[dict[str, Any]], journal: bool, expected: int
) -> None:
    """setwise.apply, and a check of its report against the ``expected`` changed rows
    (counted before the clock starts: the raw paths count nothing on theirs)."""
    report = setwise.apply(engine, Book, dicts, journal=journal)
    if report.changed != expected or report.unchanged != len(dicts) - expected:
        raise SystemExit(f"setwise.apply reported {report}, expected {expected} changed")


# -- raw paths, through the driver ------------------------------------------------------------

SET_COLUMNS = ("title", "price", "stock")


def raw_postgresql_copy(driver: Any, tuples: Sequence[tuple[Any, ...]]) -> None:
    with driver.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE {STAGE} (id integer, title varchar(200),"
            " price numeric(10, 2), stock integer)"
        )
        with cursor.copy(f"COPY {STAGE} (id, title, price, stock) FROM STDIN") as copy:
            for row in tuples:
                copy.write_row(row)
        differs = " OR ".join(f"books.{c} IS DISTINCT FROM s.{c}" for c in SET_COLUMNS)
        sets = ", ".join(f"{c} = s.{c}" for c in SET_COLUMNS)
        cursor.execute(
            f"UPDATE books SET {sets} FROM {STAGE} s WHERE books.id = s.id AND ({differs})"
        )
        cursor.execute(f"DROP TABLE {STAGE}")
    driver.commit()


def _sqlite_stage(cursor: Any, tuples: Sequence[tuple[Any, ...]], numbered: bool) -> None:
    """Stage ``tuples`` in multi-row INSERTs of setwise's size on SQLite (500 rows);
    ``numbered``: each row after setwise's row number and presence mask."""
    columns: list[Sequence[Any]] = (
        [range(1, len(tuples) + 1), [7] * len(tuples)] if numbered else []
    )
    columns += list(zip(*tuples, strict=True))
    width = len(columns)
    names = "setwise_row BIGINT, setwise_present BIGINT, " if numbered else ""
    cursor.execute(
        f"CREATE TEMP TABLE {STAGE} ({names}id INTEGER, title VARCHAR(200),"
        " price NUMERIC(10, 2), stock INTEGER)"
    )
    flat: list[Any] = [None] * (len(tuples) * width)
    for index, column in enumerate(columns):
        flat[index::width] = column
    row = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(tuples), STAGE_ROWS_PER_INSERT):
        size = min(STAGE_ROWS_PER_INSERT, len(tuples) - start)
        rows = ", ".join([row] * size)
        cursor.execute(
            f"INSERT INTO {STAGE} VALUES {rows}", flat[start * width : (start + size) * width]
        )


def _sqlite_merge(driver: Any, cursor: Any) -> None:
    differs = " OR ".join(f"books.{c} IS NOT s.{c}" for c in SET_COLUMNS)
    sets = ", ".join(f"{c} = s.{c}" for c in SET_COLUMNS)
    cursor.execute(f"UPDATE books SET {sets} FROM {STAGE} s WHERE books.id = s.id AND ({differs})")
    driver.commit()
    cursor.execute(f"DROP TABLE {STAGE}")
    cursor.close()


def raw_sqlite_stage(driver: Any, tuples: Sequence[tuple[Any, ...]]) -> None:
    cursor = driver.cursor()
    _sqlite_stage(cursor, tuples, numbered=False)
    _sqlite_merge(driver, cursor)


def raw_sqlite_executemany(driver: Any, tuples: Sequence[tuple[Any, ...]]) -> None:
    # Skips the rows that already hold their values, NULL-safe (IS NOT), as setwise does.
    differs = " OR ".join(f"{c} IS NOT ?{n}" for n, c in enumerate(SET_COLUMNS, start=1))
    cursor = driver.cursor()
    cursor.executemany(
        f"UPDATE books SET title = ?1, price = ?2, stock = ?3 WHERE id = ?4 AND ({differs})",
        [(title, price, stock, i) for i, title, price, stock in tuples],
    )
    driver.commit()
    cursor.close()


def raw_sqlite_executemany_every_row(driver: Any, tuples: Sequence[tuple[Any, ...]]) -> None:
    # Writes every row, the no-ops too: not the same job (each no-op row is rewritten and
    # fires its triggers), so it is shown but never the "raw best".
    cursor = driver.cursor()
    cursor.executemany(
        "UPDATE books SET title = ?, price = ?, stock = ? WHERE id = ?",
        [(title, price, stock, i) for i, title, price, stock in tuples],
    )
    driver.commit()
    cursor.close()


def sqlite_setwise_statements(driver: Any, tuples: Sequence[tuple[Any, ...]]) -> None:
    # Staged with row numbers and presence masks; counted (matched and staged rows, for
    # the report); merged; dropped: what setwise sends, in order.
    cursor = driver.cursor()
    _sqlite_stage(cursor, tuples, numbered=True)
    cursor.execute(
        f"SELECT count(books.id), count(*) FROM {STAGE} s LEFT JOIN books ON books.id = s.id"
    ).fetchall()
    _sqlite_merge(driver, cursor)


def _mysql_merge(cursor: Any) -> None:
    same = " AND ".join(f"books.{c} <=> s.{c}" for c in SET_COLUMNS)
    sets = ", ".join(f"books.{c} = s.{c}" for c in SET_COLUMNS)
    cursor.execute(f"UPDATE books JOIN {STAGE} s ON books.id = s.id SET {sets} WHERE NOT ({same})")
    cursor.execute(f"DROP TEMPORARY TABLE {STAGE}")


MYSQL_STAGE = (
    f"CREATE TEMPORARY TABLE {STAGE} (id INTEGER, title VARCHAR(200), price NUMERIC(10, 2),"
    " stock INTEGER)"
)


def raw_mysql_insert(driver: Any, tuples: Sequence[tuple[Any, ...]]) -> None:
    with driver.cursor() as cursor:
        cursor.execute(MYSQL_STAGE)
        # PyMySQL sends an executemany INSERT … VALUES as multi-row INSERTs of up to 1 MB.
        cursor.executemany(f"INSERT INTO {STAGE} VALUES (%s, %s, %s, %s)", tuples)
        _mysql_merge(cursor)
    driver.commit()


def raw_mysql_load_data(driver: Any, tuples: Sequence[tuple[Any, ...]]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", encoding="utf-8") as file:
        # The titles hold no tab, newline or backslash: no escaping needed here.
        file.writelines(f"{i}\t{title}\t{price}\t{stock}\n" for i, title, price, stock in tuples)
        file.flush()
        with driver.cursor() as cursor:
            cursor.execute(MYSQL_STAGE)
            cursor.execute(
                f"LOAD DATA LOCAL INFILE '{file.name}' INTO TABLE {STAGE}"
                " CHARACTER SET utf8mb4 (id, title, price, stock)"
            )
            _mysql_merge(cursor)
        driver.commit()


_MYSQL_RAW = {
    "raw INSERT stage + JOIN": raw_mysql_insert,
    "raw LOAD DATA + JOIN": raw_mysql_load_data,
}
RAW_PATHS: dict[str, dict[str, Callable[[Any, Sequence[tuple[Any, ...]]], None]]] = {
    "postgresql": {"raw COPY + UPDATE FROM": raw_postgresql_copy},
    "sqlite": {
        "raw stage + UPDATE FROM": raw_sqlite_stage,
        "raw executemany UPDATE": raw_sqlite_executemany,
        EVERY_ROW: raw_sqlite_executemany_every_row,
        SETWISE_SQL: sqlite_setwise_statements,
    },
    "mysql": _MYSQL_RAW,
    "mariadb": _MYSQL_RAW,
}
"""The database's bulk path driven through the driver, per dialect name."""


# -- mysqlclient beside PyMySQL (MariaDB, MySQL) ----------------------------------------------

MYSQLCLIENT = "mysqlclient: "
"""The prefix of a MySQL case run through mysqlclient (the C driver of ``mysql://``): its
raw INSERT (mysqlclient's executemany) and LOAD DATA paths, and setwise on an engine on
it. Never a "raw best", which stays PyMySQL's: compare each driver with its own raws."""


def mysqlclient_cases(dialect: str) -> dict[str, int | None]:
    """The mysqlclient cases on this backend: none when mysqlclient is not installed."""
    if dialect not in ("mysql", "mariadb") or importlib.util.find_spec("MySQLdb") is None:
        return {}
    names = ("raw INSERT stage + JOIN", "raw LOAD DATA + JOIN", "setwise, no journal")
    return dict.fromkeys(MYSQLCLIENT + name for name in (*names, LOCAL_INFILE))


def mysqlclient_runner(
    name: str, engine: Engine, dicts: Sequence[dict[str, Any]]
) -> Callable[[], None] | None:
    """The work of a mysqlclient case: the PyMySQL case of the same name on a mysqlclient
    engine; None for any other case."""
    if not name.startswith(MYSQLCLIENT):
        return None
    url = engine.url.set(drivername=f"{engine.dialect.name}+mysqldb")
    return case_runner(name.removeprefix(MYSQLCLIENT), create_engine(url), dicts)


def driver_connection(engine: Engine) -> Any:
    """The driver's own connection, outside SQLAlchemy's pool (MariaDB: allowed LOCAL
    INFILE, which the server must allow too)."""
    if engine.dialect.name in ("mysql", "mariadb"):
        engine = create_engine(engine.url, connect_args={"local_infile": True})
    pooled = engine.raw_connection()
    driver = pooled.driver_connection
    pooled.detach()
    return driver


def as_tuples(engine: Engine, dicts: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them (SQLite stores NUMERIC as REAL, as SQLAlchemy does)."""
    convert: Callable[[Decimal], Any] = float if engine.dialect.name == "sqlite" else Decimal
    return [(r["id"], r["title"], convert(r["price"]), r["stock"]) for r in dicts]


# -- one case, one run, in a process of its own -------------------------------------------------


def case_names(
    dialect: str, rows: int, loop_max: int, case_max: int, baselines: bool
) -> tuple[dict[str, int | None], list[str]]:
    """The cases measured on this backend and size, each with its own number of timed
    runs (None: the benchmark's ``--repeats``), and what was left out."""
    slow = 1 if rows > SLOW_ONCE_ABOVE else None
    cases: dict[str, int | None] = {}
    notes: list[str] = []
    if baselines:
        if rows <= loop_max:
            cases["loop"] = 1
        else:
            notes.append(f"loop skipped above {loop_max:,} rows")
        cases["ORM bulk by PK"] = slow
        cases["Core executemany"] = slow
        if rows <= case_max:
            cases["CASE WHEN x1000"] = slow
        else:
            notes.append(f"CASE WHEN skipped above {case_max:,} rows")
    cases |= dict.fromkeys(RAW_PATHS[dialect])
    cases["setwise, no journal"] = None
    if dialect in ("mysql", "mariadb"):
        cases[LOCAL_INFILE] = None
    cases |= mysqlclient_cases(dialect)
    cases["setwise"] = None
    return cases, notes


def case_runner(name: str, engine: Engine, dicts: Sequence[dict[str, Any]]) -> Callable[[], None]:
    """The work of case ``name``, ready to call: connections open, nothing timed yet."""
    if (mysqlclient := mysqlclient_runner(name, engine, dicts)) is not None:
        return mysqlclient
    dialect = engine.dialect.name
    if name in RAW_PATHS[dialect]:
        path, driver = RAW_PATHS[dialect][name], driver_connection(engine)
        # From the same mappings as every other case: building the driver's tuples is
        # part of the raw path's work.
        return lambda: path(driver, as_tuples(engine, dicts))
    if name == LOCAL_INFILE:
        # The client option the raw LOAD DATA path uses: setwise then stages by LOAD DATA.
        engine = create_engine(engine.url, connect_args={"local_infile": True})
    # The pool's first connection (and the dialect's first-connect queries) is not the
    # work measured: the raw paths open theirs before the clock starts too.
    engine.connect().close()
    expected = sum(1 for r in dicts if r["id"] % 20)
    runners: dict[str, Callable[[], None]] = {
        "loop": lambda: run_loop(engine, dicts),
        "ORM bulk by PK": lambda: run_orm_bulk(engine, dicts),
        "Core executemany": lambda: run_executemany(engine, dicts),
        "CASE WHEN x1000": lambda: run_case_when(engine, dicts),
        "setwise, no journal": lambda: run_setwise(engine, dicts, False, expected),
        LOCAL_INFILE: lambda: run_setwise(engine, dicts, False, expected),
        "setwise": lambda: run_setwise(engine, dicts, True, expected),
    }
    return runners[name]


def case_child(url: str, connect_args: str, name: str, rows: str, trace: str) -> None:
    """Run in a subprocess: one run of one case, printed as JSON (seconds and CPU seconds,
    or with ``trace`` the peak Python memory under tracemalloc)."""
    engine = create_engine(url, connect_args=json.loads(connect_args))
    # ``import setwise`` defers its submodules to first use: the modules setwise.apply
    # needs are imported here, outside the clock, as ``from setwise import apply`` would.
    setwise.apply  # noqa: B018
    clock = CpuClock(engine)  # before any connection: it records each one's backend
    run = case_runner(name, engine, changes(int(rows)))
    if trace == "1":
        _, peak = peak_memory(run)
        print(json.dumps({"peak_bytes": peak}))
        return
    _, sample = time_once(run, clock)
    print(json.dumps({"seconds": sample.seconds, "cpu": sample.cpu}))


def child(engine: Engine, flag: str, *arguments: str) -> dict[str, Any]:
    """Run this script with ``flag`` in a fresh interpreter connected to ``engine``'s
    database, and return the JSON it printed last."""
    connect_args = _pg_options(engine) if engine.dialect.name == "postgresql" else {}
    url = engine.url.render_as_string(hide_password=False)
    output = subprocess.run(
        [sys.executable, __file__, flag, url, json.dumps(connect_args), *arguments],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def in_child(engine: Engine, name: str, rows: int, trace: bool = False) -> dict[str, Any]:
    """One run of case ``name`` in a process of its own, and what it printed."""
    return child(engine, "--case-child", name, str(rows), "1" if trace else "0")


# -- one backend, one size --------------------------------------------------------------------


def measure(
    engine: Engine,
    rows: int,
    repeats: int,
    loop_max: int,
    case_max: int,
    baselines: bool = True,
) -> tuple[dict[str, Timing], dict[str, int], list[str]]:
    """Timings and peak memory per case, after a round that checks their work.

    Every run of every case is a process of its own, as a program calling setwise once
    would be: in one long process the slow baselines (gigabytes of ORM objects at
    1,000,000 rows) changed the figures of the cases run after them.
    """
    seed(engine, rows)

    def fresh() -> None:
        reset(engine)

    def timed(name: str) -> Sample:
        result = in_child(engine, name, rows)
        return Sample(result["seconds"], result["cpu"])

    counts, notes = case_names(engine.dialect.name, rows, loop_max, case_max, baselines)
    cases = {
        name: Case(lambda name=name: timed(name), fresh, count) for name, count in counts.items()
    }
    expected = expected_changes(rows)
    memory: dict[str, int] = {}
    once: dict[str, Timing] = {}
    for name, each in list(cases.items()):
        fresh()
        try:
            if each.repeats == 1:
                # Run once: this run is the timed one, without tracemalloc's slowdown.
                sample = timed(name)
                once[name] = Timing()
                once[name].add(sample)
                del cases[name]
            else:
                memory[name] = in_child(engine, name, rows, trace=True)["peak_bytes"]
        except subprocess.CalledProcessError as exc:  # LOAD DATA refused by the server, say
            reason = (exc.stderr or "").strip().splitlines() or ["no message"]
            notes.append(f"{name} failed and is left out: {reason[-1]}")
            cases.pop(name, None)
            continue
        wrote = changed_rows(engine)
        if wrote != expected:
            raise SystemExit(f"{name} changed {wrote} rows, expected {expected}")
    measured = once | time_rounds(cases, repeats)
    timings = {name: measured[name] for name in counts if name in measured}
    raws = [name for name in timings if name.startswith("raw") and name != EVERY_ROW]
    best = min(raws, key=lambda name: timings[name].median)
    timings["raw best"] = timings[best]
    memory["raw best"] = memory[best]
    notes.append(f"raw best = {best}")
    return timings, memory, notes


# -- the CSV file, in a process of its own ---------------------------------------------------


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "title", "price", "stock"])
        for i in range(1, rows + 1):
            row = book_row(i)
            writer.writerow([i, f"Book {i} (csv)", row["price"] + 1, row["stock"]])


def csv_child(url: str, connect_args: str, path: str) -> None:
    """Run in a subprocess: apply the CSV file, print seconds, peak RSS and counts as JSON."""
    engine = create_engine(url, connect_args=json.loads(connect_args))
    started = time.perf_counter()
    report = setwise.apply(engine, "books", path)
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "peak_mb": peak_rss_mb(), "changed": report.changed}))


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's ``ru_maxrss`` survives ``exec``, so
    a child would report its parent's peak: VmHWM (reset by ``exec``) where there is one."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_csv(engine: Engine, rows: int) -> dict[str, Any]:
    reset(engine)
    with tempfile.TemporaryDirectory(prefix="setwise-bench-csv-") as folder:
        path = Path(folder) / "changes.csv"
        write_csv(path, rows)
        result = child(engine, "--csv-child", str(path))
    if result["changed"] != rows:
        raise SystemExit(f"the CSV apply changed {result['changed']} rows, expected {rows}")
    return result


def _pg_options(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    return {"options": f"-csearch_path={schema}"}


# -- the table --------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--csv-child":
        csv_child(*sys.argv[2:5])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--case-child":
        case_child(*sys.argv[2:7])
        return
    parser = arguments(__doc__.splitlines()[0], rows=SIZES[-1], repeats=3)
    parser.add_argument(
        "--sizes",
        default=None,
        help="comma-separated table sizes (default 10000,100000,1000000, or --rows if given)",
    )
    parser.add_argument(
        "--loop-max",
        type=int,
        default=LOOP_MAX_ROWS,
        help=f"largest table the naive loop runs on (default {LOOP_MAX_ROWS:,})",
    )
    parser.add_argument(
        "--case-max",
        type=int,
        default=CASE_MAX_ROWS,
        help=f"largest table the CASE WHEN case runs on (default {CASE_MAX_ROWS:,})",
    )
    parser.add_argument(
        "--csv-rows",
        type=int,
        default=CSV_ROWS,
        help=f"rows of the CSV memory test, 0 to skip (default {CSV_ROWS:,})",
    )
    parser.add_argument(
        "--fast-only",
        action="store_true",
        help="only the raw paths and setwise (leave out the loop, ORM bulk, executemany, CASE)",
    )
    options = parser.parse_args()
    if options.sizes is not None:
        sizes = [int(n) for n in options.sizes.split(",") if n.strip()]
    else:  # run.py passes --rows to every benchmark: one size then
        sizes = list(SIZES) if options.rows == SIZES[-1] else [options.rows]

    servers: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    lines: list[list[str]] = []
    notes: list[str] = []
    csv_lines: list[list[str]] = []
    for backend in chosen_backends(options.backends):
        version = server_version(backend)
        if version is None:
            continue
        servers[backend] = version
        for rows in sizes:
            with fresh_database(backend) as engine:
                timings, memory, found = measure(
                    engine,
                    rows,
                    options.repeats,
                    options.loop_max,
                    options.case_max,
                    not options.fast_only,
                )
                csv_size = options.csv_rows and rows >= options.csv_rows and rows == max(sizes)
                csv_result = measure_csv(engine, options.csv_rows) if csv_size else None
            notes += [f"{backend} {rows:,}: {note}" for note in found]
            changed = expected_changes(rows)
            raw = timings["raw best"].median
            raw_cpu = timings["raw best"].cpu
            shown = [n for n in timings if n != "raw best"]
            shown.insert(shown.index("setwise, no journal"), "raw best")
            for number, case_name in enumerate(shown):
                timing = timings[case_name]
                cpu_ratio = timing.cpu / raw_cpu if timing.cpu is not None and raw_cpu else None
                lines.append(
                    [
                        backend if number == 0 else "",
                        f"{rows:,}" if number == 0 else "",
                        case_name,
                        seconds(timing.median),
                        f"{timing.spread:.0%}" if len(timing.samples) > 1 else "-",
                        per_second(changed, timing.median),
                        f"{raw / timing.median:.2f}",
                        f"{cpu_ratio:.2f}x" if cpu_ratio is not None else "-",
                        f"{memory[case_name] / 2**20:,.1f}" if case_name in memory else "-",
                    ]
                )
                results.append(
                    {
                        "backend": backend,
                        "rows": rows,
                        "case": case_name,
                        "changed": changed,
                        "median_s": timing.median,
                        "rows_per_s": changed / timing.median,
                        "throughput_vs_raw_best": raw / timing.median,
                        "cpu_s": timing.cpu,
                        "cpu_case_over_raw": cpu_ratio,
                        "peak_python_mb": memory[case_name] / 2**20
                        if case_name in memory
                        else None,
                        "samples_s": timing.samples,
                        "cpu_samples_s": timing.cpu_samples,
                    }
                )
            if csv_result is not None:
                csv_lines.append(
                    [
                        backend,
                        f"{options.csv_rows:,}",
                        seconds(csv_result["seconds"]),
                        per_second(options.csv_rows, csv_result["seconds"]),
                        f"{csv_result['peak_mb']:,.0f}",
                    ]
                )
                results.append({"backend": backend, "case": "csv file", **csv_result})

    columns = [
        "backend",
        "rows",
        "case",
        "seconds",
        "spread",
        "rows changed/s",
        "throughput vs raw best",
        "CPU case/raw",
        "peak MB",
    ]
    caption = (
        "Changeset: half the rows (even ids), a tenth of them no-ops; 45% of the table changes."
        f" Median of {options.repeats} runs (the loop once; ORM bulk, executemany and CASE"
        f" once above {SLOW_ONCE_ABOVE:,} rows), each on a freshly reset table. peak MB: most"
        " Python memory held during the run (tracemalloc), the changeset itself not counted."
        " CPU: the case's process and the PostgreSQL backends serving it. "
        + " ".join(note + "." for note in notes)
    )
    table = print_table("setwise.apply vs the other ways", columns, lines, caption)
    if csv_lines:
        table += print_table(
            "setwise.apply of a CSV file, in a process of its own",
            ["backend", "rows", "seconds", "rows/s", "peak RSS MB"],
            csv_lines,
            "Peak resident memory of the whole process (VmHWM): Python, SQLAlchemy, driver.",
        )
    publish(
        options,
        NAME,
        parameters={"sizes": sizes, "repeats": options.repeats, "csv_rows": options.csv_rows},
        servers=servers,
        results=results,
        table=table,
    )


if __name__ == "__main__":
    main()
