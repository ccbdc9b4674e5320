"""The schema the behaviour tests write to: authors and books, as an application has them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    CheckConstraint,
    Column,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import setwise
from tests.backends import reader


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100))


class Book(Base):
    __tablename__ = "books"
    __table_args__ = (
        CheckConstraint("price >= 0", name="ck_books_price_positive"),
        UniqueConstraint("isbn", name="uq_books_isbn"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    isbn: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    genre: Mapped[str | None] = mapped_column(String(30))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    stock: Mapped[int] = mapped_column(default=0)
    published: Mapped[dt.date | None]
    author_id: Mapped[int | None] = mapped_column(ForeignKey("authors.id", name="fk_books_author"))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


GENRES = ("fiction", "history", "science", None)


def book_row(i: int) -> dict[str, object]:
    return {
        "id": i,
        "isbn": f"978-{i:06d}",
        "title": f"Book {i}",
        "genre": GENRES[i % len(GENRES)],
        "price": Decimal(f"{10 + i}.{i % 100:02d}"),
        "stock": i * 3,
        "published": dt.date(2000 + i % 20, 1 + i % 12, 1 + i % 28),
        "author_id": 1 + i % 3,
        "version": 1,
    }


def create_books(engine: Engine, count: int = 20) -> None:
    """Create the schema and ``count`` books (ids 1..count) by three authors."""
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(Author), [{"id": i, "name": f"Author {i}"} for i in (1, 2, 3)])
        connection.execute(insert(Book), [book_row(i) for i in range(1, count + 1)])


def snapshot(engine: Engine) -> list[tuple[object, ...]]:
    """Every book row, in key order: the table as a user would compare it (on Galera,
    read through another node than the one written through)."""
    with reader(engine).connect() as connection:
        return [tuple(row) for row in connection.execute(select(Book.__table__).order_by(Book.id))]


def create_stamped_items(engine: Engine) -> None:
    """A table with audit columns no model declares (reflected by name): items 1, 2, 3."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER, "
                "updated_at TIMESTAMP NULL, updated_by VARCHAR(40))"
            )
        )
        connection.execute(text("INSERT INTO items (id, qty) VALUES (1, 1), (2, 2), (3, 3)"))


def keyed_table(
    engine: Engine, name: str, *columns: Column[Any], rows: list[dict[str, Any]]
) -> Table:
    """Create table ``name``, keyed by an integer ``id``, with ``columns``, holding
    ``rows`` (their ids 1, 2, 3… given here)."""
    table = Table(name, MetaData(), Column("id", Integer, primary_key=True, autoincrement=False))
    for column in columns:
        table.append_column(column)
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": i, **row} for i, row in enumerate(rows, 1)])
    return table


def problems_of(changes: Any, engine: Engine, table: Table) -> dict[tuple[Any, ...], str]:
    """The reasons of the ValidationError applying ``changes`` raises, by row, column
    and value."""
    with pytest.raises(setwise.ValidationError) as caught:
        setwise.apply(engine, table, changes)
    return {(p.row, p.column, p.value): p.reason for p in caught.value.problems}
