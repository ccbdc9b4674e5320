"""``setwise bench``: per-row changes written five ways on the caller's database.

Each case gives every row of a fresh bench table a new price, keyed by id, as an
application or a script would: the naive ORM loop (load, set, flush), the ORM's
bulk UPDATE by primary key, Core ``executemany``, and ``setwise.apply`` with and
without its journal. Every call changes every row (call *k* writes the first price
+ *k*), so none is helped by setwise skipping rows that already hold their values. The table
and setwise's journal for it (under a prefix of their own) are dropped afterwards.

Every case runs once untimed (imports, compiled statements and caches warm up),
then ``repeats`` timed times, round-robin in an order that turns each round, after
a garbage collection, and reports its fastest run: other processes on the machine
only ever add time, and a case must not pay for collecting an earlier one's
garbage. Compare the ratios of one bench, not figures of different ones;
``benchmarks/`` holds the careful version (medians, spreads, CPU time).
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import Engine, MetaData, Numeric, String, bindparam, insert, inspect, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import setwise
from setwise.errors import InvalidArgumentError, WriteCheckError
from setwise.extras import require

TABLE = "setwise_bench"
JOURNAL_PREFIX = "setwise_bench_"
#: Most rows the naive ORM loop is timed on: it runs at a few thousand rows/s, so 20,000
#: rows already take several seconds and more would make the bench wait on the slowest case.
LOOP_MAX_ROWS = 20_000
#: Rows per INSERT when filling the table: well under every bind-parameter limit.
FILL_BATCH = 5_000
#: Timed runs of each case, after its untimed first. With one run each, time spent
#: waiting for a CPU on a shared machine outweighed the journal's whole cost and showed
#: the journaled apply faster than the one without (benchmarks/README.md, "setwise
#: bench"); the fastest of three, round-robin, keeps the order the CPU time shows.
REPEATS = 3


class _Base(DeclarativeBase):
    pass


class BenchRow(_Base):
    """A row of the bench table: a key, an exact price, and a little else to carry."""

    __tablename__ = TABLE

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(100))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    stock: Mapped[int]


@dataclass(frozen=True)
class Result:
    """One case: how long it took to change ``rows`` rows, or why it was skipped."""

    name: str
    rows: int
    seconds: float | None
    note: str = ""
    ratio: float | None = None
    """Speed relative to the slowest ORM case measured (the loop, or the bulk UPDATE)."""

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


Case = Callable[[Engine, list[dict[str, Any]]], None]


def run(
    engine: Engine,
    rows: int,
    *,
    repeats: int = REPEATS,
    on_case: Callable[[str], None] | None = None,
) -> list[Result]:
    """Time every case on a fresh bench table of ``rows`` rows, its fastest of
    ``repeats`` runs after an untimed one; drop the table afterwards."""
    if repeats < 1:
        raise InvalidArgumentError(
            f"repeats must be at least 1, not {repeats}", argument="repeats", value=repeats
        )
    skipped = {name for name, case in CASES if case is _orm_loop and rows > LOOP_MAX_ROWS}
    timed = [(name, case) for name, case in CASES if name not in skipped]
    fastest: dict[str, float] = {}
    steps = itertools.count(1)  # added to every price: each call changes every row
    _create(engine, rows)
    try:
        setwise.init(engine, TABLE, journal_prefix=JOURNAL_PREFIX)
        for round_number in range(repeats + 1):  # round 0 warms up, untimed
            turn = round_number % len(timed)
            for name, case in timed[turn:] + timed[:turn]:
                if on_case is not None and round_number == 0:
                    on_case(name)
                seconds = _time_once(engine, rows, name, case, next(steps))
                if round_number:
                    fastest[name] = min(seconds, fastest.get(name, seconds))
    finally:
        _drop(engine)
    note = f"skipped above {LOOP_MAX_ROWS:,} rows (too slow to wait for)"
    results = [
        Result(name, rows, None, note) if name in skipped else Result(name, rows, fastest[name])
        for name, _ in CASES
    ]
    return _with_ratios(results)


def _time_once(engine: Engine, rows: int, name: str, case: Case, step: int) -> float:
    """Seconds ``case`` takes to add ``step`` to every row's first price (a value no row
    held before), after a garbage collection; its result is checked."""
    changes = [{"id": i, "price": _price(i) + step} for i in range(1, rows + 1)]
    gc.collect()
    started = time.perf_counter()
    case(engine, changes)
    seconds = time.perf_counter() - started
    _check(engine, changes, name)
    return seconds


def plotter() -> ModuleType:
    """matplotlib's pyplot, drawing to files only; ``MissingExtraError`` names the
    ``chart`` extra when matplotlib is not installed."""
    feature = "the bench chart (--chart)"
    matplotlib = require("matplotlib", extra="chart", feature=feature)
    matplotlib.use("Agg")  # files only: no display needed
    return require("matplotlib.pyplot", extra="chart", feature=feature)


def chart(results: Sequence[Result], rows: int, database: str, path: Path) -> None:
    """A horizontal bar chart of rows/s per case, written as a PNG to ``path``."""
    pyplot = plotter()
    measured = [r for r in results if r.seconds is not None]
    figure, axes = pyplot.subplots(figsize=(8, 0.6 * len(measured) + 1.5))
    names = [r.name for r in measured][::-1]
    speeds = [r.rows_per_second for r in measured][::-1]
    bars = axes.barh(names, speeds, color="#4c72b0")
    axes.bar_label(bars, labels=[f"{s:,.0f}" for s in speeds], padding=3)
    axes.set_xlabel("rows changed per second (higher is better)")
    axes.set_title(f"{rows:,} rows changed by key on {database}")
    axes.set_xlim(0, max(speeds, default=1) * 1.2)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


# -- the cases ----------------------------------------------------------------------------


def _orm_loop(engine: Engine, changes: list[dict[str, Any]]) -> None:
    prices = {change["id"]: change["price"] for change in changes}
    with Session(engine) as session:
        for row in session.scalars(select(BenchRow)):
            row.price = prices[row.id]
        session.commit()


def _orm_bulk(engine: Engine, changes: list[dict[str, Any]]) -> None:
    with Session(engine) as session:
        session.execute(update(BenchRow), changes)
        session.commit()


def _core_executemany(engine: Engine, changes: list[dict[str, Any]]) -> None:
    table = _Base.metadata.tables[TABLE]
    statement = (
        update(table).where(table.c.id == bindparam("key")).values(price=bindparam("new_price"))
    )
    params = [{"key": change["id"], "new_price": change["price"]} for change in changes]
    with engine.begin() as connection:
        connection.execute(statement, params)


def _setwise(journal: bool) -> Case:
    def apply(engine: Engine, changes: list[dict[str, Any]]) -> None:
        setwise.apply(engine, TABLE, changes, journal=journal, journal_prefix=JOURNAL_PREFIX)

    return apply


CASES: list[tuple[str, Case]] = [
    ("ORM loop (load, set, flush)", _orm_loop),
    ("ORM bulk UPDATE by primary key", _orm_bulk),
    ("Core executemany", _core_executemany),
    ("setwise.apply, journaled", _setwise(journal=True)),
    ("setwise.apply, no journal", _setwise(journal=False)),
]


# -- the table ------------------------------------------------------------------------------


def _price(i: int) -> Decimal:
    return Decimal(500 + i % 4_500) / 100


def _create(engine: Engine, rows: int) -> None:
    _drop(engine)
    _Base.metadata.create_all(engine)
    with engine.begin() as connection:
        for start in range(1, rows + 1, FILL_BATCH):
            batch = range(start, min(rows, start + FILL_BATCH - 1) + 1)
            connection.execute(
                insert(BenchRow),
                [
                    {"id": i, "title": f"Row {i}", "price": _price(i), "stock": i % 50}
                    for i in batch
                ],
            )


def _drop(engine: Engine) -> None:
    """Drop the bench table and every table setwise kept for it under the bench prefix."""
    with engine.begin() as connection:
        names = [
            n
            for n in inspect(connection).get_table_names()
            if n == TABLE or n.startswith(JOURNAL_PREFIX)
        ]
        metadata = MetaData()
        metadata.reflect(connection, only=names)
        metadata.drop_all(connection)


def _check(engine: Engine, changes: list[dict[str, Any]], name: str) -> None:
    """Refuse figures from a case that did not write what it was given."""
    with engine.connect() as connection:
        found = dict(connection.execute(select(BenchRow.id, BenchRow.price)).tuples().all())
    wrong = sum(1 for change in changes if found.get(change["id"]) != change["price"])
    if wrong:
        raise WriteCheckError(
            f"bench case {name!r} left {wrong:,} rows unchanged",
            table=TABLE,
            expected=len(changes),
            found=len(changes) - wrong,
        )


def baseline(results: Sequence[Result]) -> Result | None:
    """The case ratios compare with: the slowest ORM case that ran (the loop, or the bulk
    UPDATE when the loop was skipped)."""
    return next((r for r in results if r.seconds and r.name.startswith("ORM")), None)


def _with_ratios(results: list[Result]) -> list[Result]:
    base = baseline(results)
    if base is None or not base.seconds:
        return results
    return [
        Result(r.name, r.rows, r.seconds, r.note, base.seconds / r.seconds) if r.seconds else r
        for r in results
    ]
