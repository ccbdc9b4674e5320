"""Chunked and journaled runs against one transaction, on a large table.

    python benchmarks/bench_runs.py [--rows 1000000] [--backends sqlite,postgresql]

Two writes, each four ways (one transaction, "one tx", or ``chunk_rows="auto"``, with
or without the journal), each on a freshly reset table, round-robin:

- update: ``setwise.update(engine, update(Book).where(Book.genre == 'fiction')
          .values(price=Book.price * 1.10))``: a quarter of the rows;
- apply:  ``setwise.apply`` of the bench_apply changeset: half the rows, a tenth of
          them no-ops.

Reported: total seconds, the longest single chunk transaction
(``Report.slowest_chunk_s``, target under 2x ``--chunk-seconds``), chunks, and the
ratios the targets name: chunked / one transaction (target within 1.5x) and journal
on / off (target within 1.5x).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, update

import setwise
from bench_apply import changes
from books import Book, reset, seed
from common import (
    Case,
    CpuClock,
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

NAME = "runs"
CHUNK_SECONDS = 0.5
BACKENDS = "sqlite,postgresql"
VARIANTS = {
    "one tx + journal": {"journal": True},
    "one tx": {"journal": False},
    "auto + journal": {"journal": True, "chunk_rows": "auto"},
    "auto": {"journal": False, "chunk_rows": "auto"},
}


class Recorder:
    """Runs one write with some options and keeps the Reports of the timed runs."""

    def __init__(
        self, engine: Engine, kind: str, dicts: list[dict[str, Any]], options: dict[str, Any]
    ) -> None:
        self.engine, self.kind, self.dicts, self.options = engine, kind, dicts, options
        self.reports: list[setwise.Report] = []

    def __call__(self) -> None:
        if self.kind == "update":
            statement = (
                update(Book)
                .where(Book.genre == "fiction")
                .values(price=Book.price * Decimal("1.10"))
            )
            report = setwise.update(self.engine, statement, **self.options)
        else:
            report = setwise.apply(self.engine, Book, self.dicts, **self.options)
        self.reports.append(report)


def measure(
    engine: Engine, rows: int, repeats: int, chunk_seconds: float
) -> dict[tuple[str, str], tuple[Timing, list[setwise.Report]]]:
    clock = CpuClock(engine)
    seed(engine, rows)
    dicts = changes(rows)
    recorders: dict[tuple[str, str], Recorder] = {}
    cases: dict[str, Case] = {}
    for kind in ("update", "apply"):
        for label, variant in VARIANTS.items():
            chunking = {"chunk_seconds": chunk_seconds} if "chunk_rows" in variant else {}
            recorder = Recorder(engine, kind, dicts if kind == "apply" else [], variant | chunking)
            recorders[kind, label] = recorder
            cases[f"{kind}: {label}"] = Case(recorder, lambda: reset(engine))
    reset(engine)  # an untimed first run creates the journal tables
    recorders["update", "one tx + journal"]()
    recorders["update", "one tx + journal"].reports.clear()
    timings = time_rounds(cases, repeats, clock)
    return {
        key: (timings[f"{key[0]}: {key[1]}"], recorder.reports)
        for key, recorder in recorders.items()
    }


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], rows=1_000_000, repeats=3)
    parser.set_defaults(backends=BACKENDS)
    parser.add_argument(
        "--chunk-seconds",
        type=float,
        default=CHUNK_SECONDS,
        help=f"the auto chunks' time target (default {CHUNK_SECONDS})",
    )
    options = parser.parse_args()
    target = options.chunk_seconds

    servers: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    lines: list[list[str]] = []
    for backend in chosen_backends(options.backends):
        version = server_version(backend)
        if version is None:
            continue
        servers[backend] = version
        with fresh_database(backend) as engine:
            measured = measure(engine, options.rows, options.repeats, target)
        first = True
        for (kind, label), (timing, reports) in measured.items():
            single = measured[kind, label.replace("auto", "one tx")][0].median
            journaled = label.endswith("journal")
            journal_off = measured[kind, label.removesuffix(" + journal")][0].median
            chunked = label.startswith("auto")
            slowest = max(r.slowest_chunk_s for r in reports)
            chunks = max(r.chunks for r in reports)
            changed = reports[0].changed
            lines.append(
                [
                    backend if first else "",
                    kind,
                    label,
                    seconds(timing.median),
                    f"{timing.spread:.0%}",
                    f"{changed:,}",
                    str(chunks),
                    seconds(slowest) if chunked else "-",
                    f"{slowest / target:.2f}x" if chunked else "-",
                    f"{timing.median / single:.2f}x" if chunked else "-",
                    f"{timing.median / journal_off:.2f}x" if journaled else "-",
                ]
            )
            first = False
            results.append(
                {
                    "backend": backend,
                    "write": kind,
                    "case": label,
                    "rows": options.rows,
                    "changed": changed,
                    "median_s": timing.median,
                    "samples_s": timing.samples,
                    "cpu_samples_s": timing.cpu_samples,
                    "chunks": chunks,
                    "slowest_chunk_s": slowest,
                    "slowest_over_target": slowest / target if chunked else None,
                    "chunked_over_single": timing.median / single if chunked else None,
                    "journal_over_no_journal": timing.median / journal_off,
                }
            )

    columns = [
        "backend",
        "write",
        "case",
        "seconds",
        "spread",
        "changed",
        "chunks",
        "slowest chunk s",
        "slowest/target",
        "chunked/one",
        "journal/none",
    ]
    caption = (
        f"{options.rows:,} rows. update: price * 1.10 of the fiction books (a quarter);"
        " apply: half the rows, a tenth of them no-ops. chunk_seconds ="
        f" {target}. Median of {options.repeats} runs, each on a freshly reset table;"
        " slowest chunk and chunks: the worst of the runs. Targets: slowest/target < 2,"
        " chunked/one <= 1.5, journal/none <= 1.5."
    )
    table = print_table("Chunked and journaled runs", columns, lines, caption)
    publish(
        options,
        NAME,
        parameters={
            "rows": options.rows,
            "repeats": options.repeats,
            "chunk_seconds": target,
        },
        servers=servers,
        results=results,
        table=table,
    )


if __name__ == "__main__":
    main()
