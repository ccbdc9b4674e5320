"""MySQL and MariaDB through PyMySQL or mysqlclient (and aiomysql, PyMySQL's asyncio twin).
MariaDB is MySQL with a few more features."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, ClassVar

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Table,
    cast,
    func,
    text,
    type_coerce,
    types,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from setwise.dialects import galera, health
from setwise.dialects.base import IntegrityFacts, RowCap, StageLoader, Strategy
from setwise.dialects.compare import StoredComparison
from setwise.dialects.health import FlowControl, ReplicaLag
from setwise.dialects.identifiers import IdentifierUnits
from setwise.dialects.inserts import insert_many
from setwise.dialects.mysql_load import load_data_allowed, load_data_file
from setwise.dialects.mysql_values import Session, insert_values

# 1062: "Duplicate entry '978-0' for key 'isbn'" (MySQL 8 writes 'books.isbn')
_DUPLICATE = re.compile(r"for key '(?:[^'.]+\.)?([^']+)'")
# 1451/1452: "... CONSTRAINT `fk_author` FOREIGN KEY (`author_id`) REFERENCES ..."
_FOREIGN_KEY = re.compile(r"CONSTRAINT `([^`]+)` FOREIGN KEY \(([^)]+)\)")
# 1451/1452: "... a foreign key constraint fails (`test`.`child`, CONSTRAINT ...": the
# table that holds the foreign key.
_REFERRING = re.compile(r"fails \((?:`[^`]+`\.)?`([^`]+)`, CONSTRAINT")
# 4025 (MariaDB) "CONSTRAINT `ck_price` failed for ..."; 3819 (MySQL) "Check constraint 'ck' is"
_CHECK = re.compile(r"CONSTRAINT `([^`]+)` failed|Check constraint '([^']+)'")
# 1048: "Column 'title' cannot be null"
_NOT_NULL = re.compile(r"Column '([^']+)' cannot be null")


# A character set name as information_schema gives it; it is spelt into the SQL.
_CHARSET = re.compile(r"^[A-Za-z0-9_]+$")

#: The character set text is compared in when the column's is unknown: every other one
#: converts into it without loss.
_EVERY_CHARACTER = "utf8mb4"

#: A table's default character set and collation, as reflection names them (and as a
#: Table declares them), and the option of a CREATE TABLE that sets each.
_TABLE_TEXT_OPTIONS = (
    ("default charset", "default_charset"),
    ("charset", "default_charset"),
    ("default_charset", "default_charset"),
    ("collate", "collate"),
)

#: Each column's character set and collation (NULL where it holds no text).
_TEXT_OF_COLUMNS = text(
    "SELECT column_name, character_set_name, collation_name FROM information_schema.columns"
    " WHERE table_schema = COALESCE(:schema, DATABASE()) AND table_name = :name"
)


class _ConvertUsing(FunctionElement[Any]):
    """``CONVERT(value USING charset)``: text in the character set a column stores."""

    name = "convert"
    inherit_cache = True
    # The character set is part of the statement's text, so of its cache key too:
    # otherwise two statements that differ only in it would share compiled SQL.
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own declaration)
        *FunctionElement._traverse_internals,
        ("charset", InternalTraversal.dp_string),
    ]

    def __init__(self, value: ColumnElement[Any], charset: str) -> None:
        super().__init__(value)
        self.charset = charset


@compiles(_ConvertUsing)
def _convert_using(element: _ConvertUsing, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = element.clauses
    return f"CONVERT({compiler.process(value, **kw)} USING {element.charset})"


class _CastFloat(FunctionElement[Any]):
    """``CAST(value AS FLOAT)``: a single-precision float, as a FLOAT column stores it
    (MariaDB 10.4.5, MySQL 8.0.17); SQLAlchemy's cast() skips FLOAT on MySQL."""

    name = "cast"
    inherit_cache = True
    type = types.Float()
    target = "FLOAT"


class _CastDouble(_CastFloat):
    """``CAST(value AS DOUBLE)``: a FLOAT's value widened exactly."""

    inherit_cache = True
    target = "DOUBLE"


@compiles(_CastFloat)
def _cast_float(element: _CastFloat, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = element.clauses
    return f"CAST({compiler.process(value, **kw)} AS {element.target})"


class MySQLComparison(StoredComparison):
    """Text compares as the bytes the column stores (``CAST … AS BINARY``): the usual
    ``utf8mb4_general_ci`` calls 'Boeing' equal to 'BOEING', and every PAD SPACE
    collation (``_bin`` ones too) 'a' equal to 'a '. The new value is first converted
    to the column's character set, so a latin1 column's 'é' equals the connection's.
    A CHAR column drops trailing spaces; a DECIMAL rounds to its scale, a FLOAT keeps
    single precision and a DATETIME(n) cuts fractions, as storing the value does."""

    def __init__(self, charsets: dict[str, str | None] | None) -> None:
        self.charsets = charsets
        """Each column's character set; None when unknown (SQL written offline): then
        both sides are compared as utf8mb4, which holds every character of any set."""

    def stored(self, column: Column[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
        kind = column.type
        if isinstance(kind, types.Float):
            return _CastFloat(value) if single_float(kind) else value
        if isinstance(kind, types.Numeric) and kind.scale is not None:
            # ROUND, not CAST: a CAST past the precision gives the largest value with a
            # warning, where storing it fails; ROUND leaves it too large to be equal.
            return func.round(value, kind.scale)
        if isinstance(kind, types.DateTime | types.Time):
            return cast(value, kind)
        return value

    def differs(
        self, column: Column[Any], value: ColumnElement[Any], *, typed: bool = False
    ) -> ColumnElement[bool]:
        new = value if typed else self.stored(column, value)
        if not isinstance(column.type, types.String):
            return column.is_distinct_from(new)
        stored: ColumnElement[Any] = column
        if self.charsets is None:
            stored, new = (
                _ConvertUsing(column, _EVERY_CHARACTER),
                _ConvertUsing(new, _EVERY_CHARACTER),
            )
        elif (charset := self.charsets.get(column.name)) is not None and _CHARSET.match(charset):
            new = _ConvertUsing(new, charset)
        if isinstance(column.type, types.CHAR):
            new = func.rtrim(new)
        binary = types.LargeBinary()
        return cast(stored, binary).is_distinct_from(cast(new, binary))


# MariaDB's virtual sequence tables: seq_1_to_10, seq_0_to_100_step_5 (any case).
_SEQUENCE = re.compile(r"seq_[0-9]+_to_[0-9]+(_step_[0-9]+)?", re.IGNORECASE)

_CHECK_CODES = (4025, 3819)
#: ER_SP_DOES_NOT_EXIST, also raised for a savepoint that is gone.
_NO_SAVEPOINT = 1305


def single_float(kind: types.Float[Any]) -> bool:
    """FLOAT (up to FLOAT(24)) is single precision; DOUBLE and REAL are not."""
    double = isinstance(kind, types.Double | types.REAL)
    return not double and (kind.precision is None or kind.precision <= 24)


class MySQLStrategy(Strategy):
    name: ClassVar[str] = "mysql"

    def single_precision(self, kind: types.Float[Any]) -> bool:
        return single_float(kind)

    # The binary protocol counts parameters in a 16-bit integer.
    max_bind_params: ClassVar[int] = 65535
    sees_tables_created_later: ClassVar[bool] = False
    plain_reads_lag_writes: ClassVar[bool] = True
    # ER_LOCK_DEADLOCK (also Galera's certification failure), ER_LOCK_WAIT_TIMEOUT
    retryable_codes: ClassVar[frozenset[Any]] = frozenset({1213, 1205})
    # ER_QUERY_TIMEOUT (MySQL's max_execution_time), ER_STATEMENT_TIMEOUT (MariaDB's)
    timeout_codes: ClassVar[frozenset[Any]] = frozenset({3024, 1969})
    timeout_variable: ClassVar[tuple[str, int]] = ("max_execution_time", 1000)
    """The session variable that stops a long statement, and its units in a second:
    MySQL's counts milliseconds, and stops SELECTs only."""
    sqlglot_dialect: ClassVar[str] = "mysql"
    # EXPLAIN of an UPDATE arrived in MySQL 5.6.3 and MariaDB 10.0.5.
    explain_prefix: ClassVar[str | None] = "EXPLAIN"
    # The server's own databases: grants and accounts (mysql), instrumentation
    # (performance_schema, and sys's views over it), and the standard catalog.
    system_schemas: ClassVar[frozenset[str]] = frozenset(
        {"information_schema", "mysql", "performance_schema", "sys"}
    )
    # Names of up to 64 characters, however many bytes. Cut at 63, where earlier versions
    # of setwise cut every name, a journal table one of them created keeps its name.
    identifier_units: ClassVar[IdentifierUnits] = "characters"
    # PyMySQL and mysqlclient read an option file only when the URL names one.
    password_hint: ClassVar[str | None] = (
        "put it in ~/.my.cnf and add read_default_file=~/.my.cnf to the URL's query"
    )

    @property
    def supports_update_from(self) -> bool:
        # SQLAlchemy renders UPDATE … FROM as MySQL's multi-table UPDATE t, s SET … WHERE …
        return True

    def read_exactly(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        # The text protocol sends a FLOAT with 6 digits (1234567 as 1234570): a DOUBLE
        # holds it exactly. SQLAlchemy turns a TIME below zero or past a day into a
        # time of day, and mysqlclient reads a zero date as None: as text, dates and
        # times come back as stored.
        kind = value.type
        if isinstance(kind, types.Float) and not isinstance(kind, types.Double | types.REAL):
            return type_coerce(_CastDouble(value), types.NullType())
        if isinstance(kind, types.Date | types.DateTime | types.Time):
            return type_coerce(cast(value, types.CHAR()), types.NullType())
        return super().read_exactly(value)

    def journal_options(self, table: Table) -> dict[str, Any]:
        # A text column without a character set or collation of its own takes its
        # table's: the journal's took the database's, so a revert's join of a key of a
        # utf8mb4_unicode_ci table failed ("Illegal mix of collations"), and a
        # utf8mb4_bin table's keys 'a' and 'A' were one key of the journal.
        options = super().journal_options(table)
        prefix = self.dialect.name
        for found, option in _TABLE_TEXT_OPTIONS:
            for known in ("mysql", "mariadb"):
                value = table.dialect_kwargs.get(f"{known}_{found}")
                if value is not None:
                    options[f"{prefix}_{option}"] = value
        return options

    def key_collations(
        self, connection: Connection, table: Table, key: Sequence[Column[Any]]
    ) -> dict[str, str]:
        # A text key without a collation of its own has its table's, which a staging
        # table in the database's would not share ("Illegal mix of collations").
        names = {c.name for c in key if isinstance(c.type, types.String) and not c.type.collation}
        if not names:
            return {}
        found = connection.execute(_TEXT_OF_COLUMNS, {"schema": table.schema, "name": table.name})
        return {str(name): str(kind) for name, _, kind in found if name in names and kind}

    def stored_comparison(self, connection: Connection, table: Table) -> StoredComparison:
        found = connection.execute(_TEXT_OF_COLUMNS, {"schema": table.schema, "name": table.name})
        return MySQLComparison({str(name): charset for name, charset, _ in found})

    def offline_comparison(self, table: Table) -> StoredComparison:
        return MySQLComparison(None)

    # A MariaDB server may be a Galera node: probed per connection (dialects/galera.py).

    def max_chunk_rows(
        self, connection: Connection, table: Table, *, journaled: bool
    ) -> RowCap | None:
        return galera.row_cap(connection, table, journaled=journaled)

    def confirms_commits(self, connection: Connection) -> bool:
        return galera.is_galera(connection)

    # A primary does not know its replicas' lag: each replica is read through its URL.
    health_signals: ClassVar[frozenset[str]] = frozenset({"replica", "sessions", "flow_control"})

    def lag_as_replica(self, connection: Connection, name: str) -> ReplicaLag:
        return health.mysql_lag_as_replica(connection, name)

    def active_sessions(self, connection: Connection) -> int:
        return health.mysql_active_sessions(connection)

    def flow_control(self, connection: Connection) -> FlowControl | None:
        return galera.flow_control(connection)

    @contextmanager
    def causal_reads(self, connection: Connection) -> Iterator[None]:
        with galera.causal_reads(connection):
            yield

    @contextmanager
    def statement_timeout(self, connection: Connection, seconds: float) -> Iterator[None]:
        # A session variable: put back whatever happens, as the timeout leaves the
        # transaction usable.
        name, per_second = self.timeout_variable
        before = connection.execute(text(f"SELECT @@SESSION.{name}")).scalar_one()
        assign = text(f"SET SESSION {name} = :value")
        limit = seconds * per_second
        connection.execute(assign, {"value": max(1, round(limit)) if per_second > 1 else limit})
        try:
            yield
        finally:
            connection.execute(assign, {"value": before})

    @contextmanager
    def stage_loader(self, connection: Connection, table: Table) -> Iterator[StageLoader]:
        session = Session(connection)
        if not load_data_allowed(connection):
            yield partial(self._insert_laid_out, connection, table, session)
            return
        with load_data_file(connection, table) as file:

            def load(columns: Sequence[Sequence[Any]]) -> None:
                columns = self.driver_columns(table, columns)
                if not file.write(columns):
                    self._insert_driver_columns(connection, table, columns, session)

            yield load

    def insert_batch(
        self, connection: Connection, table: Table, columns: Sequence[Sequence[Any]]
    ) -> None:
        self._insert_laid_out(connection, table, Session(connection), columns)

    def _insert_laid_out(
        self,
        connection: Connection,
        table: Table,
        session: Session,
        columns: Sequence[Sequence[Any]],
    ) -> None:
        self._insert_driver_columns(connection, table, self.driver_columns(table, columns), session)

    def _insert_driver_columns(
        self,
        connection: Connection,
        table: Table,
        columns: Sequence[Sequence[Any]],
        session: Session,
    ) -> None:
        # Laid out a column at a time (dialects/mysql_values.py) where exact; else the
        # driver's executemany, which PyMySQL and mysqlclient send as multi-row INSERTs
        # of up to 1 MB, escaping each value.
        if not insert_values(connection, table, columns, session):
            insert_many(connection, table, list(zip(*columns, strict=True)), "%s")

    def drop_stage(self, connection: Connection, table: Table) -> None:
        # TEMPORARY: never a real table of the same name. A temporary table survives a
        # rollback here, so a failed run's staging table is dropped by the next run.
        name = connection.dialect.identifier_preparer.format_table(table)
        connection.exec_driver_sql(f"DROP TEMPORARY TABLE IF EXISTS {name}")

    def is_retryable(self, error: DBAPIError) -> bool:
        # A deadlock, or on Galera a certification abort by another node's commit, rolls
        # back the whole transaction; when that lands between a chunk's statements, the
        # next one to fail is the release of (or the rollback to) its savepoint, with
        # 1305 "SAVEPOINT ... does not exist" instead of 1213.
        if self.error_code(error.orig) == _NO_SAVEPOINT and "SAVEPOINT" in str(error.orig):
            return True
        return super().is_retryable(error)

    def is_integrity_error(self, error: DBAPIError) -> bool:
        # PyMySQL raises a failed CHECK (MariaDB 4025, MySQL 3819) as OperationalError.
        return super().is_integrity_error(error) or self.error_code(error.orig) in _CHECK_CODES

    def error_code(self, error: BaseException | None) -> Any:
        args = error.args if error is not None else ()
        return args[0] if args and isinstance(args[0], int) else None

    def describe_integrity_error(self, error: BaseException | None) -> IntegrityFacts:
        args = error.args if error is not None else ()
        message = str(args[1]) if len(args) > 1 else str(error)
        code = self.error_code(error)
        if code == 1062 and (match := _DUPLICATE.search(message)):
            return IntegrityFacts(kind="unique", constraint=match.group(1))
        if code in (1451, 1452) and (match := _FOREIGN_KEY.search(message)):
            columns = tuple(part.strip().strip("`") for part in match.group(2).split(","))
            referring = _REFERRING.search(message)
            table = referring.group(1) if referring else None
            return IntegrityFacts(
                kind="foreign key", constraint=match.group(1), columns=columns, table=table
            )
        if match := _CHECK.search(message):
            return IntegrityFacts(kind="check", constraint=match.group(1) or match.group(2))
        if match := _NOT_NULL.search(message):
            return IntegrityFacts(kind="not null", columns=(match.group(1),))
        return IntegrityFacts(kind="constraint")


class MariaDBStrategy(MySQLStrategy):
    name: ClassVar[str] = "mariadb"
    # Seconds, with a fraction; it stops every kind of statement.
    timeout_variable: ClassVar[tuple[str, int]] = ("max_statement_time", 1)

    def is_system_table(self, table: str, schema: str | None) -> bool:
        # The SEQUENCE engine makes up seq_1_to_1000000000 in every database: a table
        # function by another name, read as long as a subquery likes.
        return super().is_system_table(table, schema) or bool(_SEQUENCE.fullmatch(table))
