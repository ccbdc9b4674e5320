"""A run killed with SIGKILL resumes to exactly what an uninterrupted run gives."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
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
from setwise.journal.changes import Journal
from setwise.target import resolve_target
from tests import backends
from tests.models import Book, create_books, snapshot
from tests.test_cli import SETWISE, cli_url

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
@pytest.mark.driver_twin
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


def spawn(*args: str, **environment: str) -> subprocess.Popen[str]:
    """``python -m tests.child_run ARGS`` with a hold set by ``environment``."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.child_run", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **environment},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, child: subprocess.Popen[str]) -> None:
    """Until the child has reached its hold (and written ``path``)."""
    deadline = time.monotonic() + 60
    while not path.exists():
        if child.poll() is not None:
            pytest.fail(f"the child ended before its hold: {child.communicate()}")
        assert time.monotonic() < deadline, "the child never reached its hold"
        time.sleep(0.02)


@contextmanager
def journal_read_meanwhile(engine: Engine) -> Iterator[list[int]]:
    """Another connection lists the runs, again and again, until the block ends, as
    `setwise runs` in a second shell would; yields the count of reads done."""
    reads = [0]
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            setwise.runs(engine)
            reads[0] += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        yield reads
    finally:
        stop.set()
        reader.join(timeout=60)


def run_printed(command: str, db: str) -> subprocess.CompletedProcess[str]:
    """A command line setwise printed, run as a user would paste it, on SETWISE_DB ``db``."""
    path = f"{SETWISE.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        command,
        shell=True,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": path, "SETWISE_DB": db},
    )


def apply_held_in_chunk_3(
    engine: Engine, tmp_path: Path, db: str
) -> tuple[subprocess.Popen[str], list[str]]:
    """`setwise apply` of 40 corrections in chunks of 5, in a process of its own, held
    inside chunk 3 with a statement open (as a Ctrl-C may find it); and its arguments.
    The database goes through SETWISE_DB: the command printed hides a URL's password."""
    create_books(engine, 40)
    setwise.init(engine, Book)
    changes = write_changes(tmp_path / "changes.csv")
    ready = tmp_path / "ready"
    args = ["apply", "books", "--from", str(changes), "--chunk-rows", "5", "--yes"]
    child = spawn(
        "cli", *args, SETWISE_DB=db, SETWISE_TEST_HOLD_CHUNK="3", SETWISE_TEST_READY=str(ready)
    )
    wait_for(ready, child)
    return child, args


def test_ctrl_c_inside_a_chunk_while_the_journal_is_read_marks_the_run_and_it_resumes(
    engine: Engine, backend: str, tmp_path: Path
) -> None:
    # Ctrl-C lands while chunk 3 has a statement open (its run record claimed) and
    # another connection keeps reading the journal: the run must still be marked
    # interrupted, the command that resumes it printed, and that command finish it.
    db = cli_url(engine)
    child, args = apply_held_in_chunk_3(engine, tmp_path, db)
    with journal_read_meanwhile(engine) as reads:
        while not reads[0]:
            time.sleep(0.01)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr
    assert "could not mark" not in stderr
    (command,) = re.findall(r"Resume with:\n  (.+)", stderr)
    interrupted = setwise.runs(engine)[0]
    assert (interrupted.status, interrupted.chunks) == ("interrupted", 2)
    assert interrupted.run_id in command

    resumed = run_printed(command, db)
    assert resumed.returncode == 0, resumed.stderr
    with twin(backend, tmp_path) as other:
        uninterrupted = run_printed(shlex.join(["setwise", *args]), cli_url(other))
        assert uninterrupted.returncode == 0, uninterrupted.stderr
        whole = setwise.runs(other)[0]
        assert snapshot(engine) == snapshot(other)
        assert journal_of(engine, interrupted.run_id) == journal_of(other, whole.run_id)
    done = setwise.runs(engine)[0]
    assert (done.run_id, done.status, done.chunks, done.matched) == (
        interrupted.run_id,
        "done",
        whole.chunks,
        whole.matched,
    )


@pytest.mark.backends("sqlite")
def test_a_stop_the_journal_cannot_record_still_prints_the_resume_that_finishes_it(
    engine: Engine, tmp_path: Path
) -> None:
    # A reader keeps a transaction open past the run's busy timeout and every retry:
    # marking the run interrupted fails, yet the command that resumes it is printed, and
    # resumes the run that still says running.
    db = f"{cli_url(engine)}?timeout=0.1"  # pysqlite's busy timeout, in seconds
    child, _ = apply_held_in_chunk_3(engine, tmp_path, db)
    with engine.connect() as reader:
        reader.exec_driver_sql("BEGIN")  # pysqlite would not begin before a write
        reader.exec_driver_sql("SELECT count(*) FROM setwise_runs").all()
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=120)
        reader.rollback()
    assert child.returncode == 130, stderr
    assert "the journal could not record it" in stderr.lower()
    (command,) = re.findall(r"Resume with:\n  (.+)", stderr)
    stopped = setwise.runs(engine)[0]
    assert (stopped.status, stopped.chunks) == ("running", 2)
    assert stopped.run_id in command

    resumed = run_printed(command, cli_url(engine))
    assert resumed.returncode == 0, resumed.stderr
    done = setwise.runs(engine)[0]
    assert (done.run_id, done.status, done.chunks, done.matched) == (stopped.run_id, "done", 8, 40)
    assert snapshot(engine)[0][4] == Decimal("1.01")


def killed_run(engine: Engine, *args: str) -> setwise.RunInfo:
    """Start ``python -m tests.child_run URL SCHEMA ARGS``, SIGKILL it after its third
    chunk, and return its run, still saying running."""
    url, schema = connection_args(engine, engine.dialect.name)
    earlier = {run.run_id for run in setwise.runs(engine)}

    def chunks_of_its_run() -> int:
        newest = setwise.runs(engine, limit=1)
        return newest[0].chunks if newest and newest[0].run_id not in earlier else 0

    child = spawn(url, schema, *args)
    try:
        deadline = time.monotonic() + 60
        while chunks_of_its_run() < 3 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.poll() is None, f"the run ended before it could be killed: {child.stderr}"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.communicate(timeout=30)
    killed = setwise.runs(engine)[0]
    assert killed.run_id not in earlier
    assert killed.status == "running" and 3 <= killed.chunks < 8
    return killed


def test_a_run_whose_process_was_killed_can_be_abandoned(engine: Engine, tmp_path: Path) -> None:
    create_books(engine, 40)
    setwise.init(engine, Book)
    before = snapshot(engine)
    changes = write_changes(tmp_path / "changes.csv")
    killed = killed_run(engine, "apply", str(changes))
    abandoned = setwise.abandon(engine, killed.run_id)
    assert (abandoned.status, abandoned.chunks) == ("abandoned", killed.chunks)
    written = killed.chunks * 5
    assert [row[4] for row in snapshot(engine)[:written]] == [
        Decimal(f"{i}.{i:02d}") for i in range(1, written + 1)
    ]
    with pytest.raises(setwise.SetwiseError, match="was abandoned"):
        setwise.apply(engine, Book, changes, chunk_rows=5, resume=killed.run_id)
    setwise.revert(engine, killed.run_id)  # its chunks can still be undone
    assert [row[:-1] for row in snapshot(engine)] == [row[:-1] for row in before]  # not version


@pytest.mark.parametrize("schedule", ["one waits at its take-up", "both at once"])
def test_two_processes_resuming_one_killed_run_finish_it_once(
    engine: Engine, backend: str, tmp_path: Path, schedule: str
) -> None:
    # Two `apply --resume` of one killed run: one finishes it, the other stops and
    # changes nothing, and the run stays done. In the first schedule the late process
    # has read the run when it is held, until the other has finished it.
    create_books(engine, 40)
    setwise.init(engine, Book)
    changes = write_changes(tmp_path / "changes.csv")
    killed = killed_run(engine, "apply", str(changes))
    url, schema = connection_args(engine, backend)
    resume = [url, schema, "apply", str(changes), killed.run_id]
    ready, go = tmp_path / "ready", tmp_path / "go"
    held = schedule == "one waits at its take-up"
    hold = {"SETWISE_TEST_HOLD_RUN_UPDATE": "1", "SETWISE_TEST_GO": str(go)} if held else {}
    late = spawn(*resume, SETWISE_TEST_READY=str(ready), **hold)
    if held:
        wait_for(ready, late)
    first = spawn(*resume)
    if held:
        first.communicate(timeout=120)
        assert first.returncode == 0, first.stderr
        go.touch()
    ended = {child: child.communicate(timeout=120)[1] for child in (first, late)}
    winners = [child for child in ended if child.returncode == 0]
    assert len(winners) == 1, ended
    (loser,) = [child for child in ended if child.returncode != 0]
    assert re.search(rf"(RunStateError|RunInUseError): run {killed.run_id} ", ended[loser])

    with twin(backend, tmp_path) as other:
        whole = setwise.apply(other, Book, changes, chunk_rows=5)
        assert snapshot(engine) == snapshot(other)
        assert journal_of(engine, killed.run_id) == journal_of(other, whole.run_id or "")
    done = setwise.runs(engine)[0]
    assert (done.status, done.chunks, done.matched, done.changed) == (
        "done",
        whole.chunks,
        whole.matched,
        whole.changed,
    )
    with pytest.raises(setwise.RunStateError, match="is finished; there is nothing to resume"):
        setwise.apply(engine, Book, changes, chunk_rows=5, resume=killed.run_id)


@pytest.mark.driver_twin
def test_a_killed_revert_resumes_to_what_an_uninterrupted_revert_gives(
    engine: Engine, backend: str, tmp_path: Path
) -> None:
    create_books(engine, 40)
    changes = write_changes(tmp_path / "changes.csv")
    applied = setwise.apply(engine, Book, changes, chunk_rows=5)
    killed = killed_run(engine, "revert", applied.run_id or "")
    assert (killed.kind, killed.reverts) == ("revert", applied.run_id)
    # Someone changes a row the revert restored: not a conflict of the rest of it.
    someone = update(Book).where(Book.id == 1).values(stock=999)
    with engine.begin() as connection:
        connection.execute(someone)

    with pytest.raises(setwise.RunStateError, match=f"--resume {killed.run_id}`"):
        setwise.revert(engine, applied.run_id or "", chunk_rows=5)  # a second revert
    with pytest.raises(setwise.SetwiseError, match=f"is not a revert of run {applied.run_id}"):
        setwise.revert(engine, applied.run_id or "", chunk_rows=5, resume=applied.run_id)
    hint = f"`setwise revert {applied.run_id} --resume {killed.run_id}`"
    with pytest.raises(setwise.SetwiseError, match=re.escape(hint)):
        setwise.apply(engine, Book, changes, chunk_rows=5, resume=killed.run_id)
    resumed = run_printed(
        shlex.join(["setwise", "revert", applied.run_id or "", "--chunk-rows", "5"])
        + f" --resume {killed.run_id} --yes --json",
        cli_url(engine),
    )
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)

    with twin(backend, tmp_path) as other:
        first = setwise.apply(other, Book, changes, chunk_rows=5)
        whole = setwise.revert(other, first.run_id or "", chunk_rows=5)
        with other.begin() as connection:
            connection.execute(someone)
        assert snapshot(engine) == snapshot(other)
        assert journal_of(engine, killed.run_id) == journal_of(other, whole.run_id or "")
        assert (report["run_id"], report["matched"], report["changed"], report["chunks"]) == (
            killed.run_id,
            whole.matched,
            whole.changed,
            whole.chunks,
        )
    original, revert = (setwise.run_details(engine, r)[0] for r in (applied.run_id, killed.run_id))
    assert (original.status, original.reverted_by) == ("reverted", killed.run_id)
    assert (revert.status, revert.chunks) == ("done", whole.chunks)


def test_ctrl_c_during_a_chunked_revert_prints_the_revert_that_resumes_it(
    engine: Engine, tmp_path: Path
) -> None:
    create_books(engine, 40)
    before = snapshot(engine)
    applied = setwise.apply(engine, Book, write_changes(tmp_path / "changes.csv"), chunk_rows=5)
    ready = tmp_path / "ready"
    db = cli_url(engine)
    args = ["revert", applied.run_id or "", "--chunk-rows", "5", "--yes"]
    child = spawn(
        "cli", *args, SETWISE_DB=db, SETWISE_TEST_HOLD_CHUNK="3", SETWISE_TEST_READY=str(ready)
    )
    wait_for(ready, child)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr
    (command,) = re.findall(r"Resume with:\n  (.+)", stderr)
    interrupted = setwise.runs(engine)[0]
    assert (interrupted.kind, interrupted.status, interrupted.chunks) == (
        "revert",
        "interrupted",
        2,
    )
    assert command.startswith(f"setwise revert {applied.run_id} ")
    assert f"--resume {interrupted.run_id}" in command

    resumed = run_printed(command, db)
    assert resumed.returncode == 0, resumed.stderr
    assert [row[:-1] for row in snapshot(engine)] == [row[:-1] for row in before]  # not version
    assert setwise.run_details(engine, interrupted.run_id)[0].status == "done"
