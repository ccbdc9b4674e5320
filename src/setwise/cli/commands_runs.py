"""The commands on runs: list them, show one, revert or abandon one, and create the
journal tables they are kept in."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

import typer

import setwise
from setwise.cli.dburl import DatabaseURL
from setwise.cli.exits import guard
from setwise.cli.follow import follow as follow_run
from setwise.cli.follow import state, verified_fact
from setwise.cli.job import confirm_run, connect
from setwise.cli.options import (
    Actor,
    AsJson,
    CheckInterval,
    ChunkRows,
    ChunkSeconds,
    Db,
    Debug,
    MaxActiveSessions,
    MaxFlowControl,
    MaxLag,
    MaxWait,
    Replicas,
    RunId,
    Throttle,
    ThrottleFile,
    ThrottleQuery,
    UsageError,
    WaitForAutovacuum,
    Yes,
    chunk_options,
    health_options,
)
from setwise.cli.render import (
    counted,
    out,
    print_json,
    progress_bar,
    rich_table,
    say_left_out,
    show_report,
    show_run,
)
from setwise.journal.states import ENDED, OPEN, RUNNING


def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="How many runs to list.")] = 20,
    table: Annotated[
        str | None, typer.Option("--table", metavar="TABLE", help="Only the runs on TABLE.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help=(
                "Only runs with STATUS: running, interrupted, failed, done, reverted, "
                "partly-reverted, abandoned."
            ),
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Only runs started since WHEN: 2026-01-01T12:00 (UTC), or 30m, 2h, 3d.",
        ),
    ] = None,
    as_json: AsJson = False,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """List past runs, newest first.

    Examples:

      setwise runs
      setwise runs --table books --status failed --since 3d
      setwise --db postgresql+psycopg://me@db.example/shop runs --limit 5
    """
    with guard(ctx, debug, db, as_json) as database:
        started = since_of(since)  # usage errors before the database is opened
        if status is not None and status not in (*OPEN, *ENDED):
            raise UsageError(f"--status {status}: give one of {', '.join((*OPEN, *ENDED))}")
        with connect(database) as engine:
            found = setwise.runs(engine, limit=limit, table=table, status=status, since=started)
        if as_json:
            print_json(found)
            return
        if not found:
            filtered = table is not None or status is not None or since is not None
            out.print("No runs match." if filtered else "No runs yet.")
            return
        listing = rich_table("run", "table", "kind", "status", "started", "changed", "chunks")
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


#: Units of ``--since 2h``, in seconds.
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def since_of(text: str | None) -> dt.datetime | dt.timedelta | None:
    """``--since``: an ISO 8601 date or time (UTC unless it says otherwise, as `runs`
    prints times), or how long ago: a number and s, m, h, d or w."""
    if text is None:
        return None
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if found is not None:
        return dt.timedelta(seconds=float(found[1]) * _UNITS[found[2]])
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since {text}: give a date or time (2026-01-01, 2026-01-01T12:00) "
            "or how long ago (30m, 2h, 3d, 1w)"
        ) from None


def show(
    ctx: typer.Context,
    run_id: RunId,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="Redraw the run live until it ends (exit 0 done, 1 failed, 130 stopped); "
            "Ctrl-C stops following, not the run.",
        ),
    ] = False,
    as_json: AsJson = False,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """One run: its counts, its chunks and their timings.

    Examples:

      setwise show 20260101-120000-1a2b3c4d
      setwise show 20260101-120000-1a2b3c4d --json
      setwise show 20260101-120000-1a2b3c4d --follow
    """
    with guard(ctx, debug, db, as_json) as database, connect(database) as engine:
        if follow:
            if as_json:
                raise UsageError("--follow draws the run as it goes: drop --json")
            follow_run(engine, run_id)
        info, chunks = setwise.run_details(engine, run_id)
        control = setwise.run_control(engine, run_id)
        if as_json:
            print_json({"run": info, "chunks": chunks, "control": control})
            return
        more = [("state", state(info, control))] if info.status == RUNNING else []
        verified = verified_fact(control)
        show_run(info, chunks, [*more, *([verified] if verified else [])])


def pause(ctx: typer.Context, run_id: RunId, db: Db = None, debug: Debug = False) -> None:
    """Pause a running run after its current chunk.

    The run runs in another process (another terminal); it waits, holding no lock,
    until `setwise continue RUN` (or `setwise stop RUN`).

    Examples:

      setwise pause 20260101-120000-1a2b3c4d
    """
    with guard(ctx, debug, db) as database, connect(database) as engine:
        setwise.pause(engine, run_id)
        _said(
            f"Run {run_id} pauses after its current chunk; go on with", database, "continue", run_id
        )


def continue_(ctx: typer.Context, run_id: RunId, db: Db = None, debug: Debug = False) -> None:
    """Let a paused run go on.

    Examples:

      setwise continue 20260101-120000-1a2b3c4d
    """
    with guard(ctx, debug, db) as database, connect(database) as engine:
        setwise.continue_(engine, run_id)
        out.print(f"Run {run_id} goes on.", markup=False)


def stop(ctx: typer.Context, run_id: RunId, db: Db = None, debug: Debug = False) -> None:
    """Stop a running run after its current chunk; it can be resumed later.

    The run is marked interrupted, as after Ctrl-C in its own terminal, which prints
    the command that resumes it.

    Examples:

      setwise stop 20260101-120000-1a2b3c4d
    """
    with guard(ctx, debug, db) as database, connect(database) as engine:
        setwise.stop(engine, run_id)
        _said(
            f"Run {run_id} stops after its current chunk; follow it with",
            database,
            *("show", run_id, "--follow"),
        )


def tune(
    ctx: typer.Context,
    run_id: RunId,
    chunk_seconds: Annotated[
        float | None,
        typer.Option(
            "--chunk-seconds",
            metavar="SECONDS",
            help="Size the next chunks to take about SECONDS each (as --chunk-rows auto).",
        ),
    ] = None,
    throttle: Annotated[
        float | None,
        typer.Option("--throttle", metavar="SECONDS", help="Seconds to pause between chunks."),
    ] = None,
    chunk_rows: Annotated[
        int | None,
        typer.Option("--chunk-rows", metavar="N", help="Chunks of N rows from the next on."),
    ] = None,
    db: Db = None,
    debug: Debug = False,
) -> None:
    """Change a running run's chunk time, throttle or chunk size, from its next chunk.

    Examples:

      setwise tune 20260101-120000-1a2b3c4d --chunk-seconds 0.2 --throttle 1
      setwise tune 20260101-120000-1a2b3c4d --chunk-rows 500
    """
    with guard(ctx, debug, db) as database, connect(database) as engine:
        found = setwise.tune(
            engine,
            run_id,
            chunk_seconds=chunk_seconds,
            throttle_seconds=throttle,
            chunk_rows=chunk_rows,
        )
        tuned = ", ".join(f"{name} {value:g}" for name, value in found.tuned().items())
        out.print(f"Run {run_id} goes on from its next chunk with {tuned}.", markup=False)


def _said(message: str, database: DatabaseURL, *words: str) -> None:
    """``message`` and the command of ``words`` it names, for this database."""
    out.print(f"{message} `{database.command(list(words))}`.", markup=False, soft_wrap=True)
    say_left_out(database)


def revert(
    ctx: typer.Context,
    run_id: RunId,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite rows changed since the run, too.")
    ] = False,
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
    --force. Rows changed while it runs are left and listed (exit 1), the rest
    restored; --force writes them. A revert is a run of its own, which can be reverted
    in turn.

    Examples:

      setwise revert 20260101-120000-1a2b3c4d
      setwise revert 20260101-120000-1a2b3c4d --chunk-rows auto --yes
    """
    with guard(ctx, debug, db, as_json) as database:
        options = chunk_options(chunk_rows, chunk_seconds, throttle)
        options |= health_options(ctx.params)
        if actor is not None:
            options["actor"] = actor
        if resume is not None:
            options["resume"] = resume
        with connect(database) as engine:
            confirm_run(engine, run_id, "revert", yes)
            with progress_bar(enabled=not as_json) as progress:
                report = setwise.revert(engine, run_id, force=force, progress=progress, **options)
            show_report(report, database, as_json)


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
    with guard(ctx, debug, db) as database, connect(database) as engine:
        confirm_run(engine, run_id, "abandon", yes)
        info = setwise.abandon(engine, run_id)
        out.print(
            f"Run {run_id} abandoned after {counted(info.chunks, 'chunk')}; "
            f"undo them with `{database.command(['revert', run_id])}`.",
            markup=False,
            soft_wrap=True,
        )
        say_left_out(database)


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
    with guard(ctx, debug, db) as database, connect(database) as engine:
        dropped = setwise.init(engine, *(tables or ()))
        out.print(f"Journal tables ready on {database.shown}.", markup=False, soft_wrap=True)
        if dropped:
            names = ", ".join(dropped)
            out.print(f"Dropped staging tables no run can resume: {names}.", markup=False)
