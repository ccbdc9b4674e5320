"""``verify=True`` (``--verify``): the rows a run wrote, read again after it and compared
with what it wrote; a row changed or deleted behind its back is reported by key and
column, and the run does not look clean."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, Executable, delete, update

import setwise
from setwise import Mismatch
from tests.models import Book, book_row, create_books
from tests.test_cli import SETWISE, cli_url
from tests.test_cli import setwise as run_setwise
from tests.test_control import PATIENCE, wait_until


def behind_the_back(
    engine: Engine, after_chunk: int, *statements: Executable
) -> Callable[[setwise.Progress], None]:
    """A progress callback that runs ``statements`` on a connection of its own once
    chunk ``after_chunk`` has committed: a writer the run does not know of."""
    done = False

    def progress(step: setwise.Progress) -> None:
        nonlocal done
        if step.chunk == after_chunk and not done:
            done = True
            with engine.begin() as connection:
                for statement in statements:
                    connection.execute(statement)

    return progress


def test_verify_reports_rows_changed_and_deleted_behind_the_run_by_key_and_column(
    engine: Engine,
) -> None:
    create_books(engine, 40)
    statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
    changed_back = update(Book).where(Book.id == 3).values(stock=999)
    deleted = delete(Book).where(Book.id == 4)
    progress = behind_the_back(engine, 1, changed_back, deleted)
    with pytest.raises(setwise.VerificationError) as failed:
        setwise.update(engine, statement, chunk_rows=10, progress=progress, verify=True)
    error = failed.value
    meant = int(str(book_row(3)["stock"])) + 1
    assert error.mismatches == (Mismatch(3, "stock", meant, 999), Mismatch(4, None, None, None))
    assert error.total == 2 and error.table == "books"
    assert "key 3 stock: wrote 10, found 999" in str(error) and "key 4: gone" in str(error)
    report = error.report
    assert isinstance(report, setwise.Report) and report.changed == 40
    assert report.verified == setwise.Verification(40, 2, error.mismatches)
    assert not report.verified.clean
    control = setwise.run_control(engine, error.run_id)
    assert control is not None and control.verified is not None
    assert (control.verified["rows"], control.verified["mismatched"]) == (40, 2)


def test_a_clean_verify_says_so_in_the_report_and_in_show(engine: Engine, tmp_path: Path) -> None:
    create_books(engine, 20)
    changes = [
        {"id": i, "title": f"Corrected {i}", "price": Decimal(f"{i}.5")} for i in range(1, 11)
    ]
    report = setwise.apply(engine, Book, changes, verify=True)  # one transaction
    assert report.verified == setwise.Verification(10, 0, ())
    assert report.verified.clean
    shown = run_setwise("show", report.run_id or "", "--db", cli_url(engine))
    assert "verified     clean: 10 rows hold what the run wrote" in shown.stdout, shown.stdout

    statement = update(Book).where(Book.id > 15).values(stock=0)
    chunked = setwise.update(engine, statement, chunk_rows=2, verify=True)
    assert chunked.verified == setwise.Verification(5, 0, ())
    nothing = setwise.update(engine, statement, verify=True)  # nothing left to change
    assert nothing.changed == 0 and nothing.verified is not None and nothing.verified.clean


def test_verify_compares_stored_values_exactly_not_by_collation(engine: Engine) -> None:
    """MariaDB's default collation calls 'CORRECTED' equal to 'corrected'; verify does not."""
    create_books(engine, 10)
    shouted = update(Book).where(Book.id == 2).values(title="CORRECTED")
    statement = update(Book).where(Book.id > 0).values(title="corrected")
    progress = behind_the_back(engine, 1, shouted)
    with pytest.raises(setwise.VerificationError) as failed:
        setwise.update(engine, statement, chunk_rows=5, progress=progress, verify=True)
    assert failed.value.mismatches == (Mismatch(2, "title", "corrected", "CORRECTED"),)


def test_verify_needs_the_journal(engine: Engine) -> None:
    create_books(engine, 5)
    statement = update(Book).where(Book.id > 0).values(stock=0)
    with pytest.raises(setwise.InvalidArgumentError, match="needs journal=True") as refused:
        setwise.update(engine, statement, journal=False, verify=True)
    assert refused.value.argument == "verify"
    with pytest.raises(setwise.InvalidArgumentError, match="needs journal=True"):
        setwise.apply(engine, Book, [{"id": 1, "stock": 3}], journal=False, verify=True)
    assert setwise.runs(engine) == []


def test_apply_verify_on_the_command_line_exits_1_on_a_row_changed_behind_it(
    engine: Engine,
) -> None:
    create_books(engine, 40)
    db = cli_url(engine)
    clean = run_setwise(
        "apply", "books", "--set", "stock = 0", "--where", "id <= 5", "--verify", "--yes",
        "--db", db,
    )  # fmt: skip
    assert clean.returncode == 0, clean.stderr
    assert "Verified: the 5 rows it wrote hold what it wrote." in clean.stdout

    child = subprocess.Popen(
        [str(SETWISE), "apply", "books", "--set", "stock = stock + 1", "--all-rows",
         "--chunk-rows", "5", "--throttle", "0.2", "--verify", "--yes", "--db", db],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        first = setwise.runs(engine, limit=1)[0].run_id  # the clean run's

        def chunk_1_done() -> bool:
            run = setwise.runs(engine, limit=1)[0]
            return run.run_id != first and run.chunks >= 1

        wait_until(chunk_1_done, "chunk 1", child)
        with engine.begin() as connection:
            connection.execute(update(Book).where(Book.id == 2).values(stock=-7))
        out, err = child.communicate(timeout=PATIENCE)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 1, (out, err)
    assert "verify failed: 1 row(s) of 'books'" in err and "key 2 stock: wrote 1, found -7" in err
    run = setwise.runs(engine, limit=1)[0]
    assert run.status == "done"
    shown = run_setwise("show", run.run_id, "--db", db)
    assert "verified     FAILED: 1 of 40 rows differ" in shown.stdout, shown.stdout
