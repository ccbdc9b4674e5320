"""Errors of what a caller gave: values that do not fit, names that do not exist, SQL text
refused, an argument unusable, an extra not installed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from setwise.errors.base import SetwiseError
from setwise.messages import SHOWN_PROBLEMS, Spelling, as_argument, closest, listed, pointed
from setwise.problems import MAX_PROBLEMS, Problem, ProblemKind, sample


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
        referenced_by: str | None = None,
    ) -> None:
        self.table = table
        self.constraint = constraint
        """The violated constraint's name, when the database refused the values."""
        self.referenced_by = referenced_by
        """For a delete a foreign key refused: the table whose rows still refer to the
        rows it would remove."""
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


class InvalidArgumentError(SetwiseError):
    """An argument is missing, or its value cannot be used (a chunk size below 1, a
    range given highest first); nothing was run. Carries the ``argument`` as Python
    names it and the ``value`` given (None when it was not given)."""

    def __init__(self, message: str, *, argument: str, value: Any = None) -> None:
        super().__init__(message)
        self.argument = argument
        self.value = value


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
