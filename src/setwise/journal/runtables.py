"""The run tables of one database, and reading runs back from them.

Created with the journal's tables (``Journal.ensure``), under its prefix:

- ``{prefix}runs``: one row per run: table, kind, arguments, actor, times, status,
  counts, checkpoint (the last key of the last finished chunk);
- ``{prefix}chunks``: one row per finished chunk: rows, seconds, retries;
- ``{prefix}control``: one row per chunked run (and per verified run): the command
  another terminal gave it (pause, stop), the chunk sizes and throttle it was tuned
  to, why it is paused now, and what its verify found (``setwise.journal.controls``).
  A table apart, so that a runs table an earlier setwise made needs no ALTER: it is
  created beside it on the first run.

What changes a run's record, and when it may, is ``setwise.journal.records``'s.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from functools import cached_property

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Float,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    inspect,
    select,
)

from setwise.errors import NotFoundError
from setwise.journal.runinfo import ChunkInfo, RunInfo, chunk_info, run_info
from setwise.tables import shared_table

#: The prefix of setwise's own tables unless a caller names another.
DEFAULT_PREFIX = "setwise_"

#: Characters of a run's actor its record keeps (a VARCHAR), and of its tag.
LABEL_CHARS = 255


class RunTables:
    """The run and chunk tables of one database, under one prefix, and their reads."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix

    # Built on first use: a run without a journal never touches them, and building
    # them cost half a millisecond of every call (benchmarks/README.md). One Table per
    # prefix and shape for the whole process (``schema.shared_table``).

    @cached_property
    def runs(self) -> Table:
        """``{prefix}runs``: one row per run."""
        return shared_table(("runs", self.prefix), self._build_runs)

    @cached_property
    def chunks(self) -> Table:
        """``{prefix}chunks``: one row per finished chunk."""
        return shared_table(("chunks", self.prefix), self._build_chunks)

    @cached_property
    def control(self) -> Table:
        """``{prefix}control``: commands to a running run, and what it says back."""
        return shared_table(("control", self.prefix), self._build_control)

    def _build_runs(self) -> Table:
        return Table(
            f"{self.prefix}runs",
            MetaData(),
            Column("run_id", String(40), primary_key=True),
            Column("table_name", String(255), nullable=False),
            Column("kind", String(16), nullable=False),
            Column("status", String(16), nullable=False),
            Column("actor", String(LABEL_CHARS)),
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

    def _build_control(self) -> Table:
        return Table(
            f"{self.prefix}control",
            MetaData(),
            Column("run_id", String(40), primary_key=True),
            Column("command", String(16)),
            Column("chunk_rows", BigInteger),
            Column("chunk_seconds", Float),
            Column("throttle_seconds", Float),
            Column("paused", String(255)),
            Column("rows_total", BigInteger),
            Column("verified", Text),
            Column("changed_at", DateTime),
        )

    # -- reading ----------------------------------------------------------------

    def get(self, connection: Connection, run_id: str) -> RunInfo:
        if not inspect(connection).has_table(self.runs.name):
            raise NotFoundError(self.runs.name, key=run_id)
        row = connection.execute(select(self.runs).where(self.runs.c.run_id == run_id)).first()
        if row is None:
            raise NotFoundError(self.runs.name, key=run_id)
        return run_info(row._mapping)

    def recent(
        self,
        connection: Connection,
        limit: int = 100,
        *,
        table: str | None = None,
        status: str | None = None,
        since: dt.datetime | None = None,
    ) -> list[RunInfo]:
        """The newest ``limit`` runs, of ``table``, with ``status``, started at or after
        ``since`` (UTC, as the records keep it) when given."""
        if not inspect(connection).has_table(self.runs.name):
            return []
        runs = self.runs.c
        statement = select(self.runs).order_by(runs.run_id.desc()).limit(limit)
        if table is not None:
            statement = statement.where(runs.table_name == table)
        if status is not None:
            statement = statement.where(runs.status == status)
        if since is not None:
            statement = statement.where(runs.started_at >= since)
        return [run_info(row._mapping) for row in connection.execute(statement)]

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
        found = [run_info(row._mapping) for row in connection.execute(statement)]
        if prefix:
            return [info for info in found if info.tag is not None and info.tag.startswith(tag)]
        return [info for info in found if info.tag == tag]

    def recent_ids(self, connection: Connection, run_ids: Sequence[str]) -> dict[str, str]:
        """The status of each of ``run_ids`` the records hold."""
        if not inspect(connection).has_table(self.runs.name):
            return {}
        runs = self.runs.c
        found = connection.execute(
            select(runs.run_id, runs.status).where(runs.run_id.in_(list(run_ids)))
        )
        return {str(run_id): str(status) for run_id, status in found}

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
        return None if row is None else chunk_info(row)

    def chunk_list(self, connection: Connection, run_id: str) -> list[ChunkInfo]:
        chunks = self.chunks.c
        statement = select(self.chunks).where(chunks.run_id == run_id).order_by(chunks.chunk)
        return [chunk_info(row) for row in connection.execute(statement)]
