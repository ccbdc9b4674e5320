"""A revert that meets rows another writer changes while it runs: it says so, and the
run stays revertible."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, update

import setwise
from tests.models import Book, book_row, create_books, snapshot
from tests.test_cli import cli_url
from tests.test_resume import run_printed, spawn, wait_for


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


def ten_updated(engine: Engine) -> str:
    """Books 1 to 10 with their stock raised by 100, journaled: the run's id."""
    statement = update(Book).where(Book.id <= 10).values(stock=Book.stock + 100)
    run = setwise.update(engine, statement)
    assert run.changed == 10
    return run.run_id or ""


def meddling(engine: Engine, after_chunk: int = 1) -> Callable[[setwise.Progress], None]:
    """A progress callback that sets book 8's stock to -1 through another connection,
    once chunk ``after_chunk`` has committed."""

    def meddle(progress: setwise.Progress) -> None:
        if progress.chunk == after_chunk:
            with engine.begin() as connection:
                connection.execute(update(Book).where(Book.id == 8).values(stock=-1))

    return meddle


def stocks(engine: Engine) -> dict[int, object]:
    return {row[0]: row[5] for row in snapshot(engine)}


def test_a_row_changed_during_a_chunked_revert_is_a_conflict_the_run_can_finish(
    books: Engine,
) -> None:
    run_id = ten_updated(books)
    with pytest.raises(setwise.ConflictError) as caught:
        setwise.revert(books, run_id, chunk_rows=3, progress=meddling(books))
    error = caught.value
    assert [(c.key, c.column, c.written, c.now) for c in error.conflicts] == [
        (8, "stock", book_row(8)["stock"] + 100, -1)  # type: ignore[operator]
    ]
    assert error.total == 1 and error.run_id == run_id
    assert error.report is not None
    assert (error.report.changed, error.report.conflicts) == (9, (8,))
    assert "restored the other 9" in str(error) and "force=True" in str(error)
    now = stocks(books)
    assert [now[i] for i in range(1, 11)] == [
        -1 if i == 8 else book_row(i)["stock"] for i in range(1, 11)
    ]
    original = setwise.run_details(books, run_id)[0]
    assert (original.status, original.reverted_by) == ("partly-reverted", None)
    partial = setwise.run_details(books, error.report.run_id or "")[0]
    assert (partial.status, partial.reverts, partial.conflicts) == ("done", run_id, 1)

    # A plain revert keeps refusing the row, and only it; nothing is written.
    with pytest.raises(setwise.ConflictError) as again:
        setwise.revert(books, run_id)
    assert [(c.key, c.now) for c in again.value.conflicts] == [(8, -1)]
    assert again.value.report is None
    assert stocks(books) == now
    with pytest.raises(setwise.RunStateError, match="partly reverted"):
        setwise.update(
            books,
            update(Book).where(Book.id <= 10).values(stock=Book.stock + 100),
            chunk_rows=3,
            resume=run_id,
        )

    # Forced, the revert finishes exactly that row, and the run is reverted.
    finished = setwise.revert(books, run_id, force=True)
    assert (finished.changed, finished.conflicts) == (1, ())
    assert stocks(books)[8] == book_row(8)["stock"]
    assert [now[i] for i in range(1, 11) if i != 8] == [
        stocks(books)[i] for i in range(1, 11) if i != 8
    ]
    original = setwise.run_details(books, run_id)[0]
    assert (original.status, original.reverted_by) == ("reverted", finished.run_id)


def test_a_resumed_revert_raises_for_a_row_its_first_process_left(books: Engine) -> None:
    run_id = ten_updated(books)
    meddle = meddling(books)

    def meddle_then_stop(progress: setwise.Progress) -> None:
        meddle(progress)
        if progress.chunk == 3:  # chunk 3 (books 7 to 9) has left book 8
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        setwise.revert(books, run_id, chunk_rows=3, progress=meddle_then_stop)
    revert_id = setwise.runs(books)[0].run_id
    with pytest.raises(setwise.ConflictError) as caught:
        setwise.revert(books, run_id, chunk_rows=3, resume=revert_id)
    assert [(c.key, c.now) for c in caught.value.conflicts] == [(8, -1)]
    assert caught.value.report is not None and caught.value.report.run_id == revert_id
    assert setwise.run_details(books, run_id)[0].status == "partly-reverted"
    finished = setwise.revert(books, run_id, force=True)
    assert finished.changed == 1 and stocks(books)[8] == book_row(8)["stock"]


def test_a_row_changed_after_the_check_of_a_revert_in_one_transaction_is_a_conflict(
    books: Engine,
) -> None:
    run_id = ten_updated(books)
    checked: list[str] = []

    def on_the_check(*args: object) -> None:
        statement = str(args[2])
        if statement.startswith("SELECT") and "n_stock, books.stock" in statement:
            checked.append(statement)  # the revert checks for conflicts: none yet

    def after_the_check(*args: object) -> None:
        if len(checked) == 1:  # its connection is back in the pool, its locks gone
            checked.append("changed")
            with books.begin() as connection:
                connection.execute(update(Book).where(Book.id == 8).values(stock=-1))

    event.listen(books, "after_cursor_execute", on_the_check)
    event.listen(books.pool, "checkin", after_the_check)
    try:
        with pytest.raises(setwise.ConflictError) as caught:
            setwise.revert(books, run_id)
    finally:
        event.remove(books, "after_cursor_execute", on_the_check)
        event.remove(books.pool, "checkin", after_the_check)
    assert [(c.key, c.now) for c in caught.value.conflicts] == [(8, -1)]
    assert caught.value.report is not None and caught.value.report.changed == 9
    assert setwise.run_details(books, run_id)[0].status == "partly-reverted"
    assert setwise.revert(books, run_id, force=True).changed == 1


def test_a_forced_chunked_revert_writes_a_row_changed_while_it_runs(books: Engine) -> None:
    before = snapshot(books)
    run_id = ten_updated(books)
    report = setwise.revert(books, run_id, chunk_rows=3, force=True, progress=meddling(books))
    assert (report.changed, report.conflicts) == (10, ())
    assert [row[:8] for row in snapshot(books)] == [row[:8] for row in before]
    original = setwise.run_details(books, run_id)[0]
    assert (original.status, original.reverted_by) == ("reverted", report.run_id)


def test_a_row_someone_already_put_back_is_no_conflict(books: Engine) -> None:
    run_id = ten_updated(books)
    with books.begin() as connection:  # someone else undoes row 4 by hand
        put_back = {"stock": book_row(4)["stock"], "version": 1}
        connection.execute(update(Book).where(Book.id == 4).values(put_back))
    report = setwise.revert(books, run_id)
    assert (report.changed, report.conflicts) == (9, ())
    assert setwise.run_details(books, run_id)[0].status == "reverted"


def test_the_cli_exits_1_naming_the_rows_and_the_command_that_finishes_them(
    books: Engine, tmp_path: Path
) -> None:
    run_id = ten_updated(books)
    ready, go = tmp_path / "ready", tmp_path / "go"
    db = cli_url(books)
    args = ["revert", run_id, "--chunk-rows", "3", "--yes", "--json"]
    # The revert holds before its first chunk, after its check for conflicts.
    child = spawn(
        "cli",
        *args,
        SETWISE_DB=db,
        SETWISE_TEST_HOLD_RUN_UPDATE="1",
        SETWISE_TEST_READY=str(ready),
        SETWISE_TEST_GO=str(go),
    )
    wait_for(ready, child)
    with books.begin() as connection:
        connection.execute(update(Book).where(Book.id == 8).values(stock=-1))
    go.touch()
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 1, stderr
    assert "key 8, stock: the run wrote 124, now -1" in stderr
    found = json.loads(stdout)["error"]
    assert (found["type"], found["total"], found["report"]["changed"]) == ("ConflictError", 1, 9)
    finish = next(line for line in stderr.split("`") if line.startswith("setwise "))
    assert finish.endswith(f"revert {run_id} --force")

    listed = run_printed("setwise runs --json --table books", db)
    statuses = {r["run_id"]: r["status"] for r in json.loads(listed.stdout)}
    assert statuses[run_id] == "partly-reverted"
    shown = run_printed(f"setwise show {run_id}", db)
    assert "partly-reverted" in shown.stdout

    finished = run_printed(finish + " --yes", db)
    assert finished.returncode == 0, finished.stderr
    assert stocks(books)[8] == book_row(8)["stock"]
    assert setwise.run_details(books, run_id)[0].status == "reverted"
