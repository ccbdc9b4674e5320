"""Run a writer: in one transaction, or chunk by chunk, with a journal, retries and progress.

A *writer* (``plan.SetUpdate``, ``merge.Merge``, ``revert.Reversal``) builds the
statements for a span of keys; the executor decides the spans and the transactions.

Each chunk writes its rows with two set-based statements in one transaction:

1. ``INSERT INTO journal SELECT key, old, new … ORDER BY key FOR UPDATE``: locks the
   rows in key order (two runs never deadlock each other) and records exactly the
   values it is about to overwrite, as they are under the lock;
2. the writer's own UPDATE, which finds those rows again and writes the same values,
   when it reads nothing else that could have changed in between; otherwise (or when
   its row count says it wrote other rows) ``UPDATE target … FROM journal``, which
   writes exactly what the journal recorded.

Where one transaction at a time can write (SQLite), nothing changes between the two
statements. Where a chunk's transaction can run on one snapshot whose UPDATE fails on a
row changed since (PostgreSQL's REPEATABLE READ, ``Strategy.snapshot_chunks``), the
INSERT reads without locking and both statements see the same rows; a conflict is a
serialization failure, and the chunk is retried.

So the journal and the data never disagree. Without a journal the writer's own
UPDATE runs instead. Chunks are keyset ranges of the key, each ending at the key its
size past the previous end (an OFFSET from there, never from the table's start); their
size is fixed or adapts to a time target; deadlocks, serialization failures and lock
timeouts retry the chunk with backoff; the run's checkpoint moves in the chunk's
transaction, so a killed run resumes after its last committed chunk.
"""

from __future__ import annotations

import json
import logging
import random
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import (
    Column,
    Connection,
    Select,
    Table,
    Update,
    bindparam,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.expression import Executable
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import iterate

from setwise.dialects import RowCap, Strategy
from setwise.dialects.packed import is_packed, pack, pack_values
from setwise.errors import (
    NotFoundError,
    RunError,
    RunInterrupted,
    RunInUseError,
    RunStateError,
    SetwiseError,
    TooManyRowsError,
    TransactionTooLargeError,
)
from setwise.journal.changes import Journal, key_column, new_column, old_column
from setwise.journal.records import new_run_id
from setwise.journal.runinfo import ChunkInfo, RunInfo
from setwise.journal.states import DONE, FAILED, INTERRUPTED, RUNNING
from setwise.target import Target
from setwise.writers.keys import EVERYTHING, Span, key_in

log = logging.getLogger("setwise")

T = TypeVar("T")

#: First chunk of an "auto" run: small enough to stay far under any sensible time target
#: on a slow or busy table, so the first measurement is cheap.
AUTO_START_ROWS = 1_000
#: Smallest "auto" chunk: below this, per-chunk overhead (two statements and a commit)
#: outweighs the work.
AUTO_MIN_ROWS = 100
#: Largest "auto" chunk: bounds one chunk's transaction (its locks, its undo) whatever the target.
AUTO_MAX_ROWS = 1_000_000
#: An "auto" chunk aims at this share of the target, leaving room for the server's own
#: stalls: it shrinks at once to the size that would take that long, and, while a chunk
#: takes under half the target, grows towards it (at most doubling). In the 10,000,000-
#: row scale run on PostgreSQL the chunk after each checkpoint (every ~1 GB of WAL, its
#: full-page images) took 2.0-2.4x its neighbours: at 0.8 of a 0.5 s target those
#: reached 1.0-1.2 s; at 0.6 they stay under 0.8 s (benchmarks/README.md).
AUTO_SAFETY = 0.6
#: Keys listed in ``Report.missing_keys`` and ``Report.conflicts``; the counts are exact.
KEY_SAMPLE = 1_000
#: Backoff before retry n is BACKOFF_S * 2**n (plus up to 50% jitter): 0.05, 0.1, 0.2 …
BACKOFF_S = 0.05
#: Retries of a transaction the database rolled back by itself (a deadlock, Galera's
#: certification, SQLite's busy database): with the backoff above, 1.6 s of waiting.
RETRIES = 5


@dataclass(frozen=True)
class Progress:
    """Where a run is, for a progress bar: rows done of rows total (when known)."""

    rows_done: int
    rows_total: int | None
    changed: int
    chunk: int
    chunk_rows: int
    chunk_seconds: float


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class RunOptions:
    """How to run: chunking, journal, retries, guards. See ``setwise.update``."""

    chunk_rows: int | Literal["auto"] | None = None
    chunk_seconds: float = 0.5
    throttle_seconds: float = 0.0
    journal: bool = True
    journal_prefix: str = "setwise_"
    retries: int = RETRIES
    progress: ProgressCallback | None = None
    resume: str | None = None
    actor: str | None = None
    expect_rows: int | None = None
    max_rows: int | None = None
    stamps: dict[Column[Any], Any] = field(default_factory=dict)
    arguments: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    """The id a new chunked run records, when its writer was named for it beforehand."""

    @property
    def chunked(self) -> bool:
        return self.chunk_rows is not None or self.resume is not None


class Writer(Protocol):
    """What the executor needs of a set-based update, a changeset or a revert."""

    @property
    def target(self) -> Target: ...

    @property
    def kind(self) -> str: ...

    def written_columns(self) -> list[Column[Any]]: ...
    def range_key(self) -> list[Column[Any]]: ...
    def keys_after(self, after: tuple[Any, ...] | None, limit: int) -> Select[Any]: ...
    def counts(self, span: Span, *, would_change: bool = True) -> Select[Any]: ...
    def rows_in(self, span: Span) -> Select[Any]:
        """The number of rows the chunks of ``span`` go through (``ChunkResult.rows``),
        as cheaply as the writer can count them: a progress bar's total."""
        ...

    def journal_rows(self, span: Span) -> Select[Any]: ...
    def direct_update(self, span: Span, stamps: dict[Column[Any], Any]) -> Update: ...
    def matched_keys(self, span: Span) -> Select[Any]: ...
    def missing_keys(self, span: Span, limit: int) -> Select[Any] | None: ...
    def conflict_keys(self, span: Span, limit: int) -> Select[Any] | None: ...


@dataclass
class Totals:
    """Counts accumulated over a run's chunks."""

    matched: int = 0
    changed: int = 0
    conflicted: int = 0
    missing: int = 0
    missing_keys: list[Any] = field(default_factory=list)
    conflicts: list[Any] = field(default_factory=list)
    chunks: int = 0
    retries: int = 0
    rollbacks: int = 0
    slowest_s: float = 0.0

    @property
    def unchanged(self) -> int:
        return self.matched - self.changed - self.conflicted

    def copy(self) -> Totals:
        """A copy that later chunks do not change."""
        return replace(self, missing_keys=list(self.missing_keys), conflicts=list(self.conflicts))


@dataclass(frozen=True)
class ChunkResult:
    matched: int
    changed: int
    conflicted: int
    missing: int
    rows: int


class Executor:
    """Runs one writer with one set of options on one database."""

    def __init__(
        self,
        strategy: Strategy,
        writer: Writer,
        options: RunOptions,
        journal: Journal,
        journal_table: Table | None,
    ) -> None:
        self.strategy = strategy
        self.writer = writer
        self.options = options
        self.journal = journal
        self.journal_table = journal_table
        self.totals = Totals()
        self.run_id: str | None = None
        self.write_by_key = False
        """Write the journal and the rows by key from Python, never reading the journal
        table back: for a caller's transaction that cannot see a journal table created
        after it began (MySQL's REPEATABLE READ, error 1412)."""
        self.on_snapshot = False
        """A one-transaction run reads on a snapshot: its runner retries it whole."""
        self.in_callers_transaction = False
        """A one-transaction run inside the caller's open transaction, whose snapshot may
        be older than the rows its writes find."""

    # -- one transaction ------------------------------------------------------

    def run_once(
        self, connection: Connection, *, lock_matched: bool = False
    ) -> list[tuple[Any, ...]]:
        """Write every row in the caller's transaction, as chunk 1 of a run.

        Returns the matched keys (locked before writing) when ``lock_matched``.
        """
        cap = self._cap(connection)
        counted = self._count(connection, EVERYTHING, would_change=cap is not None)
        self._guard(*counted[:2])
        self._fits_one_transaction(cap, would_change=counted[1])
        matched_keys: list[tuple[Any, ...]] = []
        if lock_matched:
            statement = self.strategy.lock_rows(
                self.writer.matched_keys(EVERYTHING), self.writer.target.table
            )
            matched_keys = [tuple(row) for row in connection.execute(statement)]
        if self.journal_table is not None:
            self.run_id = new_run_id()
        started = time.perf_counter()
        result = self._write_chunk(connection, EVERYTHING, 1, counted)
        seconds = time.perf_counter() - started
        run_id, self.run_id = self.run_id, None  # record once, below: nothing is read back
        self._finish_chunk(connection, 1, None, result, seconds, 0, last=True)
        self.run_id = run_id
        if run_id is not None:
            totals = self.totals
            self._start(
                connection,
                run_id=run_id,
                status=DONE,
                counts={
                    "matched": totals.matched,
                    "changed": totals.changed,
                    "unchanged": totals.unchanged,
                    "missing": totals.missing,
                    "conflicts": totals.conflicted,
                    "chunks": 1,
                },
            )
            self.journal.record_chunk(
                connection, run_id, 1, result.rows, result.changed, seconds, 0
            )
        return matched_keys

    # -- chunk by chunk ---------------------------------------------------------

    def run_chunked(self, connection: Connection, total_rows: int | None = None) -> None:
        """Write chunk by chunk on ``connection`` (not in a transaction), each chunk
        committed on its own; resume after the checkpoint of ``options.resume``."""
        after: tuple[Any, ...] | None = None
        chunk = done = 0
        pace: ChunkInfo | None = None
        if self.options.resume is not None:
            after, chunk, pace = self._resume(connection)
            # Rows the first run went through: matched or missing, as its chunks counted.
            done = self.totals.matched + self.totals.missing
            if self.options.progress is not None and total_rows is None:
                with connection.begin():
                    total_rows = done + self._rows_in(connection, Span(after))
        else:
            total_rows = self._open_run(connection, total_rows)
        sizer = ChunkSizer(
            self.options.chunk_rows, self.options.chunk_seconds, cap=self._row_cap(connection)
        )
        if pace is not None:
            sizer.start_from(pace.rows, pace.seconds)
        try:
            while True:
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
                if self.options.throttle_seconds:
                    time.sleep(self.options.throttle_seconds)
        except KeyboardInterrupt as exc:
            # Inside a chunk, its transaction was rolled back; between chunks, all
            # committed chunks stand. Either way the run can go on from its checkpoint.
            if self.run_id is None:
                raise
            release_frames(exc)
            try:
                unmarked = self._mark(connection, INTERRUPTED)
            except KeyboardInterrupt:  # a second Ctrl-C: stop waiting for the database
                unmarked = f"a second Ctrl-C; run {self.run_id} still says running"
            stopped = RunInterrupted(self.run_id, self.totals.chunks, unmarked=unmarked)
            # INFO: the caller gets the interrupt with this note, and the journal lists the
            # run as interrupted; a WARNING would be printed again, in Python's words,
            # under the command line's own message while logging is unconfigured.
            log.info("%s", stopped)
            stopped.add_note(str(stopped))
            raise stopped from exc

    def _open_run(self, connection: Connection, total_rows: int | None) -> int | None:
        """Count, guard and record the run, retrying like a chunk when the database is busy.

        A guard needs the count of every row the run matches, a scan that joins the
        target; a progress callback alone needs only the rows the chunks will go through
        (``rows_in``: a changeset's staged rows). Each chunk counts its own rows."""
        options = self.options
        guarded = options.expect_rows is not None or options.max_rows is not None
        totalling = options.progress is not None and total_rows is None

        def open_run(connection: Connection) -> int | None:
            counted = total_rows
            if guarded:
                matched, would_change, _, covered = self._count(connection, EVERYTHING)
                self._guard(matched, would_change)
                counted = counted if counted is not None else covered
            elif totalling:
                counted = self._rows_in(connection, EVERYTHING)
            self.run_id = self._start(connection, run_id=self.options.run_id)
            return counted

        return self._retried(connection, "starting the run", open_run)

    def _retried(self, connection: Connection, what: str, work: Callable[[Connection], T]) -> T:
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

    def _taken_by_another(self, connection: Connection, chunk: int) -> bool:
        """Whether another process has gone on with this run past chunk ``chunk - 1``
        (read after this chunk's rollback, in a transaction of its own)."""
        if self.run_id is None:
            return False
        try:
            with connection.begin():
                info = self.journal.get(connection, self.run_id)
        except DBAPIError:
            return False  # the database is failing: the caller's handling says so
        return info.status != RUNNING or info.chunks >= chunk

    def _chunk_with_retries(
        self, connection: Connection, after: tuple[Any, ...] | None, rows: int, chunk: int
    ) -> tuple[Span, ChunkResult, float, int]:
        attempt = 0
        while True:
            started = time.perf_counter()
            # An attempt counts its rows before its COMMIT; one rolled back, even at the
            # COMMIT itself (Galera's certification), must leave the totals as they were.
            before = self.totals.copy()
            try:
                with connection.begin():
                    if self._on_snapshot:
                        connection.exec_driver_sql(self.strategy.snapshot_chunks or "")
                    if self.run_id is not None:
                        self.journal.claim_chunk(connection, self.run_id, chunk)
                    upper = self._upper(connection, after, rows)
                    span = Span(after, upper)
                    counted = self._count(connection, span)
                    result = self._write_chunk(connection, span, chunk, counted)
                    seconds = time.perf_counter() - started
                    checkpoint = upper if upper is not None else after
                    self._finish_chunk(
                        connection, chunk, checkpoint, result, seconds, attempt, last=upper is None
                    )
                self._confirm_committed(connection, chunk)
                self._log_chunk(chunk, result, seconds)
                return span, result, seconds, attempt
            except DBAPIError as exc:
                self.totals = before
                self.totals.rollbacks += 1
                if self._taken_by_another(connection, chunk):
                    # Two processes on one run: this one's chunk lost to the other's (a
                    # serialization failure or deadlock on the run's record), which goes
                    # on with the run; retrying would only lose again.
                    raise RunInUseError(self.run_id or "", chunk) from exc
                if self.strategy.is_retryable(exc) and attempt < self.options.retries:
                    attempt += 1
                    self.totals.retries += 1
                    delay = backoff(attempt)
                    log.warning(
                        "chunk %d of run %s rolled back (%s); retry %d of %d in %.2f s",
                        chunk,
                        self.run_id,
                        first_line(exc),
                        attempt,
                        self.options.retries,
                        delay,
                    )
                    time.sleep(delay)
                    continue
                self._mark(connection, FAILED, error=first_line(exc))
                raise RunError(self.run_id, chunk, exc) from exc
            except SetwiseError as exc:
                self.totals = before
                self.totals.rollbacks += 1
                if not isinstance(exc, RunStateError):  # the run is another process's now
                    self._mark(connection, FAILED)
                raise
            except KeyboardInterrupt:
                self.totals = before
                self.totals.rollbacks += 1
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

    # -- the server's cap on a transaction ------------------------------------------

    def _cap(self, connection: Connection) -> RowCap | None:
        return self.strategy.max_chunk_rows(
            connection, self.writer.target.table, journaled=self.journal_table is not None
        )

    def _row_cap(self, connection: Connection) -> int | None:
        """The most rows a chunk may hold on this server (Galera's write-set caps)."""
        cap = self._cap(connection)
        if cap is None:
            return None
        if isinstance(self.options.chunk_rows, int) and self.options.chunk_rows > cap.rows:
            log.warning(
                "chunks of %d rows asked for; %d at most: %s (%s)",
                self.options.chunk_rows,
                cap.rows,
                cap.setting,
                cap.basis,
            )
        return cap.rows

    def _fits_one_transaction(self, cap: RowCap | None, *, would_change: int) -> None:
        """Refuse, before writing, a run too large for one transaction on this server."""
        if cap is not None and would_change > cap.rows:
            raise TransactionTooLargeError(
                self.writer.target.name,
                would_change=would_change,
                fits=cap.rows,
                setting=cap.setting,
                basis=cap.basis,
            )

    def _confirm_committed(self, connection: Connection, chunk: int) -> None:
        """Where a COMMIT may report success having committed nothing (Galera, after a
        statement passed the write-set cap and its error went unseen), check that the
        chunk's record, written in its transaction, is there."""
        if self.run_id is None or not self.strategy.confirms_commits(connection):
            return
        chunks = self.journal.chunks
        recorded = (
            select(func.count())
            .select_from(chunks)
            .where(chunks.c.run_id == self.run_id, chunks.c.chunk == chunk)
        )
        try:
            with connection.begin():
                found = connection.execute(recorded).scalar_one()
        except DBAPIError as exc:  # the chunk committed (or not): never run it again
            raise RunError(self.run_id, chunk, exc) from exc
        if not found:
            lost = SetwiseError(
                "the database reported the chunk committed, but its journal record is not "
                "there: the transaction was rolled back (on Galera, past wsrep_max_ws_rows "
                "or wsrep_max_ws_size)"
            )
            raise RunError(self.run_id, chunk, lost)

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

    def _guard(self, matched: int, would_change: int) -> None:
        target = self.writer.target.name
        if self.options.max_rows is not None and would_change > self.options.max_rows:
            raise TooManyRowsError(target, limit=self.options.max_rows, would_change=would_change)
        if self.options.expect_rows is not None and matched < self.options.expect_rows:
            raise NotFoundError(target, expected=self.options.expect_rows, matched=matched)

    def _write_chunk(
        self, connection: Connection, span: Span, chunk: int, counted: tuple[int, int, int, int]
    ) -> ChunkResult:
        matched, _would_change, conflicted, total = counted
        # Samples first: once written, a row's version no longer shows what it was.
        if total > matched:
            self._sample(connection, self.writer.missing_keys(span, KEY_SAMPLE), "missing_keys")
        if conflicted:
            self._sample(connection, self.writer.conflict_keys(span, KEY_SAMPLE), "conflicts")
        if self.journal_table is not None:
            changed = self._write_journaled(connection, span, chunk)
        elif self.strategy.supports_update_from:
            changed = connection.execute(
                self.writer.direct_update(span, self.options.stamps)
            ).rowcount
        else:
            changed = self._write_by_key(connection, self._locked_rows(connection, span))
        return ChunkResult(matched, changed, conflicted, total - matched, total)

    def _write_journaled(self, connection: Connection, span: Span, chunk: int) -> int:
        assert self.journal_table is not None and self.run_id is not None
        if self.write_by_key or not self.strategy.supports_update_from:
            rows = self._locked_rows(connection, span)
            if rows:
                names = self._journal_names()[:-2]
                insert_rows = insert(self.journal_table)
                if is_packed(self.journal_table):
                    params = pack_values(rows, names, self.run_id, chunk)
                else:
                    params = [dict(zip(names, row, strict=True)) for row in rows]
                    insert_rows = insert_rows.values(run_id=self.run_id, chunk=chunk)
                connection.execute(insert_rows, params)
            return self._write_by_key(connection, rows)
        copy_rows, apply_rows = self.chunk_statements(span, chunk)
        consistent = self.strategy.single_writer or self._on_snapshot
        if isinstance(apply_rows, Update) and not consistent:
            # The rows the INSERT locked still match, so the UPDATE writes all of them;
            # it writes more only when another writer made new rows match in between.
            # Then the savepoint takes both statements back and the journal join runs.
            with connection.begin_nested() as savepoint:
                inserted, written = self._copy_and_apply(connection, copy_rows, apply_rows)
                if written == inserted or not self.strategy.supports_sane_rowcount:
                    return inserted
                savepoint.rollback()
            log.info("chunk %d: rows changed under it; writing it through its journal", chunk)
            apply_rows = self.update_from_journal(span, chunk)
        inserted, written = self._copy_and_apply(connection, copy_rows, apply_rows)
        if self.strategy.supports_sane_rowcount and written != inserted:
            raise SetwiseError(
                f"chunk {chunk}: the journal holds {inserted} row(s) but the database reported "
                f"{written} updated in {self.writer.target.name!r}; the chunk was rolled back"
            )
        return inserted

    def _copy_and_apply(
        self, connection: Connection, copy_rows: Executable, apply_rows: Executable
    ) -> tuple[int, int]:
        """Run the journal INSERT and the UPDATE; the rows each wrote."""
        assert self.journal_table is not None
        if is_packed(self.journal_table):  # the INSERT returns the rows of each part
            inserted = sum(connection.execute(copy_rows).scalars())
        else:  # SQLAlchemy keeps an INSERT's rowcount only when asked to
            copying = copy_rows.execution_options(preserve_rowcount=True)
            inserted = connection.execute(copying).rowcount
        return inserted, connection.execute(apply_rows).rowcount

    def chunk_statements(self, span: Span, chunk: int) -> list[Executable]:
        """The statements one chunk sends, in order: what a run executes and what a plan
        shows (a keyed path sends the locked SELECT, then an executemany UPDATE by key)."""
        if self.write_by_key or not self.strategy.supports_update_from:
            return [self._locked(self.writer.journal_rows(span)), self._update_by_key()]
        direct = self.writer.direct_update(span, self.options.stamps)
        if self.journal_table is None:
            return [direct]
        rows = self._locked(self.writer.journal_rows(span))
        if is_packed(self.journal_table):
            assert self.run_id is not None
            names = self._journal_names()[:-2]
            copy_rows: Executable = pack(self.journal_table, rows, names, self.run_id, chunk)
        else:
            source = rows.add_columns(literal(self.run_id), literal(chunk))
            copy_rows = insert(self.journal_table).from_select(self._journal_names(), source)
        if self._rewrites_journaled_rows(direct):
            return [copy_rows, direct]
        return [copy_rows, self.update_from_journal(span, chunk)]

    def _rewrites_journaled_rows(self, direct: Update) -> bool:
        """True when the writer's own UPDATE, sent right after the journal INSERT, writes
        the rows and values the INSERT recorded: then it runs instead of a join of the
        journal, which cost a third of the UPDATE on SQLite and a sixth on PostgreSQL
        (benchmarks/README.md).

        It must compute the same rows and values again (no now(), random(), unknown
        SQL), and read nothing another writer could change in between: on a database
        with one writer at a time nothing can, and on a chunk's snapshot both read the
        same data (a row changed since fails the UPDATE); elsewhere the INSERT locked
        the rows it read, so the UPDATE may read only those (no other table, no
        subquery)."""
        if not _repeatable(direct):
            return False
        if self.strategy.single_writer or self._on_snapshot:
            return True
        target, private = self.writer.target.table, self.strategy.stage_schema
        for element in iterate(direct):
            if isinstance(element, Table):
                if element._deannotate() is not target and element.schema != private:
                    return False
            elif getattr(element, "is_selectable", False) and not isinstance(
                element, FunctionElement
            ):
                return False
        return True

    @property
    def strategy_name(self) -> str:
        """How the run writes, for reports: database, kind, journal, keyed or not."""
        parts = [self.strategy.name, self.writer.kind]
        parts.append("journaled" if self.journal_table is not None else "no journal")
        if self.write_by_key or not self.strategy.supports_update_from:
            parts.append("by key")
        return " / ".join(parts)

    def update_from_journal(self, span: Span, chunk: int) -> Update:
        """The UPDATE that writes a chunk's rows from its journal rows: exactly what the
        journal recorded, whatever changed since the INSERT."""
        assert self.journal_table is not None
        table = Journal.changes(self.journal_table)
        target = self.writer.target
        values: dict[Column[Any], Any] = {
            c: table.c[new_column(c.name, self.strategy)] for c in self.writer.written_columns()
        }
        journal_key = [table.c[key_column(c.name, self.strategy)] for c in target.identity]
        return (
            sql_update(target.table)
            .where(
                table.c.run_id == self.run_id,
                # The span finds the chunk's rows by the journal's primary key (run, key…):
                # no index of its own on (run, chunk) to keep up on every journal row.
                *span.criteria(journal_key),
                table.c.chunk == chunk,
                *(c == k for c, k in zip(target.identity, journal_key, strict=True)),
            )
            .values({**values, **self.options.stamps})
        )

    def _journal_names(self) -> list[str]:
        target = self.writer.target
        names = [key_column(c.name, self.strategy) for c in target.identity]
        names += [
            name
            for c in self.writer.written_columns()
            for name in (old_column(c.name, self.strategy), new_column(c.name, self.strategy))
        ]
        return [*names, "run_id", "chunk"]

    @property
    def _on_snapshot(self) -> bool:
        """Chunks run on a snapshot (``Strategy.snapshot_chunks``): their own
        transactions, which retry when a row they write changed since the snapshot. A
        one-transaction run does when its runner set ``on_snapshot`` (and retries whole)."""
        if self.strategy.snapshot_chunks is None:
            return False
        return self.options.chunked or self.on_snapshot

    def _locked(self, statement: Select[Any]) -> Select[Any]:
        if self._on_snapshot:
            # Nothing is locked, so nothing needs the key order that keeps two runs'
            # locks from deadlocking: without it a run over the whole table reads it
            # by a plain scan rather than its key index (0.36 s of 0.64 s at 1,000,000
            # rows on PostgreSQL).
            return statement.order_by(None)
        return self.strategy.lock_rows(statement, self.writer.target.table)

    def _locked_rows(self, connection: Connection, span: Span) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in connection.execute(self._locked(self.writer.journal_rows(span)))]

    def _update_by_key(self) -> Update:
        target = self.writer.target
        return (
            sql_update(target.table)
            .where(*(c == bindparam(f"k_{c.name}") for c in target.identity))
            .values(
                {c: bindparam(f"v_{c.name}") for c in self.writer.written_columns()}
                | dict(self.options.stamps)
            )
        )

    def _write_by_key(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        """Without UPDATE … FROM: one executemany by key of the rows' new values."""
        if not rows:
            return 0
        target = self.writer.target
        columns = self.writer.written_columns()
        width = len(target.identity)
        params = []
        for row in rows:
            keys = {f"k_{c.name}": row[i] for i, c in enumerate(target.identity)}
            news = {f"v_{c.name}": row[width + 2 * i + 1] for i, c in enumerate(columns)}
            params.append(keys | news)
        connection.execute(self._update_by_key(), params)
        return len(rows)

    def _sample(self, connection: Connection, statement: Select[Any] | None, into: str) -> None:
        found: list[Any] = getattr(self.totals, into)
        if statement is None or len(found) >= KEY_SAMPLE:
            return
        for row in connection.execute(self._current(statement.limit(KEY_SAMPLE - len(found)))):
            found.append(row[0] if len(row) == 1 else tuple(row))

    def _current(self, statement: Select[Any]) -> Select[Any]:
        """``statement`` reading the rows the write will find. In the caller's transaction
        a plain read may show its snapshot, older than the rows an UPDATE or a locking
        read sees (``Strategy.plain_reads_lag_writes``): a row changed or deleted since
        would be counted as it was, a conflict as unchanged. There it reads with a lock."""
        if self.in_callers_transaction and self.strategy.plain_reads_lag_writes:
            return self.strategy.lock_rows(statement, self.writer.target.table)
        return statement

    # -- the run's record -------------------------------------------------------

    def _start(self, connection: Connection, **recorded: Any) -> str:
        return self.journal.start(
            connection,
            **recorded,
            target=self.writer.target,
            kind=self.writer.kind,
            columns=[c.name for c in self.writer.written_columns()],
            arguments={**self.options.arguments, "journal": self.journal_table is not None},
            actor=self.options.actor,
            reverts=self.options.arguments.get("reverts"),
        )

    def _finish_chunk(
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
        totals = self.totals
        totals.matched += result.matched
        totals.changed += result.changed
        totals.conflicted += result.conflicted
        totals.missing += result.missing
        totals.chunks += 1
        totals.slowest_s = max(totals.slowest_s, seconds)
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

    def _resume(
        self, connection: Connection
    ) -> tuple[tuple[Any, ...] | None, int, ChunkInfo | None]:
        """Take up run ``options.resume``: its checkpoint, its chunk count, and its last
        chunk (the pace an automatic chunk size goes on from)."""
        run_id = self.options.resume
        assert run_id is not None

        def take_up(connection: Connection) -> tuple[RunInfo, ChunkInfo | None]:
            info = self.journal.get(connection, run_id)
            self.journal.refuse(info, "resume")
            self._check_same_run(info)
            self.journal.take_up(connection, info)
            return info, self.journal.last_chunk(connection, run_id)

        info, last = self._retried(connection, f"resuming run {run_id}", take_up)
        self.run_id = run_id
        totals = self.totals
        totals.matched, totals.changed = info.matched, info.changed
        totals.conflicted, totals.missing = info.conflicts, info.missing
        totals.chunks, totals.retries = info.chunks, info.retries
        checkpoint = info.checkpoint_of(self.writer.target.key)
        log.info("resuming run %s after chunk %d (key %r)", run_id, info.chunks, checkpoint)
        return checkpoint, info.chunks, last

    def _check_same_run(self, info: RunInfo) -> None:
        """Refuse to resume ``info`` with another writer: another kind of run, another
        table, other arguments."""
        if info.table != self.writer.target.name or info.kind != self.writer.kind:
            message = (
                f"run {info.run_id} was {_a(info.kind)} of {info.table!r}, not "
                f"{_a(self.writer.kind)} of {self.writer.target.name!r}"
            )
            if info.reverts is not None:  # a revert resumes as a revert of its run
                message += (
                    f": resume it with setwise.revert(bind, {info.reverts!r}, "
                    f"resume={info.run_id!r}) (`setwise revert {info.reverts} --resume "
                    f"{info.run_id}`)"
                )
            raise SetwiseError(message)
        recorded = {k: v for k, v in info.arguments.items() if k != "journal"}
        if recorded != _comparable(self.options.arguments):
            raise SetwiseError(
                f"run {info.run_id} ran with other arguments ({info.arguments}); resume it "
                "with the same statement or changes"
            )

    def _mark(self, connection: Connection, status: str, error: str | None = None) -> str | None:
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
            self._retried(
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
            self.options.progress(
                Progress(done, total, self.totals.changed, chunk, result.rows, seconds)
            )


class ChunkSizer:
    """A fixed chunk size, or one that adapts so each chunk takes about ``seconds``."""

    def __init__(
        self, rows: int | Literal["auto"] | None, seconds: float, cap: int | None = None
    ) -> None:
        self.auto = rows == "auto" or rows is None
        self.rows = AUTO_START_ROWS if self.auto else int(rows)  # type: ignore[arg-type]
        self.seconds = seconds
        if not self.auto and self.rows < 1:
            raise SetwiseError(f"chunk_rows must be a positive number or 'auto', not {rows!r}")
        self.cap = cap
        """The most rows a chunk may hold: the server's cap on a transaction, if any."""
        if cap is not None:
            self.rows = min(self.rows, cap)

    def start_from(self, rows: int, seconds: float) -> None:
        """Go on at the pace of an earlier chunk (a resumed run's last one) instead of
        starting small again."""
        if self.auto and rows > 0:
            self.rows = rows if self.cap is None else min(rows, self.cap)
            self.record(self.rows, seconds)

    def record(self, rows: int, seconds: float) -> None:
        """Grow while chunks are fast; shrink at once when one is slow."""
        if not self.auto or rows < self.rows or seconds <= 0:
            return
        if seconds > self.seconds:
            fitted = self.rows * self.seconds / seconds * AUTO_SAFETY
            self.rows = max(AUTO_MIN_ROWS, int(fitted))
        elif seconds < self.seconds / 2:
            fitted = self.rows * self.seconds / seconds * AUTO_SAFETY
            self.rows = min(AUTO_MAX_ROWS, self.rows * 2, int(fitted))
        if self.cap is not None:
            self.rows = min(self.rows, self.cap)


#: Functions that give the same result for the same arguments in every statement. Any
#: other (now(), random(), a user's function) might not, and text setwise cannot read
#: might hold one: an UPDATE with those is not run twice in the hope of one result.
DETERMINISTIC_FUNCTIONS = frozenset(
    {"abs", "coalesce", "ifnull", "nullif", "lower", "upper", "length", "substr", "trim"}
    | {"ltrim", "rtrim", "replace", "round", "max", "min", "count", "sum", "avg"}
    | {"cast", "convert"}  # the stored-value comparisons of dialects/ (MySQL's CONVERT … USING)
)


def _repeatable(statement: Update) -> bool:
    """True when ``statement`` finds the same rows and computes the same values each
    time it runs over the same data."""
    for element in iterate(statement):
        if isinstance(element, TextClause):
            return False
        name = str(getattr(element, "name", "")).lower()
        if isinstance(element, FunctionElement) and name not in DETERMINISTIC_FUNCTIONS:
            return False
    return True


def backoff(attempt: int) -> float:
    """Seconds to wait before retry ``attempt``: doubling, with jitter."""
    return float(BACKOFF_S * 2**attempt * (1 + random.random() / 2))


def retried(
    connection: Connection,
    strategy: Strategy,
    work: Callable[[Connection], T],
    *,
    retries: int,
    what: str,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """``work`` in a transaction of its own on ``connection`` (outside one), run again
    after a rollback the database resolves by itself (``Strategy.is_retryable``: a
    deadlock, a lock wait, SQLite's busy database), up to ``retries`` times with backoff."""
    attempt = 0
    while True:
        try:
            with connection.begin():
                return work(connection)
        except DBAPIError as exc:
            if not strategy.is_retryable(exc) or attempt >= retries:
                raise
            attempt += 1
            if on_retry is not None:
                on_retry()
            delay = backoff(attempt)
            log.warning(
                "%s was rolled back (%s); retry %d of %d in %.2f s",
                what,
                first_line(exc),
                attempt,
                retries,
                delay,
            )
            time.sleep(delay)


def release_frames(error: BaseException) -> None:
    """Let go of what the frames of ``error``'s traceback (and of the errors it chains)
    hold in their local variables; the traceback still shows where each line was.

    A KeyboardInterrupt inside a statement leaves SQLAlchemy closing the connection
    without closing the statement's cursor. Since Python 3.11, sqlite3 then keeps the
    database open behind the closed connection, its transaction and write lock with it,
    until that cursor is freed, and the traceback's frames hold it: until then no other
    connection could write (mark the run interrupted) and gets "database is locked"."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__


def _a(kind: str) -> str:
    """``kind`` (apply, update, revert, delete) with its article."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


def _comparable(arguments: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(arguments, default=str)))


def first_line(error: BaseException) -> str:
    """The first line of an error's message (the driver's, for a DBAPIError)."""
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


__all__ = ["Executor", "Progress", "ProgressCallback", "RunOptions", "Writer", "key_in"]
