"""A walk through setwise on a demo SQLite database: ``python -m setwise.demo``."""

from __future__ import annotations

import random
import time
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy import (
    Engine,
    ForeignKey,
    Numeric,
    String,
    create_engine,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import setwise

DEMO_ROWS = 200_000
GENRES = ("fiction", "history", "science", "poetry", "travel")


class DemoBase(DeclarativeBase):
    pass


class Author(DemoBase):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class Book(DemoBase):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    isbn: Mapped[str] = mapped_column(String(20), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    genre: Mapped[str] = mapped_column(String(30), index=True)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    stock: Mapped[int]
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


def build(engine: Engine, rows: int = DEMO_ROWS) -> None:
    """Create the demo tables afresh and fill them with ``rows`` books."""
    DemoBase.metadata.drop_all(engine)
    DemoBase.metadata.create_all(engine)
    chooser = random.Random(42)
    with engine.begin() as connection:
        connection.execute(
            insert(Author), [{"id": i, "name": f"Author {i}"} for i in range(1, 501)]
        )
        batch = []
        for i in range(1, rows + 1):
            batch.append(
                {
                    "id": i,
                    "isbn": f"978-{i:09d}",
                    "title": f"Book {i}",
                    "genre": GENRES[i % len(GENRES)],
                    "price": Decimal(chooser.randrange(499, 4999)) / 100,
                    "stock": chooser.randrange(0, 200),
                    "author_id": 1 + i % 500,
                    "version": 1,
                }
            )
            if len(batch) == 20_000:
                connection.execute(insert(Book), batch)
                batch.clear()
        if batch:
            connection.execute(insert(Book), batch)


def main(path: str = "setwise.db") -> None:
    console = Console()
    url = f"sqlite:///{Path(path)}"
    engine = create_engine(url)
    started = time.perf_counter()
    console.rule("[bold]setwise demo")
    console.print(f"Building {DEMO_ROWS:,} books in {url} …")
    build(engine)
    console.print(f"  built in {time.perf_counter() - started:.1f} s\n")

    def fiction_total() -> Decimal:
        with engine.connect() as connection:
            total = connection.scalar(select(func.sum(Book.price)).where(Book.genre == "fiction"))
            return Decimal(total or 0)

    console.rule("1. A set-based price rise: one UPDATE, not 40,000")
    before = fiction_total()
    report = setwise.update(
        engine,
        update(Book).where(Book.genre == "fiction").values(price=Book.price * Decimal("1.10")),
    )
    _show(console, report)
    console.print(f"  fiction prices summed: {before:,.2f} → {fiction_total():,.2f}\n")

    console.rule("2. Guardrails: an UPDATE without WHERE is refused")
    try:
        setwise.update(engine, update(Book).values(stock=0))
    except setwise.UnboundedUpdateError as exc:
        console.print(f"  [yellow]UnboundedUpdateError[/]: {exc}\n")

    console.rule("3. Bad values are all named before anything runs")
    try:
        setwise.update(
            engine,
            update(Book).where(Book.id == 1).values(price=12.5, stock="lots", title="x" * 300),
        )
    except setwise.ValidationError as exc:
        console.print(f"  [yellow]ValidationError[/]: {exc}\n")

    console.rule("4. A loaded object sees the change without a refresh")
    with Session(engine) as session:
        book = session.get(Book, 7)
        assert book is not None
        console.print(f"  book 7 before: stock={book.stock}, version={book.version}")
        setwise.update(session, update(Book).where(Book.id == 7).values(stock=0))
        console.print(f"  book 7 after:  stock={book.stock}, version={book.version}")
        session.commit()
    console.print()

    console.rule("5. PATCH one record with an optimistic lock")
    with Session(engine) as session:
        patched = setwise.patch(session, Book, 9, {"price": Decimal("9.99")}, expected_version=1)
        console.print(f"  patched book 9: price={patched.price}, version={patched.version}")
        try:
            setwise.patch(session, Book, 9, {"price": Decimal("8.99")}, expected_version=1)
        except setwise.ConflictError as exc:
            console.print(f"  [yellow]ConflictError[/]: {exc}")
    console.print(f"\nDone in {time.perf_counter() - started:.1f} s. The database is {path}.")


def _show(console: Console, report: setwise.Report) -> None:
    table = RichTable("matched", "changed", "unchanged", "strategy", "seconds")
    table.add_row(
        f"{report.matched:,}",
        f"{report.changed:,}",
        f"{report.unchanged:,}",
        report.strategy,
        f"{report.elapsed_s:.3f}",
    )
    console.print(table)


if __name__ == "__main__":
    main()
