"""What the journal says of one run and of its chunks, as read back from their records."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column

from setwise.staging.values import coercer_for


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
    inserted: int = 0
    """Rows inserted for keys that had none (``apply(..., missing="insert")``)."""

    @property
    def tag(self) -> str | None:
        """The ``tag`` the run was given (``setwise.update(..., tag=...)``), if any."""
        found = self.arguments.get("tag")
        return found if isinstance(found, str) else None

    @property
    def source(self) -> dict[str, Any] | None:
        """What the run read: for a changeset file its ``path``, ``size``, ``sha256``,
        ``format`` and reader ``options`` (``path`` "-": standard input, no size or
        hash); for other changes ``rows`` (what they were: "a pandas DataFrame");
        for an update, the ``text`` it was written as when its caller gave it
        (``setwise.update(..., source=...)``) and its compiled ``sql``, placeholders
        named where its values go. None for a run recorded before setwise kept this."""
        found = self.arguments.get("source")
        if isinstance(found, dict):
            return found
        if self.kind == "update" and isinstance(self.arguments.get("sql"), str):
            return {"sql": self.arguments["sql"]}
        return None

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


def run_info(row: Any) -> RunInfo:
    """The ``RunInfo`` of a row of ``{prefix}runs`` (its mapping)."""
    checkpoint = json.loads(row["checkpoint"]) if row["checkpoint"] else None
    arguments = json.loads(row["arguments"])
    # The record's ``missing`` counts every key that had no row; a run that inserted
    # them (``missing="insert"``: each chunk inserts exactly its missing rows, or fails)
    # inserted all of them.
    missing, inserted = int(row["missing"]), 0
    if arguments.get("missing") == "insert":
        missing, inserted = 0, missing
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
        missing=missing,
        conflicts=int(row["conflicts"]),
        chunks=int(row["chunks"]),
        retries=int(row["retries"]),
        columns=tuple(json.loads(row["columns"])),
        checkpoint=tuple(checkpoint) if checkpoint is not None else None,
        arguments=arguments,
        reverts=row["reverts"],
        reverted_by=row["reverted_by"],
        error=row["error"],
        inserted=inserted,
    )


def chunk_info(row: Any) -> ChunkInfo:
    """The ``ChunkInfo`` of a row of ``{prefix}chunks``."""
    return ChunkInfo(row.chunk, row.rows, row.changed, row.seconds, row.retries)
