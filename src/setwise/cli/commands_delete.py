"""The ``delete`` command: delete the rows a --where finds, journaled, in chunks if asked."""

from __future__ import annotations

import sys

import typer

from setwise.api.plan import DEFAULT_SAMPLE, DEFAULT_TIMEOUT_SECONDS
from setwise.cli.exits import guard
from setwise.cli.job import confirm, connect, delete_job
from setwise.cli.options import (
    Actor,
    AllRows,
    AsJson,
    ChunkRows,
    ChunkSeconds,
    Db,
    Debug,
    DryRun,
    ExpectRows,
    MaxRows,
    NoJournal,
    PlanTimeout,
    Resume,
    Sample,
    ShowSql,
    TableName,
    Throttle,
    UsageError,
    Where,
    Yes,
    guard_options,
    run_options,
    timeout_of,
)
from setwise.cli.render import progress_bar, show_plan, show_report


def delete(
    ctx: typer.Context,
    table: TableName,
    *,
    where: Where = None,
    all_rows: AllRows = False,
    chunk_rows: ChunkRows = None,
    chunk_seconds: ChunkSeconds = 0.5,
    throttle: Throttle = 0.0,
    no_journal: NoJournal = False,
    resume: Resume = None,
    max_rows: MaxRows = None,
    expect_rows: ExpectRows = None,
    actor: Actor = None,
    dry_run: DryRun = False,
    sample: Sample = DEFAULT_SAMPLE,
    sql: ShowSql = False,
    plan_timeout: PlanTimeout = DEFAULT_TIMEOUT_SECONDS,
    yes: Yes = False,
    as_json: AsJson = False,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """Delete the rows --where finds, with a progress bar; without --yes, ask first.

    Without --yes it shows the plan first. Journaled whole, so `setwise revert RUN`
    puts the rows back exactly; a run cut into
    chunks that stops prints the command that resumes it. --max-rows refuses a delete
    of more rows before anything is deleted; a row another table still refers to is
    refused, naming the foreign key.

    Examples:

      setwise delete books --where "stock = 0" --chunk-rows auto --yes
      setwise delete books --where "stock = 0" --max-rows 100 --dry-run
    """
    with guard(ctx, debug, db, as_json) as database:
        options = run_options(chunk_rows, chunk_seconds, throttle, no_journal, resume, actor)
        options |= guard_options(max_rows, expect_rows, None, None)
        del options["stamp_column"], options["actor_column"]  # a deleted row keeps no stamp
        timeout = timeout_of(plan_timeout)
        if dry_run:  # the plan, exactly as `setwise plan --delete` shows it
            with connect(database) as engine:
                job = delete_job(engine, table, where, all_rows)
                show_plan(job.plan(engine, options, timeout, sample), database, as_json, sql=sql)
            return
        if not yes and not sys.stdin.isatty():
            raise UsageError("no terminal to confirm on: pass --yes to delete without asking")
        with connect(database) as engine:
            job = delete_job(engine, table, where, all_rows)
            if not yes:
                found = job.plan(engine, options, timeout, sample)
                show_plan(found, database, as_json=False, sql=sql)
                confirm("Delete these rows?")
            with progress_bar(enabled=not as_json) as progress:
                options["progress"] = progress
                report = job.run(engine, options)
            show_report(report, database, as_json)
