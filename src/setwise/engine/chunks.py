"""Run a writer: in one transaction, or chunk by chunk with retries and progress.

A *writer* (``setbased.SetUpdate``, ``merge.Merge``, ``revert.Reversal``) builds the
statements for a span of keys; the executor decides the spans and the transactions,
and ``engine.writes`` how each chunk writes its rows (with its journal, the data and
the journal never disagree).

Where one transaction at a time can write (SQLite), nothing changes between a chunk's
statements. Where a chunk's transaction can run on one snapshot whose UPDATE fails on a
row changed since (PostgreSQL's REPEATABLE READ, ``Strategy.snapshot_chunks``), the
chunk reads without locking and its statements see the same rows; a conflict is a
serialization failure, and the chunk is retried.

Chunks are keyset ranges of the key, each ending at the key its size past the previous
end (an OFFSET from there, never from the table's start); their size is fixed or adapts
to a time target (``engine.sizing``); deadlocks, serialization failures and lock
timeouts retry the chunk with backoff; the run's checkpoint moves in the chunk's
transaction, so a killed run resumes after its last committed chunk.
"""

from __future__ import annotations

import logging
import time
from asyncio import CancelledError
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Select, Table, select
from sqlalchemy.exc import DBAPIError

from setwise.dialects import RowCap, Strategy
from setwise.engine.control import STOPPED_BY, Controller, StopRequested
from setwise.engine.guards import chunk_cap, confirm_committed, guard
from setwise.engine.health import Unwatched, Watch, watching
from setwise.engine.interrupts import INTERRUPTS, release_frames
from setwise.engine.ledger import Ledger
from setwise.engine.options import RunOptions
from setwise.engine.retry import after_rollback, first_line, retrying
from setwise.engine.sizing import ChunkSizer
from setwise.engine.writes import ChunkWrite
from setwise.errors import (
    NotFoundError,
    PausedTooLongError,
    RunError,
    RunInterrupted,
    RunInUseError,
    RunStateError,
    SetwiseError,
)
from setwise.journal.changes import Journal
from setwise.journal.runinfo import ChunkInfo
from setwise.journal.states import FAILED, INTERRUPTED, RUNNING
from setwise.operations import DELETED
from setwise.report import WRITING, ChunkResult, Progress, Report, Totals
from setwise.target import key_value
from setwise.writers.keys import EVERYTHING, Span
from setwise.writers.protocol import Writer

log = logging.getLogger("setwise")

#: Keys listed in ``Report.missing_keys`` and ``Report.conflicts``; the counts are exact.
KEY_SAMPLE = 1_000


class Executor:
    """Runs one writer with one set of options on one database."""

    def __init__(
        self,
        strategy: Strategy,
        writer: Writer,
        options: RunOptions,
        journal: Journal,
        journal_table: Table | None,
        *,
        on_snapshot: bool = False,
        in_callers_transaction: bool = False,
        write_by_key: bool = False,
    ) -> None:
        """``on_snapshot``: a one-transaction run reads on a snapshot (its runner retries
        it whole). ``in_callers_transaction``: a one-transaction run inside the caller's
        open transaction, whose snapshot may be older than the rows its writes find.
        ``write_by_key``: see ``ChunkWrite.by_key``."""
        self.strategy = strategy
        self.writer = writer
        self.options = options
        self.journal = journal
        self.journal_table = journal_table
        self.in_callers_transaction = in_callers_transaction
        """The progress last reported."""
        written = tuple(writer.written_columns())  # asked once, for the record and the writes
        self.ledger = Ledger(
            strategy, writer, options, journal, journaled=journal_table is not None, written=written
        )
        # Chunks run on a snapshot (``Strategy.snapshot_chunks``): their own transactions,
        # which retry when a row they write changed since the snapshot; a one-transaction
        # run does when its runner says so (and retries whole).
        snapshot = strategy.snapshot_chunks is not None and (options.chunked or on_snapshot)
        self.on_snapshot = snapshot
        self.control = Controller(journal, options, self.ledger.retried)
        self.write = ChunkWrite(
            strategy,
            writer,
            options.stamps,
            journal_table,
            written=written,
            on_snapshot=snapshot,
            by_key=write_by_key,
        )

    @property
    def run_id(self) -> str | None:
        return self.ledger.run_id

    @property
    def totals(self) -> Totals:
        return self.ledger.totals

    def report(self, elapsed_s: float, rows: tuple[dict[str, Any], ...], retries: int) -> Report:
        """What the run did (``retries``: times the whole run started again)."""
        return self.totals.report(
            self.writer.target.name,
            self.write.name,
            elapsed_s,
            run_id=self.run_id,
            rows=rows,
            retries=retries,
        )

    # -- one transaction ------------------------------------------------------

    def run_once(
        self, connection: Connection, *, lock_matched: bool = False
    ) -> list[tuple[Any, ...]]:
        """Write every row in the caller's transaction, as chunk 1 of a run.

        Returns the matched keys (locked before writing) when ``lock_matched``.
        """
        cap = self._cap(connection)
        counted = self._count(connection, EVERYTHING, would_change=cap is not None)
        self._guard(counted[0], self._would_write(counted), cap=cap)
        self.refuse_missing(connection, EVERYTHING, counted)
        matched_keys: list[tuple[Any, ...]] = []
        if lock_matched:
            statement = self.strategy.lock_rows(
                self.writer.matched_keys(EVERYTHING), self.writer.target.table
            )
            matched_keys = [tuple(row) for row in connection.execute(statement)]
        self.ledger.name_once()
        started = time.perf_counter()
        result = self._write_chunk(connection, EVERYTHING, 1, counted)
        # Recorded once, done, after the write: nothing is read back.
        self.ledger.finish_once(connection, result, time.perf_counter() - started)
        return matched_keys

    # -- chunk by chunk ---------------------------------------------------------

    def run_chunked(self, connection: Connection, total_rows: int | None = None) -> None:
        """Write chunk by chunk on ``connection`` (not in a transaction), each chunk
        committed on its own; resume after the checkpoint of ``options.resume``."""
        after: tuple[Any, ...] | None = None
        chunk = done = 0
        pace: ChunkInfo | None = None
        watch = watching(self.options.health, self.strategy, connection, self.writer.target.table)
        # From the run's start on: a run recorded as it was interrupted is marked too.
        try:
            if self.options.resume is not None:
                after, chunk, pace = self.ledger.resume(connection)
                # Rows the first run went through: matched or missing, as its chunks counted.
                done = self.totals.matched + self.totals.missing + self.totals.inserted
                if self.options.progress is not None and total_rows is None:
                    with connection.begin():
                        total_rows = done + self._rows_in(connection, Span(after))
            else:
                total_rows = self._open_run(connection, total_rows)
            sizer = ChunkSizer(
                self.options.chunk_rows,
                self.options.chunk_seconds,
                cap=chunk_cap(self._cap(connection), self.options.chunk_rows),
            )
            if pace is not None:
                sizer.start_from(pace.rows, pace.seconds)
            while True:
                self._wait_healthy(connection, watch, (done, total_rows, chunk))
                chunk += 1
                span, result, seconds, _ = self._chunk_with_retries(
                    connection, after, sizer.rows, chunk
                )
                sizer.record(result.rows, seconds)
                done += result.rows
                self._report_progress(done, total_rows, chunk, result, seconds)
                if span.upper is None:
                    return
                after = span.upper
                self.control.between_chunks(connection, self.run_id or "", sizer)
        except INTERRUPTS as exc:
            # Inside a chunk, its transaction was rolled back; between chunks, all
            # committed chunks stand. Either way the run can go on from its checkpoint.
            if self.run_id is None:
                raise
            release_frames(exc)
            try:
                self._count_if_committed(connection, chunk)
                unmarked = self.ledger.mark(connection, INTERRUPTED)
            except INTERRUPTS:  # a second Ctrl-C: stop waiting for the database
                unmarked = f"a second interrupt; run {self.run_id} still says running"
            by = STOPPED_BY if isinstance(exc, StopRequested) else None
            stopped = RunInterrupted(self.run_id, self.totals.chunks, unmarked=unmarked, by=by)
            # INFO: the caller gets the interrupt with this note, and the journal lists the
            # run as interrupted; a WARNING would be printed again, in Python's words,
            # under the command line's own message while logging is unconfigured.
            log.info("%s", stopped)
            stopped.add_note(str(stopped))
            if isinstance(exc, CancelledError):
                # asyncio needs the CancelledError itself (asyncio.timeout turns exactly
                # that type into TimeoutError); its cause carries the run.
                exc.add_note(str(stopped))
                raise exc from stopped
            raise stopped from exc
        finally:
            watch.close()

    def _wait_healthy(
        self, connection: Connection, watch: Watch | Unwatched, at: tuple[int, int | None, int]
    ) -> None:
        """Wait while a health signal says so (``engine.health``), showing why in the
        progress (``at``: rows done, rows in all, chunks done, before any chunk reported
        it); past ``max_wait`` the run is interrupted, resumable."""

        said: list[str] = []

        def show(paused: str) -> None:
            said.append(paused)
            if self.run_id is not None:  # for `setwise show --follow`
                self.control.say_paused(connection, self.run_id, paused, report=False)
            if self.options.progress is not None:
                last = self.control.last
                if last is None:
                    kind, table = WRITING.get(self.writer.kind, "writing"), self.writer.target.name
                    done, total, chunk = at
                    last = Progress(done, total, 0, chunk, 0, 0, kind, table)
                self.options.progress(replace(last, paused=paused))

        try:
            watch.wait(self.run_id or "", self.totals.chunks, show)
            if said and self.run_id is not None:
                # The progress goes on with the next chunk's report, not a repeat of this one.
                self.control.say_paused(connection, self.run_id, None, report=False)
        except PausedTooLongError:
            self.ledger.mark(connection, INTERRUPTED)
            raise
        except (DBAPIError, SetwiseError) as exc:
            self.ledger.mark(connection, FAILED, error=first_line(exc))
            raise

    def _count_if_committed(self, connection: Connection, chunk: int) -> None:
        """Count chunk ``chunk``, interrupted at its COMMIT, when the database committed
        it all the same: a cancelled task stops waiting for the COMMIT, not the server."""
        if self.run_id is None or self.totals.chunks >= chunk:
            return
        try:
            if connection.in_transaction():
                connection.rollback()
            runs = self.journal.runs.c
            with connection.begin():
                found = connection.execute(
                    select(runs.status, runs.chunks).where(runs.run_id == self.run_id)
                ).first()
        except Exception:  # marking the run says what is wrong with the database
            return
        if found is not None and tuple(found) == (RUNNING, chunk):
            self.totals.chunks = chunk

    def _open_run(self, connection: Connection, total_rows: int | None) -> int | None:
        """Count, guard and record the run, retrying like a chunk when the database is busy.

        A guard needs the count of every row the run matches, a scan that joins the
        target; a progress callback alone needs only the rows the chunks will go through
        (``rows_in``: a changeset's staged rows). Each chunk counts its own rows."""
        options = self.options
        guarded = options.expect_rows is not None or options.max_rows is not None
        guarded = guarded or options.missing == "error"
        totalling = options.progress is not None and total_rows is None

        def open_run(connection: Connection) -> int | None:
            counted = total_rows
            if guarded:
                found = self._count(connection, EVERYTHING)
                self._guard(found[0], self._would_write(found))
                # Every key checked before the first chunk writes: a chunked run never
                # commits chunks and then finds a missing key.
                self.refuse_missing(connection, EVERYTHING, found)
                counted = counted if counted is not None else found[3]
            elif totalling:
                counted = self._rows_in(connection, EVERYTHING)
            self.ledger.start(connection, run_id=self.options.run_id)
            return counted

        return self.ledger.retried(connection, "starting the run", open_run)

    def _chunk_with_retries(
        self, connection: Connection, after: tuple[Any, ...] | None, rows: int, chunk: int
    ) -> tuple[Span, ChunkResult, float, int]:
        """Run chunk ``chunk`` (see ``_chunk``), again after a rollback the database
        resolves by itself; mark the run failed when it fails otherwise."""

        def count_retry() -> None:
            self.totals.retries += 1

        try:
            return retrying(
                lambda attempt: self._chunk(connection, after, rows, chunk, attempt),
                retryable=after_rollback(self.strategy),
                retries=self.options.retries,
                rolled_back=f"chunk {chunk} of run {self.run_id} rolled back",
                on_retry=count_retry,
            )
        except DBAPIError as exc:
            self.ledger.mark(connection, FAILED, error=first_line(exc))
            raise RunError(self.run_id, chunk, exc) from exc
        except SetwiseError as exc:
            if not isinstance(exc, RunStateError):  # the run is another process's now
                self.ledger.mark(connection, FAILED)
            raise

    def _chunk(
        self,
        connection: Connection,
        after: tuple[Any, ...] | None,
        rows: int,
        chunk: int,
        attempt: int,
    ) -> tuple[Span, ChunkResult, float, int]:
        """One attempt at chunk ``chunk``: the ``rows`` keys after ``after``, written and
        recorded in one transaction, with ``attempt`` retries before it."""
        started = time.perf_counter()
        # An attempt counts its rows before its COMMIT; one rolled back, even at the
        # COMMIT itself (Galera's certification), must leave the totals as they were.
        before = self.totals.copy()
        try:
            with connection.begin():
                if self.on_snapshot:
                    connection.exec_driver_sql(self.strategy.snapshot_chunks or "")
                if self.run_id is not None:
                    self.journal.claim_chunk(connection, self.run_id, chunk)
                upper = self._upper(connection, after, rows)
                span = Span(after, upper)
                if self.writer.operations == (DELETED,):
                    # A delete writes every row it matches: the rows it wrote are its
                    # count, and a scan of the span to count them first cost a tenth of
                    # a chunk (benchmarks/bench_delete.py).
                    changed = self.write.write(connection, span, chunk, self.run_id)
                    result = ChunkResult(changed, changed, 0, 0, changed)
                else:
                    counted = self._count(connection, span)
                    result = self._write_chunk(connection, span, chunk, counted)
                seconds = time.perf_counter() - started
                checkpoint = upper if upper is not None else after
                self.ledger.finish_chunk(
                    connection, chunk, checkpoint, result, seconds, attempt, last=upper is None
                )
            confirm_committed(connection, self.strategy, self.journal, self.run_id, chunk)
            self._log_chunk(chunk, result, seconds)
            return span, result, seconds, attempt
        except (DBAPIError, SetwiseError, *INTERRUPTS) as exc:
            self.ledger.rolled_back(before)
            if isinstance(exc, DBAPIError) and self.ledger.taken_by_another(connection, chunk):
                # Two processes on one run: this one's chunk lost to the other's (a
                # serialization failure or deadlock on the run's record), which goes
                # on with the run; retrying would only lose again.
                raise RunInUseError(self.run_id or "", chunk) from exc
            raise

    def _upper(
        self, connection: Connection, after: tuple[Any, ...] | None, rows: int
    ) -> tuple[Any, ...] | None:
        """The chunk's last key: the ``rows``-th key after ``after``; None when no key
        follows it, so that this chunk is the last and takes the open range.

        Only the two keys at the chunk's end cross the wire: fetching every key of
        the chunk into Python cost more than its UPDATE (benchmarks/README.md)."""
        query = self.writer.keys_after(after, 2).offset(rows - 1)
        keys = [tuple(k) for k in connection.execute(query)]
        return keys[0] if len(keys) == 2 else None

    # -- one chunk --------------------------------------------------------------

    def _count(
        self, connection: Connection, span: Span, *, would_change: bool = False
    ) -> tuple[int, int, int, int]:
        # Only the max_rows guard and a server's cap on a transaction need the would-change
        # count: without it the scan is a plain count (no CASE over every assignment).
        needed = would_change or self.options.max_rows is not None
        asked = self._current(self.writer.counts(span, would_change=needed))
        matched, changes, conflicted, total = (int(n) for n in connection.execute(asked).one())
        return matched, changes, conflicted, total

    def _rows_in(self, connection: Connection, span: Span) -> int:
        return int(connection.execute(self.writer.rows_in(span)).scalar_one())

    def _cap(self, connection: Connection) -> RowCap | None:
        """The most rows one transaction may write on this server, if it caps them."""
        table, journaled = self.writer.target.table, self.journal_table is not None
        return self.strategy.max_chunk_rows(connection, table, journaled=journaled)

    def _guard(self, matched: int, would_change: int, *, cap: RowCap | None = None) -> None:
        options = self.options
        guard(
            self.writer.target.name,
            matched,
            would_change,
            expect_rows=options.expect_rows,
            max_rows=options.max_rows,
            cap=cap,
        )

    def _would_write(self, counted: tuple[int, int, int, int]) -> int:
        """Rows a run of these counts would write: the rows that change, and the rows
        it would insert (``missing="insert"``)."""
        matched, would_change, _, total = counted
        return would_change + (total - matched if self.options.missing == "insert" else 0)

    def refuse_missing(
        self, connection: Connection, span: Span, counted: tuple[int, int, int, int]
    ) -> None:
        """With ``missing="error"``, raise ``NotFoundError`` for the keys of ``span`` that
        have no row (the first ``KEY_SAMPLE`` listed, all counted), before any write."""
        matched, _, _, total = counted
        if self.options.missing != "error" or total <= matched:
            return
        keys: list[Any] = []
        statement = self.writer.missing_keys(span, KEY_SAMPLE)
        if statement is not None:
            rows = connection.execute(self._current(statement))
            keys = [key_value(row) for row in rows]
        raise NotFoundError(self.writer.target.name, keys=keys, count=total - matched)

    def _write_chunk(
        self, connection: Connection, span: Span, chunk: int, counted: tuple[int, int, int, int]
    ) -> ChunkResult:
        matched, _would_change, conflicted, total = counted
        inserting = self.options.missing == "insert"
        self.refuse_missing(connection, span, counted)  # a row deleted since the run began
        # Samples first: once written, a row's version no longer shows what it was.
        if total > matched and not inserting:
            self._sample(connection, self.writer.missing_keys(span, KEY_SAMPLE), "missing_keys")
        if conflicted:
            self._sample(connection, self.writer.conflict_keys(span, KEY_SAMPLE), "conflicts")
        changed = self.write.write(connection, span, chunk, self.run_id)
        inserted = 0
        if inserting and total > matched:  # after the UPDATE: no inserted row counts as updated
            inserted = self.write.insert(connection, span, chunk, self.run_id, total - matched)
        return ChunkResult(matched, changed, conflicted, total - matched, total, inserted)

    def _sample(self, connection: Connection, statement: Select[Any] | None, into: str) -> None:
        found: list[Any] = getattr(self.totals, into)
        if statement is None or len(found) >= KEY_SAMPLE:
            return
        for row in connection.execute(self._current(statement.limit(KEY_SAMPLE - len(found)))):
            found.append(key_value(row))

    def _current(self, statement: Select[Any]) -> Select[Any]:
        """``statement`` reading the rows the write will find. In the caller's transaction
        a plain read may show its snapshot, older than the rows an UPDATE or a locking
        read sees (``Strategy.plain_reads_lag_writes``): a row changed or deleted since
        would be counted as it was, a conflict as unchanged. There it reads with a lock."""
        if self.in_callers_transaction and self.strategy.plain_reads_lag_writes:
            return self.strategy.lock_rows(statement, self.writer.target.table)
        return statement

    def _log_chunk(self, chunk: int, result: ChunkResult, seconds: float) -> None:
        log.debug(
            "chunk %d: %d rows, %d changed, %.3f s", chunk, result.rows, result.changed, seconds
        )
        target = self.options.chunk_seconds
        if self.options.chunk_rows == "auto" and seconds > 2 * target:
            log.warning(
                "chunk %d took %.2f s, over twice the %.2f s target", chunk, seconds, target
            )

    def _report_progress(
        self, done: int, total: int | None, chunk: int, result: ChunkResult, seconds: float
    ) -> None:
        if self.options.progress is not None:
            self.control.progress(
                Progress(
                    done,
                    total,
                    self.totals.changed,
                    chunk,
                    result.rows,
                    seconds,
                    phase=WRITING.get(self.writer.kind, "writing"),
                    table=self.writer.target.name,
                )
            )
