"""What ``import setwise`` costs a program, against ``import sqlalchemy``.

    python benchmarks/bench_import.py [--repeats 10]

Each case imports in a fresh Python process (so nothing is cached in ``sys.modules``)
and times the import statement alone, in that process: the interpreter's own start is
the same for every case and is left out. Cases run round-robin after one untimed round
(which writes the .pyc files); the table shows the median of ``--repeats`` runs, its
ratio to ``import sqlalchemy``, and the CPU time of the import (steadier than the wall
clock on a busy machine).

- ``import setwise`` is what the issue bounds: at most 1.2x ``import sqlalchemy``.
  It loads the errors; every other public name loads its module on first use.
- ``from setwise import *`` loads every public name: the cost a program pays on its
  first ``setwise.apply`` (which brings ``sqlalchemy.orm`` along).
- ``import setwise.cli.app`` is the command line's start (Typer and Rich).

"optional loaded" lists the packages the issue keeps out of ``import setwise`` (the CLI's
Typer and Rich, sqlglot, pyarrow, matplotlib, the drivers) that the case loaded.
``--rows`` and ``--backends`` are accepted (``run.py`` passes them) and ignored.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from common import Case, Sample, Timing, arguments, print_table, publish, time_rounds

NAME = "import"
TARGET = 1.2  # the bound: import setwise at most 1.2x import sqlalchemy
REFERENCE = "import sqlalchemy"
OPTIONAL = ("rich", "typer", "sqlglot", "pyarrow", "matplotlib", "psycopg", "pymysql")

CASES = {
    REFERENCE: "import sqlalchemy",
    "import sqlalchemy.orm": "import sqlalchemy.orm",
    "import setwise": "import setwise",
    "from setwise import *": "from setwise import *",
    "import setwise.cli.app": "import setwise.cli.app",
}

# Runs in the child: the clocks are read just around the statement under test.
CHILD = """\
import time
cpu_started = time.process_time()
started = time.perf_counter()
{statement}
elapsed = time.perf_counter() - started
cpu = time.process_time() - cpu_started
import json, sys
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({optional!r}))
print(json.dumps({{"seconds": elapsed, "cpu": cpu, "modules": len(sys.modules),
                  "optional": loaded}}))
"""


@dataclass
class Child:
    """What the last run of a case reported besides its times."""

    modules: int = 0
    optional: tuple[str, ...] = ()


def importer(statement: str, child: Child) -> Case:
    code = CHILD.format(statement=statement, optional=OPTIONAL)

    def run() -> Sample:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        report = json.loads(done.stdout.splitlines()[-1])
        child.modules = report["modules"]
        child.optional = tuple(report["optional"])
        return Sample(report["seconds"], report["cpu"])

    return Case(run)


def main() -> None:
    parser = arguments(__doc__ or "", rows=0, repeats=10)
    options = parser.parse_args()
    children = {name: Child() for name in CASES}
    cases = {name: importer(CASES[name], children[name]) for name in CASES}
    time_rounds(cases, 1)  # untimed: compiles and caches every .pyc first
    timings = time_rounds(cases, options.repeats)
    reference = timings[REFERENCE]
    rows = []
    results = []
    for name, timing in timings.items():
        rows.append(_row(name, timing, reference, children[name]))
        results.append(_result(name, timing, reference, children[name]))
    bounded = timings["import setwise"].median / reference.median
    caption = (
        f"Fresh process per run; median of {options.repeats} runs, round-robin; "
        f"Python {sys.version.split()[0]}. import setwise / import sqlalchemy = "
        f"{bounded:.2f}x (target <= {TARGET}x)."
    )
    table = print_table(
        "import time",
        ["case", "optional loaded", "median ms", "vs sqlalchemy", "CPU ms", "CPU vs sa", "modules"],
        rows,
        caption,
    )
    publish(
        options,
        NAME,
        parameters={"repeats": options.repeats, "target_ratio": TARGET},
        servers={},
        results=results,
        table=table,
    )
    if bounded > TARGET:
        raise SystemExit(f"import setwise is {bounded:.2f}x import sqlalchemy (> {TARGET}x)")


def _row(name: str, timing: Timing, reference: Timing, child: Child) -> list[str]:
    cpu, reference_cpu = timing.cpu or 0.0, reference.cpu or 1.0
    return [
        name,
        ", ".join(child.optional) or "-",
        f"{timing.median * 1000:.1f}",
        f"{timing.median / reference.median:.2f}x",
        f"{cpu * 1000:.1f}",
        f"{cpu / reference_cpu:.2f}x",
        str(child.modules),
    ]


def _result(name: str, timing: Timing, reference: Timing, child: Child) -> dict[str, object]:
    return {
        "case": name,
        "median_s": timing.median,
        "ratio": timing.median / reference.median,
        "cpu_s": timing.cpu,
        "spread": timing.spread,
        "samples_s": timing.samples,
        "cpu_samples_s": timing.cpu_samples,
        "modules": child.modules,
        "optional_loaded": list(child.optional),
    }


if __name__ == "__main__":
    main()
