"""SQLite through the standard library's sqlite3 module (pysqlite)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote

from sqlalchemy import (
    URL,
    Column,
    ColumnElement,
    Connection,
    Select,
    Table,
    event,
    func,
    insert,
    types,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from setwise.dialects.base import IntegrityFacts, Strategy
from setwise.dialects.compare import StoredComparison
from setwise.dialects.drivers import call, driver_connection
from setwise.dialects.identifiers import IdentifierUnits
from setwise.dialects.inserts import insert_rows_per_statement

# "UNIQUE constraint failed: books.isbn, books.title"
_COLUMNS_FAILED = re.compile(r"^(UNIQUE|NOT NULL) constraint failed: (.+)$")
# "CHECK constraint failed: ck_books_price" (the name, or the expression when unnamed)
_CHECK_FAILED = re.compile(r"^CHECK constraint failed: (.+)$")
# Rows per multi-row INSERT when staging. pysqlite's executemany steps the statement
# once a row; a VALUES list of many rows steps once. 500,000 four-column rows into a
# temporary table (sqlite3 module alone): executemany 0.60-0.66 s; 100 rows a
# statement 0.30-0.33 s, 500 rows 0.27-0.32 s, 2,000 rows 0.26-0.32 s.
STAGE_ROWS_PER_INSERT = 500
# Virtual-machine steps between calls of the progress handler that enforces a
# statement timeout: it was called about 1,300 times a second counting 1,000,000 rows
# (so a statement stops within a millisecond of its time), and the count took no
# measurable longer than without it (0.27-0.33 s either way, 7 runs).
PROGRESS_STEPS = 10_000


class SQLiteComparison(StoredComparison):
    """SQLite compares text with the column's collation (NOCASE, RTRIM): BINARY is its
    byte-for-byte one. It keeps whatever number it is given, so a NUMERIC(5, 2) column
    would store 20.001: a set-based run rounds to the declared scale, as every other
    database does when it stores the value."""

    def assigned(self, column: Column[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
        scale = _scale(column)
        return value if scale is None else func.round(value, scale)

    def stored(self, column: Column[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
        return self.assigned(column, value)

    def key_match(self, column: Column[Any], staged: ColumnElement[Any]) -> ColumnElement[bool]:
        # A unary + keeps the staged key from being looked up by the staging table's
        # primary key (``keyed_stage_options``): the planner then reads the staged rows
        # and finds each target row by its key. Without it, an UPDATE … FROM read the
        # whole target (1,000,000 rows) to merge ten staged ones. A column under + is
        # still a column to SQLite: the target column's collation decides.
        plus: ColumnElement[Any] = UnaryExpression(
            self.kept(column, staged), operator=custom_op("+")
        )
        return column == plus

    def differs(
        self, column: Column[Any], value: ColumnElement[Any], *, typed: bool = False
    ) -> ColumnElement[bool]:
        new = value if typed else self.stored(column, value)
        if isinstance(column.type, types.String):
            # An explicit COLLATE on either operand wins over the column's own; it keeps
            # the operand's affinity, so '5' and 5 still compare as the column stores them.
            new = new.collate("BINARY")
        return column.is_distinct_from(new)


def _scale(column: Column[Any]) -> int | None:
    """The declared scale of an exact NUMERIC/DECIMAL column, else None."""
    kind = column.type
    if isinstance(kind, types.Numeric) and not isinstance(kind, types.Float):
        return kind.scale
    return None


class SQLiteStrategy(Strategy):
    name: ClassVar[str] = "sqlite"
    # SQLITE_MAX_VARIABLE_NUMBER has defaulted to 32766 since SQLite 3.32 (2020);
    # Debian's and Python's builds keep that default.
    max_bind_params: ClassVar[int] = 32766
    sqlglot_dialect: ClassVar[str] = "sqlite"
    # SQLite names none of its schemas for catalogs, and keeps every table name that
    # begins with sqlite_ for itself (sqlite_schema, sqlite_master, sqlite_sequence,
    # sqlite_stat1…): a user's CREATE TABLE of such a name fails.
    system_schemas: ClassVar[frozenset[str]] = frozenset()
    system_prefixes: ClassVar[tuple[str, ...]] = ("sqlite_",)
    # Plain EXPLAIN lists bytecode; EXPLAIN QUERY PLAN is the readable plan.
    explain_prefix: ClassVar[str | None] = "EXPLAIN QUERY PLAN"
    stage_schema: ClassVar[str | None] = "temp"
    # A second connection could not write the journal tables while this one holds the
    # database's write lock, and SQLite's DDL is transactional: create them in place.
    journal_ddl_apart: ClassVar[bool] = False
    # The journal's rows kept in its primary key's b-tree alone, rather than in a rowid
    # table and an index beside it: a chunked journaled update of 250,000 rows took
    # 0.68-0.69 s against 0.71-0.73 s (medians of 5 and 7; 0.46 s without the journal).
    journal_table_options: ClassVar[dict[str, Any]] = {"sqlite_with_rowid": False}
    # The database's write lock is held from a transaction's first write to its commit.
    single_writer: ClassVar[bool] = True
    # SQLite takes names of any length. Earlier versions of setwise cut names at 63
    # characters on every database; so does this one here, so that a journal table an
    # earlier version created keeps its name.
    identifier_units: ClassVar[IdentifierUnits] = "characters"
    # Staged rows whose keys came unordered are copied in key order into a table kept
    # in its primary key's b-tree: the copy refuses a key given twice, and the count and
    # the UPDATE then read the target in key order. 500,000 shuffled rows against
    # 1,000,000 (sqlite3 alone): GROUP BY 0.30-0.42 s, count 1.2-1.8 s, UPDATE 3.9-7.6 s;
    # keyed copy 0.65-0.77 s, count 0.20 s, UPDATE 1.0-1.3 s. Keys that come in order
    # (text keys) go straight into it: 500,000 text keys in order, 0.26 s against 0.19 s
    # staged + 0.33 s copied; unordered ones do not, the b-tree outgrowing the page
    # cache: 1.20-1.46 s against 0.21 + 0.39-0.50 s (benchmarks/README.md, issue 26).
    keyed_stage_options: ClassVar[dict[str, Any] | None] = {"sqlite_with_rowid": False}

    def missing_database(self, url: URL) -> str | None:
        # sqlite3 creates a file it is asked to open, unless a URI says mode=ro or rw.
        name = url.database or ""
        query = {key: str(value) for key, value in url.query.items()}
        if query.get("uri", "").lower() in ("true", "1"):
            name, _, options = name.removeprefix("file:").partition("?")
            if "mode=memory" in options or query.get("mode") == "memory":
                return None
            name = unquote(name)
        if name in ("", ":memory:"):
            return None
        path = Path(name).absolute()
        return None if path.exists() else str(path)

    def insert_batch(
        self, connection: Connection, table: Table, columns: Sequence[Sequence[Any]]
    ) -> None:
        values = self.driver_columns(table, columns)
        insert_rows_per_statement(
            connection, table, values, "?", STAGE_ROWS_PER_INSERT, self.max_bind_params
        )

    def insert_new_keys(
        self, connection: Connection, table: Table, columns: Sequence[Sequence[Any]]
    ) -> int:
        # OR IGNORE: a statement that met a key given twice goes on without that row, and
        # the driver's rowcount (sqlite3_changes) counts only the rows inserted.
        values = self.driver_columns(table, columns)
        return insert_rows_per_statement(
            connection,
            table,
            values,
            "?",
            STAGE_ROWS_PER_INSERT,
            self.max_bind_params,
            verb="INSERT OR IGNORE",
        )

    def insert_new_keys_from(self, connection: Connection, table: Table, rows: Select[Any]) -> int:
        names = list(table.c.keys())
        statement = insert(table).from_select(names, rows).prefix_with("OR IGNORE")
        return connection.execute(statement).rowcount

    def offline_comparison(self, table: Table) -> StoredComparison:
        return SQLiteComparison()

    def key_collations(
        self, connection: Connection, table: Table, key: Sequence[Column[Any]]
    ) -> dict[str, str]:
        # SQLAlchemy reflects no collation on SQLite; the unique index that backs the key
        # (a text primary key's own) names each column's.
        names = {column.name for column in key}
        quote = connection.dialect.identifier_preparer.quote
        schema = f"{quote(table.schema)}." if table.schema else ""
        for index in connection.exec_driver_sql(f"PRAGMA {schema}index_list({quote(table.name)})"):
            if not index.unique or index.partial:
                continue
            info = f"PRAGMA {schema}index_xinfo({quote(index.name)})"
            columns = [row for row in connection.exec_driver_sql(info) if row.key]
            if {row.name for row in columns} == names:
                return {row.name: row.coll for row in columns if row.coll.upper() != "BINARY"}
        return {}

    @contextmanager
    def statement_timeout(self, connection: Connection, seconds: float) -> Iterator[None]:
        # SQLite has no timeout of its own: a progress handler that returns true stops
        # the statement (SQLITE_INTERRUPT), and each statement gets its own deadline.
        # sqlite3 cannot tell which handler a connection had: none is left afterwards.
        deadline = time.monotonic() + seconds

        def started(*_: Any) -> None:
            nonlocal deadline
            deadline = time.monotonic() + seconds

        event.listen(connection, "before_cursor_execute", started)
        call(
            connection, "set_progress_handler", lambda: time.monotonic() > deadline, PROGRESS_STEPS
        )
        try:
            yield
        finally:
            call(connection, "set_progress_handler", None, 0)
            event.remove(connection, "before_cursor_execute", started)

    def is_timeout(self, error: DBAPIError) -> bool:
        return getattr(error.orig, "sqlite_errorname", None) == "SQLITE_INTERRUPT"

    def is_retryable(self, error: DBAPIError) -> bool:
        # SQLITE_BUSY / SQLITE_LOCKED surface as "database is locked" / "... table is locked".
        return "locked" in str(error.orig) or "busy" in str(error.orig)

    @property
    def supports_update_from(self) -> bool:
        # UPDATE … FROM arrived in SQLite 3.33 (2020-08).
        version = getattr(self.dialect.dbapi, "sqlite_version_info", (0, 0, 0))
        return tuple(version) >= (3, 33, 0)

    def format_explain(
        self, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> tuple[str, ...]:
        # Rows are (id, parent, notused, detail): indent each step under its parent.
        depth: dict[Any, int] = {0: 0}
        lines = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, 0) + 1
            lines.append("  " * (depth[node] - 1) + str(detail))
        return tuple(lines)

    def prepare_savepoint(self, connection: Connection) -> None:
        # pysqlite delays BEGIN until the first INSERT/UPDATE/DELETE. A SAVEPOINT sent
        # before that opens a transaction of its own, and releasing it would commit
        # behind the caller's back. Emitting the BEGIN now makes the savepoint nest
        # inside the caller's transaction, which the caller still commits or rolls back.
        if connection.connection.dbapi_connection is None:
            return
        if not driver_connection(connection).in_transaction:  # aiosqlite's too: a property
            call(connection, "execute", "BEGIN")

    def describe_integrity_error(self, error: BaseException | None) -> IntegrityFacts:
        message = str(error.args[0]) if error is not None and error.args else str(error)
        if match := _COLUMNS_FAILED.match(message):
            kind = "unique" if match.group(1) == "UNIQUE" else "not null"
            columns = tuple(part.strip().rpartition(".")[2] for part in match.group(2).split(","))
            return IntegrityFacts(kind=kind, columns=columns)
        if match := _CHECK_FAILED.match(message):
            return IntegrityFacts(kind="check", constraint=match.group(1))
        if message.startswith("FOREIGN KEY"):
            return IntegrityFacts(kind="foreign key")
        return IntegrityFacts(kind="constraint")
