"""The commands that change a table: ``plan`` shows what a change would do, ``apply``
makes it."""

from __future__ import annotations

import sys

import typer

from setwise.api.plan import DEFAULT_TIMEOUT_SECONDS
from setwise.cli.exits import guard
from setwise.cli.job import confirm, connect, job_for
from setwise.cli.options import (
    Actor,
    AllRows,
    AsJson,
    ChunkRows,
    ChunkSeconds,
    CsvNull,
    DateFormat,
    Db,
    Debug,
    Delimiter,
    Encoding,
    Format,
    From,
    Keys,
    NoJournal,
    PlanTimeout,
    Resume,
    Sets,
    TableName,
    Throttle,
    UsageError,
    Where,
    Yes,
    reading_options,
    run_options,
    timeout_of,
)
from setwise.cli.render import progress_bar, show_plan, show_report


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
    file_format: Format = None,
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    date_format: DateFormat = None,
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
      setwise plan books --from fixes.txt --format csv --delimiter ';'
    """
    with guard(ctx, debug, db, as_json) as database:
        timeout = timeout_of(plan_timeout)  # a usage error before the database is opened
        reading = reading_options(csv_null, file_format, delimiter, encoding, date_format)
        with connect(database) as engine:
            job = job_for(engine, table, sets, where, all_rows, source, keys, reading)
            options = run_options(chunk_rows, chunk_seconds, 0.0, no_journal, None, None)
            show_plan(job.plan(engine, options, timeout), database, as_json)


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
    file_format: Format = None,
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    date_format: DateFormat = None,
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
      setwise apply books --from - --format jsonl --yes < fixes.jsonl
    """
    with guard(ctx, debug, db, as_json) as database:
        options = run_options(chunk_rows, chunk_seconds, throttle, no_journal, resume, actor)
        timeout = timeout_of(plan_timeout)
        reading = reading_options(csv_null, file_format, delimiter, encoding, date_format)
        if not yes and source == "-":
            raise UsageError("--from - reads the changes from standard input: pass --yes")
        if not yes and not sys.stdin.isatty():
            raise UsageError("no terminal to confirm on: pass --yes to apply without asking")
        with connect(database) as engine:
            job = job_for(engine, table, sets, where, all_rows, source, keys, reading)
            if not yes:
                show_plan(job.plan(engine, options, timeout), database, as_json=False)
                confirm("Apply this change?")
            with progress_bar(enabled=not as_json) as progress:
                options["progress"] = progress
                report = job.run(engine, options)
            show_report(report, database, as_json)
