"""Control a running run from another process: pause, continue, stop, tune; and read
what it was told and what it says back (``run_control``).

Each call is one compare-and-set of the run's control row (``setwise.journal.controls``),
taken by the process running the run between two chunks (``setwise.engine.control``).
Refused with ``RunStateError`` when the run is not running (or is stopping already).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from setwise.engine.retry import RETRIES, retried
from setwise.engine.transaction import Bind, dialect_of, engine_of, reading_connection
from setwise.errors import InvalidArgumentError
from setwise.journal import controls
from setwise.journal.changes import Journal
from setwise.journal.controls import RunControl
from setwise.journal.states import CONTINUE, PAUSE, STOP, TUNE


def pause(bind: Bind, run_id: str, *, journal_prefix: str = "setwise_") -> RunControl:
    """Pause running run ``run_id`` after its current chunk, until ``continue_`` (or
    ``stop``). Its transactions are all committed while it waits: it holds no lock."""
    return _send(bind, run_id, PAUSE, journal_prefix)


def continue_(bind: Bind, run_id: str, *, journal_prefix: str = "setwise_") -> RunControl:
    """Let paused run ``run_id`` go on (``setwise continue RUN``); refused when it is
    not paused."""
    return _send(bind, run_id, CONTINUE, journal_prefix)


def stop(bind: Bind, run_id: str, *, journal_prefix: str = "setwise_") -> RunControl:
    """Stop running run ``run_id`` after its current chunk: it is marked
    ``interrupted``, as after a Ctrl-C between chunks, and resumes the same way
    (``resume=run_id``). The process running it raises ``RunInterrupted`` (``.by`` is
    ``"setwise stop"``)."""
    return _send(bind, run_id, STOP, journal_prefix)


def tune(
    bind: Bind,
    run_id: str,
    *,
    chunk_seconds: float | None = None,
    throttle_seconds: float | None = None,
    chunk_rows: int | None = None,
    journal_prefix: str = "setwise_",
) -> RunControl:
    """Change how running run ``run_id`` goes on, from its next chunk: ``chunk_seconds``
    sizes its chunks to take about that long (from the size they have now, as
    ``chunk_rows="auto"`` does), ``chunk_rows`` fixes their size, ``throttle_seconds``
    is the pause between them. A resume starts again from its own arguments."""
    given = {
        "chunk_seconds": chunk_seconds,
        "throttle_seconds": throttle_seconds,
        "chunk_rows": chunk_rows,
    }
    if all(value is None for value in given.values()):
        raise InvalidArgumentError(
            "tune needs chunk_seconds, throttle_seconds or chunk_rows",
            argument="chunk_seconds",
            value=None,
        )
    least = {"chunk_seconds": 0.0, "throttle_seconds": 0.0, "chunk_rows": 1}
    for name, value in given.items():
        too_small = name == "chunk_seconds" and value is not None and value <= 0
        if value is not None and (value < least[name] or too_small):
            more = "more than 0" if name == "chunk_seconds" else f"at least {least[name]}"
            raise InvalidArgumentError(
                f"{name} must be {more}, not {value!r}", argument=name, value=value
            )
    return _send(bind, run_id, TUNE, journal_prefix, **given)


def run_control(bind: Bind, run_id: str, *, journal_prefix: str = "setwise_") -> RunControl | None:
    """What run ``run_id`` was told and says back: its pending command, tuned values,
    why it waits (``paused``) and what its verify found (``verified``); None for a run
    with no control row (one transaction, never verified, or an earlier setwise's)."""
    journal = Journal(journal_prefix)
    with reading_connection(bind) as connection, dialect_of(bind).causal_reads(connection):
        journal.get(connection, run_id)  # NotFoundError for an unknown run
        if not connection.dialect.has_table(connection, journal.control.name):
            return None
        return controls.read(connection, journal, run_id)


def _send(
    bind: Bind, run_id: str, action: str, journal_prefix: str, **tuned: float | int | None
) -> RunControl:
    journal = Journal(journal_prefix)
    strategy = dialect_of(bind)
    engine = engine_of(bind)
    with engine.begin() as connection:
        journal.get(connection, run_id)  # NotFoundError for an unknown run, before any DDL
        journal._create(connection, [journal.control])  # an earlier setwise made none
    work: Callable[[Connection], RunControl] = lambda c: controls.send(  # noqa: E731
        c, journal, run_id, action, **tuned
    )
    with engine.connect() as connection, strategy.causal_reads(connection):
        return retried(connection, strategy, work, retries=RETRIES, what=f"{action} run {run_id}")
