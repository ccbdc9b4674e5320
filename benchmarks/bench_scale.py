"""A scale run: chunked runs killed half way and resumed, against one statement (issue 7).

    python benchmarks/bench_scale.py [--rows 10000000] [--changeset-rows 1000000]
        [--galera-rows 2000000] [--legs backfill,changeset,galera] [--no-save]

Three legs, each on a freshly seeded ``books`` table (ids 1..N, as ``books.book_row``):

- backfill (PostgreSQL, ``--rows``): ``price = price * 1.10`` on every row, through
  ``setwise.update(..., all_rows=True)``;
- changeset (PostgreSQL, a ``--rows`` table): ``setwise.apply`` of a
  ``--changeset-rows``-row CSV file (``bench_apply.write_csv``: ids 1..M, a new title
  and price on each, so every listed row changes);
- galera: the same CSV changeset through node 1 of the Galera cluster (a
  ``--galera-rows`` table), with ``wsrep_max_ws_rows`` set to 10,000 on every node for
  the chunked run only; the result is read back through node 3.

Each leg times the unchunked references on a fresh table (``--repeats`` times each,
the median kept): the raw statement(s) a person would type (one transaction) and
setwise in one transaction with the chunked run's journal setting (so the ratio to
it is what chunking costs), in a process of its own. The raw
result is kept as ``books_expected``. Then setwise runs as ``chunk_rows="auto",
chunk_seconds=0.5``, with the journal and without (``--journal``), in a child
process that is killed with SIGKILL once its progress passes ``--kill-at`` of the
rows, and is resumed with ``resume=run_id`` in a second child. Reported: the total
(killed child + resumed child, wall clock, process start included) against each
reference, the longest chunk (the journal's ``chunks`` table, both children) and the
longest transaction of any kind (timed in the children from BEGIN to the end of
COMMIT/ROLLBACK), each child's peak resident memory (VmHWM), and whether the resumed
table equals ``books_expected`` row for row.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    inspect,
    make_url,
    text,
    update,
)

import setwise
from bench_apply import peak_rss_mb, write_csv
from books import Book
from common import (
    arguments,
    backends,
    fresh_database,
    print_table,
    publish,
    seconds,
    server_version,
)

NAME = "scale"
ROWS = 10_000_000
CHANGESET_ROWS = 1_000_000
GALERA_ROWS = 2_000_000
CHUNK_SECONDS = 0.5
KILL_AT = 0.5
LEGS = ("backfill", "changeset", "galera")
GALERA_MAX_WS_ROWS = 10_000
GALERA_PORTS = (4306, 4307, 4308)
#: Rows per seeding INSERT on Galera: one write set each, far under every cap.
GALERA_SEED_BATCH = 50_000
EXPECTED = "books_expected"
STAGE = "raw_stage"
COLUMNS = ("isbn", "title", "genre", "price", "stock")
CHANGED = ("title", "price", "stock")
TARGETS = {"longest chunk s": 1.0, "total / raw": 1.5, "peak MB": 200.0}


# -- the child process: one setwise run, every event a JSON line on stdout ----------------


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


class TransactionClock:
    """Times every transaction of an engine from BEGIN to the end of its COMMIT or
    ROLLBACK, and emits each, marked when it wrote ``books`` (a chunk, or the one
    transaction of an unchunked run) or not (staging, counting, bookkeeping): a killed
    process has reported every transaction it finished."""

    def __init__(self, engine: Engine) -> None:
        self.started: dict[int, float] = {}
        self.writes: set[int] = set()
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "before_cursor_execute", self._statement)
        dialect = engine.dialect
        for name in ("do_commit", "do_rollback"):
            setattr(dialect, name, self._timed(getattr(dialect, name), name))

    def _begin(self, connection: Connection) -> None:
        # The pooled connection is what the dialect's do_commit/do_rollback are given.
        self.started[id(connection.connection)] = time.perf_counter()

    def _statement(self, connection: Connection, *arguments: Any) -> None:
        # PostgreSQL 18 sends the UPDATE inside a CTE that journals its rows.
        if re.match(r"\s*(WITH \w+ AS\s*\(\s*)?UPDATE books", arguments[1]):
            self.writes.add(id(connection.connection))

    def _timed(self, method: Callable[[Any], None], name: str) -> Callable[[Any], None]:
        def timed(dbapi_connection: Any) -> None:
            try:
                method(dbapi_connection)
            finally:
                key = id(dbapi_connection)
                began = self.started.pop(key, None)
                writes = key in self.writes
                self.writes.discard(key)
                if began is not None:
                    emit({"tx": time.perf_counter() - began, "writes": writes, "end": name})

        return timed


def backfill_statement() -> Any:
    return update(Book).values(price=Book.price * Decimal("1.10"))


def child(spec: dict[str, Any]) -> None:
    """Run in a subprocess: one setwise run as ``spec`` says, reporting as it goes."""
    engine = create_engine(spec["url"], connect_args=spec["connect_args"])
    TransactionClock(engine)
    started = time.perf_counter()

    def progress(step: setwise.Progress) -> None:
        if not step.chunk:  # reading and staging: the records are of chunks
            return
        emit(
            {
                "done": step.rows_done,
                "total": step.rows_total,
                "chunk": step.chunk,
                "rows": step.chunk_rows,
                "seconds": step.chunk_seconds,
            }
        )

    options: dict[str, Any] = {"journal": spec["journal"]}
    if spec["chunked"]:
        options |= {
            "chunk_rows": "auto",
            "chunk_seconds": spec["chunk_seconds"],
            "progress": progress,
            "resume": spec["resume"],
        }
    if spec["kind"] == "backfill":
        report = setwise.update(engine, backfill_statement(), all_rows=True, **options)
    else:
        report = setwise.apply(engine, Book, spec["csv"], **options)
    emit(
        {
            "report": {
                "run_id": report.run_id,
                "matched": report.matched,
                "changed": report.changed,
                "chunks": report.chunks,
                "retries": report.retries,
                "rollbacks": report.rollbacks,
                "slowest_chunk_s": report.slowest_chunk_s,
                "elapsed_s": report.elapsed_s,
            },
            "elapsed": time.perf_counter() - started,
            "peak_mb": peak_rss_mb(),
        }
    )


@dataclass
class ChildRun:
    """What the parent saw of one child: wall time, its JSON lines, peak memory."""

    seconds: float
    records: list[dict[str, Any]] = field(default_factory=list)
    peak_mb: float = 0.0
    killed: bool = False

    def transactions(self, writes: bool) -> list[float]:
        """Seconds of each finished transaction that wrote ``books`` (or did not)."""
        return [r["tx"] for r in self.records if "tx" in r and r["writes"] == writes]

    @property
    def report(self) -> dict[str, Any]:
        found = [r["report"] for r in self.records if "report" in r]
        return found[0] if found else {}

    @property
    def chunks(self) -> int:
        return sum(1 for r in self.records if "chunk" in r)


def vm_hwm_mb(pid: int) -> float:
    """Another process's peak resident memory, read while it is alive."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_child(spec: dict[str, Any], kill_at: float | None = None) -> ChildRun:
    """Run ``child(spec)`` in a process of its own; SIGKILL it once its progress passes
    ``kill_at`` of the rows (it must not finish first)."""
    here = Path(__file__).resolve().parent
    path = os.environ.get("PYTHONPATH", "")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
        # Kept: a PYTHONPATH given to the benchmark (a checkout of setwise to measure, say).
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(here), path]))},
    )
    assert process.stdout is not None
    result = ChildRun(0.0)
    for line in process.stdout:
        record = json.loads(line)
        result.records.append(record)
        if "peak_mb" in record:
            result.peak_mb = record["peak_mb"]
        total = record.get("total")
        if kill_at is not None and total and record.get("done", 0) >= kill_at * total:
            result.peak_mb = vm_hwm_mb(process.pid)
            os.kill(process.pid, signal.SIGKILL)
            result.killed = True
            break
    process.wait()
    result.seconds = time.perf_counter() - started
    result.records += [json.loads(line) for line in process.stdout.read().splitlines() if line]
    if kill_at is not None and not result.killed:
        raise SystemExit(f"the {spec['kind']} run finished before it could be killed")
    if kill_at is None and process.returncode != 0:
        raise SystemExit(f"the {spec['kind']} child failed with exit code {process.returncode}")
    return result


# -- seeding, references, checks --------------------------------------------------------------


def seed_postgresql(engine: Engine, rows: int) -> float:
    """A fresh ``books`` of ``rows`` rows (the key added after loading), frozen and
    analyzed; the journal tables emptied. Returns the seconds it took."""
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS books")
        connection.exec_driver_sql(
            "CREATE TABLE books (id integer NOT NULL, isbn varchar(20) NOT NULL,"
            " title varchar(200) NOT NULL, genre varchar(30), price numeric(10, 2) NOT NULL,"
            " stock integer NOT NULL)"
        )
        # The same rows as books.book_row(i); ARRAY[…][4] is NULL, as GENRES[3] is None.
        connection.execute(
            text(
                "INSERT INTO books SELECT i, '978-' || lpad(i::text, 9, '0'), 'Book ' || i,"
                " (ARRAY['fiction', 'history', 'science'])[i % 4 + 1],"
                " (10 + i % 90) + (i % 100) / 100.0, i % 50"
                " FROM generate_series(1, :rows) AS i"
            ),
            {"rows": rows},
        )
        connection.exec_driver_sql("ALTER TABLE books ADD PRIMARY KEY (id)")
        empty_journal(connection)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # As books.reset: hint bits set and pages written now, not during a timed run.
        connection.exec_driver_sql("VACUUM (FREEZE, ANALYZE) books")
        connection.exec_driver_sql("CHECKPOINT")
    return time.perf_counter() - started


def seed_galera(engine: Engine, rows: int) -> float:
    """A fresh ``books`` of ``rows`` rows, loaded in batches (one write set each)."""
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS books")
        books = Book.__table__
        assert isinstance(books, Table)
        books.create(connection)
        empty_journal(connection)
    insert = text(
        "INSERT INTO books SELECT seq, CONCAT('978-', LPAD(seq, 9, '0')), CONCAT('Book ', seq),"
        " ELT(seq % 4 + 1, 'fiction', 'history', 'science', NULL),"
        " (10 + seq % 90) + (seq % 100) / 100, seq % 50"
        f" FROM seq_1_to_{int(rows)} WHERE seq BETWEEN :low AND :high"
    )
    for low in range(1, rows + 1, GALERA_SEED_BATCH):
        with engine.begin() as connection:
            connection.execute(insert, {"low": low, "high": low + GALERA_SEED_BATCH - 1})
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE TABLE books")
    return time.perf_counter() - started


def empty_journal(connection: Connection) -> None:
    """Empty setwise's journal tables, so each run starts from the same journal (TRUNCATE:
    a DELETE would leave the last leg's 10,000,000 dead journal rows for this one to skip)."""
    for name in inspect(connection).get_table_names():
        if name.startswith("setwise_"):
            connection.exec_driver_sql(f"TRUNCATE TABLE {name}")


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def raw_backfill(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE books SET price = price * 1.10")


def raw_changeset_postgresql(engine: Engine, path: Path) -> None:
    """COPY the CSV file into a temporary table, UPDATE … FROM it: one transaction."""
    differs = " OR ".join(f"books.{c} IS DISTINCT FROM s.{c}" for c in CHANGED)
    sets = ", ".join(f"{c} = s.{c}" for c in CHANGED)
    with engine.begin() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMP TABLE {STAGE} (id integer, title varchar(200),"
                " price numeric(10, 2), stock integer) ON COMMIT DROP"
            )
            with (
                cursor.copy(f"COPY {STAGE} FROM STDIN (FORMAT csv, HEADER true)") as copy,
                path.open("rb") as file,
            ):
                while data := file.read(1 << 20):
                    copy.write(data)
            cursor.execute(
                f"UPDATE books SET {sets} FROM {STAGE} s WHERE books.id = s.id AND ({differs})"
            )


def raw_changeset_mariadb(engine: Engine, path: Path) -> None:
    """LOAD DATA LOCAL INFILE into a temporary table, UPDATE … JOIN it: one transaction."""
    same = " AND ".join(f"books.{c} <=> s.{c}" for c in CHANGED)
    sets = ", ".join(f"books.{c} = s.{c}" for c in CHANGED)
    loader = create_engine(engine.url, connect_args={"local_infile": True})
    try:
        with loader.begin() as connection:
            connection.exec_driver_sql(
                f"CREATE TEMPORARY TABLE {STAGE} (id integer, title varchar(200),"
                " price numeric(10, 2), stock integer)"
            )
            connection.exec_driver_sql(
                f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {STAGE} CHARACTER SET utf8mb4"
                " FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' IGNORE 1 LINES"
                " (id, title, price, stock)"
            )
            connection.exec_driver_sql(
                f"UPDATE books JOIN {STAGE} s ON books.id = s.id SET {sets} WHERE NOT ({same})"
            )
            connection.exec_driver_sql(f"DROP TEMPORARY TABLE {STAGE}")
    finally:
        loader.dispose()


def keep_expected(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {EXPECTED}")
        connection.exec_driver_sql(f"CREATE TABLE {EXPECTED} AS SELECT * FROM books")


def differences(engine: Engine) -> int:
    """Rows of ``books`` that differ from ``books_expected`` (or are missing from either):
    0 when the two are identical."""
    same = "<=>" if engine.dialect.name in ("mysql", "mariadb") else "IS NOT DISTINCT FROM"
    equal = " AND ".join(f"b.{c} {same} e.{c}" for c in COLUMNS)
    query = (
        f"SELECT (SELECT count(*) FROM books), (SELECT count(*) FROM {EXPECTED}),"
        f" (SELECT count(*) FROM books b JOIN {EXPECTED} e ON e.id = b.id WHERE {equal})"
    )
    with engine.connect() as connection:
        books, expected, matching = connection.exec_driver_sql(query).one()
    return int(max(books, expected) - matching)


def longest_chunk(engine: Engine, run_id: str) -> tuple[float, int]:
    """The longest chunk of a run as its journal recorded it (seconds, begin to just
    before COMMIT), and how many chunks it recorded."""
    query = text("SELECT max(seconds), count(*) FROM setwise_chunks WHERE run_id = :run")
    with engine.connect() as connection:
        longest, count = connection.execute(query, {"run": run_id}).one()
    return float(longest or 0), int(count)


# -- one leg -----------------------------------------------------------------------------------


@dataclass
class Leg:
    """One leg's setting: what to seed, which references, how to connect a child."""

    name: str
    backend: str
    kind: str
    rows: int
    changed: int
    seed: Callable[[Engine, int], float]
    raw_label: str
    raw: Callable[[], None]
    spec: dict[str, Any]
    checker: Engine
    cap: Callable[[], Any] | None = None


def run_leg(
    leg: Leg, engine: Engine, kill_at: float, journals: list[bool], repeats: int
) -> list[dict[str, Any]]:
    """References (each timed ``repeats`` times on a fresh table, the median kept), then
    for each journal setting the killed and resumed chunked run, then the check."""
    print(f"[{leg.name}] seeding {leg.rows:,} rows", flush=True)
    seeded = leg.seed(engine, leg.rows)
    print(f"[{leg.name}] seeded in {seeded:.1f} s; raw reference: {leg.raw_label}", flush=True)
    raw_samples = []
    for attempt in range(repeats):
        if attempt:
            leg.seed(engine, leg.rows)
        raw_samples.append(timed(leg.raw))
        if not attempt:
            keep_expected(engine)
    raw_s = statistics.median(raw_samples)
    print(f"[{leg.name}] raw {raw_s:.1f} s; setwise in one transaction", flush=True)
    references = {"seed_s": seeded, "raw_s": raw_s, "raw_samples_s": raw_samples}
    # setwise in one transaction with the journal setting of each chunked run: what
    # chunking costs, the journal's own rows written either way.
    for journal in journals:
        ones, one_diff = [], 0
        for _ in range(repeats):
            leg.seed(engine, leg.rows)
            ones.append(run_child(leg.spec | {"chunked": False, "journal": journal}))
            one_diff += differences(leg.checker)
        one = sorted(ones, key=lambda child: child.seconds)[len(ones) // 2]  # the median
        print(f"[{leg.name}] setwise one tx, journal {journal}: {one.seconds:.1f} s", flush=True)
        references[journal] = {
            "one": one,
            "one_samples_s": [child.seconds for child in ones],
            "one_diff": one_diff,
        }
    return [run_chunked(leg, engine, kill_at, journal, references) for journal in journals]


def run_chunked(
    leg: Leg, engine: Engine, kill_at: float, journal: bool, references: dict[str, Any]
) -> dict[str, Any]:
    """The chunked run, killed at ``kill_at`` of its rows and resumed, against the
    references ``run_leg`` measured."""
    same, raw_s = references[journal], references["raw_s"]
    one = same["one"]
    leg.seed(engine, leg.rows)
    kind = "journal" if journal else "no journal"
    print(
        f"[{leg.name}] setwise one tx {one.seconds:.1f} s; chunked, {kind}, killed at {kill_at:.0%}"
    )
    chunked = leg.spec | {"chunked": True, "journal": journal, "resume": None}
    with leg.cap() if leg.cap is not None else _nothing():
        killed = run_child(chunked, kill_at)
        run = setwise.runs(engine)[0]
        if run.status != "running":
            raise SystemExit(f"the killed run is {run.status!r}, not 'running'")
        killed_rows = run.matched + run.missing
        print(
            f"[{leg.name}] killed after {killed.seconds:.1f} s, {run.chunks} chunks,"
            f" {killed_rows:,} rows; resuming {run.run_id}",
            flush=True,
        )
        resumed = run_child(chunked | {"resume": run.run_id})
    diff = differences(leg.checker)
    chunk_s, chunk_count = longest_chunk(engine, run.run_id)
    final = setwise.runs(engine)[0]
    total = killed.seconds + resumed.seconds
    writing = killed.transactions(True) + resumed.transactions(True)
    other = killed.transactions(False) + resumed.transactions(False)
    report = resumed.report
    print(f"[{leg.name}] resumed in {resumed.seconds:.1f} s; {diff} rows differ", flush=True)
    return {
        "journal": journal,
        "leg": leg.name,
        "backend": leg.backend,
        "rows": leg.rows,
        "changeset_rows": leg.changed if leg.kind == "changeset" else None,
        "changed": report.get("changed"),
        "seed_s": references["seed_s"],
        "raw_label": leg.raw_label,
        "raw_s": raw_s,
        "raw_samples_s": references["raw_samples_s"],
        "setwise_one_tx_s": one.seconds,
        "setwise_one_tx_journal": journal,
        "setwise_one_tx_samples_s": same["one_samples_s"],
        "setwise_one_tx_peak_mb": one.peak_mb,
        "setwise_one_tx_longest_tx_s": max(one.transactions(True), default=0.0),
        "setwise_one_tx_identical": same["one_diff"] == 0,
        "killed_s": killed.seconds,
        "killed_after_chunks": run.chunks,
        "killed_after_rows": killed_rows,
        "resumed_s": resumed.seconds,
        "total_s": total,
        "total_over_raw": total / raw_s,
        "total_over_setwise_one_tx": total / one.seconds,
        "chunks": chunk_count,
        "run_status": final.status,
        "retries": report.get("retries"),
        "rollbacks": report.get("rollbacks"),
        "longest_chunk_s": chunk_s,
        "chunk_log": [
            [r["chunk"], r["rows"], round(r["seconds"], 4)]
            for r in killed.records + resumed.records
            if "chunk" in r
        ],
        "largest_chunk_rows": max(
            (r["rows"] for r in killed.records + resumed.records if "chunk" in r), default=0
        ),
        "longest_chunk_resumed_report_s": report.get("slowest_chunk_s"),
        "longest_write_tx_s": max(writing, default=0.0),
        "write_transactions": len(writing),
        "write_transactions_over_1s": [round(t, 3) for t in writing if t > 1.0],
        "longest_other_tx_s": max(other, default=0.0),
        "other_transactions": len(other),
        "other_transactions_over_1s": [round(t, 3) for t in other if t > 1.0],
        # Where the chunked run's time went: transactions that wrote books, the others
        # (staging, counting), and the rest (process start, imports, reading the CSV
        # outside a transaction), per child.
        "time_split_s": {
            name: {
                "write_tx": sum(part.transactions(True)),
                "other_tx": sum(part.transactions(False)),
                "outside_tx": part.seconds
                - sum(part.transactions(True))
                - sum(part.transactions(False)),
            }
            for name, part in (("killed", killed), ("resumed", resumed))
        },
        "peak_mb_killed": killed.peak_mb,
        "peak_mb_resumed": resumed.peak_mb,
        "differing_rows": diff,
        "identical": diff == 0,
    }


@contextmanager
def _nothing() -> Iterator[None]:
    yield


# -- PostgreSQL legs ---------------------------------------------------------------------------


def pg_spec(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    return {
        "url": engine.url.render_as_string(hide_password=False),
        "connect_args": {"options": f"-csearch_path={schema}"},
        "chunk_seconds": CHUNK_SECONDS,
    }


def postgresql_legs(
    engine: Engine, names: list[str], rows: int, changeset_rows: int, csv: Path
) -> list[Leg]:
    spec = pg_spec(engine)
    legs = []
    if "backfill" in names:
        legs.append(
            Leg(
                "backfill",
                "postgresql",
                "backfill",
                rows,
                rows,
                seed_postgresql,
                "UPDATE books SET price = price * 1.10",
                lambda: raw_backfill(engine),
                spec | {"kind": "backfill"},
                engine,
            )
        )
    if "changeset" in names:
        legs.append(
            Leg(
                "changeset",
                "postgresql",
                "changeset",
                rows,
                changeset_rows,
                seed_postgresql,
                "COPY csv + UPDATE FROM",
                lambda: raw_changeset_postgresql(engine, csv),
                spec | {"kind": "changeset", "csv": str(csv)},
                engine,
            )
        )
    return legs


# -- Galera ----------------------------------------------------------------------------------


@contextmanager
def galera_database() -> Iterator[tuple[Engine, Engine]]:
    """A database of its own on the cluster: an engine on node 1 (writes) and one on
    node 3 with causal reads (checks); dropped afterwards."""
    with fresh_database("galera") as writer:
        yield writer, backends.reader(writer)


@contextmanager
def max_ws_rows(value: int) -> Iterator[None]:
    """``wsrep_max_ws_rows`` set on every node for the block; each node's value back after."""
    before: dict[int, int] = {}
    url = make_url(backends.server_url("galera"))._replace(database=None)
    try:
        for port in GALERA_PORTS:
            node = create_engine(url.set(port=port))
            with node.begin() as connection:
                before[port] = int(
                    connection.exec_driver_sql("SELECT @@global.wsrep_max_ws_rows").scalar_one()
                )
                connection.execute(text("SET GLOBAL wsrep_max_ws_rows = :v"), {"v": value})
            node.dispose()
        yield
    finally:
        for port, old in before.items():
            node = create_engine(url.set(port=port))
            with node.begin() as connection:
                connection.execute(text("SET GLOBAL wsrep_max_ws_rows = :v"), {"v": old})
            node.dispose()


def galera_leg(writer: Engine, reader: Engine, rows: int, changeset_rows: int, csv: Path) -> Leg:
    return Leg(
        "galera",
        "galera",
        "changeset",
        rows,
        changeset_rows,
        seed_galera,
        "LOAD DATA csv + UPDATE JOIN",
        lambda: raw_changeset_mariadb(writer, csv),
        {
            "url": writer.url.render_as_string(hide_password=False),
            "connect_args": {},
            "chunk_seconds": CHUNK_SECONDS,
            "kind": "changeset",
            "csv": str(csv),
        },
        reader,
        lambda: max_ws_rows(GALERA_MAX_WS_ROWS),
    )


# -- the table -------------------------------------------------------------------------------


def short(count: int) -> str:
    """10000000 -> 10M, 50000 -> 50k."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:g}M"
    return f"{count / 1_000:g}k" if count >= 1_000 else str(count)


def split(parts: dict[str, dict[str, float]]) -> str:
    """The chunked run's time split, summed over both children: "12.1/11.0/2.3 s"."""
    kinds = ("write_tx", "other_tx", "outside_tx")
    return "/".join(f"{sum(p[kind] for p in parts.values()):.1f}" for kind in kinds) + " s"


def table_lines(results: list[dict[str, Any]]) -> list[list[str]]:
    lines = []
    for r in results:
        work = short(r["rows"]) + (
            f" / {short(r['changeset_rows'])}" if r["changeset_rows"] is not None else ""
        )
        lines.append(
            [
                r["leg"] + (" + journal" if r.get("journal", True) else ""),
                work,
                seconds(r["raw_s"]),
                seconds(r["setwise_one_tx_s"]),
                f"{seconds(r['killed_s'])} + {seconds(r['resumed_s'])}",
                f"{r['total_over_raw']:.2f}x",
                f"{r['total_over_setwise_one_tx']:.2f}x",
                str(r["chunks"]),
                f"{r['longest_chunk_s']:.3f}",
                f"{r['longest_write_tx_s']:.3f}",
                f"{r['longest_other_tx_s']:.3f}",
                f"{r['peak_mb_killed']:,.0f} / {r['peak_mb_resumed']:,.0f}",
                "yes" if r["identical"] else f"NO ({r['differing_rows']:,})",
            ]
        )
    return lines


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
        return
    parser = arguments(__doc__.splitlines()[0], rows=ROWS, repeats=1)
    parser.set_defaults(backends="postgresql,galera")
    parser.add_argument(
        "--changeset-rows",
        type=int,
        default=CHANGESET_ROWS,
        help=f"rows of the CSV changeset (default {CHANGESET_ROWS:,}; at most --rows)",
    )
    parser.add_argument(
        "--galera-rows",
        type=int,
        default=GALERA_ROWS,
        help=f"rows of the Galera table (default {GALERA_ROWS:,}; at most --rows)",
    )
    parser.add_argument(
        "--legs", default=",".join(LEGS), help=f"comma-separated, from {', '.join(LEGS)}"
    )
    parser.add_argument(
        "--kill-at",
        type=float,
        default=KILL_AT,
        help=f"share of the rows after which the chunked run is killed (default {KILL_AT})",
    )
    parser.add_argument(
        "--journal",
        choices=("on", "off", "both"),
        default="both",
        help="the chunked run with the journal, without, or both in turn (default both)",
    )
    options = parser.parse_args()
    journals = {"on": [True], "off": [False], "both": [True, False]}[options.journal]
    legs = [name.strip() for name in options.legs.split(",") if name.strip()]
    if unknown := [name for name in legs if name not in LEGS]:
        raise SystemExit(f"unknown leg(s) {unknown}; choose from {', '.join(LEGS)}")
    backends = {name.strip() for name in options.backends.split(",")}
    if "postgresql" not in backends:
        legs = [name for name in legs if name == "galera"]
    if "galera" not in backends:
        legs = [name for name in legs if name != "galera"]
    rows = options.rows
    changeset_rows = min(options.changeset_rows, rows)
    galera_rows = min(options.galera_rows, rows)
    load = [round(n, 2) for n in os.getloadavg()]
    print(f"load average before the run: {load}", flush=True)

    servers: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="setwise-bench-scale-") as folder:
        csv = Path(folder) / "changes.csv"
        if "changeset" in legs:
            write_csv(csv, changeset_rows)
        pg_legs = [name for name in legs if name != "galera"]
        if pg_legs and (version := server_version("postgresql")) is not None:
            servers["postgresql"] = version
            with fresh_database("postgresql") as engine:
                for leg in postgresql_legs(engine, pg_legs, rows, changeset_rows, csv):
                    results += run_leg(leg, engine, options.kill_at, journals, options.repeats)
        if "galera" in legs and (version := server_version("galera")) is not None:
            servers["galera"] = version
            # The same changeset as on PostgreSQL, cut to the Galera table's size.
            galera_changes = min(changeset_rows, galera_rows)
            galera_csv = csv
            if galera_changes != changeset_rows or "changeset" not in legs:
                galera_csv = Path(folder) / "galera.csv"
                write_csv(galera_csv, galera_changes)
            with galera_database() as (writer, reader):
                leg = galera_leg(writer, reader, galera_rows, galera_changes, galera_csv)
                results += run_leg(leg, writer, options.kill_at, journals, options.repeats)

    columns = [
        "leg",
        "rows / changes",
        "raw s",
        "setwise 1 tx s",
        "killed + resumed s",
        "total/raw",
        "total/1 tx",
        "chunks",
        "longest chunk s",
        "longest write tx s",
        "longest other tx s",
        "peak MB killed / resumed",
        "identical",
    ]
    notes = [
        f"load average before the run {load}, after {[round(n, 2) for n in os.getloadavg()]}",
    ]
    for r in results:
        over = r["write_transactions_over_1s"]
        notes.append(
            f"{r['leg']}{' + journal' if r['journal'] else ''}: raw = {r['raw_label']};"
            f" killed after {r['killed_after_chunks']} chunks"
            f" ({r['killed_after_rows']:,} rows); {r['write_transactions']} write transactions,"
            f" {len(over)} over 1 s {over[:5]}; other transactions over 1 s:"
            f" {r['other_transactions_over_1s'][:5]}; time in write/other/no tx (killed +"
            f" resumed): {split(r['time_split_s'])}; retries {r['retries']}, rollbacks"
            f" {r['rollbacks']}; setwise 1 tx: peak {r['setwise_one_tx_peak_mb']:,.0f} MB,"
            " identical:"
            f" {'yes' if r['setwise_one_tx_identical'] else 'NO'}"
        )
    caption = (
        f"chunk_rows='auto', chunk_seconds={CHUNK_SECONDS}, with the journal (+ journal) or"
        " without; the chunked run is"
        f" killed with SIGKILL after {options.kill_at:.0%} of its rows and resumed with"
        " resume=run_id. raw: one statement (one transaction) through the driver; setwise 1"
        " tx: setwise without chunks, with the chunked run's journal setting, in a process of"
        " its own. total: both"
        " children's wall time, Python start included. longest chunk: the journal's chunks"
        " table (BEGIN to just before COMMIT); longest write tx: the children's transactions"
        " that wrote books (the chunks), BEGIN to the end of COMMIT/ROLLBACK; longest other"
        " tx: the rest (staging the CSV into a temporary table, counting, bookkeeping)."
        " peak MB: VmHWM of each child. identical: the resumed table equals the raw"
        " statement's result row for row."
        + (
            f" Galera: a {galera_rows:,}-row table (node 1 writes, node 3 checks),"
            f" wsrep_max_ws_rows = {GALERA_MAX_WS_ROWS:,} on every node for the chunked run only."
            if "galera" in legs
            else ""
        )
        + " "
        + ". ".join(notes)
        + "."
    )
    table = print_table(
        "Scale run: killed half way and resumed", columns, table_lines(results), caption
    )
    publish(
        options,
        NAME,
        parameters={
            "rows": rows,
            "changeset_rows": changeset_rows,
            "galera_rows": galera_rows,
            "legs": legs,
            "chunk_seconds": CHUNK_SECONDS,
            "kill_at": options.kill_at,
            "journal": options.journal,
            "galera_max_ws_rows": GALERA_MAX_WS_ROWS,
            "load_average_before": load,
            "setwise_source": str(Path(setwise.__file__).parent),
        },
        servers=servers,
        results=results,
        table=table,
    )


if __name__ == "__main__":
    main()
