"""MySQL and MariaDB through PyMySQL. MariaDB is MySQL with a few more features."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, ClassVar

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError

from setwise.dialects import galera
from setwise.dialects.base import IdentifierUnits, IntegrityFacts, RowCap, StageLoader, Strategy
from setwise.dialects.mysql_load import load_data_allowed, load_data_file

# 1062: "Duplicate entry '978-0' for key 'isbn'" (MySQL 8 writes 'books.isbn')
_DUPLICATE = re.compile(r"for key '(?:[^'.]+\.)?([^']+)'")
# 1451/1452: "... CONSTRAINT `fk_author` FOREIGN KEY (`author_id`) REFERENCES ..."
_FOREIGN_KEY = re.compile(r"CONSTRAINT `([^`]+)` FOREIGN KEY \(([^)]+)\)")
# 4025 (MariaDB) "CONSTRAINT `ck_price` failed for ..."; 3819 (MySQL) "Check constraint 'ck' is"
_CHECK = re.compile(r"CONSTRAINT `([^`]+)` failed|Check constraint '([^']+)'")
# 1048: "Column 'title' cannot be null"
_NOT_NULL = re.compile(r"Column '([^']+)' cannot be null")


_CHECK_CODES = (4025, 3819)
#: ER_SP_DOES_NOT_EXIST, also raised for a savepoint that is gone.
_NO_SAVEPOINT = 1305


class MySQLStrategy(Strategy):
    name: ClassVar[str] = "mysql"
    # The binary protocol counts parameters in a 16-bit integer.
    max_bind_params: ClassVar[int] = 65535
    rowcount_is_matched: ClassVar[bool] = True
    sees_tables_created_later: ClassVar[bool] = False
    # ER_LOCK_DEADLOCK (also Galera's certification failure), ER_LOCK_WAIT_TIMEOUT
    retryable_codes: ClassVar[frozenset[Any]] = frozenset({1213, 1205})
    sqlglot_dialect: ClassVar[str] = "mysql"
    # EXPLAIN of an UPDATE arrived in MySQL 5.6.3 and MariaDB 10.0.5.
    explain_prefix: ClassVar[str | None] = "EXPLAIN"
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

    # A MariaDB server may be a Galera node: probed per connection (dialects/galera.py).

    def max_chunk_rows(
        self, connection: Connection, table: Table, *, journaled: bool
    ) -> RowCap | None:
        return galera.row_cap(connection, table, journaled=journaled)

    def confirms_commits(self, connection: Connection) -> bool:
        return galera.is_galera(connection)

    @contextmanager
    def causal_reads(self, connection: Connection) -> Iterator[None]:
        with galera.causal_reads(connection):
            yield

    @contextmanager
    def stage_loader(self, connection: Connection, table: Table) -> Iterator[StageLoader]:
        if not load_data_allowed(connection):
            yield partial(self.insert_batch, connection, table)
            return
        with load_data_file(connection, table) as file:

            def load(columns: Sequence[Sequence[Any]]) -> None:
                columns = self.driver_columns(table, columns)
                if not file.write(columns):
                    self.insert_many(connection, table, list(zip(*columns, strict=True)), "%s")

            yield load

    def insert_batch(
        self, connection: Connection, table: Table, columns: Sequence[Sequence[Any]]
    ) -> None:
        columns = self.driver_columns(table, columns)
        # PyMySQL sends an executemany INSERT … VALUES as multi-row INSERTs of up to 1 MB.
        self.insert_many(connection, table, list(zip(*columns, strict=True)), "%s")

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
            return IntegrityFacts(kind="foreign key", constraint=match.group(1), columns=columns)
        if match := _CHECK.search(message):
            return IntegrityFacts(kind="check", constraint=match.group(1) or match.group(2))
        if match := _NOT_NULL.search(message):
            return IntegrityFacts(kind="not null", columns=(match.group(1),))
        return IntegrityFacts(kind="constraint")


class MariaDBStrategy(MySQLStrategy):
    name: ClassVar[str] = "mariadb"
