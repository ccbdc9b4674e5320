"""Every error setwise raises, importable from ``setwise``.

    SetwiseError
    ├── UnboundedUpdateError   an UPDATE with no WHERE clause and no ``all_rows=True``
    ├── TooManyRowsError       more rows would change than ``max_rows`` allows
    ├── TransactionTooLargeError  one transaction would pass the server's cap (Galera's write set)
    ├── NotFoundError          a row that must exist does not, or fewer rows matched than required
    ├── ConflictError          a version moved under an optimistic lock, or rows changed since a run
    ├── RunError               a chunk failed: that chunk was rolled back, earlier ones are kept
    ├── RunStateError          a run's state refuses the change, or another process changed it first
    │   └── RunInUseError      another process went on with the same run (a second resume)
    ├── ValidationError        values that do not fit their columns: a bounded list of
    │                          ``Problem``, the exact ``total`` and ``counts`` by ``ProblemKind``
    ├── StagingError           the database did not stage a changeset's rows as sent
    ├── SchemaError            an unknown table, column or key
    ├── SQLTextError           ``--where`` / ``--set`` text refused; points at the token
    ├── PlanTimeoutError       a statement of a plan ran past its time limit
    ├── InvalidArgumentError   an argument missing or unusable; nothing was run
    ├── WriteCheckError        the database wrote other rows than it was given to write
    ├── JournalTableError      a journal table kept in another layout, or missing columns
    └── MissingExtraError      an optional dependency is not installed; names the extra to add
                               (also an ``ImportError``)

    KeyboardInterrupt
    └── RunInterrupted         Ctrl-C stopped a chunked run; carries the run to resume

Errors carry data (the table, the key, the versions, the problems) as attributes, so a
program can act on them without parsing the message. A message shows keys and values
as a person writes them (``shown``) and names an argument as Python passes it
(``chunk_rows=300``); ``explain`` names it as another caller does (``--chunk-rows 300``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from setwise.messages import SHOWN_PROBLEMS, Spelling, as_argument, closest, listed, pointed
from setwise.problems import MAX_PROBLEMS, Problem, ProblemKind, sample
from setwise.shown import shown


class SetwiseError(Exception):
    """Base of every error setwise raises."""

    def explain(self, spell: Spelling = as_argument) -> str:
        """The message, with every argument it asks for named by ``spell`` (the command
        line names its options); ``str(error)`` is ``explain()``."""
        return self._say(spell)

    def _say(self, spell: Spelling) -> str:
        """The message; an error that asks for an argument builds it with ``spell``."""
        return str(self)


class UnboundedUpdateError(SetwiseError):
    """An UPDATE without a WHERE clause, refused because ``all_rows=True`` was not given."""

    def __init__(self, table: str) -> None:
        self.table = table
        super().__init__(
            f"refusing to UPDATE every row of {table!r}: the statement has no WHERE clause. "
            "Add .where(...) or pass all_rows=True if you mean every row."
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
    """A row that must exist is missing, or fewer rows matched than the caller required."""

    def __init__(
        self,
        table: str,
        *,
        key: Any = None,
        expected: int | None = None,
        matched: int | None = None,
    ) -> None:
        self.table = table
        self.key = key
        self.expected = expected
        self.matched = matched
        if expected is not None:
            message = (
                f"expected at least {expected} row(s) of {table!r} to match, found {matched}; "
                "nothing was changed"
            )
        else:
            message = f"no row of {table!r} has key {shown(key)}"
        super().__init__(message)


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
    locking), or rows a run wrote were changed since (``conflicts``, on revert)."""

    def __init__(
        self,
        table: str,
        *,
        key: Any = None,
        expected_version: Any = None,
        current_version: Any = None,
        conflicts: Sequence[RowConflict] = (),
        total: int | None = None,
    ) -> None:
        self.table = table
        self.key = key
        self.expected_version = expected_version
        self.current_version = current_version
        self.conflicts = tuple(conflicts)
        self.total = total if total is not None else len(self.conflicts)
        super().__init__(self._say(as_argument))

    def _say(self, spell: Spelling) -> str:
        table, key = self.table, shown(self.key)
        if self.conflicts:
            heading = (
                f"{self.total} row(s) of {table!r} changed since the run wrote them; nothing "
                f"was reverted. Pass {spell('force', True)} to overwrite them anyway:"
            )
            rows = [
                f"key {shown(c.key)}, {c.column}: the run wrote {shown(c.written)}, "
                f"now {shown(c.now)}"
                for c in self.conflicts[:SHOWN_PROBLEMS]
            ]
            return listed(heading, rows, self.total)
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


class RunError(SetwiseError):
    """A chunk of a run failed. That chunk was rolled back; earlier chunks are committed
    and journaled, so the run can be resumed or reverted."""

    def __init__(self, run_id: str | None, chunk: int, cause: BaseException) -> None:
        self.run_id = run_id
        self.chunk = chunk
        self.cause = cause
        reason = str(getattr(cause, "orig", None) or cause).strip().splitlines()
        self.reason = reason[0] if reason else repr(cause)
        """Why the chunk failed: the first line of the cause (the database's message)."""
        message = f"chunk {chunk} failed and was rolled back: {self.reason}"
        if run_id is not None and chunk > 1:
            message += (
                f". Chunks 1 to {chunk - 1} of run {run_id} are committed: resume with "
                f"resume={run_id!r} or undo them with revert({run_id!r})"
            )
        super().__init__(message)


class RunStateError(SetwiseError):
    """A run cannot be changed as asked: its state does not allow it (resuming a finished
    run, abandoning an abandoned one), or another process changed it first (every change
    of a run's state is a compare-and-set, ``setwise.journal.records``). Nothing was changed.
    Carries the ``run_id``, the ``action`` (resume, abandon, revert, a stop's status, or
    chunk), and the run's ``status`` and ``chunks`` as found (None where not read)."""

    def __init__(
        self,
        message: str,
        *,
        run_id: str,
        action: str,
        status: str | None = None,
        chunks: int | None = None,
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.action = action
        self.status = status
        self.chunks = chunks


class RunInUseError(RunStateError):
    """Another process took the run further while this one was running it (the same
    run resumed twice at once). This process's chunk was rolled back and it stopped;
    the run is left as the other process leaves it."""

    def __init__(self, run_id: str, chunk: int) -> None:
        super().__init__(
            f"run {run_id} was taken on by another process: it recorded chunk {chunk}, or "
            f"ended or abandoned the run, first (resumed twice at once?). This process "
            f"rolled its chunk {chunk} back and stopped; `setwise show {run_id}` tells "
            "where the run is",
            run_id=run_id,
            action="chunk",
        )
        self.chunk = chunk


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a chunked run: the chunk in progress was rolled back, the chunks
    before it stay committed. A KeyboardInterrupt still (not an error: ``except
    Exception`` does not catch it), carrying what resuming the run takes.

    ``unmarked`` says why the journal does not record the stop, when it does not: the
    database stayed locked past every retry (the run then still says ``running``, and
    resumes or is abandoned all the same), or another process changed the run first."""

    def __init__(self, run_id: str, chunks: int, *, unmarked: str | None = None) -> None:
        self.run_id = run_id
        self.chunks = chunks
        self.unmarked = unmarked
        state = "" if unmarked is None else f" (not recorded in the journal: {unmarked})"
        super().__init__(
            f"run {run_id} interrupted after {chunks} chunk(s){state}; resume it with "
            f"resume={run_id!r} or undo its chunks with revert({run_id!r})"
        )

    @property
    def marked(self) -> bool:
        """Whether the journal says the run is ``interrupted``."""
        return self.unmarked is None


class ValidationError(SetwiseError):
    """Values that do not fit their columns, raised once the whole input was checked:
    bad values, NULLs, unknown columns and duplicate keys are looked for together.

    ``problems``: at most ``MAX_PROBLEMS`` (the first of each kind among them); ``total``:
    how many in all; ``counts``: how many of each ``ProblemKind`` (exact; kinds with none
    left out), also as ``bad_values``, ``nulls``, ``unknown_columns``, ``duplicate_keys``.
    """

    def __init__(
        self,
        table: str,
        problems: Sequence[Problem],
        total: int | None = None,
        *,
        constraint: str | None = None,
        counts: Mapping[ProblemKind, int] | None = None,
    ) -> None:
        self.table = table
        self.constraint = constraint
        """The violated constraint's name, when the database refused the values."""
        self.problems: tuple[Problem, ...] = sample(problems, MAX_PROBLEMS)
        found = Counter(p.kind for p in problems) if counts is None else Counter(counts)
        self.counts: dict[ProblemKind, int] = {k: found[k] for k in ProblemKind if found[k]}
        """How many problems of each kind, exactly (only kinds that occur)."""
        if total is None:
            total = len(problems) if counts is None else sum(self.counts.values())
        self.total: int = total
        super().__init__(self._say(as_argument))

    def _say(self, spell: Spelling) -> str:
        by_kind = ", ".join(f"{kind}: {count}" for kind, count in self.counts.items())
        heading = f"{self.total} problem(s) in the values for {self.table!r} ({by_kind})"
        shown = [problem.explain(spell) for problem in sample(self.problems, SHOWN_PROBLEMS)]
        return listed(f"{heading}; nothing was written:", shown, self.total)

    @property
    def bad_values(self) -> int:
        """Values of the wrong type or form, out of range, too long or too precise."""
        return self.counts.get(ProblemKind.BAD_VALUE, 0)

    @property
    def nulls(self) -> int:
        """NULLs (or missing keys and versions) where a value is required."""
        return self.counts.get(ProblemKind.NULL, 0)

    @property
    def unknown_columns(self) -> int:
        """Fields that name no column of the table."""
        return self.counts.get(ProblemKind.UNKNOWN_COLUMN, 0)

    @property
    def duplicate_keys(self) -> int:
        """Rows whose key an earlier row already has."""
        return self.counts.get(ProblemKind.DUPLICATE_KEY, 0)


class StagingError(SetwiseError):
    """The database did not stage a changeset's rows as sent (MySQL's LOAD DATA loaded
    fewer rows than the file holds, or warned), or the staging file could not be named
    to it; nothing was written. ``warnings``: the server's, in its words."""

    def __init__(
        self,
        table: str,
        *,
        path: str,
        staged: int | None = None,
        expected: int | None = None,
        warnings: Sequence[str] = (),
    ) -> None:
        self.table, self.path = table, path
        self.staged, self.expected = staged, expected
        """Rows the database staged, and rows the file held (None: nothing was sent)."""
        self.warnings = tuple(warnings)
        if staged is None:
            message = f"cannot name the staging file {path!r} in LOAD DATA"
        else:
            detail = "; ".join(self.warnings[:3])
            message = f"LOAD DATA staged {staged} of {expected} rows into {table!r}: {detail}"
        super().__init__(message)


class SchemaError(SetwiseError):
    """An unknown table, column or key, with the closest valid name when there is one."""

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        suggestion: str | None = None,
        argument: str | tuple[str, Any] | None = None,
    ):
        self.name = name
        self.suggestion = suggestion
        self.argument = argument
        """The argument that would settle it (``key``), or it and its value."""
        self._message = message
        super().__init__(self._say(as_argument))

    def _say(self, spell: Spelling) -> str:
        message = self._message
        if self.argument:
            given = (self.argument,) if isinstance(self.argument, str) else self.argument
            message = f"{message}: pass {spell(*given)}"
        if self.suggestion:
            message = f"{message}. Did you mean {self.suggestion!r}?"
        return message

    @classmethod
    def unknown(cls, kind: str, name: str, candidates: Iterable[str], where: str) -> SchemaError:
        """An unknown ``kind`` (table, column, key) called ``name`` in ``where``."""
        return cls(
            f"unknown {kind} {name!r} in {where}",
            name=name,
            suggestion=closest(name, candidates),
        )


class SQLTextError(SetwiseError):
    """SQL text (a ``--where`` filter or a ``--set`` assignment) that setwise refuses to run.

    ``position`` and ``end`` are the 0-based offsets of the offending token in ``text``;
    the message shows the text with a caret under that token.
    """

    def __init__(
        self,
        text: str,
        reason: str,
        *,
        position: int,
        end: int | None = None,
        label: str = "SQL text",
        suggestion: str | None = None,
    ) -> None:
        self.text = text
        self.reason = reason
        self.position = max(0, min(position, len(text)))
        self.end = max(self.position, end if end is not None else self.position)
        self.label = label
        self.suggestion = suggestion
        if suggestion:
            reason = f"{reason}. Did you mean {suggestion!r}?"
        super().__init__(f"{label}: {reason}\n{pointed(text, self.position, self.end)}")

    @property
    def token(self) -> str:
        """The offending text."""
        return self.text[self.position : self.end + 1]


class PlanTimeoutError(SetwiseError):
    """A statement ``plan`` sent to count or read rows ran longer than its
    ``timeout_seconds`` and was stopped; nothing was written."""

    def __init__(self, table: str, *, seconds: float) -> None:
        self.table = table
        self.seconds = seconds
        super().__init__(self._say(as_argument))

    def _say(self, spell: Spelling) -> str:
        return (
            f"the plan for {self.table!r} stopped: a statement counting its rows ran longer "
            f"than {self.seconds:g} s, and nothing was written. A subquery that joins tables "
            f"can multiply the rows read: narrow the filter, or allow the plan longer "
            f"({spell('timeout_seconds')}; 0 for no limit)"
        )


class MissingExtraError(SetwiseError, ImportError):
    """A feature needs a package that is not installed; ``extra`` is the setwise extra
    that brings it (``pip install 'setwise[<extra>]'``)."""

    def __init__(self, *, module: str, extra: str, feature: str, hint: str = "") -> None:
        self.module = module
        self.extra = extra
        self.feature = feature
        message = (
            f"{feature} needs {module}, which is not installed. "
            f"Install it with: pip install 'setwise[{extra}]'"
        )
        super().__init__(f"{message} {hint}" if hint else message, name=module)


class InvalidArgumentError(SetwiseError):
    """An argument is missing, or its value cannot be used (a chunk size below 1, a
    range given highest first); nothing was run. Carries the ``argument`` as Python
    names it and the ``value`` given (None when it was not given)."""

    def __init__(self, message: str, *, argument: str, value: Any = None) -> None:
        super().__init__(message)
        self.argument = argument
        self.value = value


class WriteCheckError(SetwiseError):
    """The database wrote other rows than it was given to write: ``expected`` rows of
    ``table``, ``found`` as written when checked."""

    def __init__(self, message: str, *, table: str, expected: int, found: int) -> None:
        super().__init__(message)
        self.table = table
        self.expected = expected
        self.found = found


class JournalTableError(SetwiseError):
    """A journal table setwise cannot write as it is: one an earlier setwise kept in
    another layout, or one keeping columns the table it journals no longer has.
    Carries the journal ``table`` and the ``layout`` it keeps."""

    def __init__(self, message: str, *, table: str, layout: str) -> None:
        super().__init__(message)
        self.table = table
        self.layout = layout
