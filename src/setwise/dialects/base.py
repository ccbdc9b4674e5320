"""The generic strategy: capability flags and the code paths that read them.

A dialect module subclasses ``Strategy``, sets flags, and overrides the few hooks
whose behaviour really differs (reading an IntegrityError, starting a transaction).
Everything else is written once, here or above, against the flags.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from sqlalchemy import Column, Connection, Select, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.schema import DropTable
from sqlalchemy.sql.elements import ClauseElement, ColumnElement

from setwise.dialects.compare import StoredComparison
from setwise.dialects.explain import Explain

StageLoader = Callable[[Sequence[Sequence[Any]]], None]
"""Loads one batch into a staging table: one sequence of values per column, in order."""

FileLoader = Callable[[bytes], None]
"""Loads one block of whole CSV records, as bytes, into a staging table."""


class FileRefused(Exception):
    """The database's own CSV reader would not read a file as setwise does, or refused a
    value in it: the caller stages the file through Python instead, which names every
    problem."""


@dataclass(frozen=True)
class IntegrityFacts:
    """What a database said about a constraint violation, as far as it says it."""

    kind: str
    """One of "unique", "foreign key", "check", "not null", or "constraint" when unknown."""

    constraint: str | None = None
    """The constraint's name, when the database reports it."""

    columns: tuple[str, ...] = ()
    """The columns involved, when the database reports them."""


@dataclass(frozen=True)
class RowCap:
    """The most rows one transaction may change on a server, and the setting behind it."""

    rows: int
    setting: str
    """The setting and its value, as a person would look it up: "wsrep_max_ws_rows = 1000"."""

    basis: str
    """How ``rows`` follows from the setting, in words."""


class Strategy:
    """How setwise writes to one kind of database. The base serves any dialect."""

    name: ClassVar[str] = "generic"
    """The dialect family this strategy serves, for reports and messages."""

    max_bind_params: ClassVar[int] = 999
    """Most bound parameters one statement may carry. 999 is SQLite's old default, the
    lowest limit among the databases SQLAlchemy supports, so it is safe anywhere."""

    rowcount_is_matched: ClassVar[bool] = False
    """True when an UPDATE's rowcount counts rows matched rather than rows changed
    (SQLAlchemy's MySQL drivers ask for CLIENT_FOUND_ROWS)."""

    sqlglot_dialect: ClassVar[str] = ""
    """The sqlglot dialect that reads this database's SQL text (``--where``, ``--set``);
    "" is sqlglot's generic SQL."""

    explain_prefix: ClassVar[str | None] = None
    """What asks this database for a statement's plan without running it; None when
    setwise does not know, and plans then carry no EXPLAIN."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def explain(self, connection: Connection, statement: ClauseElement) -> tuple[str, ...]:
        """The database's plan for ``statement``, as lines of text; nothing is run."""
        if self.explain_prefix is None:
            return ()
        result = connection.execute(Explain(statement, self.explain_prefix))
        return self.format_explain(tuple(result.keys()), result.all())

    def format_explain(
        self, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> tuple[str, ...]:
        """One line per EXPLAIN row: the text of a one-column plan, else name=value pairs."""
        if len(columns) == 1:
            return tuple(str(row[0]) for row in rows)
        return tuple(
            " ".join(
                f"{name}={value}"
                for name, value in zip(columns, row, strict=True)
                if value not in (None, "")
            )
            for row in rows
        )

    @property
    def supports_update_returning(self) -> bool:
        """UPDATE … RETURNING works, per SQLAlchemy's own probe of the server version."""
        return bool(self.dialect.update_returning)

    @property
    def supports_sane_rowcount(self) -> bool:
        """The rowcount of an UPDATE can be trusted at all."""
        return bool(self.dialect.supports_sane_rowcount)

    @property
    def supports_update_from(self) -> bool:
        """UPDATE target … FROM staging (or MySQL's multi-table UPDATE) is available, so a
        changeset merges in one statement; without it rows are updated by key."""
        return False

    @contextmanager
    def stage_loader(self, connection: Connection, table: Table) -> Iterator[StageLoader]:
        """A loader for the staging table, called once per batch; every row is in the
        table when the block ends, and the connection takes other statements again."""
        yield partial(self.insert_batch, connection, table)

    reads_csv_files: ClassVar[bool] = False
    """The database reads a CSV file's bytes itself (``csv_file_loader``), so a changeset
    from a CSV file is not parsed in Python when its columns allow it."""

    @contextmanager
    def csv_file_loader(
        self, connection: Connection, table: Table, names: Sequence[str]
    ) -> Iterator[FileLoader]:
        """A loader of strict CSV bytes into the columns ``names`` of ``table``, the
        empty cell NULL, quoted or not; it raises ``FileRefused`` (also when the block
        ends) for anything the database's reader could read otherwise than setwise's,
        or would not read. A database without ``reads_csv_files`` refuses every file,
        which is then read in Python."""
        raise FileRefused(f"{self.name}: setwise has the database read no file itself")
        yield  # a generator, for contextmanager

    def unfit_staged(self, staged: Column[Any], column: Column[Any]) -> list[ColumnElement[bool]]:
        """Conditions true for a value the database's CSV reader staged (into a column of
        ``merge.loose_staging_type``) that setwise's own checks refuse for ``column``."""
        return []

    def insert_batch(
        self, connection: Connection, table: Table, columns: Sequence[Sequence[Any]]
    ) -> None:
        """INSERT a batch into the staging table: one sequence of values per column of
        ``table``, in order, all of one length."""
        names = [column.name for column in table.columns]
        rows = zip(*columns, strict=True)
        connection.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])

    def driver_columns(self, table: Table, columns: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        """``columns`` as the driver takes them: each through its type's bind processor
        (SQLite: Decimal to float, datetime to text), a column at a time."""
        processors = [
            column.type.dialect_impl(self.dialect).bind_processor(self.dialect)
            for column in table.columns
        ]
        return [
            values if process is None else list(map(process, values))
            for process, values in zip(processors, columns, strict=True)
        ]

    def insert_many(
        self, connection: Connection, table: Table, rows: Sequence[Sequence[Any]], marker: str
    ) -> None:
        """One executemany of a plain INSERT with ``marker`` as the driver's positional
        placeholder: no SQLAlchemy parameter processing per row, so ``rows`` must hold
        ``driver_columns`` values already."""
        preparer = connection.dialect.identifier_preparer
        names = ", ".join(preparer.quote(column.name) for column in table.columns)
        markers = ", ".join([marker] * len(table.columns))
        statement = f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES ({markers})"
        connection.exec_driver_sql(statement, list(rows))

    def insert_rows_per_statement(
        self,
        connection: Connection,
        table: Table,
        columns: Sequence[Sequence[Any]],
        marker: str,
        rows_per_statement: int,
    ) -> None:
        """INSERT ``columns`` (``driver_columns`` values, one sequence per column of
        ``table``) as multi-row ``VALUES`` lists of up to ``rows_per_statement`` rows, and
        never more bound parameters than ``max_bind_params``: one statement step per list
        instead of one per row, for a driver whose executemany steps once a row."""
        width = len(columns)
        per = max(1, min(rows_per_statement, self.max_bind_params // width))
        preparer = connection.dialect.identifier_preparer
        names = ", ".join(preparer.quote(column.name) for column in table.columns)
        head = f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES "
        row = "(" + ", ".join([marker] * width) + ")"
        full = head + ", ".join([row] * per)
        count = len(columns[0])
        # Row-major, laid out by slice assignment: one C-level copy per column, where
        # zipping makes a tuple per row (0.7 ms against 1.5 ms per 10,000 rows).
        values: list[Any] = [None] * (count * width)
        for index, column in enumerate(columns):
            values[index::width] = column
        for start in range(0, count, per):
            size = min(per, count - start)
            statement = full if size == per else head + ", ".join([row] * size)
            connection.exec_driver_sql(
                statement, tuple(values[start * width : (start + size) * width])
            )

    def analyze_stage(self, connection: Connection, table: Table) -> None:
        """Give the planner statistics of a loaded staging table, where it has none."""

    stage_schema: ClassVar[str | None] = None
    """The schema that holds this session's temporary tables, named so that dropping a
    staging table can never reach a user's table of the same name."""

    def drop_stage(self, connection: Connection, table: Table) -> None:
        """Drop the staging table if a run left it on this connection."""
        connection.execute(DropTable(table, if_exists=True))

    kept_stage_prefixes: ClassVar[tuple[str, ...] | None] = None
    """The ``CREATE … TABLE`` prefixes of a staging table a chunked changeset keeps for
    its run: a real table that outlives the process, so that a resumed run merges it
    without reading the changes again. None where only a temporary table costs nothing
    beyond the run (SQLite: a real one shares the database's one write lock; MySQL: its
    rows go to the binary log and every replica, on Galera under the write-set cap)."""

    journal_ddl_apart: ClassVar[bool] = True
    """Create journal tables on a connection of their own, so that DDL never ends or
    disturbs the caller's transaction (MySQL commits implicitly before DDL)."""

    journal_table_options: ClassVar[dict[str, Any]] = {}
    """Dialect options of the journal table of changes (``Table`` keyword arguments)."""

    packs_journal: ClassVar[bool] = False
    """Journal rows are kept as arrays, a table row per part of a chunk
    (``dialects.packed``), instead of a table row per changed row."""

    def journal_created(self, connection: Connection, table: Table) -> None:
        """Tune the journal table of changes ``table``, just created on ``connection``."""

    sees_tables_created_later: ClassVar[bool] = True
    """A transaction can read a table created after it began. MySQL's REPEATABLE READ
    cannot (error 1412 / InnoDB 159), so a journal table created during a caller's open
    transaction is only written there, never read back."""

    snapshot_chunks: ClassVar[str | None] = None
    """The statement that starts a chunk's transaction on one snapshot in which an
    UPDATE of a row changed since fails with a serialization error (retried like a
    deadlock) instead of writing over the change; None where an UPDATE writes the
    newest version whatever the snapshot (MySQL), so chunks lock what they journal.
    On such a snapshot a journaled chunk reads the old values without locking them."""

    single_writer: ClassVar[bool] = False
    """One transaction at a time writes to the database, from its first write to its
    commit (SQLite): rows a transaction has written beside cannot change under it, so a
    journaled chunk may write the rows with the writer's own UPDATE, which then finds
    exactly the rows its journal INSERT recorded, instead of joining the journal."""

    retryable_codes: ClassVar[frozenset[Any]] = frozenset()
    """Error codes (``error_code``) worth retrying: deadlocks, serialization failures and
    lock timeouts. The chunk is rolled back whole, so a retry starts from clean state."""

    def is_retryable(self, error: DBAPIError) -> bool:
        """True when running the chunk again may succeed."""
        return self.error_code(error.orig) in self.retryable_codes

    def max_chunk_rows(
        self, connection: Connection, table: Table, *, journaled: bool
    ) -> RowCap | None:
        """The most rows of ``table`` one transaction may change on this server, counting
        the journal rows written beside them; None when the server sets no such cap."""
        return None

    def confirms_commits(self, connection: Connection) -> bool:
        """True when a COMMIT that reports success may still have committed nothing
        (Galera, after a statement passed the write-set cap), so the executor checks that
        each chunk's record is there after its commit."""
        return False

    @contextmanager
    def causal_reads(self, connection: Connection) -> Iterator[None]:
        """Within the block, reads see every write committed before them anywhere (on a
        cluster, through any node): for the journal, checkpoints and revert checks."""
        yield

    def stored_comparison(self, connection: Connection, table: Table) -> StoredComparison:
        """How a run tells, on ``connection``, whether a value changes what a column of
        ``table`` stores (``dialects.compare``)."""
        return self.offline_comparison(table)

    def offline_comparison(self, table: Table) -> StoredComparison:
        """``stored_comparison`` for SQL written with no database to ask (Alembic's
        offline mode, ``setwise.alembic``): what the dialect alone can tell."""
        return StoredComparison()

    def lock_rows(self, statement: Select[Any], table: Table) -> Select[Any]:
        """``statement`` locking the rows it reads from ``table`` until the transaction ends."""
        return statement.with_for_update()

    def prepare_savepoint(self, connection: Connection) -> None:
        """Make sure a real transaction is open before a SAVEPOINT is emitted."""

    def is_integrity_error(self, error: DBAPIError) -> bool:
        """True when the database refused the values because of a constraint."""
        return isinstance(error, IntegrityError)

    def describe_integrity_error(self, error: BaseException | None) -> IntegrityFacts:
        """Read the kind, constraint and columns out of a driver's integrity error."""
        return IntegrityFacts(kind="constraint")

    def error_code(self, error: BaseException | None) -> Any:
        """The driver's error code (SQLSTATE or server error number), if it has one."""
        return None
