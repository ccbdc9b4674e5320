"""What a run did, as numbers a person or a program can read: as it goes, and at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from setwise.errors import Mismatch

#: The phases a run reports through its progress callback (``Progress.phase``).
READING = "reading and checking"
"""A changeset's rows read and checked, and sent to the staging table: ``rows_done``
counts the rows read so far, ``rows_total`` is None."""
STAGING = "staging"
"""The staged rows made ready (indexed, checked for duplicate keys; or loaded by the
database from the file itself): ``rows_done`` is every row read."""
WRITING = {"apply": "merging", "update": "updating", "revert": "reverting", "delete": "deleting"}
"""The phase of a run's chunks, by the kind of run: ``chunk`` is the chunk just done."""


@dataclass(frozen=True)
class Progress:
    """Where a run is, for a progress bar: rows done of rows total (when known).

    ``phase`` says what the run is doing (``READING``, ``STAGING``, then the run's
    ``WRITING`` phase, chunk by chunk), ``table`` the table it changes; ``chunk`` is 0
    before the first chunk."""

    rows_done: int
    rows_total: int | None
    changed: int
    chunk: int
    chunk_rows: int
    chunk_seconds: float
    phase: str = "merging"
    table: str = ""
    paused: str | None = None
    """Why the run waits before its next chunk now (``"setwise pause"``, a health
    signal's reason: ``"replica lag 4.2 s > 1 s"``); None while it writes."""

    @property
    def chunks_about(self) -> int | None:
        """About how many chunks the run will take, at the pace of the last one (None
        before the first chunk, or with no total)."""
        if not self.chunk or self.rows_total is None or self.chunk_rows <= 0:
            return None
        left = max(self.rows_total - self.rows_done, 0)
        return self.chunk + -(-left // self.chunk_rows)


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk did: the rows it matched, changed, found in conflict or missing
    (keys with no row, inserted or not), the rows it went through, and of the missing
    the rows it inserted."""

    matched: int
    changed: int
    conflicted: int
    missing: int
    rows: int
    inserted: int = 0


@dataclass
class Totals:
    """Counts accumulated over a run's chunks: the Report's numbers while it runs."""

    matched: int = 0
    changed: int = 0
    conflicted: int = 0
    missing: int = 0
    """Keys with no row, not inserted."""
    inserted: int = 0
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

    def report(
        self,
        table: str,
        strategy: str,
        elapsed_s: float,
        *,
        run_id: str | None,
        rows: tuple[dict[str, Any], ...],
        retries: int,
    ) -> Report:
        """The Report of a run with these totals; ``retries``: times the whole run
        started again (a one-transaction run on a snapshot), else the chunks' own."""
        return Report(
            table=table,
            strategy=strategy,
            matched=self.matched,
            changed=self.changed,
            unchanged=self.unchanged,
            elapsed_s=elapsed_s,
            run_id=run_id,
            missing=self.missing,
            inserted=self.inserted,
            missing_keys=tuple(self.missing_keys),
            conflicts=tuple(self.conflicts),
            chunks=self.chunks,
            retries=retries or self.retries,
            rollbacks=retries or self.rollbacks,
            slowest_chunk_s=self.slowest_s,
            rows=rows,
        )


@dataclass(frozen=True)
class Report:
    """The outcome of ``update`` or ``apply``.

    ``matched`` rows satisfied the filter (or had a key in the changeset); of those,
    ``changed`` were written and ``unchanged`` already held the new values and were
    left alone. ``rows`` holds the ``returning`` columns of every matched row, in key
    order, when they were asked for. ``inserted``: rows of a changeset whose keys had
    no row, inserted (``apply(..., missing="insert")``); they count in neither
    ``matched`` nor ``missing``.
    """

    table: str
    strategy: str
    matched: int
    changed: int
    unchanged: int
    elapsed_s: float
    run_id: str | None = None
    missing: int = 0
    missing_keys: tuple[Any, ...] = ()
    conflicts: tuple[Any, ...] = ()
    chunks: int = 1
    retries: int = 0
    """Chunks run again after a deadlock, serialization failure or lock timeout."""
    rollbacks: int = 0
    slowest_chunk_s: float = 0.0
    rows: tuple[dict[str, Any], ...] = ()
    inserted: int = 0
    """Rows inserted for keys that had none (``missing="insert"``)."""
    deleted: int = 0
    """Rows deleted (``setwise.delete``: as many as ``matched`` and ``changed``)."""
    verified: Verification | None = None
    """What ``verify=True`` found after the run; None when the run was not verified."""


@dataclass(frozen=True)
class Verification:
    """The rows a run wrote, read again after it and compared, byte for byte, with the
    values it wrote (the journal's new values): ``rows`` compared, ``mismatched`` of them
    that differ or are gone (exact), and ``mismatches`` by key and column (bounded)."""

    rows: int
    mismatched: int
    mismatches: tuple[Mismatch, ...] = ()

    @property
    def clean(self) -> bool:
        """Every row the run wrote holds what it wrote."""
        return self.mismatched == 0


@dataclass(frozen=True)
class PlanWarning:
    """Something a careful engineer would point out before the run."""

    kind: str
    """A stable name for programs: "no-where", "unindexed-filter", "unique-column",
    "key-not-unique", "large-share", "long-lock"."""

    message: str


@dataclass(frozen=True)
class ColumnChange:
    """One column of a row a plan would change: the value it holds, the value it would get."""

    column: str
    old: Any
    new: Any


@dataclass(frozen=True)
class PlannedRow:
    """A row a plan would change: its key (a tuple for a composite key) and the columns
    whose values would change."""

    key: Any
    changes: tuple[ColumnChange, ...]


@dataclass(frozen=True)
class Plan:
    """What ``update`` or ``apply`` would do, found without writing anything.

    ``matched`` rows satisfy the filter (or have a key in the changeset);
    ``would_change`` of them hold a value the run would replace, the other
    ``unchanged`` are left alone (``conflicts``: keys whose version moved, not
    written). ``sql`` holds the statements the first chunk sends, compiled for the
    database with placeholders where values go; ``explain`` is the database's own plan
    for the UPDATE of every row. ``chunks`` is exact for a fixed ``chunk_rows`` and an
    estimate (``chunks_estimated``) for "auto". ``sample`` holds the first rows that
    would change, in key order, old and new value per column (``plan(sample=N)``).
    ``outside``: rows of a changeset whose key was found but for which ``where`` does
    not hold; they count as matched and unchanged, and are not written.
    """

    table: str
    strategy: str
    matched: int
    would_change: int
    unchanged: int
    sql: tuple[str, ...]
    explain: tuple[str, ...] = ()
    warnings: tuple[PlanWarning, ...] = ()
    chunks: int = 1
    chunks_estimated: bool = False
    staged: int = 0
    """Rows read from the changeset (0 for a set-based update)."""
    missing: int = 0
    missing_keys: tuple[Any, ...] = ()
    """Keys of the changeset with no row in the table (a bounded sample; ``missing``
    is the exact count)."""
    conflicts: tuple[Any, ...] = ()
    sample: tuple[PlannedRow, ...] = ()
    """The first rows that would change, in key order, old and new value per column."""
    sample_key: tuple[str, ...] = ()
    """The names of the columns of each ``sample`` row's key."""
    outside: int = 0
    would_insert: int = 0
    """Rows of a changeset whose keys have no row, that the run would insert
    (``missing="insert"``); ``missing`` is then 0."""
    deletes: bool = False
    """The run deletes the rows it matches (``setwise.delete``): ``would_change`` rows
    would be deleted, and each ``sample`` row shows the values it would lose."""
