"""A chunked upsert killed with SIGKILL resumes to exactly what an uninterrupted one gives."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine

import setwise
from tests.models import Book, create_books, snapshot
from tests.test_resume import ROOT, chunks_done, connection_args, journal_of, twin


def write_upsert(path: Path) -> Path:
    """Books 1-60 (the table has 40): 40 corrected, 20 new."""
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "isbn", "title", "price"])
        for i in range(1, 61):
            writer.writerow([i, f"978-{i:06d}", f"Corrected “{i}”", f"{i}.{i:02d}"])
    return path


def test_a_killed_upsert_resumes_to_the_uninterrupted_result(
    engine: Engine, backend: str, tmp_path: Path
) -> None:
    create_books(engine, 40)
    setwise.init(engine, Book)
    changes = write_upsert(tmp_path / "upsert.csv")
    url, schema = connection_args(engine, backend)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.child_run", url, schema, "upsert", str(changes)],
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
    killed = setwise.runs(engine)[0]
    assert killed.status == "running" and 3 <= killed.chunks < 12
    resumed = setwise.apply(
        engine, Book, changes, missing="insert", chunk_rows=5, resume=killed.run_id
    )
    with twin(backend, tmp_path) as other:
        whole = setwise.apply(other, Book, changes, missing="insert", chunk_rows=5)
        assert snapshot(engine) == snapshot(other)
        assert journal_of(engine, killed.run_id) == journal_of(other, whole.run_id or "")
        assert (resumed.matched, resumed.changed, resumed.inserted, resumed.chunks) == (
            whole.matched,
            whole.changed,
            whole.inserted,
            whole.chunks,
        )
    assert (resumed.inserted, resumed.missing) == (20, 0)
    done = setwise.runs(engine)[0]
    assert (done.status, done.inserted) == ("done", 20)
    setwise.revert(engine, killed.run_id)
    (tmp_path / "again").mkdir()
    with twin(backend, tmp_path / "again") as original:
        assert snapshot(engine) == snapshot(original)
