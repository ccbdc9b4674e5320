"""What taking commands between chunks, and verifying a run, cost a chunked run.

    python benchmarks/bench_control.py [--rows 100000] [--chunk-rows 1000]

One chunked, journaled ``setwise.update`` (every row's stock + 1, in chunks of
``--chunk-rows``: many small chunks, where a per-chunk cost shows most), three ways,
each on a freshly reset table, round-robin:

- "no control read": the run with its between-chunks read of its control row taken
  out (``Controller._read`` answering None, as for a run that has no row): the run as
  it was before ``setwise pause|stop|tune``;
- "control read": the run as it is: one read by primary key after a chunk, at most
  every ``READ_EVERY_SECONDS`` (0.2 s);
- "control read + verify": the same with ``verify=True``, every written row read again
  and compared with its journal row after the run.

Reported: median seconds and each case over the first; and, measured inside the very
runs (steadier than a difference of totals on a busy machine), the seconds spent in
the control reads (per read, and as a share of the run) and in the verify.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from sqlalchemy import Engine, update

import setwise
import setwise.api.update as update_api
from books import Book, reset, seed
from common import (
    Case,
    Timing,
    arguments,
    chosen_backends,
    fresh_database,
    print_table,
    publish,
    seconds,
    server_version,
    time_rounds,
)
from setwise.engine.control import Controller

NAME = "control"
CHUNK_ROWS = 1_000
CASES = ("no control read", "control read", "control read + verify")


class Run:
    """One chunked update with the options of one case; keeps its last Report, and the
    seconds its control reads and its verify took."""

    def __init__(self, engine: Engine, chunk_rows: int, *, read: bool, verify: bool) -> None:
        self.engine, self.chunk_rows, self.read, self.verify = engine, chunk_rows, read, verify
        self.report: setwise.Report | None = None
        self.reads: list[float] = []
        """Seconds in control reads, per timed run."""
        self.verifies: list[float] = []
        self.counts: list[int] = []
        """Control reads, per timed run (at most one every ``READ_EVERY_SECONDS``)."""

    def __call__(self) -> None:
        statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
        reading, verifying = Controller._read, update_api.verified
        spent = {"read": 0.0, "reads": 0.0, "verify": 0.0}

        def timed_read(controller: Controller, *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return reading(controller, *args) if self.read else None
            finally:
                spent["read"] += time.perf_counter() - started
                spent["reads"] += 1

        def timed_verify(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return verifying(*args, **kwargs)
            finally:
                spent["verify"] += time.perf_counter() - started

        Controller._read = timed_read  # type: ignore[method-assign]
        update_api.verified = timed_verify
        try:
            self.report = setwise.update(
                self.engine, statement, chunk_rows=self.chunk_rows, verify=self.verify
            )
        finally:
            Controller._read = reading  # type: ignore[method-assign]
            update_api.verified = verifying
        self.reads.append(spent["read"])
        self.counts.append(int(spent["reads"]))
        self.verifies.append(spent["verify"])


def measure(engine: Engine, rows: int, repeats: int, chunk_rows: int) -> dict[str, Any]:
    seed(engine, rows)
    runs = {
        name: Run(engine, chunk_rows, read=name != CASES[0], verify=name.endswith("verify"))
        for name in CASES
    }
    reset(engine)  # an untimed first run creates the journal tables
    runs[CASES[1]]()
    runs[CASES[1]].reads.clear()
    runs[CASES[1]].verifies.clear()
    runs[CASES[1]].counts.clear()
    cases = {name: Case(run, lambda: reset(engine)) for name, run in runs.items()}
    timings = time_rounds(cases, repeats)
    return {name: (timings[name], runs[name]) for name in CASES}


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], rows=100_000, repeats=3)
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=CHUNK_ROWS,
        help=f"rows per chunk (default {CHUNK_ROWS})",
    )
    options = parser.parse_args()
    servers: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    lines: list[list[str]] = []
    for backend in chosen_backends(options.backends):
        version = server_version(backend)
        if version is None:
            continue
        servers[backend] = version
        with fresh_database(backend) as engine:
            measured = measure(engine, options.rows, options.repeats, options.chunk_rows)
        base: Timing = measured[CASES[0]][0]
        for number, name in enumerate(CASES):
            timing, run = measured[name]
            report = run.report
            assert report is not None
            read = statistics.median(run.reads)
            count = statistics.median(run.counts)
            verify = statistics.median(run.verifies)
            lines.append(
                [
                    backend if number == 0 else "",
                    name,
                    seconds(timing.median),
                    f"{timing.spread:.0%}",
                    f"{timing.median / base.median:.3f}x",
                    f"{report.chunks:,}",
                    f"{count:.0f}" if number else "-",
                    f"{read * 1000 / max(count, 1):.2f} ms" if number else "-",
                    f"{read / timing.median:.1%}" if number else "-",
                    seconds(verify) if run.verify else "-",
                    f"{verify / timing.median:.1%}" if run.verify else "-",
                ]
            )
            results.append(
                {
                    "backend": backend,
                    "case": name,
                    "rows": options.rows,
                    "chunk_rows": options.chunk_rows,
                    "chunks": report.chunks,
                    "median_s": timing.median,
                    "samples_s": timing.samples,
                    "over_no_read": timing.median / base.median,
                    "control_reads_s": run.reads,
                    "control_reads": run.counts,
                    "verify_s": run.verifies,
                }
            )
    columns = [
        "backend",
        "case",
        "seconds",
        "spread",
        "ratio",
        "chunks",
        "reads",
        "per read",
        "reads/run",
        "verify s",
        "verify/run",
    ]
    caption = (
        f"{options.rows:,} rows, every row's stock + 1 in chunks of {options.chunk_rows:,},"
        f" journaled. Median of {options.repeats} runs, each on a freshly reset table."
    )
    table = print_table("Control reads and verify", columns, lines, caption)
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
