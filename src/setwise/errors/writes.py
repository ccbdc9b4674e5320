"""Errors of what a write would do or found: no WHERE, too many rows, a missing row, a
moved version, rows written other than sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from setwise.errors.base import SetwiseError
from setwise.messages import SHOWN_PROBLEMS, Spelling, as_argument, listed
from setwise.shown import shown

if TYPE_CHECKING:
    from setwise.report import Report


class UnboundedUpdateError(SetwiseError):
    """An UPDATE (or a DELETE: ``statement``) without a WHERE clause, refused because
    ``all_rows=True`` was not given."""

    def __init__(self, table: str, *, statement: str = "UPDATE") -> None:
        self.table = table
        self.statement = statement
        """The kind of statement refused: ``"UPDATE"`` or ``"DELETE"``."""
        super().__init__(
            f"refusing to {statement} every row of {table!r}: the statement has no WHERE "
            "clause. Add .where(...) or pass all_rows=True if you mean every row."
        )


class TooManyRowsError(SetwiseError):
    """More rows would change than the caller's ``max_rows`` allows; nothing was written."""

    def __init__(self, table: str, *, limit: int, would_change: int) -> None:
        self.table = table
        self.limit = limit
        self.would_change = would_change
        super().__init__(self._say(as_argument))

    def _say(self, spell: Spelling) -> str:
        return (
            f"refusing to change {self.would_change} rows of {self.table!r}: more than "
            f"{spell('max_rows', self.limit)} allows. Narrow the WHERE clause or raise the "
            "limit; nothing was written."
        )


class TransactionTooLargeError(SetwiseError):
    """An unchunked run would change more rows than one transaction may on this server
    (a Galera node's ``wsrep_max_ws_rows`` / ``wsrep_max_ws_size``); nothing was written."""

    def __init__(
        self, table: str, *, would_change: int, fits: int, setting: str, basis: str
    ) -> None:
        self.table = table
        self.would_change = would_change
        self.fits = fits
        self.setting = setting
        self.basis = basis
        super().__init__(self._say(as_argument))

    def _say(self, spell: Spelling) -> str:
        return (
            f"refusing to change {self.would_change} rows of {self.table!r} in one "
            f"transaction: the server caps a transaction's write set ({self.setting}), and "
            f"at most {self.fits} changed rows fit in one ({self.basis}). Pass "
            f"{spell('chunk_rows', self.fits)} or {spell('chunk_rows', 'auto')} to write in "
            "chunks that fit; nothing was written."
        )


class NotFoundError(SetwiseError):
    """A row that must exist is missing, or fewer rows matched than the caller required,
    or keys of a changeset have no row (``apply(..., missing="error")``: ``keys``, the
    first of them in input order, and ``count``, how many there are)."""

    def __init__(
        self,
        table: str,
        *,
        key: Any = None,
        expected: int | None = None,
        matched: int | None = None,
        keys: Sequence[Any] = (),
        count: int | None = None,
    ) -> None:
        self.table = table
        self.key = key
        self.expected = expected
        self.matched = matched
        self.keys = tuple(keys)
        """Keys with no row, a bounded sample in input order (``count`` is exact)."""
        self.count = count if count is not None else len(self.keys)
        """How many keys of the changeset have no row."""
        super().__init__(self._say(as_argument))

    def _say(self, spell: Spelling) -> str:
        table = self.table
        if self.keys:
            heading = (
                f"{self.count} key(s) of the changes have no row in {table!r}; nothing was "
                f"written. Pass {spell('missing', 'insert')} to insert them, or "
                f"{spell('missing', 'report')} to skip and list them:"
            )
            return listed(heading, [shown(key) for key in self.keys], self.count)
        if self.expected is not None:
            return (
                f"expected at least {self.expected} row(s) of {table!r} to match, found "
                f"{self.matched}; nothing was changed"
            )
        return f"no row of {table!r} has key {shown(self.key)}"


@dataclass(frozen=True)
class RowConflict:
    """A row changed by someone else since a run wrote it."""

    key: Any
    column: str
    written: Any
    """The value the run wrote."""
    now: Any
    """The value the row holds now."""


class ConflictError(SetwiseError):
    """Rows moved under the caller: a version changed since it was read (optimistic
    locking), or rows a run wrote were changed since (``conflicts``, on revert).

    On revert, ``run_id`` is the run reverted. Nothing was reverted, unless another
    writer changed the rows while the revert ran (after its check): then ``report`` is
    the revert's own Report, of the rows it did restore (committed), and the run is
    ``partly-reverted``: a revert with ``force=True`` writes the rows left."""

    def __init__(
        self,
        table: str,
        *,
        key: Any = None,
        expected_version: Any = None,
        current_version: Any = None,
        conflicts: Sequence[RowConflict] = (),
        total: int | None = None,
        run_id: str | None = None,
        report: Report | None = None,
    ) -> None:
        self.table = table
        self.key = key
        self.expected_version = expected_version
        self.current_version = current_version
        self.conflicts = tuple(conflicts)
        self.total = total if total is not None else len(self.conflicts)
        self.run_id = run_id
        """The run a revert was of."""
        self.report = report
        """What the revert did before it found the rows changed while it ran; None when
        it wrote nothing."""
        super().__init__(self._say(as_argument))

    def _say(self, spell: Spelling) -> str:
        table, key = self.table, shown(self.key)
        if self.conflicts and self.report is not None:
            run_id = self.run_id
            heading = (
                f"{self.total} row(s) of {table!r} changed while run {self.report.run_id} "
                f"reverted run {run_id}: it restored the other {self.report.changed} row(s), "
                f"and left these as they are now; run {run_id} is partly-reverted. Revert "
                f"them anyway with setwise.revert(bind, {run_id!r}, force=True) "
                f"(`setwise revert {run_id} --force`):"
            )
            return listed(heading, self._rows(), self.total)
        if self.conflicts:
            heading = (
                f"{self.total} row(s) of {table!r} changed since the run wrote them; nothing "
                f"was reverted. Pass {spell('force', True)} to overwrite them anyway:"
            )
            return listed(heading, self._rows(), self.total)
        expected, current = self.expected_version, self.current_version
        if expected is None or current == expected:
            # A serialization failure: the version does not tell what moved.
            now = "" if current is None else f"; it is at version {shown(current)}"
            return (
                f"row {key} of {table!r} was not written: another transaction changed it "
                f"(or what this one read) after this transaction began{now}. Roll back, "
                "reload the row and apply your change again."
            )
        return (
            f"row {key} of {table!r} is at version {shown(current)}, "
            f"not the expected {shown(expected)}: someone changed it since you read it. "
            "Reload the row and apply your change again."
        )

    def _rows(self) -> list[str]:
        return [
            f"key {shown(c.key)}, {c.column}: the run wrote {shown(c.written)}, now {shown(c.now)}"
            for c in self.conflicts[:SHOWN_PROBLEMS]
        ]


class WriteCheckError(SetwiseError):
    """The database wrote other rows than it was given to write: ``expected`` rows of
    ``table``, ``found`` as written when checked."""

    def __init__(self, message: str, *, table: str, expected: int, found: int) -> None:
        super().__init__(message)
        self.table = table
        self.expected = expected
        self.found = found


class KeysTakenError(WriteCheckError):
    """Another writer inserted rows for keys a run was inserting (``missing="insert"``),
    after the run counted them missing: ``expected`` rows to insert, ``found`` keys
    still free. The chunk, or the one transaction, was rolled back. setwise runs it
    again as after a deadlock; this reaches the caller when the retries run out, or in
    the caller's own transaction, which only the caller can start again."""


@dataclass(frozen=True)
class Mismatch:
    """A row a run wrote that does not hold what the run wrote, found by its verify."""

    key: Any
    column: str | None
    """The column that differs; None when the row is gone."""
    meant: Any
    """The value the run wrote (the journal's new value)."""
    found: Any
    """The value the row holds now (None when the row is gone)."""


class VerificationError(SetwiseError):
    """Verifying a run (``verify=True``) found rows it wrote that do not hold what it
    wrote: changed behind its back, or gone. The run itself is committed; ``report`` is
    its Report (``report.verified`` the verify's findings), ``mismatches`` a bounded
    list by key and column, ``total`` the exact count of rows that differ."""

    def __init__(
        self,
        table: str,
        *,
        run_id: str,
        mismatches: Sequence[Mismatch],
        total: int,
        report: Any = None,
    ) -> None:
        self.table = table
        self.run_id = run_id
        self.mismatches = tuple(mismatches)
        self.total = total
        self.report = report
        said = "; ".join(
            f"key {shown(m.key)}: gone"
            if m.column is None
            else f"key {shown(m.key)} {m.column}: wrote {shown(m.meant)}, found {shown(m.found)}"
            for m in self.mismatches[:SHOWN_PROBLEMS]
        )
        more = len(self.mismatches) - SHOWN_PROBLEMS
        if more > 0:
            said += f"; and {more} more"
        super().__init__(
            f"verify failed: {total} row(s) of {table!r} that run {run_id} wrote do not hold "
            f"what it wrote ({said}). The run is committed; `setwise show {run_id}` shows "
            "it, and a revert refuses the rows changed since unless forced"
        )
