"""``setwise.apply``: per-row changes keyed by id, at the speed of the database's bulk path.

The input is read as a stream and staged in batches into a temporary table, every
value checked on the way. Problems are collected, not raised one by one; when the
whole input has been read, any problem (a bad value, an unknown column, a missing or
duplicate key) fails the call with one ``ValidationError`` and nothing is written.
Otherwise the staged rows are counted against the target and merged in one
set-based UPDATE that skips rows already holding the new values.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from itertools import chain, compress, islice
from operator import itemgetter, lt
from typing import Any, Literal, cast

from sqlalchemy import Column, Connection, types
from sqlalchemy.exc import DBAPIError

from setwise.dialects import Strategy
from setwise.dialects.integrity import integrity_to_validation
from setwise.engine.options import RunOptions
from setwise.engine.run import run
from setwise.engine.transaction import Bind, dialect_of, reading_connection
from setwise.errors import (
    MAX_PROBLEMS,
    Problem,
    ProblemKind,
    ProblemLog,
    SchemaError,
    SetwiseError,
    closest,
)
from setwise.journal.changes import Journal, tagged
from setwise.journal.records import new_run_id
from setwise.report import ProgressCallback, Report
from setwise.staging.batches import column_converter
from setwise.staging.coerce import Coercer, Unfit, coercer_for
from setwise.staging.filestage import stage_csv_file
from setwise.staging.sources import Row, Unreadable, open_source
from setwise.staging.sources.csv import CsvRows
from setwise.staging.sources.rows import FieldColumns, Fields
from setwise.staging.validation import ANYWHERE, Storable
from setwise.target import Target, TargetLike, resolve_target
from setwise.writers.merge import MAX_SPARSE_COLUMNS, Merge
from setwise.writers.stamps import stamp_values

log = logging.getLogger("setwise")

#: Rows converted and staged per round trip. 5,000 rows keeps the Python objects of
#: one batch to a few MB whatever the width, and larger batches staged no faster
#: (benchmarks/bench_apply.py).
STAGE_BATCH_ROWS = 5_000


def apply(
    bind: Bind,
    target: TargetLike,
    changes: Any,
    key: Sequence[str] | str | None = None,
    *,
    returning: Sequence[Any] = (),
    expect_rows: int | None = None,
    max_rows: int | None = None,
    version_column: str | None = None,
    csv_null: str | None = "",
    chunk_rows: int | Literal["auto"] | None = None,
    chunk_seconds: float = 0.5,
    throttle_seconds: float = 0.0,
    journal: bool = True,
    journal_prefix: str = "setwise_",
    retries: int = 5,
    progress: ProgressCallback | None = None,
    resume: str | None = None,
    actor: str | None = None,
    stamp_column: str | None = None,
    actor_column: str | None = None,
    tag: str | None = None,
) -> Report:
    """Apply per-row ``changes`` to ``target``, matching rows by ``key``.

    ``target``: an ORM class, a Table, or a table name reflected from the database.
    ``key``: the primary key by default, or any unique column(s). ``changes``: see
    ``setwise.staging.sources``. Only the columns present in the changes are written, and only
    on rows where a value differs. With a version column on the target and versions in
    the rows, a row whose version moved is not written and is listed in ``conflicts``.
    Chunking, journal, resume, progress, stamps and ``tag`` work as for ``setwise.update``. On
    PostgreSQL a chunked run stages into a table named for the run
    (``{journal_prefix}stage_…``), dropped when the run finishes, so a resumed run
    merges what its first run staged without reading ``changes`` again. Elsewhere (a
    temporary staging table), a resumed changeset is read and checked again and
    continues after the checkpoint; with an integer key, the rows up to it are not
    staged again.
    """
    with reading_connection(bind) as connection:
        resolved = resolve_changes_target(connection, target, key, version_column)
        done_through = None
        if resume is not None:
            done_through = _resumed_through(connection, journal_prefix, resume, resolved)
    source = open_source(changes, csv_null=csv_null)
    options = RunOptions(
        chunk_rows=chunk_rows,
        chunk_seconds=chunk_seconds,
        throttle_seconds=throttle_seconds,
        journal=journal,
        journal_prefix=journal_prefix,
        retries=retries,
        progress=progress,
        resume=resume,
        actor=actor,
        expect_rows=expect_rows,
        max_rows=max_rows,
        stamps=stamp_values(resolved, stamp_column, actor_column, actor),
        arguments=tagged({"key": [c.name for c in resolved.key]}, tag),
        run_id=new_run_id() if chunk_rows is not None and resume is None else None,
    )
    journal_tables = Journal(journal_prefix)
    returned = [resolved.column(_name_of(ref)) for ref in returning]
    if returned and options.chunked:
        raise SchemaError("returning rows needs a single-transaction run; drop chunk_rows")

    reads = 0

    def build(connection: Connection, strategy: Strategy) -> Merge | None:
        nonlocal source, reads
        reads += 1
        if reads > 1:  # the whole run again (``runner.reads_on_snapshot``): read them anew
            source.close()
            source = open_source(changes, csv_null=csv_null)
        if not options.chunked:
            return stage(connection, strategy, resolved, source.rows, source.lenient)
        run_id = options.resume or options.run_id
        assert run_id is not None
        kept_name = None
        if strategy.kept_stage_prefixes is not None:
            kept_name = journal_tables.stage_name(run_id, strategy)
            if options.resume is not None and (
                kept := Merge.reopen(connection, strategy, resolved, kept_name)
            ):
                log.info("run %s: merging the changes it staged; not reading them again", run_id)
                return kept
        # Chunked: staged in transactions of about a chunk's time each, committed on the
        # way, then indexed for the chunks' ranges.
        merge = stage(
            connection,
            strategy,
            resolved,
            source.rows,
            source.lenient,
            commit_seconds=options.chunk_seconds,
            done_through=done_through,
            kept_name=kept_name,
        )
        if merge is not None and not merge.indexed:  # else staged, indexed and analyzed
            merge = merge.index_stage(connection, strategy)
            connection.commit()
            strategy.analyze_stage(connection, merge.stage)
        return merge

    def cleanup(connection: Connection, strategy: Strategy, writer: Any) -> None:
        writer.drop(connection, strategy)

    strategy = dialect_of(bind)
    try:
        return run(
            bind,
            resolved,
            build,
            options,
            returning=returned,
            cleanup=cleanup,
            repeatable=readable_again(changes),
        )
    except DBAPIError as exc:
        if not strategy.is_integrity_error(exc):
            raise
        raise integrity_to_validation(exc, resolved.table, strategy, {}) from exc
    finally:
        source.close()


def readable_again(changes: Any) -> bool:
    """Whether ``changes`` can be read a second time: not an iterator, not stdin."""
    return not isinstance(changes, Iterator) and not (isinstance(changes, str) and changes == "-")


def resolve_changes_target(
    connection: Connection,
    target: TargetLike,
    key: Sequence[str] | str | None,
    version_column: str | None,
) -> Target:
    """The target of a changeset, keyed by ``key`` (default: its primary key)."""
    key_names = (key,) if isinstance(key, str) else key
    resolved = resolve_target(target, connection, key=key_names, version_column=version_column)
    if not resolved.key:
        raise SchemaError(f"{resolved.name!r} has no primary key", argument="key")
    return resolved


class _Intake:
    """Turns raw rows into staging tuples, collecting every problem on the way."""

    def __init__(
        self, target: Target, lenient: bool, fields: Sequence[str], storable: Storable
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
            column = self._known(name)
            if column is None or column.name in key_names:
                continue
            if version is not None and column is version:
                continue
            if column.name not in {c.name for c in self.columns}:
                self.columns.append(column)
        self.coercers: dict[str, Coercer] = {
            c.name: coercer_for(c, lenient=lenient, storable=storable) for c in self.ordered
        }
        self.sparse = False
        self.names = [c.name for c in self.ordered]
        self.fields = frozenset(self.names)
        required = {c.name for c in self.key}
        if self.version is not None:
            required.add(self.version.name)
        self.batch_converters = [
            column_converter(c, lenient=lenient, required=c.name in required, storable=storable)
            for c in self.ordered
        ]

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
        for convert, column in zip(self.batch_converters, values, strict=False):
            found = convert(column)
            if found is None:
                break
            converted.append(found)
        if values and len(converted) == len(names):
            mask = (1 << len(self.columns)) - 1
            return [list(numbers), [mask] * len(numbers), *converted]
        staged = [row for row in map(self.convert, numbers, rows) if row is not None]
        return [list(column) for column in zip(*staged, strict=True)]

    def _known(self, field: str) -> Column[Any] | None:
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
    ) -> None:
        self.problems.add(Problem(column=column, value=value, reason=reason, row=row, kind=kind))

    def convert(self, number: int, fields: dict[str, Any] | Unreadable) -> tuple[Any, ...] | None:
        """The staging tuple for one row, or None when its key cannot be staged. A row
        with problems elsewhere is staged without its bad values (their presence bits
        clear), only so that the search for duplicate keys sees its key: a changeset
        with any problem is never merged."""
        if isinstance(fields, Unreadable):
            self.problem(number, fields.column, fields.value, fields.reason, fields.kind)
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
            self.problem(number, name, value, unfit.reason, kind)
            values.append(None)
            return False

    def _unknown(self, number: int, name: str, value: Any) -> None:
        """Report a field that is no column of the target (once per field); a known
        column the row may carry (an ORM attribute name, the version) is none."""
        column = self._known(name)
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


def stage(
    connection: Connection,
    strategy: Strategy,
    target: Target,
    rows: Iterator[Row],
    lenient: bool,
    *,
    commit_seconds: float | None = None,
    done_through: tuple[Any, ...] | None = None,
    kept_name: str | None = None,
) -> Merge | None:
    """Read, check and stage every row. Raises ValidationError listing every problem.

    With ``commit_seconds``, the staging commits whenever its transaction has run that
    long; if the staging then fails, the staging table is dropped again. Rows keyed up
    to ``done_through`` (a resumed run's checkpoint) are checked but not staged. With
    ``kept_name``, the staging table is a real table of that name (``Merge.create``).
    A CSV file the database can read itself is staged by it (``filestage``)."""
    if done_through is None and (file := _database_readable(rows, strategy)) is not None:
        intake = _Intake(target, lenient, file.header, Storable.on(strategy))
        named = [(field, intake._known(field)) for field in file.header]
        if intake.columns and all(column is not None for _, column in named):
            assert file.path is not None
            merge = stage_csv_file(
                connection,
                strategy,
                target,
                file.path,
                cast(list[tuple[str, Column[Any]]], named),
                intake.columns,
                expects_version=intake.expects_version,
                commit_seconds=commit_seconds,
                kept_name=kept_name,
            )
            if merge is not None:
                file.close()  # read to its end, by the database
                return merge
    batches = _batches(rows, STAGE_BATCH_ROWS)
    first = next(batches, None)
    if first is None:
        return None
    intake = _Intake(target, lenient, _fields_of(first[1]), Storable.on(strategy))
    if len(intake.columns) > MAX_SPARSE_COLUMNS:
        raise SchemaError(f"a changeset may set at most {MAX_SPARSE_COLUMNS} columns at once")
    merge = Merge.create(
        connection,
        strategy,
        target,
        intake.columns,
        expects_version=intake.expects_version,
        sparse=True,
        kept_name=kept_name,
    )
    try:
        order = _KeyOrder(target)
        with ExitStack() as loading:
            load = loading.enter_context(strategy.stage_loader(connection, merge.stage))
            began = time.perf_counter()
            for numbers, batch in chain([first], batches):
                columns = intake.convert_batch(numbers, batch)
                if done_through is not None and columns:
                    columns = _keyed_after(columns, done_through, len(target.key))
                if columns:  # with problems too: the duplicate search needs every key
                    order.see(columns)
                    load(columns)
                # Whether or not the batch was staged: a resumed run reads the rows up
                # to its checkpoint without staging them, and must not hold its
                # transaction open while it does.
                if commit_seconds is not None and time.perf_counter() - began > commit_seconds:
                    loading.close()
                    connection.commit()
                    # Begun here, not on the loader's first statement: a loader that
                    # writes through the driver (COPY, LOAD DATA) would leave the
                    # Connection unaware of the driver's transaction, and the next
                    # commit() a no-op.
                    connection.begin()
                    load = loading.enter_context(strategy.stage_loader(connection, merge.stage))
                    began = time.perf_counter()
        if not order.increasing:
            _find_duplicates(connection, merge, intake)
        if intake.problems:
            raise intake.problems.error(target.name)
    except BaseException:
        if commit_seconds is not None:  # rows committed on the way: take the table away
            connection.rollback()
            merge.drop(connection, strategy)
            connection.commit()
        raise
    if not intake.sparse:
        merge = replace(merge, sparse=False)
    return merge


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
        batches = _batches(source.rows, STAGE_BATCH_ROWS)
        first = next(batches, None)
        if first is None:
            return CheckedRows((), (), expects_version=False)
        # No database to ask what it stores: what every database stores.
        intake = _Intake(target, source.lenient, _fields_of(first[1]), ANYWHERE)
        rows: list[tuple[Any, ...]] = []
        seen: dict[tuple[Any, ...], int] = {}
        width = len(target.key)
        for numbers, batch in chain([first], batches):
            columns = intake.convert_batch(numbers, batch)
            for number, mask, *values in zip(*columns, strict=True):
                key = tuple(values[:width])
                if key in seen:
                    value = key[0] if width == 1 else key
                    names = ", ".join(c.name for c in target.key)
                    reason = f"duplicate key: also in row {seen[key]}"
                    intake.problem(number, names, value, reason, ProblemKind.DUPLICATE_KEY)
                seen.setdefault(key, number)
                rows.append((mask, *values))
    finally:
        source.close()
    if intake.problems:
        raise intake.problems.error(target.name)
    return CheckedRows(tuple(intake.columns), tuple(rows), intake.expects_version)


def _fields_of(rows: Sequence[Fields]) -> list[str]:
    """Every field the rows carry, in the order first seen."""
    if isinstance(rows, FieldColumns):
        return list(dict.fromkeys(rows.names))
    return list(dict.fromkeys(chain.from_iterable(r for r in rows if isinstance(r, dict))))


def _database_readable(rows: Iterator[Row], strategy: Strategy) -> CsvRows | None:
    """The CSV file behind ``rows``, if the database could read it itself: a file, not
    standard input, with the default NULL (the empty cell), not yet read past its header."""
    if not strategy.reads_csv_files or not isinstance(rows, CsvRows):
        return None
    if rows.path is None or rows.null != "" or rows.finished or rows.reader.line_num > 1:
        return None
    return rows


def _batches(rows: Iterator[Row], size: int) -> Iterator[tuple[Sequence[int], Sequence[Fields]]]:
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


def _keyed_after(
    columns: list[list[Any]], done_through: tuple[Any, ...], width: int
) -> list[list[Any]]:
    """The staging columns (row numbers, masks, key…) of the rows keyed after
    ``done_through``; empty when none is."""
    keys = zip(*columns[2 : 2 + width], strict=True)
    keep = [key > done_through for key in keys]
    if all(keep):
        return columns
    kept = [list(compress(column, keep)) for column in columns]
    return kept if kept[0] else []


def _resumed_through(
    connection: Connection, prefix: str, run_id: str, target: Target
) -> tuple[Any, ...] | None:
    """The checkpoint of the changeset run being resumed, when its rows up to there need
    not be staged again: integer keys only, whose order Python and the database agree
    on (see ``_KeyOrder``). None otherwise, or when the run is not such a run: the
    executor then says what is wrong with it."""
    if not all(isinstance(column.type, types.Integer) for column in target.key):
        return None
    try:
        info = Journal(prefix).get(connection, run_id)
    except SetwiseError:
        return None
    same_key = info.arguments.get("key") == [column.name for column in target.key]
    if info.kind != Merge.kind or info.table != target.name or not same_key:
        return None
    return info.checkpoint_of(target.key)


class _KeyOrder:
    """Whether the staged keys came strictly increasing, so that none can repeat and the
    database need not look for duplicates (a GROUP BY over the staged rows).

    Only for integer keys: two texts Python tells apart may be one key to the database
    (a case-insensitive collation), two integers never are.
    """

    def __init__(self, target: Target) -> None:
        self.width = len(target.key)
        self.increasing = all(isinstance(c.type, types.Integer) for c in target.key)
        self.last: Any = None

    def see(self, columns: Sequence[Sequence[Any]]) -> None:
        if not self.increasing:
            return
        # Staging columns start (row numbers, masks, key…).
        if self.width == 1:
            keys: list[Any] = list(columns[2])
        else:
            keys = list(zip(*columns[2 : 2 + self.width], strict=True))
        if self.last is not None:
            keys.insert(0, self.last)
        self.increasing = all(map(lt, keys, islice(keys, 1, None)))
        self.last = keys[-1]


def _find_duplicates(connection: Connection, merge: Merge, intake: _Intake) -> None:
    """Log every staged row whose key an earlier row has: the exact number of them, and
    the first ``MAX_PROBLEMS`` by row. One GROUP BY when there are none."""
    repeats = int(connection.execute(merge.duplicate_count()).scalar_one())
    if not repeats:
        return
    names = [column.name for column in merge.target.key]
    listed = 0
    for row, first_row, *key in connection.execute(merge.duplicate_rows(MAX_PROBLEMS)):
        value = key[0] if len(key) == 1 else tuple(key)
        reason = f"duplicate key: also in row {first_row}"
        intake.problem(row, ", ".join(names), value, reason, ProblemKind.DUPLICATE_KEY)
        listed += 1
    intake.problems.count(ProblemKind.DUPLICATE_KEY, repeats - listed)


def _name_of(ref: Any) -> str:
    return ref if isinstance(ref, str) else str(getattr(ref, "name", None) or ref.key)
