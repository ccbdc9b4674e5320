"""The commands beside the work: ``bench`` times setwise on a database, ``demo`` walks
through it on one of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from setwise.cli.exits import guard
from setwise.cli.job import connect
from setwise.cli.options import Db, Debug, UsageError
from setwise.cli.render import err, out, show_bench


def bench(
    ctx: typer.Context,
    rows: Annotated[
        int, typer.Option("--rows", metavar="N", help="Rows in the bench table.")
    ] = 20_000,
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart", metavar="FILE", help="Write a PNG chart here (needs the chart extra)."
        ),
    ] = None,
    repeats: Annotated[
        int,
        typer.Option(
            "--repeats", metavar="N", help="Timed runs of each case; the fastest is shown."
        ),
    ] = 3,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """Compare setwise with the ORM and Core ways on this database.

    A table of rows per second (each case's fastest of --repeats runs) and, with
    --chart, a PNG chart; the bench's tables are dropped after.

    Examples:

      setwise bench
      setwise bench --rows 100000 --chart bench.png
      setwise --db postgresql+psycopg://me@localhost/test bench
    """
    from setwise.cli import bench as measure

    with guard(ctx, debug, db) as database, connect(database, exists=False) as engine:
        if rows < 1:
            raise UsageError("--rows must be at least 1")
        if repeats < 1:
            raise UsageError("--repeats must be at least 1")
        if chart is not None:
            measure.plotter()  # the chart extra is checked before minutes of timing
        results = measure.run(
            engine,
            rows,
            repeats=repeats,
            on_case=lambda name: err.print(f"timing {name} …"),
        )
        show_bench(results, rows, database, repeats)
        if chart is None:
            return
        measure.chart(results, rows, database.shown, chart)
        out.print(f"Chart: {chart}", markup=False)


def demo(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            metavar="DIR",
            help="Where to write the demo's database and corrections file (default: "
            "setwise-demo in the system's temporary directory).",
        ),
    ] = None,
) -> None:
    """Build a demo database (SQLite) and walk through setwise on it.

    200,000 books and a file of corrections, written outside the working directory;
    it ends with the commands to try by hand.

    Examples:

      setwise demo
      setwise demo --dir ./shop
    """
    from setwise.cli import demo as walkthrough

    walkthrough.main(ctx.find_root().command, directory)
