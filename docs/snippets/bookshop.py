from decimal import Decimal

from sqlalchemy import Numeric, String, create_engine, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    isbn: Mapped[str] = mapped_column(String(20), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    genre: Mapped[str] = mapped_column(String(30), index=True)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    stock: Mapped[int]


# 10,000 books in shop.db: a quarter each fiction, history, science and poetry.
engine = create_engine("sqlite:///shop.db")
Base.metadata.create_all(engine)
GENRES = ("fiction", "history", "science", "poetry")
with engine.begin() as connection:
    connection.execute(
        insert(Book),
        [
            {
                "id": i,
                "isbn": f"978-{i:09d}",
                "title": f"Book {i}",
                "genre": GENRES[i % 4],
                "price": Decimal(500 + i * 37 % 4500) / 100,
                "stock": i % 50,
            }
            for i in range(1, 10_001)
        ],
    )
session = Session(engine)
