"""The ``setwise`` command: parse the options, call one library function, render.

Every decision lives in the library. This module turns options into arguments,
results into Rich tables (or JSON with ``--json``), and errors into exit codes, in
one place (``_errors``): 0 done, 1 failed, 2 usage; with ``--json`` an error is a JSON
document on stdout too. A traceback shows only with ``--debug``; a password in a
database URL never shows: the URL is read once (``dburl.DatabaseURL``), output shows it
masked, and a command printed for pasting leaves the password out and says where it
will be read from. Keys and values show as a person writes them (``setwise.shown``).

A command is a function decorated with ``@app.command()`` whose body runs inside
``with _errors(ctx, debug, db) as database:``; options shared by several commands are
the ``Annotated`` aliases below, each value named by a metavar (``clihelp``). ``--db``
is taken before the command too (``setwise --db URL runs``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import statistics
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table as RichTable
from rich.text import Text
from sqlalchemy import Engine, Update
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

import setwise
from setwise.api.plan import DEFAULT_TIMEOUT_SECONDS
from setwise.cli.dburl import DatabaseURL
from setwise.cli.help import Command, Group
from setwise.errors import (
    RunError,
    RunInterrupted,
    SchemaError,
    SetwiseError,
    SQLTextError,
)
from setwise.extras import engine_for
from setwise.shown import plain, shown

DEFAULT_DB = "sqlite:///setwise.db"

app = typer.Typer(
    name="setwise",
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: Output width when stdout is not a terminal: wide enough that no table column or SQL
#: line is cut for a script or a log (Rich would assume 80 columns).
PIPE_WIDTH = 200

out = Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)
err = Console(stderr=True, highlight=False)

DB_HELP = (
    "The database, e.g. postgresql+psycopg://user@host/name; before or after the command "
    f"(default: SETWISE_DB, else {DEFAULT_DB} in the working directory)."
)
Db = Annotated[str | None, typer.Option("--db", metavar="URL", help=DB_HELP)]
Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error.")]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print JSON for programs, errors included, not tables.")
]
TableName = Annotated[
    str, typer.Argument(metavar="TABLE", help="The table, as the database names it.")
]
RunId = Annotated[
    str, typer.Argument(metavar="RUN", help="A run id, as `setwise runs` lists them.")
]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="EXPR",
        help='An assignment, "price = price * 1.10"; repeat it for more columns.',
    ),
]
Where = Annotated[
    str | None,
    typer.Option(
        "--where",
        metavar="EXPR",
        help="""Which rows, as SQL on the table's columns: "genre = 'fiction'".""",
    ),
]
AllRows = Annotated[bool, typer.Option("--all-rows", help="Every row of the table (no --where).")]
From = Annotated[
    str | None,
    typer.Option(
        "--from",
        metavar="FILE",
        help="A file of changes, one row per key: .csv, .jsonl or .parquet; - reads CSV "
        "from standard input.",
    ),
]
Keys = Annotated[
    list[str] | None,
    typer.Option(
        "--key",
        metavar="COLUMN",
        help="The column that finds each row (default: the primary key); repeat it "
        "for a composite key.",
    ),
]
CsvNull = Annotated[
    str,
    typer.Option(
        "--csv-null", metavar="TEXT", help="The CSV cell text that means NULL (default: empty)."
    ),
]
ChunkRows = Annotated[
    str | None,
    typer.Option(
        "--chunk-rows",
        metavar="N|auto",
        help="Write in chunks of N rows, each its own short transaction; auto sizes them "
        "to --chunk-seconds.",
    ),
]
ChunkSeconds = Annotated[
    float,
    typer.Option("--chunk-seconds", metavar="SECONDS", help="The time an auto chunk aims at."),
]
Throttle = Annotated[
    float,
    typer.Option("--throttle", metavar="SECONDS", help="Seconds to pause between chunks."),
]
NoJournal = Annotated[
    bool,
    typer.Option(
        "--no-journal", help="Keep no old values: faster, but the run cannot be reverted."
    ),
]
Resume = Annotated[
    str | None,
    typer.Option("--resume", metavar="RUN", help="Go on with an interrupted or failed run."),
]
Actor = Annotated[
    str | None,
    typer.Option("--actor", metavar="NAME", help="Who runs this, for the journal (default: you)."),
]
PlanTimeout = Annotated[
    float,
    typer.Option(
        "--plan-timeout",
        metavar="SECONDS",
        help="How long each statement of the plan may count rows before it is stopped; "
        "0 for no limit.",
    ),
]
Yes = Annotated[
    bool, typer.Option("--yes", "-y", help="Go ahead without showing the plan and asking.")
]


class UsageError(Exception):
    """Options that do not make sense together; exit code 2."""


# -- commands -------------------------------------------------------------------------


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"setwise {importlib.metadata.version('setwise')}")
        raise typer.Exit()


@app.callback()
def _setwise(
    db: Db = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Fast, safe UPDATEs: see what a change would do, then do it, and undo it.

    Every command takes --db URL, before or after it; -h on a command shows its options
    and examples.
    """


@app.command(cls=Command)
def plan(
    ctx: typer.Context,
    table: TableName,
    *,
    sets: Sets = None,
    where: Where = None,
    all_rows: AllRows = False,
    source: From = None,
    keys: Keys = None,
    csv_null: CsvNull = "",
    chunk_rows: ChunkRows = None,
    chunk_seconds: ChunkSeconds = 0.5,
    no_journal: NoJournal = False,
    plan_timeout: PlanTimeout = DEFAULT_TIMEOUT_SECONDS,
    as_json: AsJson = False,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """Show what a change would do; writes nothing.

    Counts (matched, would change, unchanged, missing), the SQL of a chunk, the
    database's EXPLAIN and warnings, for --set with --where or --all-rows, or --from FILE.

    Examples:

      setwise plan books --set "price = price * 1.10" --where "genre = 'poetry'"
      setwise plan books --from fixes.csv --key isbn --chunk-rows auto --json
    """
    with _errors(ctx, debug, db, as_json) as database:
        timeout = _timeout(plan_timeout)  # a usage error before the database is opened
        with _engine(database) as engine:
            job = _job(engine, table, sets, where, all_rows, source, keys, csv_null)
            options = _run_options(chunk_rows, chunk_seconds, 0.0, no_journal, None, None)
            _show_plan(job.plan(engine, options, timeout), database, as_json)


@app.command(cls=Command)
def apply(
    ctx: typer.Context,
    table: TableName,
    *,
    sets: Sets = None,
    where: Where = None,
    all_rows: AllRows = False,
    source: From = None,
    keys: Keys = None,
    csv_null: CsvNull = "",
    chunk_rows: ChunkRows = None,
    chunk_seconds: ChunkSeconds = 0.5,
    throttle: Throttle = 0.0,
    no_journal: NoJournal = False,
    resume: Resume = None,
    actor: Actor = None,
    plan_timeout: PlanTimeout = DEFAULT_TIMEOUT_SECONDS,
    yes: Yes = False,
    as_json: AsJson = False,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """Make a change, with a progress bar; without --yes, show the plan and ask first.

    Journaled, so `setwise revert RUN` undoes it; a run cut into chunks that stops
    (Ctrl-C, a failed chunk) prints the command that resumes it.

    Examples:

      setwise apply books --set "stock = 0" --where "genre = 'poetry'"
      setwise apply books --from fixes.csv --chunk-rows auto --throttle 0.1 --yes
      setwise apply books --from fixes.csv --chunk-rows auto --resume RUN --yes
    """
    with _errors(ctx, debug, db, as_json) as database:
        options = _run_options(chunk_rows, chunk_seconds, throttle, no_journal, resume, actor)
        timeout = _timeout(plan_timeout)
        if not yes and source == "-":
            raise UsageError("--from - reads the changes from standard input: pass --yes")
        if not yes and not sys.stdin.isatty():
            raise UsageError("no terminal to confirm on: pass --yes to apply without asking")
        with _engine(database) as engine:
            job = _job(engine, table, sets, where, all_rows, source, keys, csv_null)
            if not yes:
                _show_plan(job.plan(engine, options, timeout), database, as_json=False)
                _confirm("Apply this change?")
            with _progress_bar(enabled=not as_json) as progress:
                options["progress"] = progress
                report = job.run(engine, options)
            _show_report(report, database, as_json)


@app.command(cls=Command)
def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="How many runs to list.")] = 20,
    as_json: AsJson = False,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """List past runs, newest first.

    Examples:

      setwise runs
      setwise --db postgresql+psycopg://me@db.example/shop runs --limit 5
    """
    with _errors(ctx, debug, db, as_json) as database, _engine(database) as engine:
        found = setwise.runs(engine, limit=limit)
        if as_json:
            _print_json(found)
            return
        if not found:
            out.print("No runs yet.")
            return
        listing = _table("run", "table", "kind", "status", "started", "changed", "chunks")
        for run in found:
            listing.add_row(
                run.run_id,
                run.table,
                run.kind,
                run.status,
                f"{run.started_at:%Y-%m-%d %H:%M:%S}",
                f"{run.changed:,}",
                f"{run.chunks:,}",
            )
        out.print(listing)


@app.command(cls=Command)
def show(
    ctx: typer.Context,
    run_id: RunId,
    as_json: AsJson = False,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """One run: its counts, its chunks and their timings.

    Examples:

      setwise show 20260101-120000-1a2b3c4d
      setwise show 20260101-120000-1a2b3c4d --json
    """
    with _errors(ctx, debug, db, as_json) as database, _engine(database) as engine:
        info, chunks = setwise.run_details(engine, run_id)
        if as_json:
            _print_json({"run": info, "chunks": chunks})
            return
        _show_run(info, chunks)


@app.command(cls=Command)
def revert(
    ctx: typer.Context,
    run_id: RunId,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite rows changed since the run, too.")
    ] = False,
    chunk_rows: ChunkRows = None,
    chunk_seconds: ChunkSeconds = 0.5,
    throttle: Throttle = 0.0,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="REVERT",
            help="Go on with an interrupted or failed revert of RUN (the revert's run id).",
        ),
    ] = None,
    actor: Actor = None,
    yes: Yes = False,
    as_json: AsJson = False,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """Undo a run: put back the values it overwrote.

    Refused, and the rows listed, when rows changed since the run wrote them, unless
    --force. A revert is a run of its own, which can be reverted in turn.

    Examples:

      setwise revert 20260101-120000-1a2b3c4d
      setwise revert 20260101-120000-1a2b3c4d --chunk-rows auto --yes
    """
    with _errors(ctx, debug, db, as_json) as database:
        options = _chunk_options(chunk_rows, chunk_seconds, throttle)
        if actor is not None:
            options["actor"] = actor
        if resume is not None:
            options["resume"] = resume
        with _engine(database) as engine:
            _confirm_run(engine, run_id, "revert", yes)
            with _progress_bar(enabled=not as_json) as progress:
                report = setwise.revert(engine, run_id, force=force, progress=progress, **options)
            _show_report(report, database, as_json)


@app.command(cls=Command)
def abandon(
    ctx: typer.Context,
    run_id: RunId,
    yes: Yes = False,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """End a run that will not be resumed; its committed chunks stay.

    What the run kept for a resume is dropped; `setwise revert RUN` still undoes the
    chunks it committed.

    Examples:

      setwise abandon 20260101-120000-1a2b3c4d --yes
    """
    with _errors(ctx, debug, db) as database, _engine(database) as engine:
        _confirm_run(engine, run_id, "abandon", yes)
        info = setwise.abandon(engine, run_id)
        out.print(
            f"Run {run_id} abandoned after {_count(info.chunks, 'chunk')}; "
            f"undo them with `{database.command(['revert', run_id])}`.",
            markup=False,
            soft_wrap=True,
        )
        _left_out(database)


@app.command(cls=Command)
def init(
    ctx: typer.Context,
    tables: Annotated[
        list[str] | None,
        typer.Argument(metavar="TABLE", help="Tables whose journals to create (or pack) as well."),
    ] = None,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """Create the journal tables now, rather than on the first run.

    With TABLE, create that table's journal too, or pack one that an earlier setwise
    kept one row per changed row (PostgreSQL). Staging tables no run can resume any
    more are dropped and named.

    Examples:

      setwise init
      setwise init books authors
    """
    with _errors(ctx, debug, db) as database, _engine(database) as engine:
        dropped = setwise.init(engine, *(tables or ()))
        out.print(f"Journal tables ready on {database.shown}.", markup=False, soft_wrap=True)
        if dropped:
            names = ", ".join(dropped)
            out.print(f"Dropped staging tables no run can resume: {names}.", markup=False)


@app.command(cls=Command)
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

    with _errors(ctx, debug, db) as database, _engine(database, exists=False) as engine:
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
        _show_bench(results, rows, database, repeats)
        if chart is None:
            return
        measure.chart(results, rows, database.shown, chart)
        out.print(f"Chart: {chart}", markup=False)


@app.command(cls=Command)
def demo(
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

    walkthrough.main(directory)


def main() -> None:
    """The console script's entry point."""
    if "--json" not in sys.argv[1:]:
        app()
        return
    # A command line Typer refuses (an unknown option, a value of the wrong kind) never
    # reaches a command's ``_errors``: with --json it is a JSON document all the same.
    try:
        code = app(standalone_mode=False)
    except Exception as exc:
        if not hasattr(exc, "format_message"):  # not one of the parser's usage errors
            raise
        message, code = exc.format_message(), getattr(exc, "exit_code", 2)
        _print_json({"error": {"type": "UsageError", "exit_code": code, "message": message}})
        err.print(f"error: {message}", markup=False, soft_wrap=True)
    sys.exit(code or 0)


# -- options to arguments -------------------------------------------------------------


@contextmanager
def _engine(database: DatabaseURL, *, exists: bool = True) -> Iterator[Engine]:
    """An engine on the database; with ``exists``, refused when connecting would create
    it (a SQLite file not there: a mistyped path, or no --db where one was meant)."""
    assert database.url is not None  # ``_errors`` refused a URL it could not read
    if exists and database.missing is not None:
        if database.origin == "default":
            raise UsageError(
                f"no database at {database.missing}: with no --db and no SETWISE_DB, "
                f"setwise looks for {DEFAULT_DB} in the working directory. Name the "
                "database with --db URL (before or after the command) or SETWISE_DB, or "
                "build the demo's with `setwise demo`"
            )
        raise UsageError(
            f"no database at {database.missing} (the {database.origin} URL "
            f"{database.shown}): check the path, or name another with --db URL"
        )
    engine = engine_for(database.url)
    try:
        yield engine
    finally:
        engine.dispose()


@dataclass
class _Job:
    """One change, as the arguments of ``plan`` and of ``update`` or ``apply``."""

    statement: Update | None = None
    all_rows: bool = False
    table: str = ""
    source: str = ""
    keys: list[str] = field(default_factory=list)
    csv_null: str = ""

    def plan(self, engine: Engine, options: dict[str, Any], timeout: float | None) -> setwise.Plan:
        if self.statement is not None:
            return setwise.plan(
                engine,
                self.statement,
                all_rows=self.all_rows,
                timeout_seconds=timeout,
                **options,
            )
        return setwise.plan(
            engine,
            self.table,
            self.source,
            self.keys or None,
            csv_null=self.csv_null,
            timeout_seconds=timeout,
            **options,
        )

    def run(self, engine: Engine, options: dict[str, Any]) -> setwise.Report:
        if self.statement is not None:
            return setwise.update(engine, self.statement, all_rows=self.all_rows, **options)
        return setwise.apply(
            engine, self.table, self.source, self.keys or None, csv_null=self.csv_null, **options
        )


def _job(
    engine: Engine,
    table: str,
    sets: Sequence[str] | None,
    where: str | None,
    all_rows: bool,
    source: str | None,
    keys: Sequence[str] | None,
    csv_null: str,
) -> _Job:
    if source is not None:
        if sets or where is not None or all_rows:
            raise UsageError("give --from FILE, or --set with --where/--all-rows, not both")
        if source != "-" and not Path(source).is_file():
            raise UsageError(f"--from {source}: no such file")
        return _Job(table=table, source=source, keys=list(keys or ()), csv_null=csv_null)
    if keys:
        raise UsageError("--key goes with --from FILE; --where says which rows --set changes")
    if not sets:
        raise UsageError('say what to change: --set "col = expr", or --from FILE')
    if where is not None and all_rows:
        raise UsageError("give --where or --all-rows, not both")
    if where is None and not all_rows:
        raise UsageError("say which rows: --where EXPR, or --all-rows for every row")
    from setwise.sqltext import parse_update  # sqlglot loads only for --set

    return _Job(statement=parse_update(engine, table, sets, where), all_rows=all_rows)


def _run_options(
    chunk_rows: str | None,
    chunk_seconds: float,
    throttle: float,
    no_journal: bool,
    resume: str | None,
    actor: str | None,
) -> dict[str, Any]:
    """The keyword arguments every run takes, from their options."""
    options = _chunk_options(chunk_rows, chunk_seconds, throttle)
    options["journal"] = not no_journal
    if resume is not None:
        options["resume"] = resume
    if actor is not None:
        options["actor"] = actor
    return options


def _chunk_options(chunk_rows: str | None, chunk_seconds: float, throttle: float) -> dict[str, Any]:
    """How a run is cut into transactions, from --chunk-rows, --chunk-seconds, --throttle."""
    rows: int | Literal["auto"] | None = None
    if chunk_rows is not None:
        if chunk_rows.strip().lower() == "auto":
            rows = "auto"
        elif chunk_rows.strip().isdigit() and int(chunk_rows) > 0:
            rows = int(chunk_rows)
        else:
            raise UsageError(f"--chunk-rows takes a positive number or auto, not {chunk_rows!r}")
    if chunk_seconds <= 0:
        raise UsageError(f"--chunk-seconds must be more than 0, not {chunk_seconds:g}")
    if throttle < 0:
        raise UsageError(f"--throttle must be 0 or more, not {throttle:g}")
    return {"chunk_rows": rows, "chunk_seconds": chunk_seconds, "throttle_seconds": throttle}


def _timeout(seconds: float) -> float | None:
    """``--plan-timeout`` as ``plan`` takes it: 0 is no limit."""
    if seconds < 0:
        raise UsageError(f"--plan-timeout must be 0 (no limit) or more, not {seconds:g}")
    return seconds or None


def _confirm_run(engine: Engine, run_id: str, verb: str, yes: bool) -> None:
    """Unless ``yes``, show run ``run_id`` and ask before the ``verb`` goes on."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"no terminal to confirm on: pass --yes to {verb} without asking")
    info, chunks = setwise.run_details(engine, run_id)
    _show_run(info, chunks)
    _confirm(f"{verb.capitalize()} run {run_id}?")


def _confirm(question: str) -> None:
    """Ask on the terminal; a no ends the command with exit code 1, nothing changed."""
    if not typer.confirm(question, default=False):
        err.print("Cancelled; nothing was changed.")
        raise typer.Exit(1)


# -- progress ---------------------------------------------------------------------------


class _RateColumn(ProgressColumn):
    """Rows per second over the recent chunks."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "", style="cyan")


@contextmanager
def _progress_bar(
    *, enabled: bool, label: str = "rows"
) -> Iterator[Callable[[setwise.Progress], None] | None]:
    """A ``progress=`` callback drawing a bar with rate and ETA, when stdout is a terminal."""
    if not enabled or not out.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeRemainingColumn(),
        console=out,
        transient=True,
    )
    task = bar.add_task(label, total=None)

    def advance(step: setwise.Progress) -> None:
        bar.update(
            task,
            total=step.rows_total,
            completed=step.rows_done,
            description=f"{label}, chunk {step.chunk}",
        )

    with bar:
        yield advance


# -- results to output ----------------------------------------------------------------


def _show_plan(found: setwise.Plan, database: DatabaseURL, as_json: bool) -> None:
    if as_json:
        _print_json(found)
        return
    out.print(f"Plan for {found.table!r} on {database.shown}", markup=False, soft_wrap=True)
    counts = {"matched": found.matched, "would change": found.would_change}
    counts["unchanged"] = found.unchanged
    if found.staged:
        counts |= {"missing": found.missing, "conflicts": len(found.conflicts)}
        counts["rows read"] = found.staged
    listing = _table("rows", "count")
    for name, number in counts.items():
        listing.add_row(name, f"{number:,}")
    out.print(listing)
    out.print(f"Strategy: {found.strategy}; {_chunk_count(found)}", markup=False)
    if found.missing_keys:
        keys = ", ".join(shown(k) for k in found.missing_keys[:10])
        more = f" and {found.missing - 10:,} more" if found.missing > 10 else ""
        out.print(f"Keys not in {found.table!r}: {keys}{more}", markup=False, soft_wrap=True)
    _section("SQL of the first chunk" if found.chunks > 1 else "SQL, each chunk", found.sql)
    _section("EXPLAIN", found.explain)
    _section("Warnings", [f"! {warning.message}" for warning in found.warnings], style="yellow")
    out.print(f"Would change {_count(found.would_change, 'row')} in {_chunk_count(found)}.")


def _chunk_count(found: setwise.Plan) -> str:
    return f"{'about ' if found.chunks_estimated else ''}{_count(found.chunks, 'chunk')}"


def _show_report(report: setwise.Report, database: DatabaseURL, as_json: bool) -> None:
    if as_json:
        _print_json(report)
        return
    counts = _table("matched", "changed", "unchanged", "missing", "strategy")
    counts.add_row(
        f"{report.matched:,}",
        f"{report.changed:,}",
        f"{report.unchanged:,}",
        f"{report.missing:,}",
        report.strategy,
    )
    out.print(counts)
    if report.conflicts:
        keys = ", ".join(shown(k) for k in report.conflicts[:10])
        out.print(f"Not written, version moved: {keys}", markup=False, style="yellow")
    if report.run_id is not None:
        undo = database.command(["revert", report.run_id])
        out.print(f"Run {report.run_id}: undo it with `{undo}`", markup=False, soft_wrap=True)
        _left_out(database)
    out.print(
        f"Changed {_count(report.changed, 'row')} in {_count(report.chunks, 'chunk')} "
        f"({report.elapsed_s:.2f} s)."
    )


def _show_run(info: setwise.RunInfo, chunks: Sequence[setwise.ChunkInfo]) -> None:
    out.print(f"Run {info.run_id}: {info.kind} of {info.table!r}, {info.status}", markup=False)
    facts = [
        ("started", f"{info.started_at:%Y-%m-%d %H:%M:%S}"),
        ("finished", f"{info.finished_at:%Y-%m-%d %H:%M:%S}" if info.finished_at else "-"),
        ("actor", info.actor or "-"),
        ("columns", ", ".join(info.columns)),
    ]
    if info.reverts:
        facts.append(("reverts", info.reverts))
    if info.reverted_by:
        facts.append(("reverted by", info.reverted_by))
    if info.error:
        facts.append(("error", info.error))
    for name, value in facts:
        out.print(f"  {name:<12} {value}", markup=False, soft_wrap=True)
    counts = _table("matched", "changed", "unchanged", "missing", "conflicts", "chunks", "retries")
    counts.add_row(
        *(
            f"{n:,}"
            for n in (
                info.matched,
                info.changed,
                info.unchanged,
                info.missing,
                info.conflicts,
                info.chunks,
                info.retries,
            )
        )
    )
    out.print(counts)
    if chunks:
        seconds = [c.seconds for c in chunks]
        rows = sum(c.rows for c in chunks)
        out.print(
            f"Chunks: {len(chunks):,}, {sum(seconds):.2f} s in all, median "
            f"{statistics.median(seconds):.3f} s, slowest {max(seconds):.3f} s "
            f"({rows / sum(seconds):,.0f} rows/s)"
            if sum(seconds)
            else f"Chunks: {len(chunks):,}"
        )
        out.print(f"Seconds per chunk: {sparkline(seconds)}", markup=False)


#: Block characters of rising height, for a sparkline.
BLOCKS = "▁▂▃▄▅▆▇█"
#: Widest sparkline: more chunks than this are shown as the slowest of each group, so
#: the line fits an 80-column terminal beside its label.
SPARK_WIDTH = 60


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """``values`` as block characters, lowest to highest; groups keep their maximum."""
    if not values:
        return ""
    if len(values) > width:
        size = len(values) / width
        values = [
            max(values[int(i * size) : max(int(i * size) + 1, int((i + 1) * size))])
            for i in range(width)
        ]
    top = max(values)
    if top <= 0:
        return BLOCKS[0] * len(values)
    return "".join(BLOCKS[min(len(BLOCKS) - 1, int(v / top * len(BLOCKS)))] for v in values)


def _show_bench(results: Sequence[Any], rows: int, database: DatabaseURL, repeats: int) -> None:
    from setwise.cli.bench import baseline

    base = baseline(results)
    listing = _table("case", "seconds", "rows/s", f"vs {base.name if base else 'ORM'}")
    listing.title = f"{rows:,} rows changed by key on {database.shown}"
    listing.caption = f"each case's fastest of {_count(repeats, 'run')}, after one untimed"
    for result in results:
        if result.seconds is None:
            listing.add_row(result.name, "-", "-", result.note)
            continue
        listing.add_row(
            result.name,
            f"{result.seconds:.3f}",
            f"{result.rows_per_second:,.0f}",
            f"{result.ratio:.1f}x" if result.ratio else "-",
        )
    out.print(listing)


def _table(*headers: str) -> RichTable:
    table = RichTable()
    for header in headers:
        if header in ("strategy", "run", "table", "kind", "status", "started", "case", "rows"):
            table.add_column(header, no_wrap=True)
        else:
            table.add_column(header, justify="right")
    return table


def _section(title: str, entries: Sequence[str], style: str | None = None) -> None:
    """A titled list; an entry of several lines (a SQL statement) is set off by a blank line."""
    if not entries:
        return
    out.print(f"{title}:", style="bold")
    spaced = any("\n" in entry for entry in entries)
    for number, entry in enumerate(entries):
        if spaced and number:
            out.print()
        for line in entry.splitlines():
            out.print(f"  {line.rstrip()}", markup=False, style=style, soft_wrap=True)


def _print_json(result: Any) -> None:
    """``result`` as one JSON document on stdout, values as ``shown`` writes them."""
    typer.echo(json.dumps(plain(result), indent=2))


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _left_out(database: DatabaseURL, console: Console = out) -> None:
    """Under a printed command: where the password left out of it will be read from."""
    if database.left_out:
        console.print(database.left_out, markup=False, soft_wrap=True)


#: Options a resumed run is not given again: the command adds its own.
_NOT_AGAIN = frozenset({"resume", "yes", "db", "debug"})


def _again(ctx: typer.Context, run_id: str, database: DatabaseURL) -> str:
    """This very command, resuming ``run_id``: its arguments and every option given, as
    parsed (``--db`` before the command and ``--db=URL`` alike), then ``--resume RUN
    --yes`` and the database as ``DatabaseURL.command`` gives it."""
    words, options = [ctx.info_name or ""], []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.name in _NOT_AGAIN or value is None or value == param.default:
            continue
        values = list(value) if isinstance(value, list | tuple) else [value]
        if param.param_type_name == "argument":
            words += [str(v) for v in values]
        elif getattr(param, "is_flag", False):
            options.append(max(param.opts, key=len))
        else:
            for one in values:
                options += [max(param.opts, key=len), str(one)]
    return database.command([*words, *options, "--resume", run_id, "--yes"])


def _database(ctx: typer.Context, db: str | None) -> DatabaseURL:
    """The database URL: --db after the command, or before it, else SETWISE_DB, else the
    default; with where it came from."""
    given = db if db is not None else ctx.find_root().params.get("db")
    if given is not None:
        return DatabaseURL.read(given, "--db")
    if os.environ.get("SETWISE_DB"):
        return DatabaseURL.read(os.environ["SETWISE_DB"], "SETWISE_DB")
    return DatabaseURL.read(DEFAULT_DB, "default")


#: The option that stands for each argument a library message asks for, with its metavar.
OPTIONS = {
    "all_rows": ("--all-rows", ""),
    "chunk_rows": ("--chunk-rows", "N"),
    "force": ("--force", ""),
    "key": ("--key", "COLUMN"),
    "max_rows": ("--max-rows", "N"),
    "resume": ("--resume", "RUN"),
    "timeout_seconds": ("--plan-timeout", "SECONDS"),
}


def as_option(name: str, *value: Any) -> str:
    """An argument as the command line passes it: ``--chunk-rows 300``, ``--force``,
    ``--key COLUMN`` (the spelling ``SetwiseError.explain`` takes)."""
    option, metavar = OPTIONS.get(name, (f"--{name.replace('_', '-')}", name.upper()))
    if not metavar or (value and value[0] is True):
        return option
    return f"{option} {value[0] if value else metavar}"


# -- errors to exit codes: the one place ----------------------------------------------


@contextmanager
def _errors(
    ctx: typer.Context, debug: bool, db: str | None, as_json: bool = False
) -> Iterator[DatabaseURL]:
    """Read the database URL (``db``, see ``_database``), and turn any error into one
    message on stderr (and with ``as_json`` one JSON document on stdout) and an exit code
    (2 usage, 1 failed, 130 interrupted); with ``debug``, the traceback first. No
    password of the URL reaches the output."""
    database = _database(ctx, db)
    try:
        if database.problem is not None:
            raise UsageError(
                f"cannot use the database URL from {database.origin}: {database.problem}"
            )
        yield database
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt as exc:
        if debug:
            _traceback(exc, database)
        message = "Interrupted; the transaction in progress was rolled back."
        commands: dict[str, str] = {}
        if isinstance(exc, RunInterrupted):
            if exc.unmarked is not None:
                message += f" The journal could not record it: {exc.unmarked}."
            commands = _commands(ctx, exc.run_id, database)
            message += (
                " The chunks before it are committed. Resume with:\n"
                f"  {commands['resume']}\nor undo them with:\n  {commands['revert']}"
            )
        _fail(130, message, {"type": "Interrupted"}, commands, database, as_json, prefix="")
    except Exception as exc:
        if debug:
            _traceback(exc, database)
        code, message = _explain(ctx, exc, database)
        commands = {}
        if isinstance(exc, RunError) and exc.run_id is not None:
            commands = _commands(ctx, exc.run_id, database)
        _fail(code, message, _details(exc), commands, database, as_json)


def _fail(
    code: int,
    message: str,
    details: dict[str, Any],
    commands: dict[str, str],
    database: DatabaseURL,
    as_json: bool,
    prefix: str = "error: ",
) -> None:
    """Say ``message`` (with ``as_json``, print the error as JSON too: its ``details``,
    with the passwords hidden, and the ``commands`` that resume or revert its run) and
    exit with ``code``. ``message`` and ``commands`` come without passwords already."""
    if as_json:
        found = {"type": details["type"], "exit_code": code, "message": message}
        found |= _hidden(plain(details), database) | commands
        if commands and database.left_out:
            found["password"] = database.left_out
        _print_json({"error": found})
    err.print(f"{prefix}{message}", markup=False, soft_wrap=True)
    if commands or _COMMAND.search(message):  # a command to paste is in the message
        _left_out(database, err)
    raise typer.Exit(code) from None


def _details(exc: Exception) -> dict[str, Any]:
    """An error's name and the data it carries (a setwise error's attributes: problems,
    position, key, ...), but not the exception behind it, which ``message`` sums up."""
    details: dict[str, Any] = {"type": type(exc).__name__}
    if isinstance(exc, SetwiseError):
        details |= {
            name: value
            for name, value in vars(exc).items()
            if not name.startswith("_") and not isinstance(value, BaseException)
        }
    return details


def _commands(ctx: typer.Context, run_id: str, database: DatabaseURL) -> dict[str, str]:
    """The run and the commands that resume or revert it, as printed for pasting."""
    return {
        "run_id": run_id,
        "resume": _again(ctx, run_id, database),
        "revert": database.command(["revert", run_id]),
    }


def _hidden(value: Any, database: DatabaseURL) -> Any:
    """``value`` (as ``plain`` gives it) with the URL's passwords hidden in its text."""
    if isinstance(value, str):
        return database.hide(value)
    if isinstance(value, list):
        return [_hidden(v, database) for v in value]
    if isinstance(value, dict):
        return {k: _hidden(v, database) for k, v in value.items()}
    return value


#: A command a library message names, in backquotes, and the Python call beside it.
_COMMAND = re.compile(r"`(setwise [^`]+)`")
_PYTHON_CALL = re.compile(r" \(setwise\.\w+\([^()]*\)\)")


def _on_the_command_line(message: str, database: DatabaseURL) -> str:
    """A library message as the command line says it: a command it names runs on this
    database (``DatabaseURL.command``), and the Python call beside it is left out."""
    message = _PYTHON_CALL.sub("", message)
    return _COMMAND.sub(lambda m: f"`{database.command(shlex.split(m[1])[1:])}`", message)


def _traceback(exc: BaseException, database: DatabaseURL) -> None:
    """The traceback ``--debug`` asks for, without the URL's passwords."""
    text = "".join(traceback.format_exception(exc))
    err.print(database.hide(text).rstrip(), markup=False, soft_wrap=True)


def _explain(ctx: typer.Context, exc: Exception, database: DatabaseURL) -> tuple[int, str]:
    """The exit code and the message for ``exc``, naming options as the command line
    spells them. Text from the exception (a driver's message may quote the URL) has the
    URL's passwords hidden; the URL and the commands setwise adds are its own
    renderings, already without them."""
    said = database.hide(exc.explain(as_option) if isinstance(exc, SetwiseError) else str(exc))
    if isinstance(exc, SetwiseError):
        said = _on_the_command_line(said, database)
    if isinstance(exc, UsageError | SQLTextError | SchemaError):
        return 2, said
    if isinstance(exc, RunError) and exc.run_id is not None:
        said = f"chunk {exc.chunk} failed and was rolled back: {database.hide(exc.reason)}"
        if exc.chunk > 1:
            said += f"; chunks 1 to {exc.chunk - 1} of run {exc.run_id} are committed"
        return 1, (
            f"{said}.\nResume with:\n  {_again(ctx, exc.run_id, database)}\n"
            f"or undo the committed chunks with:\n  {database.command(['revert', exc.run_id])}"
        )
    if isinstance(exc, SetwiseError):
        return 1, said
    if isinstance(exc, ArgumentError):
        return 2, f"cannot use the database URL {database.shown}: {said}"
    if isinstance(exc, DBAPIError):
        if exc.orig is not None:
            said = database.hide(str(exc.orig).strip())
        return 1, f"the database ({database.shown}) said: {said}"
    if isinstance(exc, SQLAlchemyError):
        return 1, said
    return 1, f"unexpected {type(exc).__name__}: {said} (run again with --debug for details)"
