"""The journal: a record of every run, and the old and new values of every row it changed.

Tables, created on first use (or by ``setwise.init``) with a configurable prefix:

- ``{prefix}runs``: one row per run: table, kind, arguments, actor, times, status,
  counts, checkpoint (the last key of the last finished chunk);
- ``{prefix}chunks``: one row per finished chunk: rows, seconds, retries;
- ``{prefix}journal_{table}``: per changed row, the run, the chunk, the key, and the
  old and new value of every column the run wrote, typed like the target's columns
  so that every value comes back exactly. Where the strategy ``packs_journal``
  (PostgreSQL), the same values as arrays, a row per part of a chunk
  (``dialects.packed``); ``Journal.changes`` reads either layout one row per change,
  and ``setwise.init`` packs a journal an earlier setwise kept a row per change.

A chunk's journal rows, its ``chunks`` row and the run's checkpoint are written in the
same transaction as the chunk's change, so the data and the journal never disagree.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import os
import secrets
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    FromClause,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from setwise.coerce import coercer_for
from setwise.dialects import Strategy
from setwise.dialects.packed import can_pack, is_packed, pack_rows, packed_table, unpacked
from setwise.errors import NotFoundError, SetwiseError
from setwise.merge import staging_type
from setwise.tables import column_shape, shared_table, temporary_copy
from setwise.target import Target

DEFAULT_PREFIX = "setwise_"

log = logging.getLogger("setwise")


@dataclass(frozen=True)
class RunInfo:
    """One run as the journal records it."""

    run_id: str
    table: str
    kind: str
    status: str
    actor: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    matched: int
    changed: int
    unchanged: int
    missing: int
    conflicts: int
    chunks: int
    retries: int
    columns: tuple[str, ...]
    checkpoint: tuple[Any, ...] | None
    arguments: dict[str, Any]
    reverts: str | None
    reverted_by: str | None
    error: str | None

    @property
    def tag(self) -> str | None:
        """The ``tag`` the run was given (``setwise.update(..., tag=...)``), if any."""
        found = self.arguments.get("tag")
        return found if isinstance(found, str) else None

    def checkpoint_of(self, key: Sequence[Column[Any]]) -> tuple[Any, ...] | None:
        """The checkpoint as values of ``key``'s types (the journal keeps it as JSON)."""
        if self.checkpoint is None:
            return None
        pairs = zip(key, self.checkpoint, strict=True)
        return tuple(coercer_for(column, lenient=True)(value) for column, value in pairs)


@dataclass(frozen=True)
class ChunkInfo:
    chunk: int
    rows: int
    changed: int
    seconds: float
    retries: int


class Journal:
    """The journal tables of one database, under one prefix."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix

    # Built on first use: a run without a journal never touches them, and building
    # them cost half a millisecond of every call (benchmarks/README.md). One Table per
    # prefix and shape for the whole process (``tables.shared_table``).

    @cached_property
    def runs(self) -> Table:
        """``{prefix}runs``: one row per run."""
        return shared_table(("runs", self.prefix), self._build_runs)

    @cached_property
    def chunks(self) -> Table:
        """``{prefix}chunks``: one row per finished chunk."""
        return shared_table(("chunks", self.prefix), self._build_chunks)

    def _build_runs(self) -> Table:
        return Table(
            f"{self.prefix}runs",
            MetaData(),
            Column("run_id", String(40), primary_key=True),
            Column("table_name", String(255), nullable=False),
            Column("kind", String(16), nullable=False),
            Column("status", String(16), nullable=False),
            Column("actor", String(255)),
            Column("started_at", DateTime, nullable=False),
            Column("finished_at", DateTime),
            Column("matched", BigInteger, nullable=False, default=0),
            Column("changed", BigInteger, nullable=False, default=0),
            Column("unchanged", BigInteger, nullable=False, default=0),
            Column("missing", BigInteger, nullable=False, default=0),
            Column("conflicts", BigInteger, nullable=False, default=0),
            Column("chunks", Integer, nullable=False, default=0),
            Column("retries", Integer, nullable=False, default=0),
            Column("columns", Text, nullable=False),
            Column("checkpoint", Text),
            Column("arguments", Text, nullable=False),
            Column("reverts", String(40)),
            Column("reverted_by", String(40)),
            Column("error", Text),
        )

    def _build_chunks(self) -> Table:
        return Table(
            f"{self.prefix}chunks",
            MetaData(),
            Column("run_id", String(40), nullable=False),
            Column("chunk", Integer, nullable=False),
            Column("rows", BigInteger, nullable=False),
            Column("changed", BigInteger, nullable=False),
            Column("seconds", Float, nullable=False),
            Column("retries", Integer, nullable=False),
            PrimaryKeyConstraint("run_id", "chunk"),
        )

    # -- tables ---------------------------------------------------------------

    def changes_table(self, target: Target, strategy: Strategy) -> Table:
        """The journal table for ``target``: run, chunk, key, and old/new of every column;
        as arrays, a part of a chunk per row, where ``strategy`` packs journals."""
        name = strategy.identifier(f"{self.prefix}journal_{target.table.name}")
        key_names = {column.name for column in target.identity}
        values = [column for column in target.table.columns if column.name not in key_names]
        packed = strategy.packs_journal and can_pack(target.table.columns)
        shape = (
            "journal",
            name,
            target.table.schema,
            packed,
            tuple(sorted(strategy.journal_table_options.items())),
            column_shape(target.identity),
            column_shape(values),
        )
        return shared_table(
            shape, lambda: self._build_changes(name, target, values, strategy, packed)
        )

    def _build_changes(
        self,
        name: str,
        target: Target,
        values: Sequence[Column[Any]],
        strategy: Strategy,
        packed: bool,
    ) -> Table:
        columns = [(key_column(c.name, strategy), staging_type(c.type)) for c in target.identity]
        for column in values:
            columns.append((old_column(column.name, strategy), staging_type(column.type)))
            columns.append((new_column(column.name, strategy), staging_type(column.type)))
        if packed:
            return packed_table(name, target.table.schema, columns)
        key = [key_column(c.name, strategy) for c in target.identity]
        return Table(
            name,
            MetaData(),
            Column("run_id", String(40), nullable=False),
            Column("chunk", Integer, nullable=False),
            *(Column(n, kind) for n, kind in columns),
            # No index on (run_id, chunk): a chunk's rows are found by key range within
            # the run, through this primary key, and the index cost a tenth of a
            # journaled write (benchmarks/README.md).
            PrimaryKeyConstraint("run_id", *key),
            schema=target.table.schema,
            **strategy.journal_table_options,
        )

    @staticmethod
    def changes(table: Table) -> FromClause:
        """The journal table ``table`` one row per changed row, whatever its layout:
        ``run_id``, ``chunk``, then ``k_``, ``o_`` and ``n_`` columns."""
        return unpacked(table) if is_packed(table) else table

    def stage_name(self, run_id: str, strategy: Strategy) -> str:
        """The name of the staging table a chunked changeset run keeps until it finishes."""
        # Room for the "_key" of its index (``merge.Merge.index_stage``).
        return strategy.identifier(f"{self.prefix}stage_{run_id.replace('-', '_')}", room=4)

    def ensure(
        self,
        bind: Engine | Connection,
        strategy: Strategy,
        target: Target,
        *,
        convert: bool = False,
    ) -> bool:
        """Create the journal tables that do not exist yet, and return the target's.

        Where DDL would end the caller's transaction (MySQL commits implicitly), the
        tables are created on a connection of their own; SQLite creates them inside
        the current transaction, which a second connection could not write beside.
        ``convert``: a journal table an earlier setwise kept one row per changed row is
        packed where the strategy packs (else it is refused). Returns True when it
        created a table.
        """
        changes = self.changes_table(target, strategy)
        tables = [self.runs, self.chunks, changes]

        def create(connection: Connection) -> bool:
            return self._create(
                connection, tables, changes, strategy, convert=convert, journals=target.name
            )

        if isinstance(bind, Connection) and strategy.journal_ddl_apart:
            bind = bind.engine
        if not isinstance(bind, Engine):
            # In the caller's transaction: a rollback may take the tables away again.
            return create(bind)
        known = {t.fullname for t in tables}
        if known <= _EXISTING.get(bind, set()) and not convert:
            return False
        try:
            with bind.begin() as connection:
                created = create(connection)
        except DBAPIError:
            # Another run (another process, another node of a cluster) created a table
            # between the check and the CREATE: look again. A real failure fails again.
            with bind.begin() as connection:
                created = create(connection)
        _EXISTING.setdefault(bind, set()).update(known)
        return created

    def _create(
        self,
        connection: Connection,
        tables: Sequence[Table],
        changes: Table | None = None,
        strategy: Strategy | None = None,
        *,
        convert: bool = False,
        journals: str = "TABLE",
    ) -> bool:
        inspector = inspect(connection)
        missing = [t for t in tables if not inspector.has_table(t.name, schema=t.schema)]
        for table in missing:
            table.create(connection, checkfirst=True)
        if changes is not None and changes not in missing:
            found = {c["name"] for c in inspector.get_columns(changes.name, schema=changes.schema)}
            kept_packed = "part" in found
            if kept_packed != is_packed(changes):
                if not (convert and strategy is not None and is_packed(changes)):
                    raise _layout_refused(changes, kept_packed, journals)
                _pack_journal(connection, changes, strategy)
        elif changes is not None and strategy is not None:
            strategy.journal_created(connection, changes)
        return bool(missing)

    # -- runs -----------------------------------------------------------------

    def start(
        self,
        connection: Connection,
        *,
        target: Target,
        kind: str,
        columns: Iterable[str],
        arguments: dict[str, Any],
        actor: str | None,
        reverts: str | None = None,
        run_id: str | None = None,
        status: str = "running",
        counts: dict[str, int] | None = None,
    ) -> str:
        """Record a run, and return its id. A run that ends in the same transaction is
        recorded once, with its final status and ``counts``: nothing reads the table back."""
        run_id = run_id or new_run_id()
        now = _now()
        tally = dict.fromkeys(_COUNTS, 0) | (counts or {})
        connection.execute(
            self.runs.insert().values(
                run_id=run_id,
                table_name=target.name,
                kind=kind,
                status=status,
                actor=actor if actor is not None else default_actor(),
                started_at=now,
                finished_at=now if status != "running" else None,
                columns=json.dumps(list(columns)),
                arguments=json.dumps(arguments, default=str),
                reverts=reverts,
                **tally,
            )
        )
        return run_id

    def record_chunk(
        self,
        connection: Connection,
        run_id: str,
        chunk: int,
        rows: int,
        changed: int,
        seconds: float,
        retries: int,
    ) -> None:
        connection.execute(
            self.chunks.insert().values(
                run_id=run_id,
                chunk=chunk,
                rows=rows,
                changed=changed,
                seconds=seconds,
                retries=retries,
            )
        )

    def claim_chunk(self, connection: Connection, run_id: str, chunk: int) -> bool:
        """Take chunk ``chunk`` of a running run, first thing in its transaction: False
        when the run is not at chunk ``chunk - 1`` any more (another process went on with
        it). The row stays locked until the chunk commits, so two processes resuming one
        run never both write a chunk."""
        runs = self.runs.c
        claimed = connection.execute(
            update(self.runs)
            .where(runs.run_id == run_id, runs.chunks == chunk - 1, runs.status == "running")
            .values(chunks=chunk)
        )
        return claimed.rowcount == 1

    def finish_chunk(
        self,
        connection: Connection,
        run_id: str,
        *,
        chunk: int,
        checkpoint: tuple[Any, ...] | None,
        matched: int,
        changed: int,
        unchanged: int,
        missing: int,
        conflicts: int,
        seconds: float,
        retries: int,
    ) -> None:
        """Record a finished chunk and move the run's checkpoint, in the chunk's transaction."""
        self.record_chunk(connection, run_id, chunk, matched + missing, changed, seconds, retries)
        runs = self.runs.c
        connection.execute(
            update(self.runs)
            .where(runs.run_id == run_id)
            .values(
                checkpoint=_encode_key(checkpoint),
                chunks=chunk,
                matched=runs.matched + matched,
                changed=runs.changed + changed,
                unchanged=runs.unchanged + unchanged,
                missing=runs.missing + missing,
                conflicts=runs.conflicts + conflicts,
                retries=runs.retries + retries,
            )
        )

    def set_status(
        self,
        connection: Connection,
        run_id: str,
        status: str,
        *,
        error: str | None = None,
        reverted_by: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status}
        if status in ("done", "failed", "interrupted", "abandoned"):
            values["finished_at"] = _now()
        if error is not None:
            values["error"] = error
        if reverted_by is not None:
            values["reverted_by"] = reverted_by
        connection.execute(update(self.runs).where(self.runs.c.run_id == run_id).values(values))

    def get(self, connection: Connection, run_id: str) -> RunInfo:
        if not inspect(connection).has_table(self.runs.name):
            raise NotFoundError(self.runs.name, key=run_id)
        row = connection.execute(select(self.runs).where(self.runs.c.run_id == run_id)).first()
        if row is None:
            raise NotFoundError(self.runs.name, key=run_id)
        return _run_info(row._mapping)

    def recent(self, connection: Connection, limit: int = 100) -> list[RunInfo]:
        if not inspect(connection).has_table(self.runs.name):
            return []
        statement = select(self.runs).order_by(self.runs.c.run_id.desc()).limit(limit)
        return [_run_info(row._mapping) for row in connection.execute(statement)]

    def tagged(self, connection: Connection, tag: str, *, prefix: bool = False) -> list[RunInfo]:
        """The runs tagged ``tag`` (``prefix``: with a tag that starts with it), newest
        first. The tag is kept in the JSON of the run's arguments: a LIKE finds the
        candidates, and the tag read back from the JSON decides."""
        if not inspect(connection).has_table(self.runs.name):
            return []
        needle = f'"tag": {json.dumps(tag)}'
        if prefix:
            needle = needle[:-1]  # the closing quote
        statement = (
            select(self.runs)
            .where(self.runs.c.arguments.contains(needle, autoescape=True))
            .order_by(self.runs.c.run_id.desc())
        )
        found = [_run_info(row._mapping) for row in connection.execute(statement)]
        if prefix:
            return [info for info in found if info.tag is not None and info.tag.startswith(tag)]
        return [info for info in found if info.tag == tag]

    def last_chunk(self, connection: Connection, run_id: str) -> ChunkInfo | None:
        """The run's latest recorded chunk, or None before its first."""
        chunks = self.chunks.c
        statement = (
            select(self.chunks)
            .where(chunks.run_id == run_id)
            .order_by(chunks.chunk.desc())
            .limit(1)
        )
        row = connection.execute(statement).first()
        if row is None:
            return None
        return ChunkInfo(row.chunk, row.rows, row.changed, row.seconds, row.retries)

    def chunk_list(self, connection: Connection, run_id: str) -> list[ChunkInfo]:
        chunks = self.chunks.c
        statement = select(self.chunks).where(chunks.run_id == run_id).order_by(chunks.chunk)
        return [
            ChunkInfo(row.chunk, row.rows, row.changed, row.seconds, row.retries)
            for row in connection.execute(statement)
        ]


#: Journal tables known to exist, per engine: checked once, not on every run. Keyed by the
#: engine itself, since two engines with one URL may see different schemas (search_path).
_EXISTING: weakref.WeakKeyDictionary[Engine, set[str]] = weakref.WeakKeyDictionary()

_COUNTS = ("matched", "changed", "unchanged", "missing", "conflicts", "chunks", "retries")


def _layout_refused(changes: Table, kept_packed: bool, journals: str) -> SetwiseError:
    """The error for a journal table (of the table named ``journals``) whose layout is
    not the one setwise writes, one made by an earlier setwise: writing to it would
    fail mid-run."""
    layouts = {True: "packed arrays", False: "one row per changed row"}
    if is_packed(changes):
        remedy = (
            f"convert it with `setwise init {journals}` (setwise.init(bind, {journals!r})),"
            " which packs its runs in one transaction and keeps them revertible"
        )
    else:
        remedy = "rename it (its runs can still be read) or drop it, and run again"
    return SetwiseError(
        f"journal table {changes.name!r} keeps {layouts[kept_packed]}, but setwise now"
        f" keeps {layouts[is_packed(changes)]} there: {remedy}"
    )


def _pack_journal(connection: Connection, changes: Table, strategy: Strategy) -> None:
    """Rebuild the journal table of ``changes``' name, kept one row per changed row, in
    the packed layout, in the caller's transaction: its rows move through a temporary
    table, the old table is dropped and the packed one created and filled."""
    old = Table(changes.name, MetaData(), autoload_with=connection, schema=changes.schema)
    lost = [c.name for c in old.columns if c.name not in changes.c]
    if lost:
        raise SetwiseError(
            f"journal table {changes.name!r} keeps {', '.join(lost)}, which the table it"
            " journals no longer has: it cannot be packed without losing them; rename it"
            " (its runs can still be read) or drop it"
        )
    held_name = strategy.identifier(f"{changes.name}_held")
    held = temporary_copy(connection, strategy, held_name, select(old))
    old.drop(connection)
    changes.create(connection)
    strategy.journal_created(connection, changes)
    moved = pack_rows(connection, held, changes)
    strategy.drop_stage(connection, held)
    log.info("journal table %s packed: %d row(s) of its runs", changes.name, moved)


def tagged(arguments: dict[str, Any], tag: str | None) -> dict[str, Any]:
    """A run's ``arguments`` with its ``tag``, when it has one (``Journal.tagged``)."""
    return arguments if tag is None else {**arguments, "tag": tag}


def key_column(name: str, strategy: Strategy) -> str:
    """The journal's column of the key column ``name``."""
    return strategy.identifier(f"k_{name}")


def old_column(name: str, strategy: Strategy) -> str:
    """The journal's column of the old values of column ``name``."""
    return strategy.identifier(f"o_{name}")


def new_column(name: str, strategy: Strategy) -> str:
    """The journal's column of the new values of column ``name``."""
    return strategy.identifier(f"n_{name}")


def new_run_id() -> str:
    """A run id that sorts by start time to the microsecond (MariaDB's DATETIME keeps
    whole seconds), with two random hex digits against two processes in one microsecond."""
    now = _now()
    return f"{now:%Y%m%d-%H%M%S}-{now.microsecond:06d}{secrets.token_hex(1)}"


def default_actor() -> str:
    """Who is running: the operating-system user, as the journal's default actor."""
    if os.environ.get("SETWISE_ACTOR"):
        return os.environ["SETWISE_ACTOR"]
    try:
        return getpass.getuser()  # USER, LOGNAME, …, then the password database
    except (KeyError, OSError):
        return "unknown"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _encode_key(key: tuple[Any, ...] | None) -> str | None:
    return None if key is None else json.dumps(list(key), default=str)


def _run_info(row: Any) -> RunInfo:
    checkpoint = json.loads(row["checkpoint"]) if row["checkpoint"] else None
    return RunInfo(
        run_id=row["run_id"],
        table=row["table_name"],
        kind=row["kind"],
        status=row["status"],
        actor=row["actor"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        matched=int(row["matched"]),
        changed=int(row["changed"]),
        unchanged=int(row["unchanged"]),
        missing=int(row["missing"]),
        conflicts=int(row["conflicts"]),
        chunks=int(row["chunks"]),
        retries=int(row["retries"]),
        columns=tuple(json.loads(row["columns"])),
        checkpoint=tuple(checkpoint) if checkpoint is not None else None,
        arguments=json.loads(row["arguments"]),
        reverts=row["reverts"],
        reverted_by=row["reverted_by"],
        error=row["error"],
    )
