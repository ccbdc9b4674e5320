"""``setwise demo``: the command line, step by step.

Builds a bookshop on a SQLite file (200,000 books, prices as exact decimals) and a
file of 20,000 price and stock corrections, in a directory of their own outside the
working directory (``setwise-demo`` in the system's temporary directory), then runs
there the very ``setwise`` commands a person would type, in this process, printing
each before its output: plan and apply of a set-based change, apply of the
corrections with a progress bar, the run listing, one run in detail, and its revert.
It ends with how to run ``setwise`` from a shell and the commands to try by hand.
"""

from __future__ import annotations

import contextlib
import csv
import os
import random
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine, Numeric, String, create_engine, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import setwise

DEMO_ROWS = 200_000
CORRECTIONS = 20_000
#: Corrections that repeat what the table holds already (a re-sent line of a
#: supplier's file, say): setwise matches them and writes nothing.
NO_OP_SHARE = 0.1
#: Corrections for books the shop does not have: listed as missing, never an error.
UNKNOWN_KEYS = 5
#: Rows per INSERT while building: one batch stays a few MB of Python objects.
BUILD_BATCH = 20_000
GENRES = ("fiction", "history", "science", "poetry", "travel")


class DemoBase(DeclarativeBase):
    pass


class Book(DemoBase):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    isbn: Mapped[str] = mapped_column(String(20), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(100))
    genre: Mapped[str] = mapped_column(String(30))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    stock: Mapped[int]


def book(i: int, chooser: random.Random) -> dict[str, object]:
    return {
        "id": i,
        "isbn": isbn(i),
        "title": f"Book {i}",
        "author": f"Author {1 + i % 5_000}",
        "genre": GENRES[i % len(GENRES)],
        "price": Decimal(chooser.randrange(499, 4999)) / 100,
        "stock": chooser.randrange(0, 200),
    }


def isbn(i: int) -> str:
    return f"978-{i:09d}"


def build(engine: Engine, rows: int = DEMO_ROWS) -> None:
    """Create the demo table afresh (and no journal) and fill it with ``rows`` books."""
    with engine.begin() as connection:
        for name in ("books", "setwise_runs", "setwise_chunks", "setwise_journal_books"):
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    DemoBase.metadata.create_all(engine)
    chooser = random.Random(42)
    with engine.begin() as connection:
        for start in range(1, rows + 1, BUILD_BATCH):
            batch = range(start, min(rows, start + BUILD_BATCH - 1) + 1)
            connection.execute(insert(Book), [book(i, chooser) for i in batch])


def write_corrections(path: Path, rows: int = DEMO_ROWS, count: int = CORRECTIONS) -> None:
    """A CSV of new prices and stock by book id: mostly changes, some lines that repeat
    what the shop has, a few ids the shop never had."""
    chooser = random.Random(7)
    current = random.Random(42)
    books = [book(i, current) for i in range(1, rows + 1)]
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "price", "stock"])
        for i in sorted(chooser.sample(range(1, rows + 1), count - UNKNOWN_KEYS)):
            row = books[i - 1]
            if chooser.random() < NO_OP_SHARE:
                writer.writerow([i, row["price"], row["stock"]])
            else:
                price = Decimal(chooser.randrange(499, 4999)) / 100
                writer.writerow([i, price, chooser.randrange(0, 200)])
        for i in range(UNKNOWN_KEYS):
            writer.writerow([rows + 1 + i, "9.99", 1])


def default_directory() -> Path:
    """Where the demo writes its files when not told: outside any source tree."""
    return Path(tempfile.gettempdir()) / "setwise-demo"


def main(app: Callable[..., object], directory: Path | None = None) -> None:
    """Build the demo database in ``directory`` (``default_directory()`` when None) and
    walk through the command line on it, run there as a person would type it: each
    command goes to ``app``, the ``setwise`` command (its click group, as ``setwise
    demo`` passes it), so this module never imports the command line."""
    console = Console(highlight=False)
    folder = (directory or default_directory()).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "setwise.db"
    corrections = Path("corrections.csv")
    # Typed in the folder, a command finds setwise.db there by default, unless the
    # shell names another database in SETWISE_DB.
    db = ["--db", "sqlite:///setwise.db"] if os.environ.get("SETWISE_DB") else []
    engine = create_engine(f"sqlite:///{database}")
    started = time.perf_counter()
    console.rule("[bold]setwise demo")
    console.print(f"Building {DEMO_ROWS:,} books in {database} …", markup=False)
    build(engine)
    write_corrections(folder / corrections)
    console.print(
        f"  done in {time.perf_counter() - started:.1f} s; {CORRECTIONS:,} corrections "
        f"by id in {folder / corrections}\n",
        markup=False,
    )

    typed: list[str] = []

    def step(title: str, *args: str) -> None:
        command = " ".join(quoted(word) for word in ["setwise", *args, *db])
        typed.append(command)
        console.rule(f"[bold]{title}")
        console.print(f"$ {command}", style="bold cyan", markup=False, soft_wrap=True)
        code = app([*args, *db], prog_name="setwise", standalone_mode=False)
        if code not in (None, 0):
            raise SystemExit(code)
        console.print()

    with contextlib.chdir(folder):
        rise = ["--set", "price = price * 1.10", "--where", "genre = 'fiction'"]
        step("1. What would a 10% rise for fiction do? (writes nothing)", "plan", "books", *rise)
        step("2. Do it: one set-based UPDATE, journaled", "apply", "books", *rise, "--yes")
        fix = ["--from", str(corrections), "--chunk-rows", "auto"]
        step("3. A file of corrections: what would it do?", "plan", "books", *fix)
        step("4. Apply it in short transactions", "apply", "books", *fix, "--yes")
        last = setwise.runs(engine, limit=1)[0].run_id
        step("5. Every run is in the journal", "runs")
        step("6. One run: counts, chunks, timings", "show", last)
        step("7. Undo the corrections", "revert", last, "--yes")
    engine.dispose()

    console.rule("[bold]Try it by hand")
    for line in [*how_to_run(), f"cd {shlex.quote(str(folder))}", *typed, "setwise --help"]:
        console.print(f"  {line}", markup=False, soft_wrap=True)
    console.print(
        f"\nDone in {time.perf_counter() - started:.1f} s. The demo's files are in {folder}.",
        markup=False,
        soft_wrap=True,
    )


def how_to_run() -> list[str]:
    """What a shell needs before ``setwise`` runs in it: nothing when this Python's
    ``setwise`` is on PATH, else activating its virtual environment (or its full path)."""
    script = Path(sys.executable).parent / "setwise"
    found = shutil.which("setwise")
    if found and Path(found).resolve() == script.resolve():
        return []
    activate = script.parent / "activate"
    if sys.prefix != sys.base_prefix and activate.exists():
        return [f"source {shlex.quote(str(activate))}   # or run {script} itself"]
    return [f"# setwise is {script}: put {script.parent} on PATH, or run it by its path"]


def quoted(word: str) -> str:
    """``word`` as a shell reads it, in double quotes when it holds single quotes."""
    if "'" in word and not any(c in word for c in '"$`\\!'):
        return f'"{word}"'
    return shlex.quote(word)
