"""PostgreSQL through psycopg 3."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import Connection, Select, Table

from setwise.dialects.base import IntegrityFacts, StageLoader, Strategy
from setwise.dialects.bulktext import POSTGRESQL

# The DETAIL of unique and foreign-key violations: "Key (isbn)=(978-0) already exists."
_KEY_DETAIL = re.compile(r"Key \((.+?)\)=")

_KINDS = {
    "23505": "unique",
    "23503": "foreign key",
    "23514": "check",
    "23502": "not null",
}


class PostgreSQLStrategy(Strategy):
    name: ClassVar[str] = "postgresql"
    # The wire protocol counts parameters in a 16-bit integer.
    max_bind_params: ClassVar[int] = 65535
    sqlglot_dialect: ClassVar[str] = "postgres"
    explain_prefix: ClassVar[str | None] = "EXPLAIN"
    stage_schema: ClassVar[str | None] = "pg_temp"
    # Written without WAL and not replicated, as a temporary table: staging 1,000,000
    # rows took 3.7-4.2 s against 4.4-4.7 s (benchmarks/README.md). A server crash
    # empties it, and a resumed run then reads the changes again (merge.Merge.reopen).
    kept_stage_prefixes: ClassVar[tuple[str, ...] | None] = ("UNLOGGED",)
    # REPEATABLE READ: an UPDATE of a row committed after the snapshot fails with 40001.
    # Locking the rows a journaled chunk reads (SELECT … FOR UPDATE) wrote a lock into
    # every row, a tenth of a journaled 250,000-row update (benchmarks/README.md).
    snapshot_chunks: ClassVar[str | None] = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"
    # deadlock_detected, serialization_failure, lock_not_available
    retryable_codes: ClassVar[frozenset[Any]] = frozenset({"40P01", "40001", "55P03"})

    def lock_rows(self, statement: Select[Any], table: Table) -> Select[Any]:
        # OF: lock the target's rows only, not the staging or journal rows joined to them.
        return statement.with_for_update(of=table)

    @property
    def supports_update_from(self) -> bool:
        return True

    @contextmanager
    def stage_loader(self, connection: Connection, table: Table) -> Iterator[StageLoader]:
        # COPY is PostgreSQL's bulk path: one stream for the whole changeset, so the server
        # parses one batch while Python converts the next (the two cores work at once;
        # a COPY per batch waited for each). A batch goes as one block of text formatted a
        # column at a time (bulktext), or, holding a value that module does not format,
        # row by row through psycopg's own adapters.
        preparer = connection.dialect.identifier_preparer
        names = ", ".join(preparer.quote(column.name) for column in table.columns)
        raw: Any = connection.connection.dbapi_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {preparer.format_table(table)} ({names}) FROM STDIN") as copy,
        ):

            def load(columns: Sequence[Sequence[Any]]) -> None:
                text = POSTGRESQL.block(columns)
                if text is not None:
                    copy.write(text)
                    return
                for row in zip(*columns, strict=True):
                    copy.write_row(row)

            yield load

    def analyze_stage(self, connection: Connection, table: Table) -> None:
        # Autovacuum never analyzes a temporary table. Without statistics the planner
        # takes the last chunk's open range (key > x) for a third of the staged rows and
        # joins it by a scan of the whole target: 1.0-1.4 s for 8,000-13,000 rows of a
        # 1,000,000-row table where the chunks before took 0.3 s (benchmarks/README.md).
        connection.exec_driver_sql(
            f"ANALYZE {connection.dialect.identifier_preparer.format_table(table)}"
        )

    def error_code(self, error: BaseException | None) -> Any:
        return getattr(error, "sqlstate", None)

    def describe_integrity_error(self, error: BaseException | None) -> IntegrityFacts:
        diag = getattr(error, "diag", None)
        kind = _KINDS.get(str(self.error_code(error)), "constraint")
        if diag is None:
            return IntegrityFacts(kind=kind)
        columns: tuple[str, ...] = ()
        if diag.column_name:
            columns = (diag.column_name,)
        elif diag.message_detail and (match := _KEY_DETAIL.search(diag.message_detail)):
            columns = tuple(name.strip().strip('"') for name in match.group(1).split(","))
        return IntegrityFacts(kind=kind, constraint=diag.constraint_name, columns=columns)
