"""The table the benchmarks write to, and a fast way to put it back as it was.

``books`` has no version column: the raw-driver case is the UPDATE a person would type,
and a version bump would be extra work only the ORM and setwise do.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine, MetaData, Numeric, String, insert, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

GENRES = ("fiction", "history", "science", None)
"""Cycled by id, so each genre (and NULL) holds exactly a quarter of the rows."""

SEED = "books_seed"
JOURNAL_PREFIX = "setwise_"
"""setwise's default prefix for its journal tables."""
# Rows per INSERT while seeding: large enough that the round trips do not matter,
# small enough to stay well under every server's packet and parameter limits.
SEED_BATCH = 5_000


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    isbn: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    genre: Mapped[str | None] = mapped_column(String(30))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    stock: Mapped[int]


def book_row(i: int) -> dict[str, object]:
    return {
        "id": i,
        "isbn": f"978-{i:09d}",
        "title": f"Book {i}",
        "genre": GENRES[i % len(GENRES)],
        "price": Decimal(f"{10 + i % 90}.{i % 100:02d}"),
        "stock": i % 50,
    }


def seed(engine: Engine, rows: int) -> None:
    """Create ``books_seed`` with ``rows`` books (ids 1..rows), the source of every reset."""
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {SEED}"))
    seed_table = Book.__table__.to_metadata(MetaData(), name=SEED)
    seed_table.create(engine)
    with engine.begin() as connection:
        for start in range(1, rows + 1, SEED_BATCH):
            batch = [book_row(i) for i in range(start, min(start + SEED_BATCH, rows + 1))]
            connection.execute(insert(seed_table), batch)


def reset(engine: Engine) -> None:
    """Recreate ``books`` as a copy of the seed, with fresh statistics, and empty setwise's
    journal tables (kept, as after a first run: their creation is not what is timed).

    A new table rather than undoing the last run: PostgreSQL would otherwise carry the
    dead row versions of every earlier run, and each run would scan more than the last.
    """
    table = Book.__table__
    journal = MetaData()
    journal.reflect(engine, only=lambda name, _: name.startswith(JOURNAL_PREFIX))
    with engine.begin() as connection:
        for kept in reversed(journal.sorted_tables):
            connection.execute(kept.delete())
        table.drop(connection, checkfirst=True)
        table.create(connection)
        connection.execute(text(f"INSERT INTO books SELECT * FROM {SEED}"))
    names = ", ".join(["books", *journal.tables])
    name = engine.dialect.name
    if name == "postgresql":
        # VACUUM cannot run in a transaction. FREEZE sets every row's hint bits now, so
        # the first statement of a timed run does not pay for writing them; CHECKPOINT
        # then writes the reset's pages out, so that flushing them does not compete
        # with the timed run.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f"VACUUM (FREEZE, ANALYZE) {names}"))
            connection.execute(text("CHECKPOINT"))
    else:
        analyze = "ANALYZE TABLE" if name in ("mysql", "mariadb") else "ANALYZE"
        with engine.begin() as connection:
            for each in names.split(", "):
                connection.execute(text(f"{analyze} {each}"))


def changed_rows(engine: Engine) -> int:
    """How many books no longer match the seed: what a run actually wrote."""
    query = text(
        f"SELECT count(*) FROM books JOIN {SEED} AS s ON s.id = books.id"
        " WHERE books.price <> s.price OR books.stock <> s.stock"
        " OR books.genre IS NULL AND s.genre IS NOT NULL"
        " OR books.genre IS NOT NULL AND s.genre IS NULL OR books.genre <> s.genre"
    )
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())
