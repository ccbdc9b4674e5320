"""What a run did to each row it journaled: updated it, deleted it or inserted it.

Every journal row carries one of these in its ``op`` column (``OP``): a row the run
updated keeps its old and new values of the columns the run wrote; a row it deleted
keeps its old value of every column (the new ones are NULL); a row it inserted keeps
its new values (the old ones are NULL). A revert does the inverse of each
(``writers.reversal``). Journals an earlier setwise made have no ``op`` column: every
row of theirs was updated, and they read as ``UPDATED`` until ``setwise.init`` or the
next run on the table adds the column (``Journal.ensure``).
"""

from __future__ import annotations

from typing import Literal

Operation = Literal["u", "d", "i"]

OP = "op"
"""The journal's column of the operation: one character, ``UPDATED`` by default."""

UPDATED: Operation = "u"
DELETED: Operation = "d"
INSERTED: Operation = "i"

#: The inverse of each operation: what a revert does to a row the run touched.
INVERSE: dict[str, Operation] = {UPDATED: UPDATED, DELETED: INSERTED, INSERTED: DELETED}

#: The order a chunk writes its rows in, by operation: deletes free unique values that
#: inserts may take again; updates between them.
WRITE_ORDER: tuple[Operation, ...] = (DELETED, UPDATED, INSERTED)
