"""What the journal knows: create its tables, list runs, look at one run."""

from __future__ import annotations

from setwise.journal import ChunkInfo, Journal, RunInfo
from setwise.target import TargetLike, resolve_target
from setwise.transaction import Bind, dialect_of, engine_of, reading_connection


def init(bind: Bind, *targets: TargetLike, journal_prefix: str = "setwise_") -> None:
    """Create the journal tables now (for ``targets``' journals too), so that no run
    creates them later: the way to journal runs inside transactions that began
    before the tables existed (MySQL/MariaDB cannot read such tables, error 1412)."""
    journal = Journal(journal_prefix)
    strategy = dialect_of(bind)
    with reading_connection(bind) as connection:
        resolved = [resolve_target(t, connection) for t in targets]
    engine = engine_of(bind)
    for target in resolved:
        journal.ensure(engine, strategy, target)
    if not resolved:
        with engine.begin() as connection:
            journal._create(connection, [journal.runs, journal.chunks])


def runs(bind: Bind, *, limit: int = 100, journal_prefix: str = "setwise_") -> list[RunInfo]:
    """The most recent runs, newest first."""
    with reading_connection(bind) as connection, dialect_of(bind).causal_reads(connection):
        return Journal(journal_prefix).recent(connection, limit)


def run_details(
    bind: Bind, run_id: str, *, journal_prefix: str = "setwise_"
) -> tuple[RunInfo, list[ChunkInfo]]:
    """One run and its chunks, in order (``NotFoundError`` for an unknown id)."""
    journal = Journal(journal_prefix)
    with reading_connection(bind) as connection, dialect_of(bind).causal_reads(connection):
        return journal.get(connection, run_id), journal.chunk_list(connection, run_id)
