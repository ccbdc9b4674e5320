"""A run killed with SIGKILL resumes to exactly what an uninterrupted run gives."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update

import setwise
from setwise.dialects import get_strategy
from setwise.journal import Journal
from setwise.target import resolve_target
from tests import backends
from tests.models import Book, create_books, snapshot

ROOT = Path(__file__).resolve().parent.parent


def connection_args(engine: Engine, backend: str) -> tuple[str, str]:
    schema = ""
    if backend == "postgresql":
        with engine.connect() as connection:
            schema = str(connection.scalar(text("SELECT current_schema()")))
    return engine.url.render_as_string(hide_password=False), schema


def journal_of(engine: Engine, run_id: str) -> list[tuple[Any, ...]]:
    """The run's journal rows without the run id: chunk, key, and every old/new value."""
    stored = Journal().changes_table(resolve_target(Book), get_strategy(engine.dialect))
    table = Journal.changes(stored)
    columns = [c for c in table.columns if c.name != "run_id"]
    with engine.connect() as connection:
        statement = select(*columns).where(table.c.run_id == run_id).order_by(table.c.k_id)
        return [tuple(row) for row in connection.execute(statement)]


def chunks_done(engine: Engine) -> int:
    try:
        with engine.connect() as connection:
            return int(connection.scalar(text("SELECT max(chunks) FROM setwise_runs")) or 0)
    except Exception:  # the runs table may not exist yet
        return 0


@contextmanager
def twin(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """A second fresh database with the same books, for the uninterrupted run."""
    (tmp_path / "twin").mkdir()
    with backends.fresh_database(backend, tmp_path / "twin") as engine:
        create_books(engine, 40)
        yield engine


def write_changes(path: Path) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "price", "title"])
        for i in range(1, 41):
            writer.writerow([i, f"{i}.{i:02d}", f"Corrected “{i}”"])
    return path


@pytest.mark.parametrize("kind", ["apply", "update"])
def test_a_killed_run_resumes_to_the_uninterrupted_result(
    engine: Engine, backend: str, tmp_path: Path, kind: str
) -> None:
    create_books(engine, 40)
    setwise.init(engine, Book)
    changes = write_changes(tmp_path / "changes.csv")
    url, schema = connection_args(engine, backend)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.child_run", url, schema, kind, str(changes)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 60
        while chunks_done(engine) < 3 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.poll() is None, "the run finished before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    killed = setwise.runs(engine)[0]
    assert killed.status == "running" and 3 <= killed.chunks < 8
    options: dict[str, Any] = {"chunk_rows": 5, "resume": killed.run_id}
    statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
    if kind == "apply":
        resumed = setwise.apply(engine, Book, changes, **options)
    else:
        resumed = setwise.update(engine, statement, **options)

    with twin(backend, tmp_path) as other:
        if kind == "apply":
            whole = setwise.apply(other, Book, changes, chunk_rows=5)
        else:
            whole = setwise.update(other, statement, chunk_rows=5)
        assert snapshot(engine) == snapshot(other)
        assert journal_of(engine, killed.run_id) == journal_of(other, whole.run_id or "")
        assert (resumed.matched, resumed.changed, resumed.chunks) == (
            whole.matched,
            whole.changed,
            whole.chunks,
        )
    assert setwise.runs(engine)[0].status == "done"
    if kind == "apply":
        assert snapshot(engine)[0][4] == Decimal("1.01")
