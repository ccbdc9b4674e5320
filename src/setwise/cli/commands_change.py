"""The commands that change a table: ``plan`` shows what a change would do, ``apply``
makes it."""

from __future__ import annotations

import sys

import typer

from setwise.api.plan import DEFAULT_SAMPLE, DEFAULT_TIMEOUT_SECONDS
from setwise.cli.exits import guard
from setwise.cli.job import Job, confirm, connect, delete_job, job_for
from setwise.cli.options import (
    Actor,
    ActorColumn,
    AllRows,
    AsJson,
    CheckInterval,
    ChunkRows,
    ChunkSeconds,
    CsvNull,
    DateFormat,
    Db,
    Debug,
    DeleteRows,
    Delimiter,
    DryRun,
    Encoding,
    ExpectRows,
    Format,
    From,
    Keys,
    MaxActiveSessions,
    MaxFlowControl,
    MaxLag,
    MaxRows,
    MaxWait,
    MissingKeys,
    NoJournal,
    PlanTimeout,
    Replicas,
    Resume,
    Sample,
    Sets,
    ShowSql,
    StampColumn,
    TableName,
    Throttle,
    ThrottleFile,
    ThrottleQuery,
    UsageError,
    Verify,
    WaitForAutovacuum,
    Where,
    Yes,
    guard_options,
    health_options,
    missing_options,
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
    missing: MissingKeys = "report",
    csv_null: CsvNull = "",
    file_format: Format = None,
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    date_format: DateFormat = None,
    chunk_rows: ChunkRows = None,
    chunk_seconds: ChunkSeconds = 0.5,
    no_journal: NoJournal = False,
    max_rows: MaxRows = None,
    expect_rows: ExpectRows = None,
    actor: Actor = None,
    stamp_column: StampColumn = None,
    actor_column: ActorColumn = None,
    sample: Sample = DEFAULT_SAMPLE,
    sql: ShowSql = False,
    plan_timeout: PlanTimeout = DEFAULT_TIMEOUT_SECONDS,
    as_json: AsJson = False,
    delete_rows: DeleteRows = False,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """Show what a change would do; writes nothing.

    Counts (matched, would change, unchanged, missing; with --missing insert, would
    insert), the first rows that would change (old -> new), the keys not found and
    warnings; with --sql, the SQL of a chunk and the database's EXPLAIN. For --set with
    --where or --all-rows, --from FILE, or --delete with --where or --all-rows (the rows
    `setwise delete` would delete).

    Examples:

      setwise plan books --set "price = price * 1.10" --where "genre = 'poetry'"
      setwise plan books --from fixes.csv --where "genre = 'poetry'" --sample 3
      setwise plan books --from fixes.csv --key isbn --chunk-rows auto --sql
      setwise plan books --from new_and_fixed.csv --missing insert
      setwise plan books --from fixes.txt --format csv --delimiter ';'
      setwise plan books --delete --where "stock = 0" --chunk-rows auto
    """
    with guard(ctx, debug, db, as_json) as database:
        timeout = timeout_of(plan_timeout)  # a usage error before the database is opened
        options = run_options(chunk_rows, chunk_seconds, 0.0, no_journal, None, actor)
        options |= guard_options(max_rows, expect_rows, stamp_column, actor_column)
        options |= missing_options(missing, source)
        reading = reading_options(csv_null, file_format, delimiter, encoding, date_format)
        if delete_rows and (sets or source is not None or keys):
            raise UsageError("--delete goes with --where or --all-rows, not --set, --from or --key")
        with connect(database) as engine:
            job: Job
            if delete_rows:
                job = delete_job(engine, table, where, all_rows)
            else:
                job = job_for(engine, table, sets, where, all_rows, source, keys, reading)
            found = job.plan(engine, options, timeout, sample)
            show_plan(found, database, as_json, sql=sql)


def apply(
    ctx: typer.Context,
    table: TableName,
    *,
    sets: Sets = None,
    where: Where = None,
    all_rows: AllRows = False,
    source: From = None,
    keys: Keys = None,
    missing: MissingKeys = "report",
    csv_null: CsvNull = "",
    file_format: Format = None,
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    date_format: DateFormat = None,
    chunk_rows: ChunkRows = None,
    chunk_seconds: ChunkSeconds = 0.5,
    throttle: Throttle = 0.0,
    max_lag: MaxLag = None,
    replicas: Replicas = None,
    max_active_sessions: MaxActiveSessions = None,
    max_flow_control: MaxFlowControl = None,
    wait_for_autovacuum: WaitForAutovacuum = False,
    throttle_query: ThrottleQuery = None,
    throttle_file: ThrottleFile = None,
    max_wait: MaxWait = None,
    check_interval: CheckInterval = None,
    no_journal: NoJournal = False,
    verify: Verify = False,
    resume: Resume = None,
    max_rows: MaxRows = None,
    expect_rows: ExpectRows = None,
    actor: Actor = None,
    stamp_column: StampColumn = None,
    actor_column: ActorColumn = None,
    dry_run: DryRun = False,
    sample: Sample = DEFAULT_SAMPLE,
    sql: ShowSql = False,
    plan_timeout: PlanTimeout = DEFAULT_TIMEOUT_SECONDS,
    yes: Yes = False,
    as_json: AsJson = False,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """Make a change, with a progress bar; without --yes, show the plan and ask first.

    Journaled, so `setwise revert RUN` undoes it; a run cut into chunks that stops
    (Ctrl-C, a failed chunk) prints the command that resumes it. --max-rows and
    --expect-rows refuse a change of the wrong size before anything is written.

    Examples:

      setwise apply books --set "stock = 0" --where "id < 500" --max-rows 500
      setwise apply books --from fixes.csv --where "genre = 'poetry'" --dry-run
      setwise apply books --from fixes.csv --chunk-rows auto --throttle 0.1 --yes
      setwise apply books --from new_and_fixed.csv --missing insert --yes
      setwise apply books --from fixes.csv --chunk-rows auto --resume RUN --yes
      setwise apply books --from - --format jsonl --yes < fixes.jsonl
    """
    with guard(ctx, debug, db, as_json) as database:
        options = run_options(chunk_rows, chunk_seconds, throttle, no_journal, resume, actor)
        options |= guard_options(max_rows, expect_rows, stamp_column, actor_column)
        if verify:
            options["verify"] = True
        options |= health_options(ctx.params)
        options |= missing_options(missing, source)
        timeout = timeout_of(plan_timeout)
        reading = reading_options(csv_null, file_format, delimiter, encoding, date_format)
        if dry_run:  # the plan, exactly as `setwise plan` shows it
            with connect(database) as engine:
                job = job_for(engine, table, sets, where, all_rows, source, keys, reading)
                show_plan(job.plan(engine, options, timeout, sample), database, as_json, sql=sql)
            return
        if not yes and source == "-":
            raise UsageError("--from - reads the changes from standard input: pass --yes")
        if not yes and not sys.stdin.isatty():
            raise UsageError("no terminal to confirm on: pass --yes to apply without asking")
        with connect(database) as engine:
            job = job_for(engine, table, sets, where, all_rows, source, keys, reading)
            if not yes:
                found = job.plan(engine, options, timeout, sample)
                show_plan(found, database, as_json=False, sql=sql)
                confirm("Apply this change?")
            with progress_bar(enabled=not as_json) as progress:
                options["progress"] = progress
                report = job.run(engine, options)
            show_report(report, database, as_json)
