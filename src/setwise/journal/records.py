"""The run records: a row per run and per finished chunk, and every rule of a run's status.

Tables, created with the journal's (``Journal.ensure``), under its prefix:

- ``{prefix}runs``: one row per run: table, kind, arguments, actor, times, status,
  counts, checkpoint (the last key of the last finished chunk);
- ``{prefix}chunks``: one row per finished chunk: rows, seconds, retries.

A run's status moves only so (a run in one transaction is recorded ``done`` at once)::

    running ── each chunk ──► running ── its last chunk ──► done
    running ── Ctrl-C, a failed chunk ──► interrupted, failed
    running, interrupted, failed ── resume ──► running
    running, interrupted, failed ── abandon ──► abandoned
    any run not reverted yet ── revert ──► reverted

Each change is one compare-and-set UPDATE: its WHERE names the state the change starts
from (the status, and the chunk count where a change goes on from a chunk), and the row
count says whether it happened. Two processes on one run (resumed twice at once, or
abandoned while it runs) never both change it: the one that loses raises
``RunStateError`` (``RunInUseError`` for a chunk), naming the state the run is in now.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Float,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    inspect,
    select,
    update,
)

from setwise.errors import NotFoundError, RunInUseError, RunStateError
from setwise.journal.schema import shared_table
from setwise.staging.values import coercer_for
from setwise.target import Target

RUNNING = "running"
DONE = "done"
INTERRUPTED = "interrupted"
FAILED = "failed"
ABANDONED = "abandoned"
REVERTED = "reverted"

#: A run that has not ended: it may be resumed or abandoned (``running`` also when the
#: process running it was killed: nothing can tell that from a live one).
OPEN = (RUNNING, INTERRUPTED, FAILED)


@dataclass(frozen=True)
class RunInfo:
    """One run as the journal records it."""

    run_id: str
    table: str
    kind: str
    status: str
    actor: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    matched: int
    changed: int
    unchanged: int
    missing: int
    conflicts: int
    chunks: int
    retries: int
    columns: tuple[str, ...]
    checkpoint: tuple[Any, ...] | None
    arguments: dict[str, Any]
    reverts: str | None
    reverted_by: str | None
    error: str | None

    @property
    def tag(self) -> str | None:
        """The ``tag`` the run was given (``setwise.update(..., tag=...)``), if any."""
        found = self.arguments.get("tag")
        return found if isinstance(found, str) else None

    def checkpoint_of(self, key: Sequence[Column[Any]]) -> tuple[Any, ...] | None:
        """The checkpoint as values of ``key``'s types (the journal keeps it as JSON)."""
        if self.checkpoint is None:
            return None
        pairs = zip(key, self.checkpoint, strict=True)
        return tuple(coercer_for(column, lenient=True)(value) for column, value in pairs)


@dataclass(frozen=True)
class ChunkInfo:
    chunk: int
    rows: int
    changed: int
    seconds: float
    retries: int


class RunRecords:
    """The run and chunk records of one database, under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    # Built on first use: a run without a journal never touches them, and building
    # them cost half a millisecond of every call (benchmarks/README.md). One Table per
    # prefix and shape for the whole process (``tables.shared_table``).

    @cached_property
    def runs(self) -> Table:
        """``{prefix}runs``: one row per run."""
        return shared_table(("runs", self.prefix), self._build_runs)

    @cached_property
    def chunks(self) -> Table:
        """``{prefix}chunks``: one row per finished chunk."""
        return shared_table(("chunks", self.prefix), self._build_chunks)

    def _build_runs(self) -> Table:
        return Table(
            f"{self.prefix}runs",
            MetaData(),
            Column("run_id", String(40), primary_key=True),
            Column("table_name", String(255), nullable=False),
            Column("kind", String(16), nullable=False),
            Column("status", String(16), nullable=False),
            Column("actor", String(255)),
            Column("started_at", DateTime, nullable=False),
            Column("finished_at", DateTime),
            Column("matched", BigInteger, nullable=False, default=0),
            Column("changed", BigInteger, nullable=False, default=0),
            Column("unchanged", BigInteger, nullable=False, default=0),
            Column("missing", BigInteger, nullable=False, default=0),
            Column("conflicts", BigInteger, nullable=False, default=0),
            Column("chunks", Integer, nullable=False, default=0),
            Column("retries", Integer, nullable=False, default=0),
            Column("columns", Text, nullable=False),
            Column("checkpoint", Text),
            Column("arguments", Text, nullable=False),
            Column("reverts", String(40)),
            Column("reverted_by", String(40)),
            Column("error", Text),
        )

    def _build_chunks(self) -> Table:
        return Table(
            f"{self.prefix}chunks",
            MetaData(),
            Column("run_id", String(40), nullable=False),
            Column("chunk", Integer, nullable=False),
            Column("rows", BigInteger, nullable=False),
            Column("changed", BigInteger, nullable=False),
            Column("seconds", Float, nullable=False),
            Column("retries", Integer, nullable=False),
            PrimaryKeyConstraint("run_id", "chunk"),
        )

    # -- a run's life -----------------------------------------------------------

    def start(
        self,
        connection: Connection,
        *,
        target: Target,
        kind: str,
        columns: Iterable[str],
        arguments: dict[str, Any],
        actor: str | None,
        reverts: str | None = None,
        run_id: str | None = None,
        status: str = RUNNING,
        counts: dict[str, int] | None = None,
    ) -> str:
        """Record a run, and return its id. A run that ends in the same transaction is
        recorded once, with its final status and ``counts``: nothing reads the table back."""
        run_id = run_id or new_run_id()
        now = _now()
        tally = dict.fromkeys(_COUNTS, 0) | (counts or {})
        connection.execute(
            self.runs.insert().values(
                run_id=run_id,
                table_name=target.name,
                kind=kind,
                status=status,
                actor=actor if actor is not None else default_actor(),
                started_at=now,
                finished_at=now if status != RUNNING else None,
                columns=json.dumps(list(columns)),
                arguments=json.dumps(arguments, default=str),
                reverts=reverts,
                **tally,
            )
        )
        return run_id

    def record_chunk(
        self,
        connection: Connection,
        run_id: str,
        chunk: int,
        rows: int,
        changed: int,
        seconds: float,
        retries: int,
    ) -> None:
        connection.execute(
            self.chunks.insert().values(
                run_id=run_id,
                chunk=chunk,
                rows=rows,
                changed=changed,
                seconds=seconds,
                retries=retries,
            )
        )

    def claim_chunk(self, connection: Connection, run_id: str, chunk: int) -> None:
        """Take chunk ``chunk`` of a running run, first thing in its transaction; the
        row stays locked until the chunk commits, so two processes on one run never both
        write a chunk. ``RunInUseError`` when the run is not running at chunk
        ``chunk - 1`` any more (another process went on with it, or ended it)."""
        runs = self.runs.c
        if not self._compare_and_set(
            connection, run_id, (runs.status == RUNNING, runs.chunks == chunk - 1), chunks=chunk
        ):
            raise RunInUseError(run_id, chunk)

    def finish_chunk(
        self,
        connection: Connection,
        run_id: str,
        *,
        chunk: int,
        checkpoint: tuple[Any, ...] | None,
        counts: Mapping[str, int],
        seconds: float,
        last: bool,
    ) -> None:
        """Record a finished chunk, add its ``counts`` (matched, changed, unchanged,
        missing, conflicts, retries) and move the run's checkpoint, in the chunk's
        transaction; the ``last`` chunk finishes the run (``done``)."""
        rows = counts["matched"] + counts["missing"]
        self.record_chunk(
            connection, run_id, chunk, rows, counts["changed"], seconds, counts["retries"]
        )
        runs = self.runs.c
        values: dict[str, Any] = {name: runs[name] + counts[name] for name in _ADDED}
        values["checkpoint"] = _encode_key(checkpoint)
        if last:
            values |= {"status": DONE, "finished_at": _now()}
        if not self._compare_and_set(
            connection, run_id, (runs.status == RUNNING, runs.chunks == chunk), **values
        ):
            raise RunInUseError(run_id, chunk)

    def take_up(self, connection: Connection, info: RunInfo) -> None:
        """Resume the run ``info`` read: running again, provided it is still as read
        (its status, its chunk count), so that no other process took it up meanwhile."""
        self.refuse(info, "resume")
        runs = self.runs.c
        self._change(
            connection,
            info,
            "resume",
            (runs.status == info.status, runs.chunks == info.chunks, runs.reverted_by.is_(None)),
            status=RUNNING,
            finished_at=None,
        )

    def stop(
        self,
        connection: Connection,
        run_id: str,
        status: str,
        *,
        chunks: int,
        error: str | None = None,
    ) -> None:
        """Record that the process running the run stopped it (``interrupted``,
        ``failed``) after its chunk ``chunks``: only while the run is still its own."""
        runs = self.runs.c
        values: dict[str, Any] = {"status": status, "finished_at": _now()}
        if error is not None:
            values["error"] = error
        if not self._compare_and_set(
            connection, run_id, (runs.status == RUNNING, runs.chunks == chunks), **values
        ):
            now = self.get(connection, run_id)
            raise _state_error(
                f"run {run_id} was not marked {status}: it is {_state(now)}, not running "
                f"after {chunks} chunk(s) as this process left it (another process may have "
                "taken it on, or abandoned it)",
                now,
                status,
            )

    def abandon(self, connection: Connection, run_id: str) -> RunInfo:
        """End an open run for good (``abandoned``); its record as it is now. A process
        still running it stops before its next chunk (its claim finds it abandoned)."""
        info = self.get(connection, run_id)
        self.refuse(info, "abandon")
        runs = self.runs.c
        self._change(
            connection,
            info,
            "abandon",
            (runs.status.in_(OPEN), runs.reverted_by.is_(None)),
            status=ABANDONED,
            finished_at=_now(),
        )
        return self.get(connection, run_id)

    def mark_reverted(self, connection: Connection, info: RunInfo, reverted_by: str | None) -> None:
        """Record that run ``reverted_by`` reverted the run ``info`` read, unless another
        revert did first."""
        runs = self.runs.c
        self._change(
            connection,
            info,
            "revert",
            (runs.reverted_by.is_(None),),
            status=REVERTED,
            reverted_by=reverted_by,
            finished_at=_now(),
        )

    def refuse_revert(self, connection: Connection, info: RunInfo) -> None:
        """``RunStateError`` when the run ``info`` read cannot get a new revert: it is
        reverted, or a revert of it has not ended (it resumes instead, from where it
        stopped: a new one would take the rows it restored for rows changed since)."""
        self.refuse(info, "revert")
        runs = self.runs.c
        unfinished = connection.execute(
            select(self.runs)
            .where(runs.reverts == info.run_id, runs.status.in_(OPEN))
            .order_by(runs.run_id.desc())
            .limit(1)
        ).first()
        if unfinished is not None:
            revert = _run_info(unfinished._mapping)
            raise _state_error(
                f"run {info.run_id} has a revert that has not ended, run {revert.run_id} "
                f"({_state(revert)}): resume it with resume={revert.run_id!r} (`setwise "
                f"revert {info.run_id} --resume {revert.run_id}`), or abandon it first",
                revert,
                "revert",
            )

    @staticmethod
    def refuse(info: RunInfo, action: str) -> None:
        """``RunStateError`` when run ``info`` cannot be resumed, abandoned or reverted
        (``action``) as it is."""
        message = _refusal(info, action)
        if message is not None:
            raise _state_error(message, info, action)

    def _change(
        self,
        connection: Connection,
        info: RunInfo,
        action: str,
        where: Sequence[ColumnElement[bool]],
        **values: Any,
    ) -> None:
        """The compare-and-set of ``action``; when it finds the run changed since
        ``info`` was read, the error says what it is now."""
        if self._compare_and_set(connection, info.run_id, where, **values):
            return
        now = self.get(connection, info.run_id)
        reason = _refusal(now, action)
        verb = {"resume": "taking it up", "abandon": "abandoning it", "revert": "reverting it"}
        raise _state_error(
            f"{reason or f'run {info.run_id} is {_state(now)}'}: another process changed it "
            f"while this one was {verb[action]} (resumed twice at once?); this process "
            f"changed nothing. `setwise show {info.run_id}` tells where the run is",
            now,
            action,
        )

    def _compare_and_set(
        self,
        connection: Connection,
        run_id: str,
        where: Sequence[ColumnElement[bool]],
        **values: Any,
    ) -> bool:
        """UPDATE the run's record with ``values`` where ``where`` holds: whether it did.
        Every backend setwise serves counts the rows an UPDATE matched; where a driver
        does not, the run is read again, and the change took when the state it set
        (status, chunk count, reverted by) is there."""
        runs = self.runs.c
        result = connection.execute(
            update(self.runs).where(runs.run_id == run_id, *where).values(values)
        )
        if connection.dialect.supports_sane_rowcount:
            return result.rowcount == 1
        row = connection.execute(select(self.runs).where(runs.run_id == run_id)).first()
        state = {name: values[name] for name in _STATE if name in values}
        return row is not None and all(row._mapping[name] == value for name, value in state.items())

    # -- reading ----------------------------------------------------------------

    def get(self, connection: Connection, run_id: str) -> RunInfo:
        if not inspect(connection).has_table(self.runs.name):
            raise NotFoundError(self.runs.name, key=run_id)
        row = connection.execute(select(self.runs).where(self.runs.c.run_id == run_id)).first()
        if row is None:
            raise NotFoundError(self.runs.name, key=run_id)
        return _run_info(row._mapping)

    def recent(self, connection: Connection, limit: int = 100) -> list[RunInfo]:
        if not inspect(connection).has_table(self.runs.name):
            return []
        statement = select(self.runs).order_by(self.runs.c.run_id.desc()).limit(limit)
        return [_run_info(row._mapping) for row in connection.execute(statement)]

    def tagged(self, connection: Connection, tag: str, *, prefix: bool = False) -> list[RunInfo]:
        """The runs tagged ``tag`` (``prefix``: with a tag that starts with it), newest
        first. The tag is kept in the JSON of the run's arguments: a LIKE finds the
        candidates, and the tag read back from the JSON decides."""
        if not inspect(connection).has_table(self.runs.name):
            return []
        needle = f'"tag": {json.dumps(tag)}'
        if prefix:
            needle = needle[:-1]  # the closing quote
        statement = (
            select(self.runs)
            .where(self.runs.c.arguments.contains(needle, autoescape=True))
            .order_by(self.runs.c.run_id.desc())
        )
        found = [_run_info(row._mapping) for row in connection.execute(statement)]
        if prefix:
            return [info for info in found if info.tag is not None and info.tag.startswith(tag)]
        return [info for info in found if info.tag == tag]

    def recent_ids(self, connection: Connection, run_ids: Sequence[str]) -> dict[str, str]:
        """The status of each of ``run_ids`` the records hold."""
        if not inspect(connection).has_table(self.runs.name):
            return {}
        runs = self.runs.c
        found = connection.execute(
            select(runs.run_id, runs.status).where(runs.run_id.in_(list(run_ids)))
        )
        return {str(run_id): str(status) for run_id, status in found}

    def last_chunk(self, connection: Connection, run_id: str) -> ChunkInfo | None:
        """The run's latest recorded chunk, or None before its first."""
        chunks = self.chunks.c
        statement = (
            select(self.chunks)
            .where(chunks.run_id == run_id)
            .order_by(chunks.chunk.desc())
            .limit(1)
        )
        row = connection.execute(statement).first()
        if row is None:
            return None
        return ChunkInfo(row.chunk, row.rows, row.changed, row.seconds, row.retries)

    def chunk_list(self, connection: Connection, run_id: str) -> list[ChunkInfo]:
        chunks = self.chunks.c
        statement = select(self.chunks).where(chunks.run_id == run_id).order_by(chunks.chunk)
        return [
            ChunkInfo(row.chunk, row.rows, row.changed, row.seconds, row.retries)
            for row in connection.execute(statement)
        ]


_COUNTS = ("matched", "changed", "unchanged", "missing", "conflicts", "chunks", "retries")
#: The columns that say where a run is: what a compare-and-set changes.
_STATE = ("status", "chunks", "reverted_by")
#: The counts a finished chunk adds to its run's.
_ADDED = ("matched", "changed", "unchanged", "missing", "conflicts", "retries")


def _refusal(info: RunInfo, action: str) -> str | None:
    """Why run ``info`` cannot be resumed, abandoned or reverted (``action``) as it is;
    None when it can."""
    run_id, by = info.run_id, info.reverted_by
    if by is not None:
        return {
            "resume": f"run {run_id} was reverted by run {by}; start it again instead of "
            "resuming it",
            "abandon": f"run {run_id} is reverted: there is nothing to abandon",
            "revert": f"run {run_id} was already reverted by run {by}; revert {by} to apply "
            "it again",
        }[action]
    if action == "resume" and info.status == DONE:
        return f"run {run_id} is finished; there is nothing to resume"
    if action == "resume" and info.status == ABANDONED:
        return f"run {run_id} was abandoned; start it again instead of resuming it"
    if action == "abandon" and info.status not in OPEN:
        return f"run {run_id} is {info.status}: there is nothing to abandon"
    return None


def _state_error(message: str, info: RunInfo, action: str) -> RunStateError:
    return RunStateError(
        message, run_id=info.run_id, action=action, status=info.status, chunks=info.chunks
    )


def _state(info: RunInfo) -> str:
    return f"{info.status} after {info.chunks} chunk(s)"


def new_run_id() -> str:
    """A run id that sorts by start time to the microsecond (MariaDB's DATETIME keeps
    whole seconds), with two random hex digits against two processes in one microsecond."""
    now = _now()
    return f"{now:%Y%m%d-%H%M%S}-{now.microsecond:06d}{secrets.token_hex(1)}"


def default_actor() -> str:
    """Who is running: the operating-system user, as the journal's default actor."""
    if os.environ.get("SETWISE_ACTOR"):
        return os.environ["SETWISE_ACTOR"]
    try:
        return getpass.getuser()  # USER, LOGNAME, …, then the password database
    except (KeyError, OSError):
        return "unknown"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _encode_key(key: tuple[Any, ...] | None) -> str | None:
    return None if key is None else json.dumps(list(key), default=str)


def _run_info(row: Any) -> RunInfo:
    checkpoint = json.loads(row["checkpoint"]) if row["checkpoint"] else None
    return RunInfo(
        run_id=row["run_id"],
        table=row["table_name"],
        kind=row["kind"],
        status=row["status"],
        actor=row["actor"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        matched=int(row["matched"]),
        changed=int(row["changed"]),
        unchanged=int(row["unchanged"]),
        missing=int(row["missing"]),
        conflicts=int(row["conflicts"]),
        chunks=int(row["chunks"]),
        retries=int(row["retries"]),
        columns=tuple(json.loads(row["columns"])),
        checkpoint=tuple(checkpoint) if checkpoint is not None else None,
        arguments=json.loads(row["arguments"]),
        reverts=row["reverts"],
        reverted_by=row["reverted_by"],
        error=row["error"],
    )
