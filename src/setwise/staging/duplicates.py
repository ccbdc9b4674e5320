"""Keys given twice in a changeset: every repeat reported by row, with the row it
repeats, and counted exactly.

Integer keys that come strictly increasing cannot repeat (``KeyOrder``). Where the
strategy keys a staging table by the key (``Strategy.keyed_stage_options``), other keys
are judged by its primary key: integer keys are copied into it in key order once
loaded, a repeat failing the copy (``Stage.keyed_copy``, then ``find_duplicates``);
keys of other types go straight into it while they come in order, the rest staged
beside and copied in key order at the end, and the primary key leaves out each
repeat, which is then looked up by row (``KeyedLoad``). Elsewhere the staged keys are
grouped once everything is loaded (``find_duplicates``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from itertools import islice
from operator import lt
from typing import Any

from sqlalchemy import Connection, types
from sqlalchemy.exc import IntegrityError

from setwise.dialects import Strategy
from setwise.problems import MAX_PROBLEMS
from setwise.staging.intake import Intake
from setwise.staging.table import Stage
from setwise.target import Target


class KeyOrder:
    """Whether the staged keys came in order: each greater than the one before, as
    Python compares them (``ascending``), and so, for integer keys, that none can repeat
    and the database need not look for duplicates (``increasing``).

    Only integer keys are trusted to be distinct by their order: two texts Python tells
    apart may be one key to the database (a case-insensitive collation), two integers
    never are.
    """

    def __init__(self, target: Target) -> None:
        self.width = len(target.key)
        self.integers = all(isinstance(c.type, types.Integer) for c in target.key)
        self.ascending = True
        self.last: Any = None

    @property
    def increasing(self) -> bool:
        """Integer keys, strictly increasing so far: none can repeat."""
        return self.integers and self.ascending

    def see(self, columns: Sequence[Sequence[Any]]) -> None:
        if not self.ascending:
            return
        # Staging columns start (row numbers, masks, key…).
        if self.width == 1:
            keys: list[Any] = list(columns[2])
        else:
            keys = list(zip(*columns[2 : 2 + self.width], strict=True))
        if self.last is not None:
            keys.insert(0, self.last)
        try:
            self.ascending = all(map(lt, keys, islice(keys, 1, None)))
        except TypeError:  # values Python does not order: taken as unordered
            self.ascending = False
        self.last = keys[-1]


class KeyedLoad:
    """Loads batches into a staging table whose primary key is the key (``Stage.keyed``)
    while their keys come in order (``in_order``), with ``Strategy.insert_new_keys``,
    which leaves out every row whose key an earlier row has; a batch that lost rows is
    looked up (``Stage.repeats_in``). Other batches go to the ``rest`` staging table,
    copied in key order into the keyed one by ``finish``. Of the repeats, the first
    ``MAX_PROBLEMS`` are kept by row with the row they repeat, and all are counted."""

    def __init__(
        self, connection: Connection, strategy: Strategy, keyed: Stage, rest: Stage
    ) -> None:
        self.connection = connection
        self.strategy = strategy
        self.keyed = keyed
        self.rest = rest
        self.in_order = True
        self.rest_rows = 0
        self.listed: list[tuple[Any, ...]] = []
        self.repeats = 0

    def __call__(self, columns: Sequence[Sequence[Any]]) -> None:
        if not self.in_order:
            self.strategy.insert_batch(self.connection, self.rest.stage, columns)
            self.rest_rows += len(columns[0])
            return
        inserted = self.strategy.insert_new_keys(self.connection, self.keyed.stage, columns)
        left_out = len(columns[0]) - inserted
        if left_out:
            found = self.keyed.repeats_in(self.connection, self.strategy, columns)
            self.found(left_out, found)

    def found(self, left_out: int, found: Sequence[Sequence[Any]]) -> None:
        """Count ``left_out`` repeats; keep those of ``found`` (row, first row, key…) that
        fit among the first ``MAX_PROBLEMS``."""
        self.repeats += left_out
        self.listed += map(tuple, islice(found, max(0, MAX_PROBLEMS - len(self.listed))))

    def finish(self) -> Stage:
        """The keyed staging table with the ``rest`` copied in and dropped."""
        if self.rest_rows:
            keyed, rest = self.keyed, self.rest
            inserted = keyed.take_new_keys(self.connection, self.strategy, rest)
            left_out = self.rest_rows - inserted
            if left_out:
                limit = max(0, MAX_PROBLEMS - len(self.listed))
                found = self.connection.execute(keyed.repeats_of(rest.stage, limit)).all()
                self.found(left_out, found)
        self.rest.drop(self.connection, self.strategy)
        return self.keyed

    def report(self, intake: Intake) -> None:
        """Log every repeat found, as ``find_duplicates`` does."""
        intake.duplicate_keys(self.listed, self.repeats)


def refuse_duplicates(
    connection: Connection, strategy: Strategy, merge: Stage, intake: Intake
) -> Stage:
    """Log every staged row whose key an earlier row has (``find_duplicates``). Where
    the strategy keys its staging table, the rows are first copied in key order into
    one whose primary key is the key (``Stage.keyed_copy``), which is returned: the
    search runs only when the copy refuses a key. Not with problems already found:
    the changeset fails either way, and the search is what lists the duplicates."""
    if strategy.keyed_stage_options is not None and not intake.problems:
        # The copy refuses a key given twice: then the search below finds them all, in
        # the table as it was loaded.
        with suppress(IntegrityError):
            return merge.keyed_copy(connection, strategy)
    find_duplicates(connection, merge, intake)
    return merge


def find_duplicates(connection: Connection, merge: Stage, intake: Intake) -> None:
    """Log every staged row whose key an earlier row has: the exact number of them, and
    the first ``MAX_PROBLEMS`` by row. One GROUP BY when there are none."""
    repeats = int(connection.execute(merge.duplicate_count()).scalar_one())
    if not repeats:
        return
    intake.duplicate_keys(connection.execute(merge.duplicate_rows(MAX_PROBLEMS)), repeats)
