"""One value that cannot be written: where it is, what it is, and why not.

A ``ValidationError`` carries these; ``sample`` picks the ones it keeps and shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from setwise.messages import Spelling, as_argument
from setwise.shown import shown

#: Longest value shown in a problem's message; the full value stays in ``Problem.value``.
SHOWN_VALUE_CHARS = 60

#: Problems kept in memory for one error: a million-row file of bad dates must not build a
#: million-entry list. The true total is kept in ``ValidationError.total``, and the true
#: count of each kind in ``ValidationError.counts``.
MAX_PROBLEMS = 1000


class ProblemKind(StrEnum):
    """What is wrong with a value; ``ValidationError.counts`` counts problems by it."""

    BAD_VALUE = "bad value"
    """A value of the wrong type or form, out of range, too long, or too precise."""
    NULL = "NULL in NOT NULL"
    """No value where one is required: a NULL for a NOT NULL column, a missing key or
    version."""
    UNKNOWN_COLUMN = "unknown column"
    """A field that names no column of the table (counted once per field)."""
    DUPLICATE_KEY = "duplicate key"
    """A row whose key an earlier row already has (counted once per repeat)."""
    UNREADABLE = "unreadable"
    """Input that cannot be read as values at all: a malformed line or file."""
    CONSTRAINT = "constraint"
    """The database refused the values: a constraint of the table."""


@dataclass(frozen=True, repr=False)
class Problem:
    """One value that cannot be written: where it is, what it is, and why not."""

    column: str | None
    value: Any
    reason: str
    row: int | None = None
    kind: ProblemKind = ProblemKind.BAD_VALUE
    fix: tuple[Any, ...] = field(default=(), compare=False)
    """The argument that would settle it, and its value if one is known
    (``("encoding", "latin-1")``): the message names it as the caller passes it.
    A hint: two problems that differ only in it are equal."""

    def __str__(self) -> str:
        return self.explain()

    def explain(self, spell: Spelling = as_argument) -> str:
        """The problem in a line, the argument of ``fix`` named by ``spell``."""
        where = f"row {self.row}, " if self.row is not None else ""
        column = f"column {self.column!r}" if self.column is not None else "the row"
        value = shown(self.value)
        if len(value) > SHOWN_VALUE_CHARS:
            value = value[: SHOWN_VALUE_CHARS - 5] + "…" + value[-4:]
        fix = f" ({spell(*self.fix)})" if self.fix else ""
        return f"{where}{column}, value {value}: {self.reason}{fix}"

    def __repr__(self) -> str:
        return (
            f"Problem(column={self.column!r}, value={shown(self.value)}, "
            f"reason={self.reason!r}, row={self.row!r}, kind={self.kind.value!r})"
        )


def sample(problems: Sequence[Problem], limit: int) -> tuple[Problem, ...]:
    """At most ``limit`` of ``problems``, in their order: the first of each kind, then
    the earliest others; so a few duplicate keys found after a thousand bad values
    still show."""
    if len(problems) <= limit:
        return tuple(problems)
    firsts: dict[ProblemKind, int] = {}
    for index, problem in enumerate(problems):
        firsts.setdefault(problem.kind, index)
    chosen = set(list(firsts.values())[:limit])
    for index in range(len(problems)):
        if len(chosen) >= limit:
            break
        chosen.add(index)
    return tuple(problems[index] for index in sorted(chosen))
