"""setwise.apply against each database's own bulk path, journal off and on.

    python benchmarks/bench_raw.py [--sizes 100000,1000000] [--backends sqlite,postgresql18]

The changeset, tables and runs of ``bench_apply.py`` (half the rows change, a tenth of
those are no-ops; every run a fresh process that imports setwise and connects before
its clock starts; median of ``--repeats``), reduced to the cases that decide how close
setwise comes to the database's own speed:

- the raw path, driven through the driver by hand, doing no checks and no counts:
  PostgreSQL: COPY into a temporary table + ``UPDATE … FROM``; SQLite: multi-row
  INSERTs into a temporary table + ``UPDATE … FROM``; MariaDB: multi-row INSERT
  staging + ``UPDATE … JOIN`` (and, where the server allows it, LOAD DATA LOCAL +
  ``UPDATE … JOIN`` beside setwise connected with ``local_infile``), each through PyMySQL
  and through mysqlclient;
- ``setwise.apply(journal=False)``, against that raw path (throughput ratio);
- ``setwise.apply`` journaled, one transaction, against the journal-off run.

``postgresql18`` is the PostgreSQL 18 server ``.ci/pg18.sh up`` starts (port 5439, or
``SETWISE_BENCH_POSTGRESQL18``), where setwise writes the journal with the UPDATE
itself. At the largest size of at least ``--csv-rows`` a CSV file of that many rows is
applied in a process of its own and its peak resident memory reported.
"""

from __future__ import annotations

from typing import Any

from bench_apply import LOCAL_INFILE, MYSQLCLIENT, expected_changes, measure, measure_csv
from common import (
    arguments,
    chosen_backends,
    fresh_database,
    print_table,
    publish,
    seconds,
    server_version,
)

NAME = "raw"
SIZES = (100_000, 1_000_000)
DEFAULT_BACKENDS = "sqlite,postgresql,postgresql18,mariadb"
OFF = "setwise, no journal"
ON = "setwise"

#: Per dialect: (raw path, the setwise journal-off case measured against it).
PAIRS: dict[str, list[tuple[str, str]]] = {
    "sqlite": [("raw stage + UPDATE FROM", OFF)],
    "postgresql": [("raw COPY + UPDATE FROM", OFF)],
    "mariadb": [
        ("raw INSERT stage + JOIN", OFF),
        ("raw LOAD DATA + JOIN", LOCAL_INFILE),
        (MYSQLCLIENT + "raw INSERT stage + JOIN", MYSQLCLIENT + OFF),
        (MYSQLCLIENT + "raw LOAD DATA + JOIN", MYSQLCLIENT + LOCAL_INFILE),
    ],
}
#: The lowest journal-off throughput, as a share of the raw path's, issue 26 asks for.
OFF_TARGET = {"sqlite": 0.85, "postgresql": 0.95, "mariadb": 0.85}
#: The most a journaled run may take, as a multiple of the journal-off run.
ON_TARGET = {"postgresql18": 1.25}
ON_TARGET_ELSEWHERE = 1.5
MEMORY_TARGET_MB = 200


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], rows=SIZES[-1], repeats=3)
    parser.set_defaults(backends=DEFAULT_BACKENDS)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    options = parser.parse_args()
    sizes = [int(n) for n in options.sizes.split(",") if n.strip()]

    servers: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    lines: list[list[str]] = []
    memory_lines: list[list[str]] = []
    notes: list[str] = []
    for backend in chosen_backends(options.backends):
        version = server_version(backend)
        if version is None:
            continue
        servers[backend] = version
        for rows in sizes:
            with fresh_database(backend) as engine:
                dialect = engine.dialect.name
                timings, _, found = measure(engine, rows, options.repeats, 0, 0, False)
                csv = options.csv_rows and rows >= options.csv_rows and rows == max(sizes)
                csv_result = measure_csv(engine, options.csv_rows) if csv else None
            notes += [f"{backend} {rows:,}: {note}" for note in found if "raw best" not in note]
            on_limit = ON_TARGET.get(backend, ON_TARGET_ELSEWHERE)
            journaled = timings[ON].median / timings[OFF].median
            for number, (raw_name, off_name) in enumerate(PAIRS[dialect]):
                if raw_name not in timings or off_name not in timings:
                    continue
                raw, off = timings[raw_name].median, timings[off_name].median
                versus_raw = raw / off
                first = number == 0
                lines.append(
                    [
                        backend if first else "",
                        f"{rows:,}" if first else "",
                        raw_name,
                        seconds(raw),
                        off_name,
                        seconds(off),
                        f"{versus_raw:.2f}x ({verdict(versus_raw >= OFF_TARGET[dialect])})",
                        seconds(timings[ON].median) if first else "",
                        f"{journaled:.2f}x ({verdict(journaled <= on_limit)})" if first else "",
                    ]
                )
                results.append(
                    {
                        "backend": backend,
                        "rows": rows,
                        "changed": expected_changes(rows),
                        "raw_path": raw_name,
                        "raw_s": raw,
                        "setwise_case": off_name,
                        "setwise_off_s": off,
                        "off_throughput_vs_raw": versus_raw,
                        "off_target": OFF_TARGET[dialect],
                        "setwise_on_s": timings[ON].median,
                        "on_over_off": journaled,
                        "on_target": on_limit,
                        "samples_s": {
                            name: timings[name].samples for name in (raw_name, off_name, ON)
                        },
                    }
                )
            if csv_result is not None:
                peak = csv_result["peak_mb"]
                memory_lines.append(
                    [
                        backend,
                        f"{options.csv_rows:,}",
                        seconds(csv_result["seconds"]),
                        f"{peak:,.0f} ({verdict(peak < MEMORY_TARGET_MB)})",
                    ]
                )
                results.append({"backend": backend, "case": "csv file", **csv_result})

    columns = [
        "backend",
        "rows",
        "raw path",
        "raw s",
        "setwise case",
        "setwise s",
        "throughput vs raw",
        "journaled s",
        "journaled / off",
    ]
    targets = ", ".join(f"{name} >= {share}x" for name, share in OFF_TARGET.items())
    caption = (
        f"Median of {options.repeats} runs, each a fresh process on a freshly reset table."
        f" Targets: journal off {targets} of the raw path's throughput; journaled (one"
        f" transaction) <= {ON_TARGET['postgresql18']}x journal off on postgresql18,"
        f" <= {ON_TARGET_ELSEWHERE}x elsewhere. " + " ".join(note + "." for note in notes)
    )
    table = print_table("setwise.apply vs the database's own bulk path", columns, lines, caption)
    if memory_lines:
        table += print_table(
            "setwise.apply of a CSV file, in a process of its own",
            ["backend", "rows", "seconds", "peak RSS MB"],
            memory_lines,
            f"Peak resident memory of the whole process (VmHWM); target < {MEMORY_TARGET_MB} MB.",
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
