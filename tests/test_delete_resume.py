"""A chunked delete killed with SIGKILL resumes to the table and journal of one that ran
through, and its revert puts every row back."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, delete

import setwise
from tests.models import Book, create_books, snapshot
from tests.test_resume import journal_of, killed_run, twin


def test_a_killed_delete_resumes_to_the_uninterrupted_result(
    engine: Engine, backend: str, tmp_path: Path
) -> None:
    create_books(engine, 40)
    setwise.init(engine, Book)
    before = snapshot(engine)
    killed = killed_run(engine, "delete", "-")
    assert 0 < len(snapshot(engine)) < 40  # some chunks committed, not all
    statement = delete(Book).where(Book.id > 0)
    resumed = setwise.delete(engine, statement, chunk_rows=5, resume=killed.run_id)
    with twin(backend, tmp_path) as other:
        whole = setwise.delete(other, statement, chunk_rows=5)
        assert snapshot(engine) == snapshot(other) == []
        assert journal_of(engine, killed.run_id) == journal_of(other, whole.run_id or "")
        assert (resumed.chunks, whole.chunks) == (8, 8)
    assert setwise.runs(engine)[0].status == "done"
    setwise.revert(engine, killed.run_id)
    assert snapshot(engine) == before
