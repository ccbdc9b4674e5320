"""Between two chunks of a run: its throttle, then the commands other processes gave it.

Another terminal controls a running run through its row of ``{prefix}control``
(``setwise.journal.controls``; ``setwise pause|continue|stop|tune RUN``). After a
chunk, and its throttle, the run reads that row (one read by primary key, in a
transaction of its own; at most every ``READ_EVERY_SECONDS``) and:

- takes the tuned chunk size, time target or throttle from the next chunk on;
- on ``pause``, waits (reading the row again every ``PAUSE_POLL_SECONDS``) until a
  ``continue`` or a ``stop``, saying why it waits in the row and in its progress;
- on ``stop``, stops before its next chunk: the executor marks the run
  ``interrupted`` as after a Ctrl-C between chunks, and it resumes the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from sqlalchemy import Connection

from setwise.engine.options import RunOptions
from setwise.engine.sizing import ChunkSizer
from setwise.engine.waiting import wait
from setwise.journal import controls
from setwise.journal.controls import RunControl
from setwise.journal.records import RunRecords
from setwise.journal.states import PAUSE, RUNNING, STOP
from setwise.report import Progress

log = logging.getLogger("setwise")

T = TypeVar("T")
Retried = Callable[[Connection, str, Callable[[Connection], T]], T]

#: How often a paused run reads its control row again: a ``continue`` or ``stop`` takes
#: effect within this time. One read by primary key twice a second is nothing to the
#: database, and half a second is quicker than a person looks back at the other terminal.
PAUSE_POLL_SECONDS = 0.5

#: The least time between two reads of the control row by a run that is not paused: a
#: run of small fast chunks reads it every this often, not after every chunk. One read
#: took 0.35-1.9 ms (bench_control, 100,000 rows in 1,000-row chunks of 8-25 ms each:
#: 1.5-8% of the run when read after every chunk); a chunk of the default 0.5 s target
#: is read after every time. A command still takes effect within a fifth of a second
#: plus a chunk, quicker than a person looks back at the other terminal.
READ_EVERY_SECONDS = 0.2

#: What a paused run says it waits for (``Progress.paused``, ``setwise show``).
PAUSED_BY_COMMAND = "setwise pause"

#: What stopped a run stopped from another terminal (``RunInterrupted.by``).
STOPPED_BY = "setwise stop"


class StopRequested(KeyboardInterrupt):
    """``setwise stop`` asked the run to stop: raised between chunks, where nothing is
    in progress, and handled as a Ctrl-C there (``Executor.run_chunked``)."""


class Controller:
    """The throttle and the commands of one chunked run, between its chunks."""

    def __init__(self, records: RunRecords, options: RunOptions, retried: Retried[object]):
        """``retried``: runs a read in a transaction of its own, retried while the
        database is busy (``Ledger.retried``)."""
        self.records = records
        self.options = options
        self.retried = retried
        self.throttle_seconds = options.throttle_seconds
        """The pause between chunks: as given, until a ``tune`` changes it."""
        self.applied: dict[str, float | int] = {}
        self.last: Progress | None = None
        self.total_said = False
        self.read_at = -READ_EVERY_SECONDS  # the first chunk's end reads it

    def progress(self, step: Progress) -> None:
        """Report ``step`` to the run's progress callback, and keep it for a pause."""
        self.last = step
        if self.options.progress is not None:
            self.options.progress(step)

    def between_chunks(self, connection: Connection, run_id: str, sizer: ChunkSizer) -> None:
        """Sleep the throttle, then do what run ``run_id``'s control row says: tune
        ``sizer`` and the throttle, wait while paused, raise ``StopRequested`` to stop."""
        if self.throttle_seconds:
            wait(self.throttle_seconds)
        if not self.total_said and self.last is not None and self.last.rows_total is not None:
            total = self.last.rows_total
            self.total_said = True
            self.retried(
                connection,
                f"noting run {run_id}'s rows",
                lambda c: controls.note_total(c, self.records, run_id, total),
            )
        if time.monotonic() - self.read_at < READ_EVERY_SECONDS:
            return
        found = self._read(connection, run_id)
        if found is None:
            return
        self._tune(run_id, found, sizer)
        if found.command == PAUSE:
            found = self._wait(connection, run_id, sizer)
        if found.command == STOP:
            log.info("run %s: stopping, as `setwise stop` asked", run_id)
            raise StopRequested(run_id)

    def _wait(self, connection: Connection, run_id: str, sizer: ChunkSizer) -> RunControl:
        """Wait while the row says pause; the row that ended the wait."""
        log.info("run %s paused by `setwise pause`; `setwise continue %s` goes on", run_id, run_id)
        self.say_paused(connection, run_id, PAUSED_BY_COMMAND)
        found: RunControl | None
        while True:
            wait(PAUSE_POLL_SECONDS)
            found, status = self._read_waiting(connection, run_id)
            if found is None or found.command != PAUSE or status != RUNNING:
                # Abandoned while paused: its next chunk's claim finds it so, and stops.
                break
            self._tune(run_id, found, sizer)
        self.say_paused(connection, run_id, None)
        if found is None:  # the row is gone: nothing holds the run any more
            return RunControl(run_id, None, None, None, None, None, None, None, None)
        self._tune(run_id, found, sizer)
        if found.command is None:
            log.info("run %s goes on", run_id)
        return found

    def say_paused(
        self, connection: Connection, run_id: str, reason: str | None, *, report: bool = True
    ) -> None:
        """Say why run ``run_id`` waits now (None: it goes on): in its control row, for
        ``setwise show --follow`` in another terminal, and (``report``) in its progress
        (``Progress.paused``). For any wait between chunks: a pause, a health signal."""
        self.retried(
            connection,
            f"noting run {run_id} paused",
            lambda c: controls.note_paused(c, self.records, run_id, reason),
        )
        if report and self.last is not None:
            self.progress(replace(self.last, paused=reason))

    def _read(self, connection: Connection, run_id: str) -> RunControl | None:
        self.read_at = time.monotonic()
        found = self.retried(
            connection,
            f"reading the commands to run {run_id}",
            lambda c: controls.read(c, self.records, run_id),
        )
        assert found is None or isinstance(found, RunControl)
        return found

    def _read_waiting(self, connection: Connection, run_id: str) -> tuple[RunControl | None, str]:
        """The control row, and the run's status: a paused run may be abandoned."""

        def read(c: Connection) -> tuple[RunControl | None, str]:
            return controls.read(c, self.records, run_id), self.records.get(c, run_id).status

        found = self.retried(connection, f"reading the commands to run {run_id}", read)
        assert isinstance(found, tuple)
        return found

    def _tune(self, run_id: str, found: RunControl, sizer: ChunkSizer) -> None:
        """Take the values the row was tuned to that this run has not taken yet."""
        for name, value in found.tuned().items():
            if self.applied.get(name) == value:
                continue
            self.applied[name] = value
            log.info("run %s tuned: %s = %s", run_id, name, value)
            if name == "chunk_rows":
                sizer.fixed(int(value))
            elif name == "chunk_seconds":
                sizer.aim(float(value))
            else:
                self.throttle_seconds = float(value)
