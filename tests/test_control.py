"""A running run controlled from another process: pause, continue, tune, stop, and
``setwise show --follow`` drawing it; the stopped run resumes to what an uninterrupted
run gives."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text, update

import setwise
from setwise.journal.changes import _EXISTING
from tests.models import Book, create_books, snapshot
from tests.test_cli import SETWISE, cli_url
from tests.test_cli import setwise as run_setwise
from tests.test_resume import journal_of, twin, write_changes

#: Longest wait for a run to reach a state a test waits for.
PATIENCE = 60


def wait_until(
    found: Callable[[], bool], what: str, child: subprocess.Popen[str] | None = None
) -> None:
    deadline = time.monotonic() + PATIENCE
    while not found():
        if child is not None and child.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {child.communicate()}")
        assert time.monotonic() < deadline, f"waited {PATIENCE} s for {what}"
        time.sleep(0.05)


def newest(engine: Engine) -> setwise.RunInfo | None:
    found = setwise.runs(engine, limit=1)
    return found[0] if found else None


def chunks_of_newest(engine: Engine) -> int:
    try:
        found = newest(engine)
    except Exception:  # the runs table may not exist yet
        return 0
    return 0 if found is None else found.chunks


def control(engine: Engine, run_id: str) -> setwise.RunControl:
    found = setwise.run_control(engine, run_id)
    assert found is not None
    return found


def test_a_second_process_pauses_tunes_and_stops_a_run_and_follow_shows_it(
    engine: Engine, backend: str, tmp_path: Path
) -> None:
    create_books(engine, 40)
    changes = write_changes(tmp_path / "changes.csv")
    db = cli_url(engine)
    apply = ["apply", "books", "--from", str(changes), "--chunk-rows", "2", "--db", db]
    child = subprocess.Popen(
        [str(SETWISE), *apply, "--throttle", "0.3", "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    follower: subprocess.Popen[str] | None = None
    try:
        wait_until(lambda: chunks_of_newest(engine) >= 1, "chunk 1", child)
        run = newest(engine)
        assert run is not None
        follower = subprocess.Popen(
            [str(SETWISE), "show", run.run_id, "--follow", "--db", db],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        paused = run_setwise("pause", run.run_id, "--db", db)
        assert paused.returncode == 0, paused.stderr
        assert f"setwise continue {run.run_id}" in paused.stdout
        wait_until(lambda: control(engine, run.run_id).paused is not None, "the pause", child)
        held = setwise.run_details(engine, run.run_id)[0].chunks
        time.sleep(1.0)  # two reads of its control row: still paused, no chunk written
        assert setwise.run_details(engine, run.run_id)[0].chunks == held
        shown = run_setwise("show", run.run_id, "--db", db)
        assert "paused: setwise pause" in shown.stdout, shown.stdout
        tuned = run_setwise("tune", run.run_id, "--throttle", "0.4", "--db", db)
        assert tuned.returncode == 0 and "throttle_seconds 0.4" in tuned.stdout, tuned.stderr
        went_on = run_setwise("continue", run.run_id, "--db", db)
        assert went_on.returncode == 0, went_on.stderr
        wait_until(
            lambda: setwise.run_details(engine, run.run_id)[0].chunks > held, "a chunk", child
        )
        stopped = run_setwise("stop", run.run_id, "--db", db)
        assert stopped.returncode == 0, stopped.stderr
        out, err = child.communicate(timeout=PATIENCE)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, (out, err)
    stopped_run = setwise.run_details(engine, run.run_id)[0]
    assert stopped_run.status == "interrupted" and held < stopped_run.chunks < 20
    assert f"Stopped by `setwise stop {run.run_id}` after chunk {stopped_run.chunks}." in err
    assert "--resume" in err

    assert follower is not None
    followed, _ = follower.communicate(timeout=PATIENCE)
    assert follower.returncode == 130, followed
    lines = followed.splitlines()
    assert any("paused: setwise pause" in line for line in lines), followed
    assert any("tuned: throttle_seconds 0.4" in line for line in lines), followed
    assert lines[-1].startswith(f"run {run.run_id}: interrupted, {stopped_run.chunks} chunks")

    # Commands to a run that is not running are refused, saying why.
    refused = run_setwise("pause", run.run_id, "--db", db)
    assert refused.returncode == 1
    assert "interrupted after" in refused.stderr and "not running" in refused.stderr

    resumed = run_setwise(*apply, "--resume", run.run_id, "--yes")
    assert resumed.returncode == 0, resumed.stderr
    with twin(backend, tmp_path) as other:
        whole = setwise.apply(other, "books", changes, chunk_rows=2)  # as the CLI names it
        assert snapshot(engine) == snapshot(other)
        assert journal_of(engine, run.run_id) == journal_of(other, whole.run_id or "")


@contextmanager
def running(engine: Engine, **options: Any) -> Iterator[dict[str, Any]]:
    """A chunked update of every book in a thread: ``outcome`` gets its Report or error."""
    outcome: dict[str, Any] = {"progress": []}

    def go() -> None:
        statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
        try:
            outcome["report"] = setwise.update(
                engine, statement, progress=outcome["progress"].append, **options
            )
        except BaseException as exc:  # the test looks at it
            outcome["error"] = exc

    thread = threading.Thread(target=go)
    thread.start()
    try:
        wait_until(lambda: bool(outcome["progress"]) or not thread.is_alive(), "chunk 1")
        run = newest(engine)
        assert run is not None
        outcome["run_id"] = run.run_id
        yield outcome
    except BaseException:  # a failed test leaves no run going on behind it
        if thread.is_alive() and "run_id" in outcome:
            with suppress(setwise.RunStateError):
                setwise.stop(engine, outcome["run_id"])
        raise
    finally:
        thread.join(PATIENCE)


def test_tuned_chunk_rows_take_from_the_next_chunk_and_the_progress_says_paused(
    engine: Engine,
) -> None:
    create_books(engine, 40)
    with running(engine, chunk_rows=5, throttle_seconds=0.2) as outcome:
        run_id = outcome["run_id"]
        setwise.pause(engine, run_id)
        wait_until(lambda: control(engine, run_id).paused == "setwise pause", "the pause")
        assert outcome["progress"][-1].paused == "setwise pause"
        found = setwise.tune(engine, run_id, chunk_rows=3, throttle_seconds=0.0)
        assert found.tuned() == {"chunk_rows": 3, "throttle_seconds": 0.0}
        paused_at = setwise.run_details(engine, run_id)[0].chunks
        setwise.continue_(engine, run_id)
    report = outcome["report"]
    assert report.changed == 40
    chunks = setwise.run_details(engine, run_id)[1]
    assert {c.rows for c in chunks[:paused_at]} == {5}
    assert [c.rows for c in chunks[paused_at:-1]] == [3] * (len(chunks) - paused_at - 1)
    assert any(p.paused is None and p.chunk > paused_at for p in outcome["progress"])
    after = control(engine, run_id)
    assert (after.command, after.paused, after.rows_total) == (None, None, 40)


def test_a_stop_while_paused_ends_the_run_interrupted_and_a_resume_clears_it(
    engine: Engine,
) -> None:
    create_books(engine, 40)
    with running(engine, chunk_rows=5, throttle_seconds=0.2) as outcome:
        run_id = outcome["run_id"]
        setwise.pause(engine, run_id)
        wait_until(lambda: control(engine, run_id).paused is not None, "the pause")
        setwise.tune(engine, run_id, throttle_seconds=0.5)
        setwise.stop(engine, run_id)
        with pytest.raises(setwise.RunStateError, match="stopping"):
            setwise.pause(engine, run_id)
    error = outcome["error"]
    assert isinstance(error, setwise.RunInterrupted) and error.by == "setwise stop"
    assert error.marked and error.run_id == run_id
    assert setwise.run_details(engine, run_id)[0].status == "interrupted"

    statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
    report = setwise.update(engine, statement, chunk_rows=5, resume=run_id)
    assert report.matched == 40
    # The resume took the run up afresh: no command, nothing tuned, nothing waiting.
    assert control(engine, run_id).tuned() == {} and control(engine, run_id).command is None


def test_commands_are_refused_with_reasons(engine: Engine) -> None:
    create_books(engine, 10)
    statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
    done = setwise.update(engine, statement, chunk_rows=5)
    assert done.run_id is not None
    for command in (setwise.pause, setwise.continue_, setwise.stop):
        with pytest.raises(setwise.RunStateError, match="is done after 2 chunk") as refused:
            command(engine, done.run_id)
        assert refused.value.status == "done" and refused.value.run_id == done.run_id
    with pytest.raises(setwise.NotFoundError):
        setwise.pause(engine, "20260101-000000-00000000")
    with pytest.raises(setwise.InvalidArgumentError, match="chunk_seconds must be more than 0"):
        setwise.tune(engine, done.run_id, chunk_seconds=0)
    with pytest.raises(setwise.InvalidArgumentError, match="tune needs"):
        setwise.tune(engine, done.run_id)
    with (
        running(engine, chunk_rows=2, throttle_seconds=0.2) as outcome,
        pytest.raises(setwise.RunStateError, match="is not paused"),
    ):
        setwise.continue_(engine, outcome["run_id"])
    assert outcome["report"].changed == 10


def test_a_database_whose_runs_table_predates_control_gets_it_on_the_next_run(
    engine: Engine,
) -> None:
    create_books(engine, 10)
    statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
    setwise.update(engine, statement, chunk_rows=5)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE setwise_control"))
    old = newest(engine)
    assert old is not None and setwise.run_control(engine, old.run_id) is None
    # A run an earlier setwise left running takes no commands: said so.
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE setwise_runs SET status = 'running' WHERE run_id = :r"),
            {"r": old.run_id},
        )
    with pytest.raises(setwise.RunStateError, match="takes no commands"):
        setwise.pause(engine, old.run_id)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE setwise_control"))
    # A process of the new setwise meets the database afresh (a new engine), as after
    # an upgrade: it looks for its tables again and creates the one missing.
    _EXISTING.pop(engine, None)
    with running(engine, chunk_rows=2, throttle_seconds=0.2) as outcome:
        setwise.pause(engine, outcome["run_id"])
        wait_until(lambda: control(engine, outcome["run_id"]).paused is not None, "the pause")
        setwise.continue_(engine, outcome["run_id"])
    assert outcome["report"].changed == 10


def test_the_control_table_is_refused_as_a_target(engine: Engine) -> None:
    create_books(engine, 10)
    statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
    run = setwise.update(engine, statement, chunk_rows=5)
    with pytest.raises(setwise.SchemaError, match="one of setwise's own tables"):
        setwise.apply(engine, "setwise_control", [{"run_id": run.run_id, "command": "stop"}])
    found = setwise.run_control(engine, run.run_id or "")
    assert found is not None and found.command is None


def test_a_paused_run_abandoned_from_another_process_stops(engine: Engine) -> None:
    create_books(engine, 40)
    with running(engine, chunk_rows=5, throttle_seconds=0.2) as outcome:
        run_id = outcome["run_id"]
        setwise.pause(engine, run_id)
        wait_until(lambda: control(engine, run_id).paused is not None, "the pause")
        at = setwise.abandon(engine, run_id).chunks
    assert isinstance(outcome["error"], setwise.RunInUseError)
    info, chunks = setwise.run_details(engine, run_id)
    assert info.status == "abandoned" and info.chunks == len(chunks) == at


def test_ctrl_c_ends_following_and_leaves_the_run_alone(engine: Engine) -> None:
    create_books(engine, 40)
    with running(engine, chunk_rows=2, throttle_seconds=0.1) as outcome:
        run_id = outcome["run_id"]
        follower = subprocess.Popen(
            [str(SETWISE), "show", run_id, "--follow", "--db", cli_url(engine)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert follower.stdout is not None
            first = follower.stdout.readline()  # the follower is up and reading
            follower.send_signal(signal.SIGINT)
            followed, _ = follower.communicate(timeout=PATIENCE)
            followed = first + followed
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.wait()
        assert follower.returncode == 130, followed
        assert f"Stopped following; run {run_id} goes on as it was." in followed
        assert f"run {run_id}: running" in followed
    assert outcome["report"].changed == 40
    assert setwise.run_details(engine, run_id)[0].status == "done"
