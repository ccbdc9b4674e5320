"""The Writer protocol: what the engine needs of a set-based update, a changeset or a revert."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Column, Select
from sqlalchemy.sql.dml import UpdateBase

from setwise.target import Target
from setwise.writers.keys import Span


class Writer(Protocol):
    """What the executor needs of a set-based update, a changeset or a revert."""

    @property
    def target(self) -> Target: ...

    @property
    def kind(self) -> str: ...

    @property
    def operations(self) -> tuple[str, ...]:
        """What the writer does to the rows it journals (``setwise.operations``): one
        operation, or several, when each of its ``journal_rows`` ends with its own."""
        ...

    def written_columns(self) -> list[Column[Any]]: ...
    def keys_after(self, after: tuple[Any, ...] | None, limit: int) -> Select[Any]: ...
    def counts(self, span: Span, *, would_change: bool = True) -> Select[Any]: ...
    def rows_in(self, span: Span) -> Select[Any]:
        """The number of rows the chunks of ``span`` go through (``ChunkResult.rows``),
        as cheaply as the writer can count them: a progress bar's total."""
        ...

    def journal_rows(self, span: Span) -> Select[Any]: ...
    def direct_update(self, span: Span, stamps: dict[Column[Any], Any]) -> UpdateBase:
        """The span's write without a journal: the UPDATE (or the DELETE of a writer that
        deletes) that writes what ``journal_rows`` would journal."""
        ...

    def matched_keys(self, span: Span) -> Select[Any]: ...
    def missing_keys(self, span: Span, limit: int) -> Select[Any] | None: ...
    def conflict_keys(self, span: Span, limit: int) -> Select[Any] | None: ...
