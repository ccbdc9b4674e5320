"""The changes of a run's record, each a compare-and-set that only the run's state allows.

Each change is one UPDATE: its WHERE names the state the change starts from (the
status, and the chunk count where a change goes on from a chunk), and the row count
says whether it happened. Two processes on one run (resumed twice at once, or abandoned
while it runs) never both change it: the one that loses raises ``RunStateError``
(``RunInUseError`` for a chunk), naming the state the run is in now. What each state
allows, and why not, is ``setwise.journal.states``'s; the tables and their reads are
``setwise.journal.runtables``'s.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, select, update

from setwise.errors import RunInUseError
from setwise.journal import controls, states
from setwise.journal.runinfo import RunInfo, run_info
from setwise.journal.runtables import RunTables
from setwise.journal.states import ABANDONED, DONE, OPEN, PARTLY_REVERTED, REVERTED, RUNNING
from setwise.target import Target


class RunRecords(RunTables):
    """The run and chunk records of one database, under one prefix: every change of them."""

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
        if status == RUNNING:  # from now on it takes commands from other processes
            controls.opened(connection, self, run_id)
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

    def resume(
        self,
        connection: Connection,
        run_id: str,
        *,
        table: str,
        kind: str,
        arguments: Mapping[str, Any],
    ) -> RunInfo:
        """Take up run ``run_id`` again for a run that is ``kind`` of ``table`` with
        ``arguments``, and return its record as read before (``refuse_resume``, then
        ``take_up``)."""
        info = self.get(connection, run_id)
        states.refuse_resume(info, table=table, kind=kind, arguments=arguments)
        self.take_up(connection, info)
        return info

    def take_up(self, connection: Connection, info: RunInfo) -> None:
        """Resume the run ``info`` read: running again, provided it is still as read
        (its status, its chunk count), so that no other process took it up meanwhile."""
        states.refuse(info, "resume")
        runs = self.runs.c
        self._change(
            connection,
            info,
            "resume",
            (runs.status == info.status, runs.chunks == info.chunks, runs.reverted_by.is_(None)),
            status=RUNNING,
            finished_at=None,
        )
        controls.opened(connection, self, info.run_id)

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
            raise states.state_error(
                f"run {run_id} was not marked {status}: it is {states.describe(now)}, not "
                f"running after {chunks} chunk(s) as this process left it (another process "
                "may have taken it on, or abandoned it)",
                now,
                status,
            )

    def abandon(self, connection: Connection, run_id: str) -> RunInfo:
        """End an open run for good (``abandoned``); its record as it is now. A process
        still running it stops before its next chunk (its claim finds it abandoned)."""
        info = self.get(connection, run_id)
        states.refuse(info, "abandon")
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

    def mark_reverted(
        self,
        connection: Connection,
        info: RunInfo,
        reverted_by: str | None,
        *,
        partly: bool = False,
    ) -> None:
        """Record that run ``reverted_by`` reverted the run ``info`` read, unless another
        revert did first; ``partly``: it left rows changed while it ran
        (``partly-reverted``: the run is not reverted, and can be again)."""
        runs = self.runs.c
        reverted = {"status": REVERTED, "reverted_by": reverted_by}
        values: dict[str, Any] = {"status": PARTLY_REVERTED} if partly else reverted
        self._change(
            connection,
            info,
            "revert",
            (runs.reverted_by.is_(None),),
            **values,
            finished_at=_now(),
        )

    def refuse_revert(
        self, connection: Connection, info: RunInfo, resume: str | None = None
    ) -> RunInfo | None:
        """``RunStateError`` when the run ``info`` read cannot be reverted: it is
        reverted, or kept no journal; or, for a new revert (no ``resume``), a revert of
        it has not ended (it resumes instead, from where it stopped: a new one would
        take the rows it restored for rows changed since). With ``resume``, the record
        of that revert of ``info`` to go on with, which must be one that can resume."""
        states.refuse(info, "revert")
        if resume is not None:
            resumed = self.get(connection, resume)
            states.refuse_resumed_revert(info, resumed)
            return resumed
        runs = self.runs.c
        unfinished = connection.execute(
            select(self.runs)
            .where(runs.reverts == info.run_id, runs.status.in_(OPEN))
            .order_by(runs.run_id.desc())
            .limit(1)
        ).first()
        states.refuse_second_revert(
            info, None if unfinished is None else run_info(unfinished._mapping)
        )
        return None

    # -- what a run's record tells others ---------------------------------------

    def taken_on(self, connection: Connection, run_id: str, chunk: int) -> bool:
        """Whether run ``run_id`` is no longer this process's to write chunk ``chunk``
        (``states.taken_on``): what ``claim_chunk`` refuses."""
        return states.taken_on(self.get(connection, run_id), chunk)

    def still_open(self, connection: Connection, run_id: str) -> bool:
        """Whether run ``run_id`` may still be going on in some process: what it kept
        for a resume (a staging table) may be that process's, still in use."""
        return self.recent_ids(connection, [run_id]).get(run_id) in OPEN

    def stage_unwanted(self, connection: Connection, run_id: str, now: dt.datetime) -> bool:
        """Whether no run can go on from a staging table kept under run ``run_id``
        (``states.stage_unwanted``)."""
        status = self.recent_ids(connection, [run_id]).get(run_id)
        return states.stage_unwanted(run_id, status, now)

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
        reason = states.refusal(now, action) or f"run {info.run_id} is {states.describe(now)}"
        verb = {"resume": "taking it up", "abandon": "abandoning it", "revert": "reverting it"}
        raise states.state_error(
            f"{reason}: another process changed it while this one was {verb[action]} "
            f"(resumed twice at once?); this process changed nothing. `setwise show "
            f"{info.run_id}` tells where the run is",
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


_COUNTS = ("matched", "changed", "unchanged", "missing", "conflicts", "chunks", "retries")
#: The columns that say where a run is: what a compare-and-set changes.
_STATE = ("status", "chunks", "reverted_by")
#: The counts a finished chunk adds to its run's.
_ADDED = ("matched", "changed", "unchanged", "missing", "conflicts", "retries")


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
