"""A run's record as the engine keeps it: its id, its totals, its chunks in the journal."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Column, Connection
from sqlalchemy.exc import DBAPIError

from setwise.dialects import Strategy
from setwise.engine.options import RunOptions
from setwise.engine.retry import first_line, retried
from setwise.errors import RunStateError
from setwise.journal.changes import Journal
from setwise.journal.records import new_run_id
from setwise.journal.runinfo import ChunkInfo, RunInfo
from setwise.journal.states import DONE
from setwise.report import ChunkResult, Totals
from setwise.writers.protocol import Writer

log = logging.getLogger("setwise")

T = TypeVar("T")


class Ledger:
    """The record of one run of ``writer``: started, chunk by chunk, stopped or resumed."""

    def __init__(
        self,
        strategy: Strategy,
        writer: Writer,
        options: RunOptions,
        journal: Journal,
        *,
        journaled: bool,
        written: Sequence[Column[Any]],
    ) -> None:
        """``written``: the columns ``writer`` writes (``Writer.written_columns``)."""
        self.strategy = strategy
        self.writer = writer
        self.options = options
        self.journal = journal
        self.journaled = journaled
        self.written = written
        self.totals = Totals()
        self.run_id: str | None = None

    def name_once(self) -> None:
        """Give a journaled one-transaction run its id before it writes its journal rows."""
        if self.journaled:
            self.run_id = new_run_id()

    def start(self, connection: Connection, **recorded: Any) -> str:
        """Record the run; it has the id this returns from now on."""
        self.run_id = self.journal.start(
            connection,
            **recorded,
            target=self.writer.target,
            kind=self.writer.kind,
            columns=[c.name for c in self.written],
            arguments={**self.options.arguments, "journal": self.journaled},
            actor=self.options.actor,
            reverts=self.options.arguments.get("reverts"),
        )
        return self.run_id

    def finish_once(self, connection: Connection, result: ChunkResult, seconds: float) -> None:
        """Count a one-transaction run's one chunk, and record the run, done, with it
        when it is journaled."""
        self.tally(result, seconds)
        if self.run_id is None:
            return
        totals = self.totals
        self.start(
            connection,
            run_id=self.run_id,
            status=DONE,
            counts={
                "matched": totals.matched,
                "changed": totals.changed,
                "unchanged": totals.unchanged,
                # The record keeps every key with no row; ``RunInfo`` tells the inserted
                # from the others by the run's ``missing`` argument.
                "missing": totals.missing + totals.inserted,
                "conflicts": totals.conflicted,
                "chunks": 1,
            },
        )
        self.journal.record_chunk(
            connection, self.run_id, 1, result.rows, result.changed, seconds, 0
        )

    def rolled_back(self, before: Totals) -> None:
        """Take back what an attempt rolled back had counted (``before``: the totals as
        they were before it), and count its rollback."""
        self.totals = before
        self.totals.rollbacks += 1

    def tally(self, result: ChunkResult, seconds: float) -> None:
        """Add a chunk's counts to the run's totals."""
        totals = self.totals
        totals.matched += result.matched
        totals.changed += result.changed
        totals.conflicted += result.conflicted
        totals.missing += result.missing - result.inserted
        totals.inserted += result.inserted
        totals.chunks += 1
        totals.slowest_s = max(totals.slowest_s, seconds)

    def finish_chunk(
        self,
        connection: Connection,
        chunk: int,
        checkpoint: tuple[Any, ...] | None,
        result: ChunkResult,
        seconds: float,
        retries: int,
        *,
        last: bool,
    ) -> None:
        """Count the chunk, and record it and the run's checkpoint in its transaction."""
        self.tally(result, seconds)
        if self.run_id is None:
            return
        self.journal.finish_chunk(
            connection,
            self.run_id,
            chunk=chunk,
            checkpoint=checkpoint,
            counts={
                "matched": result.matched,
                "changed": result.changed,
                "unchanged": result.matched - result.changed - result.conflicted,
                "missing": result.missing,
                "conflicts": result.conflicted,
                "retries": retries,
            },
            seconds=seconds,
            last=last,
        )

    def retried(self, connection: Connection, what: str, work: Callable[[Connection], T]) -> T:
        """``work`` in a transaction of its own (see ``retried``), each retry counted."""

        def count_retry() -> None:
            self.totals.retries += 1
            self.totals.rollbacks += 1

        return retried(
            connection,
            self.strategy,
            work,
            retries=self.options.retries,
            what=what,
            on_retry=count_retry,
        )

    def taken_by_another(self, connection: Connection, chunk: int) -> bool:
        """Whether another process has gone on with this run past chunk ``chunk - 1``
        (read after this chunk's rollback, in a transaction of its own)."""
        if self.run_id is None:
            return False
        try:
            with connection.begin():
                return self.journal.taken_on(connection, self.run_id, chunk)
        except DBAPIError:
            return False  # the database is failing: the caller's handling says so

    def resume(
        self, connection: Connection
    ) -> tuple[tuple[Any, ...] | None, int, ChunkInfo | None]:
        """Take up run ``options.resume``: its checkpoint, its chunk count, and its last
        chunk (the pace an automatic chunk size goes on from)."""
        run_id = self.options.resume
        assert run_id is not None
        target = self.writer.target

        def take_up(connection: Connection) -> tuple[RunInfo, ChunkInfo | None]:
            info = self.journal.resume(
                connection,
                run_id,
                table=target.name,
                kind=self.writer.kind,
                arguments=self.options.arguments,
            )
            return info, self.journal.last_chunk(connection, run_id)

        info, last = self.retried(connection, f"resuming run {run_id}", take_up)
        self.run_id = run_id
        totals = self.totals
        totals.matched, totals.changed = info.matched, info.changed
        totals.conflicted, totals.missing = info.conflicts, info.missing
        totals.inserted = info.inserted
        totals.chunks, totals.retries = info.chunks, info.retries
        checkpoint = info.checkpoint_of(target.key)
        log.info("resuming run %s after chunk %d (key %r)", run_id, info.chunks, checkpoint)
        return checkpoint, info.chunks, last

    def mark(self, connection: Connection, status: str, error: str | None = None) -> str | None:
        """Record that this process stopped the run (``interrupted``, ``failed``), retried
        as a chunk is (SQLite's busy timeout, then backoff); when it could not, why not:
        the run then still says ``running`` and resumes all the same, or another process
        has changed it."""
        if self.run_id is None:
            return "the run was not recorded"
        run_id, chunks = self.run_id, self.totals.chunks
        try:
            if connection.in_transaction():
                connection.rollback()
            self.retried(
                connection,
                f"marking run {run_id} {status}",
                lambda c: self.journal.stop(c, run_id, status, chunks=chunks, error=error),
            )
        except RunStateError as exc:  # another process has the run now: leave it be
            log.warning("%s", exc)
            return str(exc)
        except Exception as exc:  # the run's own error is what the caller needs to see
            log.exception("could not mark run %s %s", run_id, status)
            return f"{first_line(exc)}; run {run_id} still says running"
        return None
