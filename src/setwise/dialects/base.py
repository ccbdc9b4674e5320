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

from sqlalchemy import URL, Column, Connection, Select, Table, Update, insert, type_coerce, types
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.schema import DropTable
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ClauseElement, ColumnElement

from setwise.dialects.compare import StoredComparison
from setwise.dialects.explain import Explain
from setwise.dialects.health import FlowControl, ReplicaLag
from setwise.dialects.identifiers import MAX_IDENTIFIER, IdentifierUnits, shorten
from setwise.errors import InvalidArgumentError

StageLoader = Callable[[Sequence[Sequence[Any]]], None]
"""Loads one batch into a staging table: one sequence of values per column, in order."""

FileLoader = Callable[[bytes], None]
"""Loads one block of whole CSV records, as bytes, into a staging table."""

Columns = Sequence[Column[Any]]
"""Columns of a table, in the order a statement reads or writes them."""


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

    table: str | None = None
    """For a foreign key that refused a delete: the referring table, when the database
    reports it."""


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

    sqlglot_dialect: ClassVar[str] = ""
    """The sqlglot dialect that reads this database's SQL text (``--where``, ``--set``);
    "" is sqlglot's generic SQL."""

    explain_prefix: ClassVar[str | None] = None
    """What asks this database for a statement's plan without running it; None when
    setwise does not know, and plans then carry no EXPLAIN."""

    system_schemas: ClassVar[frozenset[str]] = frozenset({"information_schema"})
    """Schemas (in lower case) that hold the database's own catalogs, which a subquery
    of ``--where`` / ``--set`` may not read: SQL's standard one by default."""

    system_prefixes: ClassVar[tuple[str, ...]] = ()
    """Beginnings (in lower case) of the names of schemas and tables the database keeps
    for itself, refused like ``system_schemas``."""

    def is_system_table(self, table: str, schema: str | None) -> bool:
        """True when ``schema.table`` (``table`` alone: as the connection finds it) is
        the database's own rather than a user's table, by ``system_schemas`` and
        ``system_prefixes``; compared without regard to case."""
        names = [table.lower()] if schema is None else [table.lower(), schema.lower()]
        if schema is not None and schema.lower() in self.system_schemas:
            return True
        return any(name.startswith(self.system_prefixes) for name in names)

    max_identifier_length: ClassVar[int] = MAX_IDENTIFIER
    """The longest name, in ``identifier_units``, that setwise gives a table, column or
    index it names after a user's (journal tables and their ``k_``/``o_``/``n_``
    columns, staging tables, their indexes): a longer one is shortened (``identifier``)."""

    identifier_units: ClassVar[IdentifierUnits] = "bytes"
    """What ``max_identifier_length`` counts: bytes where the database cuts a name by
    its bytes (PostgreSQL), characters where it counts characters (MySQL)."""

    password_hint: ClassVar[str | None] = None
    """Where to put a password so that the driver finds it without one in the URL, as
    advice under a command setwise prints with the password left out; None where the
    driver looks nowhere else."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def missing_database(self, url: URL) -> str | None:
        """Where the database ``url`` names would be created by connecting to it, when
        it does not exist yet (a SQLite file); None where connecting creates nothing."""
        return None

    def identifier(self, name: str, *, room: int = 0) -> str:
        """The name setwise gives a table, column or index it derives (``name``), fitting
        this database with ``room`` to spare for a suffix added to it later: every such
        name is made here, so that none is cut by the database into another's."""
        return shorten(name, self.max_identifier_length - room, self.identifier_units)

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
        # A generator still, for contextmanager: the refusal comes when the block starts.
        yield from _refusing(
            FileRefused(f"{self.name}: setwise has the database read no file itself")
        )

    text_holds_nul: ClassVar[bool] = True
    """A text column stores a NUL character (U+0000) as given; where not, setwise
    refuses such a value up front, by row and column."""

    floats_hold_nonfinite: ClassVar[bool] = False
    """A FLOAT column stores NaN and ±Infinity as given; where not (SQLite stores a NaN
    as NULL, MariaDB refuses both), setwise refuses them up front, by row and column."""

    def single_precision(self, kind: types.Float[Any]) -> bool:
        """A FLOAT column of ``kind`` keeps single precision here (at most 3.4e38), which
        setwise checks values against up front, by row and column."""
        return False

    def unfit_staged(self, staged: Column[Any], column: Column[Any]) -> list[ColumnElement[bool]]:
        """Conditions true for a value the database's CSV reader staged (into a column of
        ``tables.loose_staging_type``) that setwise's own checks refuse for ``column``."""
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

    def analyze_stage(self, connection: Connection, table: Table) -> None:
        """Give the planner statistics of a loaded staging table, where it has none."""

    index_stage_rows: ClassVar[int | None] = None
    """A one-transaction run whose changeset stages at least this many rows indexes
    their keys and analyzes the staging table before it counts and merges them (a
    chunked run always does); None: never."""

    stage_schema: ClassVar[str | None] = None
    """The schema that holds this session's temporary tables, named so that dropping a
    staging table can never reach a user's table of the same name."""

    def drop_stage(self, connection: Connection, table: Table) -> None:
        """Drop the staging table if a run left it on this connection."""
        connection.execute(DropTable(table, if_exists=True))

    keyed_stage_options: ClassVar[dict[str, Any] | None] = None
    """Where set, changesets whose keys are not integers that come strictly increasing
    are staged into a temporary table whose primary key is the key (made with these
    ``Table`` options; not with ``kept_stage_prefixes``, whose kept table a resumed run
    merges): the database's own unique index judges which keys are the same, and the
    count and the merge read the target in key order (``staging.duplicates``). Rows
    whose keys come in order go straight in (``insert_new_keys``); the others are
    staged beside and copied in key order once all are read (``insert_new_keys_from``,
    or for integer keys by a copy that a repeat makes fail: it must leave the
    transaction usable, as SQLite does by undoing the statement alone). None: the
    staged keys are grouped to find duplicates (``staging.duplicates.find_duplicates``)."""

    def insert_new_keys(
        self, connection: Connection, table: Table, columns: Sequence[Sequence[Any]]
    ) -> int:
        """INSERT a batch as ``insert_batch`` does into a staging table whose primary key
        is the key (``keyed_stage_options``); returns how many rows it inserted. A
        strategy that sets ``keyed_stage_options`` leaves out every row whose key the
        table holds already, an earlier row's of the same batch too (SQLite: INSERT OR
        IGNORE); here every row goes in, and a repeated key fails the statement."""
        self.insert_batch(connection, table, columns)
        return len(columns[0]) if columns else 0

    def insert_new_keys_from(self, connection: Connection, table: Table, rows: Select[Any]) -> int:
        """INSERT ``rows`` (every column of ``table``, in order) into a staging table
        whose primary key is the key, as ``insert_new_keys`` does; returns how many rows
        it inserted."""
        statement = insert(table).from_select(list(table.c.keys()), rows)
        return int(connection.execute(statement).rowcount)

    def key_collations(
        self, connection: Connection, table: Table, key: Sequence[Column[Any]]
    ) -> dict[str, str]:
        """The collation of each key column whose reflected type does not carry it, by
        column name: a staging table's key column takes it, so that the staged keys are
        the same or differ as the target's do."""
        return {}

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

    def journal_options(self, table: Table) -> dict[str, Any]:
        """``journal_table_options``, and what ``table``'s journal needs to match it."""
        return dict(self.journal_table_options)

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

    serialization_codes: ClassVar[frozenset[Any]] = frozenset()
    """Error codes (``error_code``) of a write refused because its row changed after the
    transaction's snapshot was taken (a serialization failure): the row moved under the
    caller, which is a conflict, not a fault."""

    def is_serialization_failure(self, error: DBAPIError) -> bool:
        """True when the database refused a write on a row that changed after the
        transaction's snapshot, rather than writing or skipping it."""
        return self.error_code(error.orig) in self.serialization_codes

    plain_reads_lag_writes: ClassVar[bool] = False
    """Under REPEATABLE READ a plain SELECT reads the transaction's snapshot while an
    UPDATE or a locking read works on the newest committed rows (InnoDB), so a count or
    check that must agree with what a write does reads with ``lock_rows``. False where a
    write of a row changed since the snapshot fails instead (PostgreSQL) or where no
    other transaction can commit a change in between (SQLite)."""

    timeout_codes: ClassVar[frozenset[Any]] = frozenset()
    """Error codes (``error_code``) of a statement stopped by ``statement_timeout``."""

    @contextmanager
    def statement_timeout(self, connection: Connection, seconds: float) -> Iterator[None]:
        """Within the block, a statement on ``connection`` (in a transaction) that runs
        longer than ``seconds`` is stopped with an error ``is_timeout`` recognizes, and
        the transaction stays usable only as far as the database keeps it so. The base
        knows no way to stop a statement: the block runs unbounded."""
        yield

    def is_timeout(self, error: DBAPIError) -> bool:
        """True when ``statement_timeout`` stopped the statement that raised ``error``."""
        return self.error_code(error.orig) in self.timeout_codes

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

    health_signals: ClassVar[frozenset[str]] = frozenset()
    """The health signals (``engine.health``) this database reports: "replicas" (its
    replicas' lag, as a primary sees it), "replica" (its own lag, read through its URL),
    "sessions" (statements running), "autovacuum" (on a table), "flow_control" (Galera's,
    on a node). A signal asked for where it is not listed is refused before any write."""

    def replica_lags(self, connection: Connection) -> list[ReplicaLag]:
        """Each replica's lag, as this primary reports it ("replicas")."""
        raise self.no_signal("replicas", "max_lag_seconds")

    def lag_as_replica(self, connection: Connection, name: str) -> ReplicaLag:
        """The lag of the replica ``connection`` reaches, shown as ``name`` ("replica")."""
        raise self.no_signal("replica", "replica_urls")

    def active_sessions(self, connection: Connection) -> int:
        """Sessions running a statement now, the caller's left out ("sessions")."""
        raise self.no_signal("sessions", "max_active_sessions")

    def autovacuum_running(self, connection: Connection, table: Table) -> bool:
        """Whether autovacuum works on ``table`` now ("autovacuum")."""
        raise self.no_signal("autovacuum", "wait_for_autovacuum")

    def flow_control(self, connection: Connection) -> FlowControl | None:
        """Galera's flow control on this node so far; None where it is no node."""
        return None

    def no_signal(self, signal: str, argument: str) -> InvalidArgumentError:
        """The error of health signal ``signal``, asked for by ``argument``, where this
        database does not report it."""
        return InvalidArgumentError(
            f"{argument} is not available on {self.name}: it reports no {signal} signal "
            f"(setwise reads {', '.join(sorted(self.health_signals)) or 'none'} here)",
            argument=argument,
        )

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

    def restoring_insert(self, table: Table) -> Insert:
        """An INSERT that puts rows of ``table`` back as they were, the values of
        columns the database generates for a new row included (a revert of a delete)."""
        return insert(table)

    def read_exactly(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        """``value`` selected so that, read into Python and bound again, it writes what it
        was (the by-key path): as the driver gives it where a result processor has no
        bind processor to undo it (MySQL's DOUBLE to a Decimal of 10 places)."""
        kind, dialect = value.type.dialect_impl(self.dialect), self.dialect
        undone = kind.result_processor(dialect, None) is None or kind.bind_processor(dialect)
        return value if undone else type_coerce(value, types.NullType())

    def journaling_update(
        self, connection: Connection, update: Update, key: Columns, written: Columns
    ) -> Select[Any] | None:
        """``update`` returning the journal rows of what it writes as it writes them
        (``key``, then old and new of each of ``written``; one row per row written), for
        the journal's INSERT to take in the same statement: where the server on
        ``connection`` returns the values an UPDATE overwrote. None where it does not
        (everywhere but PostgreSQL 18): the journal's INSERT reads them first."""
        return None

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


def _refusing(error: Exception) -> Iterator[Any]:
    """Raise ``error`` where a generator ``yield from``s it."""
    raise error
