"""A setwise run in a process of its own, for tests that kill it: python -m tests.child_run."""

from __future__ import annotations

import sys

from sqlalchemy import create_engine, update

import setwise
from tests.models import Book


def main() -> None:
    url, schema, kind, changes = sys.argv[1:5]
    options = {"connect_args": {"options": f"-csearch_path={schema}"}} if schema else {}
    engine = create_engine(url, **options)  # type: ignore[arg-type]
    chunked = {"chunk_rows": 5, "throttle_seconds": 0.25}
    if kind == "apply":
        setwise.apply(engine, Book, changes, **chunked)  # type: ignore[arg-type]
    else:
        statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
        setwise.update(engine, statement, **chunked)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
