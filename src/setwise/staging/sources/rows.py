"""What every reader yields."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from setwise.problems import ProblemKind

#: A UTF-16 byte-order mark, as a file read as UTF-8 with surrogateescape begins.
UTF16_MARKS = ("\udcff\udcfe", "\udcfe\udcff")

#: The argument that reads a file whose byte-order mark says UTF-16.
UTF16_FIX = ("encoding", "utf-16")
NOT_UTF16 = "the file is UTF-16 (its byte-order mark says so), not UTF-8: save it as UTF-8"


@dataclass(frozen=True)
class Unreadable:
    """A line that could not be read as a row at all, and why; where the reader can tell,
    the field and the text at fault."""

    reason: str
    column: str | None = None
    value: Any = None
    kind: ProblemKind = ProblemKind.UNREADABLE
    fix: tuple[Any, ...] = field(default=(), compare=False)
    """The argument that reads it, as ``Problem.fix`` holds it (a hint: not compared)."""


Fields = dict[str, Any] | Unreadable
"""One row: field → value, or why it could not be read."""

Row = tuple[int, Fields]
"""(row number, field → value), or (row number, Unreadable)."""


class FieldColumns(Sequence[Fields]):
    """A batch of rows kept as columns, one list per field, every field in every row:
    read as rows (a dict each) only when asked, so a reader that has columns builds no
    dict per row."""

    def __init__(self, names: Sequence[str], columns: Sequence[list[Any]]) -> None:
        self.names = list(names)
        self.columns = list(columns)
        # A repeated name: the last column wins, as in a dict built from the row.
        self._index = {name: i for i, name in enumerate(self.names)}

    def column(self, name: str) -> list[Any]:
        """Every row's value of the field ``name``."""
        return self.columns[self._index[name]]

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    @overload
    def __getitem__(self, index: int) -> Fields: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Fields]: ...
    def __getitem__(self, index: int | slice) -> Fields | Sequence[Fields]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return {name: self.columns[i][index] for name, i in self._index.items()}

    def __iter__(self) -> Iterator[Fields]:
        return (self[i] for i in range(len(self)))
