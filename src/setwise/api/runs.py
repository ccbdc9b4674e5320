"""What the journal knows: create its tables, list runs, look at one run, end one."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, MetaData, Table, inspect
from sqlalchemy.schema import DropTable

from setwise.dialects import Strategy
from setwise.engine.retry import RETRIES, retried
from setwise.engine.transaction import Bind, dialect_of, engine_of, reading_connection
from setwise.errors import InvalidArgumentError
from setwise.journal.changes import Journal
from setwise.journal.runinfo import ChunkInfo, RunInfo
from setwise.journal.states import ENDED, OPEN
from setwise.staging.table import drop_kept_stage
from setwise.target import Target, TargetLike, resolve_target
from setwise.writers.merge import Merge


def init(bind: Bind, *targets: TargetLike, journal_prefix: str = "setwise_") -> list[str]:
    """Create the journal tables now (for ``targets``' journals too), so that no run
    creates them later: the way to journal runs inside transactions that began
    before the tables existed (MySQL/MariaDB cannot read such tables, error 1412).

    A target's journal that an earlier setwise kept one row per changed row, where
    setwise now packs it (PostgreSQL), is packed in one transaction, its runs kept
    revertible; every run refuses the old layout until then.

    Staging tables that no run can resume any more are dropped, and their names
    returned: a run that ended (done, reverted, partly-reverted, abandoned) or that was
    never recorded (killed while staging, ``states.ORPHAN_AFTER`` ago or more)."""
    journal = Journal(journal_prefix)
    strategy = dialect_of(bind)
    with reading_connection(bind) as connection:
        resolved = [resolve_target(t, connection) for t in targets]
    engine = engine_of(bind)
    for target in resolved:
        journal.ensure(engine, strategy, target, convert=True)
    if not resolved:
        with engine.begin() as connection:
            journal._create(connection, [journal.runs, journal.chunks, journal.control])
    if strategy.kept_stage_prefixes is None:
        return []
    with engine.begin() as connection:
        return _drop_orphan_stages(connection, strategy, journal)


def _drop_orphan_stages(connection: Connection, strategy: Strategy, journal: Journal) -> list[str]:
    """Drop the kept staging tables (of the connection's schema) no run can resume."""
    head = f"{journal.prefix}stage_"
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    dropped = []
    for name in inspect(connection).get_table_names():
        if not name.startswith(head):
            continue
        run_id = name[len(head) :].replace("_", "-")
        if journal.stage_unwanted(connection, run_id, now):
            connection.execute(DropTable(Table(name, MetaData()), if_exists=True))
            dropped.append(name)
    return dropped


def runs(
    bind: Bind,
    *,
    limit: int = 100,
    table: str | None = None,
    status: str | None = None,
    since: dt.datetime | dt.timedelta | None = None,
    journal_prefix: str = "setwise_",
) -> list[RunInfo]:
    """The most recent runs, newest first: at most ``limit``, only those of ``table``,
    with ``status`` (running, interrupted, failed, done, reverted, partly-reverted,
    abandoned) or started at ``since`` or later when given. ``since``: a time (naive:
    UTC, as the records keep it) or how long ago (a ``timedelta``)."""
    if status is not None and status not in (*OPEN, *ENDED):
        raise InvalidArgumentError(
            f"no run has status {status!r}: one of {', '.join((*OPEN, *ENDED))}",
            argument="status",
            value=status,
        )
    if isinstance(since, dt.timedelta):
        since = dt.datetime.now(dt.UTC) - since
    if since is not None and since.tzinfo is not None:
        since = since.astimezone(dt.UTC).replace(tzinfo=None)
    with reading_connection(bind) as connection, dialect_of(bind).causal_reads(connection):
        found = Journal(journal_prefix).recent
        return found(connection, limit, table=table, status=status, since=since)


def run_details(
    bind: Bind, run_id: str, *, journal_prefix: str = "setwise_"
) -> tuple[RunInfo, list[ChunkInfo]]:
    """One run and its chunks, in order (``NotFoundError`` for an unknown id)."""
    journal = Journal(journal_prefix)
    with reading_connection(bind) as connection, dialect_of(bind).causal_reads(connection):
        return journal.get(connection, run_id), journal.chunk_list(connection, run_id)


def abandon(bind: Bind, run_id: str, *, journal_prefix: str = "setwise_") -> RunInfo:
    """End run ``run_id`` for good without resuming it, and return its record.

    The chunks it committed stay, as its journal does (``revert`` undoes them); what
    it kept for a resume, a changeset's staging table, is dropped. A process still
    running it stops before its next chunk with ``RunInUseError``. Refused
    (``RunStateError``) for a run that has ended: done, reverted (or partly) or abandoned already.
    """
    journal = Journal(journal_prefix)
    strategy = dialect_of(bind)
    with engine_of(bind).connect() as connection, strategy.causal_reads(connection):
        info = retried(
            connection,
            strategy,
            lambda c: journal.abandon(c, run_id),
            retries=RETRIES,
            what=f"abandoning run {run_id}",
        )
    # After the status, so that a process still running the run no longer takes a
    # chunk from the table being dropped.
    drop_stage_of(bind, strategy, journal, info)
    return info


def drop_stage_of(
    bind: Bind, strategy: Strategy, journal: Journal, info: RunInfo, target: Target | None = None
) -> None:
    """Drop the staging table that changeset run ``info`` (of ``target``, when the
    caller has it) kept for a resume it no longer has: it was abandoned or reverted.
    DDL, on a connection of its own."""
    if info.kind != Merge.kind or strategy.kept_stage_prefixes is None:
        return
    with engine_of(bind).begin() as connection:
        if target is None:
            target = resolve_target(info.table, connection)
        drop_kept_stage(connection, target, journal.stage_name(info.run_id, strategy))
