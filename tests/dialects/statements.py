"""The statements setwise runs on a PostgreSQL-family engine, built without a server.

Each compile-only dialect test renders these with its engine's own SQLAlchemy dialect
and pins the SQL, so a change in what setwise sends shows up per engine.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, Numeric, Table, update
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import ClauseElement, Executable

from setwise.dialects.postgresql import PostgreSQLStrategy
from setwise.engine.chunks import Executor
from setwise.engine.options import RunOptions
from setwise.journal.changes import Journal
from setwise.staging.table import ROW, STAGE_NAME
from setwise.target import resolve_target
from setwise.writers.keys import Span
from setwise.writers.merge import Merge
from setwise.writers.setbased import SetUpdate
from tests.models import Book

DOUBLE_FICTION = SetUpdate.from_statement(
    update(Book).where(Book.genre == "fiction").values(price=Book.price * 2)
)


def sql(statement: ClauseElement, dialect: Dialect) -> str:
    """The statement as ``dialect`` writes it, on one line."""
    return " ".join(str(statement.compile(dialect=dialect)).split())


def merge_from_stage() -> ClauseElement:
    """A changeset's merge of ``price`` from its temporary stage, keyed by ``id``."""
    target = resolve_target(Book)
    stage = Table(
        STAGE_NAME,
        MetaData(),
        Column(ROW, BigInteger),
        Column("id", Integer),
        Column("price", Numeric(10, 2)),
        prefixes=["TEMPORARY"],
        schema="pg_temp",
    )
    return Merge(target, stage, (target.column("price"),), False, False).merge()


def journaled_chunk(dialect: Dialect, *, chunked: bool) -> list[Executable]:
    """The statements of chunk 1 (keys up to 100) of a journaled DOUBLE_FICTION run, as
    the PostgreSQL strategy builds them: the journal INSERT, the UPDATE that follows it,
    and the UPDATE from the journal that replaces it when rows changed in between. A
    chunked run reads on its chunk's snapshot; a run in one transaction locks."""
    journal = Journal()
    strategy = PostgreSQLStrategy(dialect)
    executor = Executor(
        strategy,
        DOUBLE_FICTION,
        RunOptions(chunk_rows=100 if chunked else None),
        journal,
        journal.changes_table(resolve_target(Book), strategy),
    )
    span = Span(None, (100,))
    write = executor.write
    return [*write.statements(span, 1, "run-1"), write.update_from_journal(span, 1, "run-1")]
