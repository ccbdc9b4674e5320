"""Read a changeset's rows into staging columns, every value checked on the way.

Rows come in batches (``in_batches``); ``Intake`` turns each batch into the columns a
staging table takes (row numbers, presence masks, key, values, version), a whole
column at a time where every value is plainly fine, else row by row. Problems are
collected, not raised one by one: a bad value, an unknown column, a missing key.
``checked_rows`` reads and checks a whole changeset with no database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Column

from setwise.errors import ValidationError
from setwise.messages import closest
from setwise.problems import MAX_PROBLEMS, Problem, ProblemKind
from setwise.staging.sources import Row, Unreadable, open_source
from setwise.staging.sources.rows import FieldColumns, Fields
from setwise.staging.validation import ANYWHERE, Storable, Unfit
from setwise.staging.values import Coercer, column_check
from setwise.target import Target, key_value

#: Rows converted and staged per round trip. 5,000 rows keeps the Python objects of
#: one batch to a few MB whatever the width, and larger batches staged no faster
#: (benchmarks/bench_apply.py).
STAGE_BATCH_ROWS = 5_000


class ProblemLog:
    """Problems as they are found: every one counted by kind, the first ``MAX_PROBLEMS``
    kept, and beyond that only the first of a kind not seen yet. Memory stays bounded
    however many rows of a file are bad."""

    def __init__(self) -> None:
        self.kept: list[Problem] = []
        self.counts: Counter[ProblemKind] = Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return bool(self.counts)

    def add(self, problem: Problem) -> None:
        if len(self.kept) < MAX_PROBLEMS or not self.counts[problem.kind]:
            self.kept.append(problem)
        self.counts[problem.kind] += 1

    def count(self, kind: ProblemKind, how_many: int) -> None:
        """Count ``how_many`` more problems of ``kind`` beyond those added one by one."""
        self.counts[kind] += how_many

    def error(self, table: str) -> ValidationError:
        """The ValidationError of every problem logged."""
        return ValidationError(table, self.kept, self.total, counts=self.counts)


class Intake:
    """Turns raw rows into staging tuples, collecting every problem on the way."""

    def __init__(
        self,
        target: Target,
        lenient: bool,
        fields: Sequence[str],
        storable: Storable,
        date_format: str | None = None,
    ) -> None:
        self.target = target
        self.lenient = lenient
        self.problems = ProblemLog()
        self.unknown_reported: set[str] = set()
        self.key = list(target.key)
        key_names = {c.name for c in target.key}
        version = target.version
        self.expects_version = version is not None and version.name in fields
        self.version = version if self.expects_version else None
        self.columns: list[Column[Any]] = []
        for name in fields:
            column = self.known(name)
            if column is None or column.name in key_names:
                continue
            if version is not None and column is version:
                continue
            if column.name not in {c.name for c in self.columns}:
                self.columns.append(column)
        self.sparse = False
        self.names = [c.name for c in self.ordered]
        self.fields = frozenset(self.names)
        required = {c.name for c in self.key}
        if self.version is not None:
            required.add(self.version.name)
        self.checks = [
            column_check(
                c,
                lenient=lenient,
                required=c.name in required,
                storable=storable,
                date_format=date_format,
            )
            for c in self.ordered
        ]
        self.coercers: dict[str, Coercer] = {
            c.name: check.one for c, check in zip(self.ordered, self.checks, strict=True)
        }

    @property
    def ordered(self) -> list[Column[Any]]:
        """The columns of a staging tuple after its row number and mask."""
        return [*self.key, *self.columns, *([self.version] if self.version is not None else [])]

    def convert_batch(self, numbers: Sequence[int], rows: Sequence[Fields]) -> list[list[Any]]:
        """The staging columns (row numbers, masks, key, values…) of the rows without
        problems: column by column when every row carries exactly the fields (columns
        already, or dicts) and every value is plainly fine, else row by row."""
        if not rows:
            return []
        names = self.names
        values: list[list[Any]] = []
        if isinstance(rows, FieldColumns):
            # Columns already: every row has every field of the batch.
            if len(rows.names) == len(names) and set(rows.names) == self.fields:
                values = [rows.column(name) for name in names]
        elif set(map(type, rows)) == {dict}:
            # Every row a dict of exactly the fields: as many keys as fields, and each
            # field found (itemgetter raises KeyError otherwise). Faster than comparing
            # key sets.
            dicts = cast(Sequence[dict[str, Any]], rows)
            if set(map(len, dicts)) == {len(names)}:
                try:
                    values = [list(map(itemgetter(name), dicts)) for name in names]
                except KeyError:
                    values = []
        converted = []
        for check, column in zip(self.checks, values, strict=False):
            found = check.batch(column)
            if found is None:
                break
            converted.append(found)
        if values and len(converted) == len(names):
            mask = (1 << len(self.columns)) - 1
            return [list(numbers), [mask] * len(numbers), *converted]
        staged = [row for row in map(self.convert, numbers, rows) if row is not None]
        return [list(column) for column in zip(*staged, strict=True)]

    def known(self, field: str) -> Column[Any] | None:
        """The target column a field names: a column name, or an ORM attribute."""
        column = self.target.table.columns.get(field)
        mapper = self.target.mapper
        if column is None and mapper is not None and field in mapper.column_attrs:
            column = self.target.table.columns.get(mapper.column_attrs[field].columns[0].name)
        return column

    def problem(
        self,
        row: int,
        column: str | None,
        value: Any,
        reason: str,
        kind: ProblemKind = ProblemKind.BAD_VALUE,
        fix: tuple[Any, ...] = (),
    ) -> None:
        self.problems.add(Problem(column, value, reason, row, kind, fix))

    def duplicate_keys(self, repeats: Iterable[Sequence[Any]], total: int) -> None:
        """Log each (row, first row, key…) of ``repeats`` as a duplicate key, and count
        the rest of ``total`` repeats, found but not listed."""
        names = ", ".join(column.name for column in self.target.key)
        listed = 0
        for row, first_row, *key in repeats:
            value = key_value(key)
            reason = f"duplicate key: also in row {first_row}"
            self.problem(row, names, value, reason, ProblemKind.DUPLICATE_KEY)
            listed += 1
        if total > listed:
            self.problems.count(ProblemKind.DUPLICATE_KEY, total - listed)

    def convert(self, number: int, fields: dict[str, Any] | Unreadable) -> tuple[Any, ...] | None:
        """The staging tuple for one row, or None when its key cannot be staged. A row
        with problems elsewhere is staged without its bad values (their presence bits
        clear), only so that the search for duplicate keys sees its key: a changeset
        with any problem is never merged."""
        if isinstance(fields, Unreadable):
            self.problem(
                number, fields.column, fields.value, fields.reason, fields.kind, fields.fix
            )
            return None
        for name in fields:
            if name not in self.coercers:
                self._unknown(number, name, fields[name])
        values: list[Any] = [number]
        key_ok = True
        for column in self.key:
            value = fields.get(column.name)
            if value is None:
                self.problem(number, column.name, value, "missing key value", ProblemKind.NULL)
                key_ok = False
                values.append(None)
                continue
            key_ok = self._coerce(number, column.name, value, values) and key_ok
        mask = present = 0
        for index, column in enumerate(self.columns):
            if column.name in fields:
                present |= 1 << index
                if self._coerce(number, column.name, fields[column.name], values):
                    mask |= 1 << index
            else:
                values.append(None)
        if self.version is not None:
            name = self.version.name
            if fields.get(name) is None:
                reason = "rows carry versions; this one has none"
                self.problem(number, name, None, reason, ProblemKind.NULL)
                values.append(None)
            else:
                self._coerce(number, name, fields[name], values)
        if present != (1 << len(self.columns)) - 1:
            self.sparse = True
        if not key_ok:
            return None
        return (values[0], mask, *values[1:])

    def _coerce(self, number: int, name: str, value: Any, values: list[Any]) -> bool:
        try:
            values.append(self.coercers[name](value))
            return True
        except Unfit as unfit:
            kind = ProblemKind.NULL if value is None else ProblemKind.BAD_VALUE
            self.problem(number, name, value, unfit.reason, kind, unfit.fix)
            values.append(None)
            return False

    def _unknown(self, number: int, name: str, value: Any) -> None:
        """Report a field that is no column of the target (once per field); a known
        column the row may carry (an ORM attribute name, the version) is none."""
        column = self.known(name)
        if column is not None and column.name in self.coercers:
            return
        if column is not None and self.target.version is not None and column is self.target.version:
            return
        if name not in self.unknown_reported:
            self.unknown_reported.add(name)
            hint = closest(name, self.target.table.columns.keys())
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            if column is not None:
                reason = "a column first seen after the first batch; put it in the first row"
            else:
                reason = f"no such column in {self.target.name!r}{suggestion}"
            self.problem(number, name, value, reason, ProblemKind.UNKNOWN_COLUMN)


@dataclass(frozen=True)
class CheckedRows:
    """A changeset read and checked with no database: what ``checked_rows`` gives."""

    columns: tuple[Column[Any], ...]
    """The columns the changes set (not the key, not a version)."""
    rows: tuple[tuple[Any, ...], ...]
    """Per row: the mask of the columns it sets (bit i: ``columns[i]``), then its key
    values, then a value per column (None where the mask bit is clear)."""
    expects_version: bool
    """The rows carry the version they were read at."""


def checked_rows(target: Target, changes: Any, *, csv_null: str | None = "") -> CheckedRows:
    """Every row of ``changes`` read and checked as ``apply`` stages it, for SQL written
    without a database (``setwise.alembic`` offline): a ValidationError lists every
    problem, keys given twice included (told apart as Python tells them)."""
    source = open_source(changes, csv_null=csv_null)
    try:
        batches = in_batches(source.rows, STAGE_BATCH_ROWS)
        first = next(batches, None)
        if first is None:
            return CheckedRows((), (), expects_version=False)
        # No database to ask what it stores: what every database stores.
        intake = Intake(target, source.lenient, fields_of(first[1]), ANYWHERE)
        rows: list[tuple[Any, ...]] = []
        seen: dict[tuple[Any, ...], int] = {}
        width = len(target.key)
        for numbers, batch in chain([first], batches):
            columns = intake.convert_batch(numbers, batch)
            for number, mask, *values in zip(*columns, strict=True):
                key = tuple(values[:width])
                if key in seen:
                    intake.duplicate_keys([(number, seen[key], *key)], 1)
                seen.setdefault(key, number)
                rows.append((mask, *values))
    finally:
        source.close()
    if intake.problems:
        raise intake.problems.error(target.name)
    return CheckedRows(tuple(intake.columns), tuple(rows), intake.expects_version)


def fields_of(rows: Sequence[Fields]) -> list[str]:
    """Every field the rows carry, in the order first seen."""
    if isinstance(rows, FieldColumns):
        return list(dict.fromkeys(rows.names))
    return list(dict.fromkeys(chain.from_iterable(r for r in rows if isinstance(r, dict))))


def in_batches(rows: Iterator[Row], size: int) -> Iterator[tuple[Sequence[int], Sequence[Fields]]]:
    """(row numbers, fields) of up to ``size`` rows at a time, until the rows run out;
    through the reader's own ``take`` where it has one (no tuple per row)."""
    take: Callable[[int], tuple[Sequence[int], Sequence[Fields]]] | None
    take = getattr(rows, "take", None)
    while True:
        if take is not None:
            numbers, found = take(size)
        else:
            batch = list(islice(rows, size))
            numbers = [number for number, _ in batch]
            found = [fields for _, fields in batch]
        if not found:
            return
        yield numbers, found
