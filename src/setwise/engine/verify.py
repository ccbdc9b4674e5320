"""Verify a run: read the rows it wrote again, and compare them with what it wrote.

After the run (its last chunk committed; a one-transaction run in its transaction),
every row of the run's journal is joined to its row in the table by key, and each
column the run wrote is compared with the journal's new value, byte for byte as the
column stores it (``StoredComparison.differs``, the test a revert makes before it
writes: ``writers.reversal``). A row whose value differs, or that is gone, was changed
behind the run's back (a trigger, another writer, a lost write). The journal holds the
rows the run changed: a row it left alone because it held the new value already is
not read again.

What it found is kept with the run (``{prefix}control``: ``setwise show`` says "verified
clean"), returned in ``Report.verified``, and, when a row differs, raised as
``VerificationError``: a run whose verify failed never looks clean.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, func, select

from setwise.dialects import Strategy
from setwise.engine.transaction import Bind, atomic, dialect_of
from setwise.errors import InvalidArgumentError, Mismatch, VerificationError
from setwise.journal import controls
from setwise.journal.changes import Journal
from setwise.report import Report, Verification
from setwise.target import key_value, resolve_target
from setwise.writers.keys import EVERYTHING
from setwise.writers.reversal import Reversal

#: Mismatches listed (by key and column); ``Verification.mismatched`` is exact.
MISMATCH_SAMPLE = 1_000


def refuse_unjournaled(verify: bool, journal: bool) -> None:
    """``InvalidArgumentError`` for ``verify`` without a journal: the journal's new
    values are what the rows are compared with."""
    if verify and not journal:
        raise InvalidArgumentError(
            "verify=True compares the rows with the values the journal recorded: it "
            "needs journal=True",
            argument="verify",
            value=True,
        )


def verified(bind: Bind, report: Report, *, journal_prefix: str = "setwise_") -> Report:
    """``report`` with what verifying its run found (``Report.verified``), kept with the
    run; ``VerificationError`` (carrying that report) when a row differs."""
    if report.run_id is None:  # nothing was written, nothing to compare
        return replace(report, verified=Verification(0, 0))
    journal = Journal(journal_prefix)
    strategy = dialect_of(bind)
    with atomic(bind, strategy) as scope, strategy.causal_reads(scope.connection):
        found = compare(scope.connection, strategy, journal, report.run_id)
        controls.note_verified(
            scope.connection,
            journal,
            report.run_id,
            {"rows": found.rows, "mismatched": found.mismatched},
        )
    checked = replace(report, verified=found)
    if not found.clean:
        raise VerificationError(
            report.table,
            run_id=report.run_id,
            mismatches=found.mismatches,
            total=found.mismatched,
            report=checked,
        )
    return checked


def compare(
    connection: Connection, strategy: Strategy, journal: Journal, run_id: str
) -> Verification:
    """The rows run ``run_id`` wrote, compared with what its journal says it wrote."""
    info = journal.get(connection, run_id)
    target = resolve_target(info.table, connection)
    changes = Journal.changes(journal.changes_table(target, strategy))
    reversal = Reversal.of_run(connection, target, changes, info, strategy)
    rows = connection.execute(
        select(func.count()).select_from(changes).where(changes.c.run_id == run_id)
    ).scalar_one()
    differ = connection.execute(reversal.conflict_count()).scalar_one()
    gone_keys = reversal.missing_keys(EVERYTHING, MISMATCH_SAMPLE).limit(None).subquery()
    gone = connection.execute(select(func.count()).select_from(gone_keys)).scalar_one()
    mismatches: list[Mismatch] = []
    width = len(target.key)
    if differ:
        for row in connection.execute(reversal.conflict_details(MISMATCH_SAMPLE)):
            mismatches += _row_mismatches(row, width, [c.name for c in reversal.columns])
    if gone:
        for row in connection.execute(reversal.missing_keys(EVERYTHING, MISMATCH_SAMPLE)):
            mismatches.append(Mismatch(key_value(row[:width]), None, None, None))
    return Verification(int(rows), int(differ) + int(gone), tuple(mismatches[:MISMATCH_SAMPLE]))


def _row_mismatches(row: Any, width: int, columns: list[str]) -> list[Mismatch]:
    """A differing row's mismatches: the columns whose values differ as Python reads
    them (every column, when none does as Python reads them: the database told them
    apart byte for byte, ``1.10`` from ``1.1``)."""
    key = key_value(row[:width])
    pairs = [(name, row[width + 2 * i], row[width + 2 * i + 1]) for i, name in enumerate(columns)]
    differing = [(name, meant, now) for name, meant, now in pairs if meant != now] or pairs
    return [Mismatch(key, name, meant, now) for name, meant, now in differing]
