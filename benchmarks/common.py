"""What every benchmark shares: databases, timing, memory, the table, the saved results.

A benchmark script parses its options with ``arguments()``, opens a fresh database per
backend with ``fresh_database()``, times its cases with ``time_rounds()``, prints them
with ``print_table()`` and writes them with ``save_results()`` to
``benchmarks/results/<name>.json`` (figures, parameters, machine, versions, date) and
``<name>.txt`` (the table as printed). Both files are overwritten on each run, so the
latest figures can be committed and diffed.

The databases are the tests' own (``tests/backends.py``): the same environment
variables and defaults, the same check that a server answers, the same fresh database
per run:

    SETWISE_TEST_POSTGRESQL  postgresql+psycopg://root@127.0.0.1:5432/test
    SETWISE_TEST_MARIADB     mariadb+pymysql://root@127.0.0.1:3306/test
    SETWISE_TEST_GALERA      mariadb+pymysql://galera:galera@127.0.0.1:4306/test
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, event

# A script runs with benchmarks/ first on sys.path: the repository's root makes the
# tests' backend helpers importable.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

from tests import backends  # noqa: E402

BACKENDS = ("sqlite", "postgresql", "mariadb")

#: Backends a benchmark may name beyond ``BACKENDS``: another server of a test backend,
#: reached by pointing that backend's URL elsewhere while it is measured. postgresql18:
#: the PostgreSQL 18 server `.ci/pg18.sh up` starts (the tests' fifth backend).
OTHER_SERVERS = {
    "postgresql18": (
        "postgresql",
        "SETWISE_BENCH_POSTGRESQL18",
        "postgresql+psycopg://root@127.0.0.1:5439/test",
    ),
}
RESULTS = Path(__file__).resolve().parent / "results"

# Wide enough for a table of a dozen columns; fixed so the saved .txt does not depend
# on the terminal that ran the benchmark.
TABLE_WIDTH = 140

T = TypeVar("T")


def arguments(description: str, *, rows: int, repeats: int) -> argparse.ArgumentParser:
    """The options every benchmark takes; a script may add its own before parsing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rows", type=int, default=rows, help=f"table size (default {rows})")
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"comma-separated, from {', '.join(BACKENDS)} (default: all)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=repeats,
        help=f"timed runs per case; the median is reported (default {repeats})",
    )
    parser.add_argument(
        "--no-save", action="store_true", help="print the table, do not write benchmarks/results/"
    )
    return parser


def chosen_backends(option: str) -> list[str]:
    names = [name.strip() for name in option.split(",") if name.strip()]
    known = (*BACKENDS, *OTHER_SERVERS)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown backend(s) {unknown}; choose from {', '.join(known)}")
    return names


# -- databases -----------------------------------------------------------------------------


@contextmanager
def as_test_backend(name: str) -> Iterator[str]:
    """The tests' backend that ``name`` is, with its URL pointed at ``name``'s server
    while the block runs (``OTHER_SERVERS``); ``name`` itself for the tests' own."""
    if name not in OTHER_SERVERS:
        yield name
        return
    base, variable, default = OTHER_SERVERS[name]
    key = f"SETWISE_TEST_{base.upper()}"
    before = os.environ.get(key)
    os.environ[key] = os.environ.get(variable, default)
    try:
        yield base
    finally:
        if before is None:
            del os.environ[key]
        else:
            os.environ[key] = before


def server_version(name: str) -> str | None:
    """The backend's version, or None (with a notice printed) when it does not answer."""
    with as_test_backend(name) as base:
        # Asked anew for another server: the tests' answer is cached per backend name.
        ask = backends.availability if base == name else backends.availability.__wrapped__
        found = ask(base)
    if not found.ok:
        print(f"NOTICE: skipping {name}: {found.detail}")
        return None
    return found.detail


@contextmanager
def fresh_database(name: str) -> Iterator[Engine]:
    """An engine on an empty database of its own (a file, a schema, a database), dropped
    afterwards: the tests' own (``tests.backends.fresh_database``)."""
    with (
        as_test_backend(name) as base,
        tempfile.TemporaryDirectory(prefix="setwise-bench-") as folder,
        backends.fresh_database(base, Path(folder)) as engine,
    ):
        yield engine


def each_database(option: str, servers: dict[str, str]) -> Iterator[tuple[str, Engine]]:
    """Each chosen backend that answers (its version noted in ``servers``) with a fresh
    database on it, dropped once the caller moves on to the next."""
    for backend in chosen_backends(option):
        version = server_version(backend)
        if version is None:
            continue
        servers[backend] = version
        with fresh_database(backend) as engine:
            yield backend, engine


# -- timing and memory ---------------------------------------------------------------------


@dataclass
class Case:
    """One way of doing the work: ``setup`` (untimed, e.g. reset the table) then ``run``."""

    run: Callable[[], object]
    setup: Callable[[], object] | None = None
    repeats: int | None = None
    """Timed runs for this case; None takes the benchmark's ``--repeats``."""


@dataclass
class Sample:
    """One run timed where it ran (in a child process, say): what ``Case.run`` returns
    when the wall clock around the call would count more than the work."""

    seconds: float
    cpu: float | None = None


@dataclass
class Timing:
    """The wall-clock seconds of every timed run of one case, and the CPU seconds when
    they could be measured."""

    samples: list[float] = field(default_factory=list)
    cpu_samples: list[float] = field(default_factory=list)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample.seconds)
        if sample.cpu is not None:
            self.cpu_samples.append(sample.cpu)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def cpu(self) -> float | None:
        return statistics.median(self.cpu_samples) if self.cpu_samples else None

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the runs were."""
        return (max(self.samples) - min(self.samples)) / self.median


def time_rounds(
    cases: Mapping[str, Case], repeats: int, cpu: Callable[[], float | None] | None = None
) -> dict[str, Timing]:
    """Time every case ``repeats`` times (or its own count), round-robin.

    Round-robin rather than case after case: a slow patch on a shared machine (another
    process, a checkpoint, a cache flush) then lands on every case alike instead of
    skewing one of them, and the medians stay comparable. ``cpu`` (a ``CpuClock``)
    adds the CPU seconds of each run. A case whose ``run`` returns a ``Sample`` is
    timed by that sample instead of the clock around the call.
    """
    timings = {name: Timing() for name in cases}
    rounds = max(case.repeats or repeats for case in cases.values())
    for round_number in range(rounds):
        for name, case in cases.items():
            if round_number >= (case.repeats or repeats):
                continue
            if case.setup is not None:
                case.setup()
            result, sample = time_once(case.run, cpu)
            timings[name].add(result if isinstance(result, Sample) else sample)
    return timings


def time_once(
    run: Callable[[], T], cpu: Callable[[], float | None] | None = None
) -> tuple[T, Sample]:
    """``run()``'s result and its wall-clock (and, with ``cpu``, CPU) seconds, after a
    garbage collection so that no earlier run's garbage is collected on its clock."""
    gc.collect()
    cpu_started = cpu() if cpu is not None else None
    started = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - started
    cpu_ended = cpu() if cpu is not None else None
    used = cpu_ended - cpu_started if cpu_started is not None and cpu_ended is not None else None
    return result, Sample(elapsed, used)


class CpuClock:
    """CPU seconds used so far by this process and by the server processes serving it.

    Wall-clock time on a shared machine swings with whatever else runs; the CPU spent
    on the work itself swings far less, so ratios of CPU time show a few percent of
    overhead that wall-clock medians cannot. Counted: this process (Python, and
    SQLite, which runs inside it) and, for PostgreSQL on this machine, the backend
    process of every connection the engine opened (from Linux's /proc/PID/schedstat).
    Not counted: server background work (WAL writer, checkpointer), and MariaDB,
    whose connections are threads that cannot be told apart without
    performance_schema. ``__call__`` returns None where the count would be partial.
    """

    def __init__(self, engine: Engine) -> None:
        self.backends: set[int] = set()
        self.usable = engine.dialect.name == "sqlite" or (
            engine.dialect.name == "postgresql"
            and engine.url.host in (None, "", "localhost", "127.0.0.1", "::1")
            and Path("/proc/self/schedstat").exists()
        )
        self.follow(engine)

    def follow(self, engine: Engine) -> None:
        """Count the server processes of ``engine``'s connections too (another engine on
        the same database: an asyncio driver's, say)."""
        if engine.dialect.name == "postgresql":
            event.listen(engine, "connect", self._record_backend)

    def _record_backend(self, dbapi_connection: Any, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        self.backends.add(int(cursor.fetchone()[0]))
        cursor.close()

    def __call__(self) -> float | None:
        if not self.usable:
            return None
        used = time.process_time()
        for pid in self.backends:
            try:
                used += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
            except (OSError, ValueError, IndexError):
                continue  # a backend that has gone has nothing more to count
        return used


def peak_memory(run: Callable[[], T]) -> tuple[T, int]:
    """``run()``'s result and the most Python memory (bytes) it held at once."""
    gc.collect()
    tracemalloc.start()
    try:
        result = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


# -- output --------------------------------------------------------------------------------


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], caption: str = ""
) -> str:
    """Print the table with Rich and return it as plain text (for the saved .txt)."""
    table = Table(title=title, caption=caption or None, caption_justify="left")
    for number, column in enumerate(columns):
        table.add_column(column, justify="left" if number < 2 else "right")
    for row in rows:
        table.add_row(*row)
    console = Console(record=True, width=TABLE_WIDTH)
    console.print(table)
    return console.export_text()


def publish(
    options: Any,
    name: str,
    *,
    parameters: Mapping[str, Any],
    servers: Mapping[str, str],
    results: Sequence[Mapping[str, Any]],
    table: str,
) -> None:
    """Save the results, unless ``--no-save`` was given, and say where."""
    if not options.no_save:
        path = save_results(
            name, parameters=parameters, servers=servers, results=results, table=table
        )
        print(f"saved {path}")


def save_results(
    name: str,
    *,
    parameters: Mapping[str, Any],
    servers: Mapping[str, str],
    results: Sequence[Mapping[str, Any]],
    table: str,
) -> Path:
    """Write ``results/<name>.json`` and ``results/<name>.txt``; return the JSON path."""
    RESULTS.mkdir(exist_ok=True)
    document = {
        "benchmark": name,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "parameters": dict(parameters),
        "machine": machine(),
        "versions": {**versions(), **servers},
        "results": list(results),
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    (RESULTS / f"{name}.txt").write_text(table)
    return path


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        # How busy the machine was (1, 5, 15 minutes): figures from a busy machine are
        # slower and noisier, whatever the code does.
        "load_average": [round(load, 2) for load in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    """Versions of setwise and the libraries between it and the databases."""
    found = {}
    for package in ("setwise", "sqlalchemy", "psycopg", "pymysql"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["sqlite3 library"] = sqlite3.sqlite_version
    return found


def seconds(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def per_second(count: int, elapsed: float) -> str:
    return f"{count / elapsed:,.0f}"


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x"
